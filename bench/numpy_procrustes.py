"""Baseline for bench/procrustes.ts: R = U V^T from numpy's SVD (LAPACK gesdd via OpenBLAS) of the
d x d float64 matrix in FILE (raw little-endian, row-major). Prints JSON: seconds (best of REPEATS,
load excluded), the objective <R, M>, and the BLAS threading layer threadpoolctl reports."""
import json
import sys
import time

import numpy as np

path, d, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = np.fromfile(path, dtype='<f8').reshape(d, d)
best = float('inf')
for _ in range(repeats):
    t0 = time.perf_counter()
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    best = min(best, time.perf_counter() - t0)
try:
    from threadpoolctl import threadpool_info
    blas = '; '.join(f"{i.get('internal_api')} {i.get('architecture', '')} {i.get('num_threads')} threads" for i in threadpool_info())
except ImportError:
    blas = 'threadpoolctl absent'
print(json.dumps({'seconds': best, 'objective': float(np.sum(r * m)), 'blas': blas}))
