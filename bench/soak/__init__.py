"""Soak benchmark: many generated feeds on a local server, a simulated clock, churn and faults.

Run ``python3 -m bench.soak.run --quick`` (see README.md beside this file).
"""
