"""Baseline for bench/assignment.ts: scipy's linear_sum_assignment (maximize) on the same matrices.

Usage: python3 bench/scipy_lap.py FILE.f32 N [FILE.f32 N ...]
Each file holds one row-major n x n float32 matrix. Prints one JSON line per matrix:
{"n": n, "cold_ms": first call, "warm_ms": best of 3 later calls, "value": optimum (float64 sum)}.
"""
import json
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment


def main() -> None:
    args = sys.argv[1:]
    for path, n in zip(args[0::2], args[1::2]):
        n = int(n)
        cost = np.fromfile(path, dtype="<f4").reshape(n, n)
        t0 = time.perf_counter()
        rows, cols = linear_sum_assignment(cost, maximize=True)
        cold = (time.perf_counter() - t0) * 1e3
        warm = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            rows, cols = linear_sum_assignment(cost, maximize=True)
            warm = min(warm, (time.perf_counter() - t0) * 1e3)
        value = float(cost[rows, cols].astype(np.float64).sum())
        print(json.dumps({"n": n, "cold_ms": cold, "warm_ms": warm, "value": value}), flush=True)


if __name__ == "__main__":
    main()
