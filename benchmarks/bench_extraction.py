"""Files per second of our pretrained-tagger extraction against the original musicnn package.

    .venv/bin/python benchmarks/bench_extraction.py --reference-python /tmp/refvenv/bin/python \\
        [--files 36] [--model MTT_musicnn] [--batch-size 64] [--jobs 2]

The same audio files for both: the SUPER MP3s (``../shared/super/audio``, 30 s each) copied over
and over to ``--files`` files in a temporary folder. Each pipeline runs in its own process and
times itself after its imports (the interpreter's and TensorFlow's start are not counted):

- original: musicnn 0.1.0's ``extractor(file, model, input_length=3, input_overlap=False,
  extract_features=False)`` once per file, in the interpreter given by ``--reference-python``
  (a virtualenv with ``tensorflow-cpu==2.15.1``, ``numpy<2``, ``librosa==0.10.2.post1`` and
  ``musicnn==0.1.0``): its decode, log-mel, graph build, checkpoint restore and inference per file,
  which is how its users run it (``python -m musicnn.tagger`` per file);
- ours: ``pretrained.load_pretrained`` (from the converted weights in the cache, converted before
  the clock starts: a one-off) and ``tagging.extract(..., n_jobs=1)``: decoding in the same process,
  inference batched across files on the Keras backend; then the same with ``n_jobs=--jobs`` worker
  processes decoding.

It prints files per second of each (wall clock), the ratio ours / original, the CPU seconds of
the process (all its threads; not counted for worker processes, so not for ``n_jobs > 1``) and
their ratio, which moves less than the wall clock on a machine others share, and the largest mean
absolute difference between the two taggrams of a file (the numbers must be the original's). Without
``--reference-python`` only ours runs. The machine may be shared: the figures are one run each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPER_AUDIO = ROOT.parent / "shared" / "super" / "audio"

ORIGINAL = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from musicnn.extractor import extractor
model, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
start, cpu = time.perf_counter(), time.process_time()
taggrams = []
for path in files:
    taggram, _ = extractor(path, model=model, input_length=3, input_overlap=False, extract_features=False)
    taggrams.append(np.asarray(taggram, np.float32))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
np.savez(out, *taggrams)
print(json.dumps({"seconds": seconds, "cpu": cpu}))
"""


def ours(args):
    """Worker mode: time our load + extraction of the files, save the taggrams, print JSON."""
    import numpy as np
    import keras  # noqa: F401  (the backend's start, outside the clock as the original's TF import)
    from tartarus import pretrained, tagging

    files = Path(args.list).read_text().split("\n")
    start, cpu = time.perf_counter(), time.process_time()
    model = pretrained.load_pretrained(args.model, args.cache_dir)
    report = tagging.extract(files, args.model, n_jobs=args.worker_jobs, batch_size=args.batch_size,
                             progress=False, model=model)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.savez(args.out, *[f.outputs["taggram"] for f in report.files])
    print(json.dumps({"seconds": seconds, "cpu": cpu if args.worker_jobs == 1 else None,
                      "failed": len(report.failed), "backend": keras.backend.backend()}))


def run_json(cmd, env=None):
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:3])} ...\n{done.stderr[-3000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def max_mean_abs_diff(a_path, b_path):
    import numpy as np
    with np.load(a_path) as a, np.load(b_path) as b:
        assert len(a.files) == len(b.files), (len(a.files), len(b.files))
        return max(float(np.abs(a[k] - b[k]).mean()) for k in a.files)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=36, help="files to extract (SUPER songs repeated; default 36)")
    p.add_argument("--model", default="MTT_musicnn")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--jobs", type=int, default=2, help="worker processes of the second run of ours (default 2)")
    p.add_argument("--reference-python", help="python of a virtualenv with the original musicnn 0.1.0")
    p.add_argument("--cache-dir", help="converted weights (default: a temporary folder)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--list", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--worker-jobs", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.worker:
        return ours(args)

    songs = sorted(SUPER_AUDIO.glob("*.mp3"))
    if not songs:
        sys.exit(f"no SUPER songs at {SUPER_AUDIO}")
    with tempfile.TemporaryDirectory(prefix="bench_extraction_") as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(args.files):
            song = songs[i % len(songs)]
            files.append(tmp / f"{i:03d}_{song.name}")
            shutil.copy(song, files[-1])
        (tmp / "files.txt").write_text("\n".join(map(str, files)))
        cache = args.cache_dir or str(tmp / "cache")
        from tartarus import pretrained
        pretrained.weights_file(args.model, cache)  # the one-off conversion, before any clock

        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT / "src")}
        rows = []
        for jobs in (1, args.jobs):
            got = run_json([sys.executable, __file__, "--worker", "--list", str(tmp / "files.txt"), "--out",
                            str(tmp / f"ours_{jobs}.npz"), "--model", args.model, "--batch-size",
                            str(args.batch_size), "--cache-dir", cache, "--worker-jobs", str(jobs)], env)
            rows.append((f"ours, {got['backend']}, n_jobs={jobs}", got["seconds"], got["cpu"],
                         tmp / f"ours_{jobs}.npz"))
            assert got["failed"] == 0, got
        if args.reference_python:
            got = run_json([args.reference_python, "-c", ORIGINAL, args.model, str(tmp / "original.npz"),
                            *map(str, files)], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            rows.append(("original musicnn 0.1.0", got["seconds"], got["cpu"], tmp / "original.npz"))

        print(f"{args.files} files ({len(songs)} SUPER songs of 30 s repeated), {args.model}, batch "
              f"{args.batch_size}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s)")
        original = rows[-1] if args.reference_python else None
        for label, seconds, cpu, _ in rows:
            line = f"  {label:<32} {seconds:7.1f} s  {args.files / seconds:6.2f} files/s"
            if original:
                line += f"  {original[1] / seconds:5.1f}x the original"
            if cpu is not None:  # CPU seconds of the process's threads (not of worker processes)
                line += f"  | CPU {cpu:6.1f} s" + (f", {original[2] / cpu:5.1f}x" if original else "")
            print(line)
        if args.reference_python:
            diff = max(max_mean_abs_diff(path, rows[-1][3]) for *_, path in rows[:-1])
            print(f"  largest mean |taggram difference| of a file, ours vs original: {diff:.2e}")

if __name__ == "__main__":
    main()
