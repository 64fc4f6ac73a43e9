"""Shared fixtures: the local feed server (tests/local_feeds.py)."""

pytest_plugins = ["tests.local_feeds"]
