"""Evaluation scaling: MAP@500 for N users x 100k items x 200 factors, time and peak memory.

    python benchmarks/bench_eval_scaling.py [N ...] [--items 100000] [--factors 200] [--k 500] [--no-auc] [--no-product64]

N defaults to 10000 100000 300000. Synthetic data: user factors normal / sqrt(f), unit item
factors, and a sparse held-out matrix of 10 to 20 items per user (each user's best among 1,000
random items, drawn anew for every 4,096 users, so that MAP is not near 0). Each measurement runs in a fresh Python
process (one per N and stage), so its peak resident memory (``ru_maxrss``) is its own:

  data       : only making the data (the floor every other stage's peak includes)
  product32  : the bare product users @ items.T in float32, in the evaluation's chunks of users
               (``metrics.CHUNK_ELEMENTS`` scores each), nothing else: the floor of any evaluation
  product64  : the same in float64 (what the AUCs need)
  ranking    : ``metrics.ranking_reports`` over ``FactorScores`` without AUC: MAP@k, P, nDCG,
               ADiv (the exact float32 path, float64 only where the error bound leaves doubt)
  evaluate   : ``ranking_reports`` as ``tartarus evaluate`` calls it on the CPU: with ROC-AUC and
               PR-AUC, which rank every item of every user in float64 (skip with ``--no-auc``)

Printed per N: seconds and peak MiB of each stage, and the ratio of each evaluation to the
float32 product (the goal for the ranking: within 1.5x; memory flat as N grows).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

STAGES = ("data", "product32", "product64", "ranking", "evaluate")


def make_data(n_users, n_items, n_factors, seed=0):
    """(users (n, f) float64, items (c, f) float64, relevance (n, c) CSR of 10-20 ones per user)."""
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, n_factors)) / np.sqrt(n_factors)
    items = rng.normal(size=(n_items, n_factors))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    per_user = rng.integers(10, 21, n_users)
    rows, cols = [], []
    step = 4096  # the candidates' scores in blocks, so making the data stays small too
    for start in range(0, n_users, step):
        stop = min(n_users, start + step)
        pool = rng.choice(n_items, min(1000, n_items), replace=False)  # one pool per block of users
        best = pool[np.argsort(-(users[start:stop] @ items[pool].T), axis=1)]
        for u in range(stop - start):
            picked = np.unique(best[u, :per_user[start + u]])
            rows.append(np.full(len(picked), start + u))
            cols.append(picked)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    relevance = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    return users, items, relevance


def run_stage(stage, n_users, n_items, n_factors, k):
    """One stage in this process: {"seconds", "peak_mib", "map"}."""
    from tartarus import metrics as M

    users, items, relevance = make_data(n_users, n_items, n_factors)
    out = {"nnz": int(relevance.nnz)}
    start = time.perf_counter()
    if stage.startswith("product"):
        dtype = np.float32 if stage == "product32" else np.float64
        u, v = users.astype(dtype), np.ascontiguousarray(items.astype(dtype).T)
        step = max(1, M.CHUNK_ELEMENTS // n_items)
        checksum = 0.0
        for a in range(0, n_users, step):
            checksum += float((u[a:a + step] @ v)[:, 0].sum())  # keep the product alive, cheaply
    elif stage in ("ranking", "evaluate"):
        scores = M.FactorScores(users, items)
        report = M.ranking_reports(relevance, scores, k=k, with_auc=stage == "evaluate")["tartarus"]
        out["map"] = report["map_at_k"]
    out["seconds"] = time.perf_counter() - start if stage != "data" else 0.0
    out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("users", nargs="*", type=int, default=[10000, 100000, 300000])
    ap.add_argument("--items", type=int, default=100000)
    ap.add_argument("--factors", type=int, default=200)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--no-auc", action="store_true", help="skip the evaluate stage (AUCs: slow, float64 ranks)")
    ap.add_argument("--no-product64", action="store_true", help="skip the float64 product (only for scale)")
    ap.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # one stage, in a child process
    args = ap.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.users[0], args.items, args.factors, args.k)))
        return
    skipped = {"evaluate"} if args.no_auc else set()
    skipped |= {"product64"} if args.no_product64 else set()
    stages = [s for s in STAGES if s not in skipped]
    print(f"MAP@{args.k}: users x {args.items} items x {args.factors} factors; one fresh process per stage")
    print(f"{'users':>8} {'stage':<10} {'seconds':>9} {'peak MiB':>9} {'x product32':>12} {'MAP':>12}")
    for n in args.users:
        got = {}
        for stage in stages:
            line = subprocess.run([sys.executable, __file__, str(n), "--items", str(args.items), "--factors",
                                   str(args.factors), "--k", str(args.k), "--stage", stage],
                                  check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            got[stage] = json.loads(line)
            r = got[stage]
            ratio = r["seconds"] / got["product32"]["seconds"] if "product32" in got and stage != "data" else None
            print(f"{n:>8} {stage:<10} {r['seconds']:>9.2f} {r['peak_mib']:>9.0f} "
                  f"{'' if ratio is None else f'{ratio:.2f}':>12} {r.get('map', ''):>12}", flush=True)
        maps = [got[s]["map"] for s in ("ranking", "evaluate") if s in got]
        assert max(maps) - min(maps) <= 1e-12, maps  # with or without the AUCs, the same MAP
    print(f"(held-out: {got['data']['nnz']} items for the last N; peak MiB includes the data, see 'data')")


if __name__ == "__main__":
    main()
