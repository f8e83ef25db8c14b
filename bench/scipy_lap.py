"""Baseline for bench/assignment.ts: scipy's linear_sum_assignment (maximize) on the same matrices.

Usage: python3 bench/scipy_lap.py FILE.f32 N [FILE.f32 N ...]
Each file holds one row-major n x n float32 matrix (float64 when its name ends in .f64). Prints one
JSON line per matrix: {"n": n, "cold_ms": first call, "warm_ms": best of 3 later calls (0 of them
with --once), "value": optimum (float64 sum), "max_rss_kb": peak resident memory of this process}.
"""
import json
import resource
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment


def main() -> None:
    args = sys.argv[1:]
    once = "--once" in args
    args = [a for a in args if a != "--once"]
    for path, n in zip(args[0::2], args[1::2]):
        n = int(n)
        cost = np.fromfile(path, dtype="<f8" if path.endswith(".f64") else "<f4").reshape(n, n)
        t0 = time.perf_counter()
        rows, cols = linear_sum_assignment(cost, maximize=True)
        cold = (time.perf_counter() - t0) * 1e3
        warm = float("inf")
        for _ in range(0 if once else 3):
            t0 = time.perf_counter()
            rows, cols = linear_sum_assignment(cost, maximize=True)
            warm = min(warm, (time.perf_counter() - t0) * 1e3)
        warm = cold if once else warm
        value = float(cost[rows, cols].astype(np.float64).sum())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"n": n, "cold_ms": cold, "warm_ms": warm, "value": value, "max_rss_kb": rss}), flush=True)


if __name__ == "__main__":
    main()
