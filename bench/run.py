"""Run every benchmark and print their tables: ``python bench/run.py [--quick]``.

--quick: one ingest run (else 3, side by side, median) and search at 100,000 entries only (the
1,000,000-entry run takes a few minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = [[sys.executable, str(HERE / "bench_ingest.py"), "--runs", "1" if args.quick else "3"],
            [sys.executable, str(HERE / "bench_search.py"), "--entries", "100000"]]
    if not args.quick:
        runs.append([sys.executable, str(HERE / "bench_search.py"), "--entries", "1000000"])
    failed = 0
    for command in runs:
        print(f"\n$ {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(command))}", flush=True)
        failed += subprocess.run(command, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
