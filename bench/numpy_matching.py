"""Baseline for bench/matching.ts: the same weight matching (Git Re-Basin Algorithm 1) in numpy + scipy.

Usage: python3 bench/numpy_matching.py SPEC.json A.safetensors B.safetensors [SEED] [MAX_ITER]
SPEC.json is {"perms": {name: size}, "axes": {tensor: [perm or null, ...]}} (our PermSpec).
The safetensors files hold float32 tensors only (written by the bench). Prints one JSON line:
{"ms": matching time (load excluded), "iterations": sweeps, "objective_before", "objective_after"}.
Like the paper's reference code, every cost matrix is recomputed from scratch (no caching).
"""
import json
import struct
import sys
import time

import numpy as np
from scipy.optimize import linear_sum_assignment


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + begin:base + end], dtype="<f4").reshape(info["shape"])
    return out


def permuted(spec, perms, name, w, skip_axis=None):
    for axis, p in enumerate(spec["axes"][name]):
        if p is not None and axis != skip_axis:
            w = np.take(w, perms[p], axis=axis)
    return w


def objective(spec, perms, a, b):
    return float(sum(np.vdot(a[n].astype(np.float64), permuted(spec, perms, n, b[n]).astype(np.float64))
                     for n in spec["axes"]))


def weight_matching(spec, a, b, seed, max_iter):
    occurrences = {p: [] for p in spec["perms"]}
    for name, axes in spec["axes"].items():
        for axis, p in enumerate(axes):
            if p is not None:
                occurrences[p].append((name, axis))
    names = sorted(spec["perms"])
    perms = {p: np.arange(n) for p, n in spec["perms"].items()}
    rng = np.random.default_rng(seed)
    iterations = 0
    for _ in range(max_iter):
        progress = False
        for idx in rng.permutation(len(names)):
            p = names[idx]
            n = spec["perms"][p]
            cost = np.zeros((n, n), dtype=np.float32)
            for name, axis in occurrences[p]:
                wa = np.moveaxis(a[name], axis, 0).reshape(n, -1)
                wb = np.moveaxis(permuted(spec, perms, name, b[name], skip_axis=axis), axis, 0).reshape(n, -1)
                cost += wa @ wb.T
            rows, cols = linear_sum_assignment(cost, maximize=True)
            old = float(cost[np.arange(n), perms[p]].astype(np.float64).sum())
            new = float(cost[rows, cols].astype(np.float64).sum())
            if new > old + 1e-12:
                perms[p] = cols
                progress = True
        iterations += 1
        if not progress:
            break
    return perms, iterations


def main():
    spec_path, a_path, b_path = sys.argv[1:4]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    max_iter = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    with open(spec_path) as f:
        spec = json.load(f)
    a = read_safetensors(a_path)
    b = read_safetensors(b_path)
    identity = {p: np.arange(n) for p, n in spec["perms"].items()}
    t0 = time.perf_counter()
    perms, iterations = weight_matching(spec, a, b, seed, max_iter)
    ms = (time.perf_counter() - t0) * 1e3
    print(json.dumps({"ms": ms, "iterations": iterations,
                      "objective_before": objective(spec, identity, a, b),
                      "objective_after": objective(spec, perms, a, b)}))


if __name__ == "__main__":
    main()
