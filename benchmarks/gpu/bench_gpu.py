"""The prepared GPU check of issue 13: one script, under 8 minutes on a machine with one GPU.

    PYTHONPATH=src python benchmarks/gpu/bench_gpu.py [--quick] [--out DIR]

Parts, each in its own subprocess so that one backend's failure (or absence) does not stop the rest:

1. ``devices``: what JAX and TensorFlow see (a backend that is not installed is reported, not fatal);
2. ``shufl`` (per backend, JAX and TensorFlow): the shufl CNN (experiment ``shufl``, architecture 51:
   4 Conv1D blocks, mean+max pooling, 2 x 2048 dense, 40-d L2-normalised output, cosine loss, Adam)
   trained on 21,600 synthetic 599 x 128 patches with random unit 40-d targets, batch 32 (the
   experiment's ``n_minibatch``) and 500 (``shufl_seed``'s). Two epochs; the second is timed
   (the first compiles). Goal: under 5 s an epoch on an H100-class GPU (shufl's 2016 run: 40 s);
3. ``map``: MAP@500 for 1,000,000 users x 100,000 items x 200 factors with
   ``FactorScores(device="accelerator")`` on the JAX backend (``keras.ops`` on the GPU, float64
   re-check on the CPU), held-out ~10 items a user. Goal: under 5 minutes. The CPU path on the
   first 50,000 users in the same run must give the same per-user AP (checked) and its time is
   printed for scale;
4. ``als``: implicit's ALS on the GPU (``implicit.gpu``) against its CPU ALS on the same matrix,
   when implicit has a CUDA build there (pip's wheels do not: then it says so).

``--quick`` shrinks every size (for a check of the script on a CPU machine). Results are printed
and written to ``DIR/gpu_results.json`` (``$OUT`` when set). No network: only what is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, os.pardir, os.pardir, "src")

SIZES = {  # full, quick
    "patches": (21600, 256), "frames": (599, 599), "bins": (128, 128),
    "users": (1_000_000, 3000), "items": (100_000, 5000), "factors": (200, 32), "cpu_users": (50_000, 1000),
    "als_users": (200_000, 2000), "als_items": (100_000, 3000),
}


def size(name, quick):
    return SIZES[name][1 if quick else 0]


# ---- the parts (run in a child process) -------------------------------------------------------

def part_devices(quick):
    out = {}
    try:
        import jax
        out["jax"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    except Exception as exc:  # not installed, or no plugin
        out["jax"] = f"unavailable ({type(exc).__name__}: {exc})"
    try:
        import tensorflow as tf
        out["tensorflow"] = [d.name for d in tf.config.list_logical_devices()]
    except Exception as exc:
        out["tensorflow"] = f"unavailable ({type(exc).__name__}: {exc})"
    return out


class _EpochTimes:
    def __init__(self):
        self.times = []

    def callback(self):
        import keras
        times = self.times

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)
        return Timer()


def part_shufl(quick):
    import keras
    import numpy as np

    from tartarus.config import Registry
    from tartarus.models import build_model

    n, frames, bins = size("patches", quick), size("frames", quick), size("bins", quick)
    experiment = Registry().experiment("shufl")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, frames, bins, 1)).astype("float32")
    y = rng.normal(size=(n, 40)).astype("float32")
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    result = {"backend": keras.backend.backend(), "patches": n, "shape": [frames, bins, 1]}
    for batch in (32, 500):
        model = build_model(experiment.cnn, [(frames, bins, 1)], 40, input_stats=(0.0, 1.0))
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.CosineSimilarity())
        timer = _EpochTimes()
        model.fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[timer.callback()])
        result[f"batch_{batch}"] = {"first_epoch_s": round(timer.times[0], 2),
                                    "epoch_s": round(timer.times[1], 2),
                                    "patches_per_s": round(n / timer.times[1])}
    return result


def _factor_data(n_users, n_items, n_factors, per_user, seed=0):
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    users = (rng.normal(size=(n_users, n_factors)) / np.sqrt(n_factors)).astype("float32")
    items = rng.normal(size=(n_items, n_factors)).astype("float32")
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    cols = rng.integers(0, n_items, size=(n_users, per_user))
    rows = np.repeat(np.arange(n_users), per_user)
    relevance = sp.csr_matrix((np.ones(rows.size), (rows, cols.ravel())), shape=(n_users, n_items))
    relevance.data[:] = 1.0
    return users, items, relevance


def part_map(quick):
    import keras
    import numpy as np

    from tartarus.metrics import FactorScores, ap_at_k_rows

    n_users, n_items, n_factors = size("users", quick), size("items", quick), size("factors", quick)
    users, items, relevance = _factor_data(n_users, n_items, n_factors, 10)
    result = {"backend": keras.backend.backend(), "users": n_users, "items": n_items, "factors": n_factors}
    start = time.perf_counter()
    scores = FactorScores(users, items, device="accelerator")
    result["device"] = scores.device
    ap = ap_at_k_rows(relevance, scores, k=500)
    result["accelerator_s"] = round(time.perf_counter() - start, 1)
    result["map_at_k"] = float(ap.mean())
    m = size("cpu_users", quick)
    start = time.perf_counter()
    ap_cpu = ap_at_k_rows(relevance[:m], FactorScores(users[:m], items, device="cpu"), k=500)
    result["cpu_s_first_users"] = round(time.perf_counter() - start, 1)
    result["cpu_users"] = m
    result["max_ap_difference"] = float(np.abs(ap_cpu - ap[:m]).max())
    return result


def part_als(quick):
    import numpy as np
    import scipy.sparse as sp

    result = {}
    try:
        import implicit
        import implicit.gpu
    except ImportError as exc:
        return {"skipped": f"implicit is not installed here ({exc})"}
    result["implicit"] = implicit.__version__
    n_users, n_items = size("als_users", quick), size("als_items", quick)
    rng = np.random.default_rng(0)
    nnz = n_users * 20
    matrix = sp.csr_matrix((rng.integers(1, 10, nnz).astype("float32"),
                            (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
                           shape=(n_users, n_items))
    result.update(users=n_users, items=n_items, nnz=int(matrix.nnz))
    from implicit.als import AlternatingLeastSquares
    for use_gpu in (False, True):
        key = "gpu" if use_gpu else "cpu"
        if use_gpu and not implicit.gpu.HAS_CUDA:
            result[key] = "skipped: this implicit has no CUDA build (pip's wheels are CPU-only)"
            continue
        model = AlternatingLeastSquares(factors=200, iterations=15, use_gpu=use_gpu, random_state=0)
        start = time.perf_counter()
        model.fit(matrix, show_progress=False)
        result[f"{key}_s"] = round(time.perf_counter() - start, 1)
    return result


PARTS = {"devices": part_devices, "shufl": part_shufl, "map": part_map, "als": part_als}


# ---- the driver -------------------------------------------------------------------------------

def run_part(name, backend, quick, timeout):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(p for p in (os.path.abspath(SRC), os.environ.get("PYTHONPATH")) if p)}
    if backend == "jax":  # JAX would take 75 % of the GPU at start; TensorFlow grows as it needs
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.8")
    args = [sys.executable, os.path.abspath(__file__), "--part", name] + (["--quick"] if quick else [])
    start = time.perf_counter()
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return {"error": f"exit {done.returncode}", "stderr_tail": done.stderr[-1500:]}
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script on a CPU")
    ap.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # the child's entry
    ap.add_argument("--out", default=os.environ.get("OUT", "."), help="folder of gpu_results.json")
    args = ap.parse_args()
    if args.part:
        print("RESULT " + json.dumps(PARTS[args.part](args.quick)), flush=True)
        return
    plan = [("devices", "jax", 120), ("shufl", "jax", 150), ("shufl", "tensorflow", 150),
            ("map", "jax", 240), ("als", "jax", 120)]
    results = []
    for name, backend, timeout in plan:
        result = run_part(name, backend, args.quick, timeout)
        results.append({"part": name, "backend": backend, **result})
        print(f"{name:8s} {backend:11s} {json.dumps(result)}", flush=True)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"written {path}")


if __name__ == "__main__":
    main()
