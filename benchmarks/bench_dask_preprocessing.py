"""Preprocessing on a Dask cluster against today's local runner, on the same files, in one run.

    .venv/bin/python benchmarks/bench_dask_preprocessing.py [--files 48] [--seconds 30] [--repeats 3]

On synthetic 44.1 kHz stereo WAVs (``bench_preprocessing.synth``) it times

- spectrograms (mel): ``runner.compute_spectrograms(..., n_jobs=2)`` (joblib, its worker pool
  already started), and the same with ``scheduler=`` a ``LocalCluster`` of 1 and of 2 worker
  processes (1 thread each);
- patches (``npatches`` crops of 3 s per item, one split of every file's spectrogram under
  ``--patch-copies`` ids, so that the stage has work enough to time): ``create_patches`` here (one
  process, one HDF5 file), and with ``scheduler=`` the same clusters (shards + a virtual file).

The clusters are started once, before the timings (as a user's cluster is); each cluster run
connects a new client to the scheduler's address, as the CLI does, and that connection, the
check that the workers see the data root and the shards' virtual file are in the time. Runs are
repeated ``--repeats`` times, the configurations interleaved since the machine may be shared; the
table gives the best time, and each ratio to the local runner is the median of the ratios within
one repeat (less sensitive to load that comes and goes). Goal: a cluster of 2 workers costs at
most 10 % more than the local runner with ``n_jobs=2`` on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_preprocessing import synth  # noqa: E402
from tartarus import fileio  # noqa: E402
from tartarus.audio import features, patches, runner  # noqa: E402
from tartarus.config.schema import DatasetEntry  # noqa: E402
from tartarus.layout import DataLayout  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=48, help="synthetic WAV files (default 48)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each file (default 30)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--npatches", type=int, default=8, help="patches per item (default 8, 3 s each)")
    ap.add_argument("--patch-copies", type=int, default=10,
                    help="ids per spectrogram in the patches' split (default 10)")
    args = ap.parse_args(argv)

    import logging

    import distributed
    import librosa  # noqa: F401  (imported before any timing)

    logging.getLogger("distributed").setLevel(logging.ERROR)  # the clusters' start and close chatter

    work = Path(tempfile.mkdtemp(prefix="tartarus-bench-dask-"))
    clusters = {}
    try:
        layout = DataLayout(work)
        rows = []
        layout.audio_dir.mkdir(parents=True)
        for i in range(args.files):
            name = f"synth_{i:03d}.wav"
            synth(layout.audio_dir / name, args.seconds, 44100, seed=i)
            rows.append((f"W{i:03d}", name))
        fileio.write_tsv(layout.audio_index("BENCH"), rows)
        entry = DatasetEntry(name="BENCH", spectrogram_type="mel", npatches=args.npatches, window=3.0)
        total_s = args.files * args.seconds
        print(f"{args.files} files of {args.seconds:g} s (44.1 kHz stereo WAV), {total_s:.0f} s of audio; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
              f"{platform.python_version()}, dask {distributed.__version__}")
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())

        start = time.perf_counter()
        for n in (1, 2):
            clusters[n] = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   dashboard_address=None, silence_logs=40)
        print(f"clusters of 1 and 2 workers started in {time.perf_counter() - start:.1f} s (not timed below)")

        def spectrograms(where):
            if where == "local":
                return runner.compute_spectrograms(layout, entry, n_jobs=2, progress=False, overwrite=True)
            return runner.compute_spectrograms(layout, entry, progress=False, overwrite=True,
                                               scheduler=clusters[where].scheduler_address)

        def patch_files(where):
            for set_dir in layout.patches_dir.glob("*.shards"):  # no shard reused: every run does all
                shutil.rmtree(set_dir)
            if where == "local":
                return patches.create_patches(layout, entry, sets=("train",))
            return patches.create_patches(layout, entry, sets=("train",), progress=False,
                                          scheduler=clusters[where].scheduler_address)

        configs = ("local", 1, 2)
        times = {(stage, where): [] for stage in ("spectrograms", "patches") for where in configs}
        cold = {}
        for where in configs:  # warm-up: imports in the workers, joblib's pool started
            cold[where] = timed(lambda: spectrograms(where))
        for _ in range(args.repeats):
            for where in configs:
                times["spectrograms", where].append(timed(lambda: spectrograms(where)))

        # the patch stage, after the last spectrogram run (overwrite=True would delete these copies)
        split = []  # each spectrogram under several ids: more items for the patch stage
        for item_id, _ in rows:
            for copy in range(args.patch_copies):
                name = f"{item_id}_{copy}"
                shutil.copyfile(layout.spectrogram("BENCH", item_id), layout.spectrogram("BENCH", name))
                split.append(name)
        fileio.write_lines(layout.items_index("train", "BENCH"), split)
        for where in configs:
            patch_files(where)  # warm-up
        for _ in range(args.repeats):
            for where in configs:
                times["patches", where].append(timed(lambda: patch_files(where)))

        # the last runs' outputs: the cluster's patch file equals a local one
        cluster_file = patch_files(2)["train"]
        import h5py
        with h5py.File(cluster_file, "r") as h5:
            virtual = h5["features"][...]
        local_file = patch_files("local")["train"]
        with h5py.File(local_file, "r") as h5:
            assert np.array_equal(virtual, h5["features"][...])

        labels = {"local": "local runner (n_jobs=2)", 1: "LocalCluster, 1 worker", 2: "LocalCluster, 2 workers"}
        labels_p = {"local": "local (one process, one file)", 1: labels[1], 2: labels[2]}
        print(f"\nbest of {args.repeats} repeats (ratio: median over repeats of time / local time)")
        print(f"{'stage':<13} {'where':<32} {'seconds':>8} {'rate':>22} {'ratio to local':>15}")
        for stage in ("spectrograms", "patches"):
            base = times[stage, "local"]
            for where in configs:
                t = times[stage, where]
                ratio = float(np.median([a / b for a, b in zip(t, base)]))
                if stage == "spectrograms":
                    name, rate = labels[where], f"{total_s / min(t):.0f}x real time"
                else:
                    name, rate = labels_p[where], f"{len(split) / min(t):.0f} items/s"
                print(f"{stage:<13} {name:<32} {min(t):8.2f} {rate:>22} {ratio:15.2f}")
        print(f"\nfirst (cold) spectrogram runs: local {cold['local']:.2f} s (joblib pool start), "
              f"cluster 1 {cold[1]:.2f} s, cluster 2 {cold[2]:.2f} s (imports in the workers)")
        print(f"patches: {len(split)} items x {args.npatches} patches of "
              f"{features.n_frames(3.0, entry)} x {entry.n_bins}; the cluster's virtual file "
              f"equals the local file")
        print("load average at end: %.2f %.2f %.2f (other processes compete for the cores above 0)"
              % os.getloadavg())
        return times
    finally:
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
