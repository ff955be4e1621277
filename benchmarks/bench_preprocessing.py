"""Throughput of the audio preprocessing stage against a plain librosa pipeline.

    .venv/bin/python benchmarks/bench_preprocessing.py [--files 16] [--seconds 30] [--repeats 5]

On the same audio files (synthetic 44.1 kHz stereo WAVs, plus the 9 SUPER MP3s from
``../shared/super`` when present) it measures, in seconds of audio per wall-clock second:

- reference: per file ``librosa.load(path, sr=22050)`` + ``librosa.feature.melspectrogram`` (or
  ``librosa.cqt``) + ``librosa.power_to_db(ref=1.0, amin=1e-10, top_db=None)`` + ``np.save``, one
  process;
- ours, 1 worker: ``runner.compute_spectrograms(..., n_jobs=1)`` (decode, spectrogram, atomic
  ``.npy`` write, params and errors files);
- ours, 2 workers: the same with ``n_jobs=2``, the worker pool already started (steady state; the
  first, cold run with the pool start-up is printed too).

Both pipelines run with one BLAS thread per process (threadpoolctl), so "one process" means one
core. Each figure is the best of ``--repeats`` runs, the runs of the pipelines interleaved, since
the machine may be shared; repeats during which other processes took CPU (seen in /proc/stat as
too little idle time beside a one-process run) are left out when quiet ones exist. It also prints the largest difference in dB between our spectrograms
and the reference's, over all bins and over the bins within 80 dB of each file's maximum.
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
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tartarus import fileio  # noqa: E402
from tartarus.audio import features, runner  # noqa: E402
from tartarus.config.schema import DatasetEntry  # noqa: E402
from tartarus.layout import DataLayout  # noqa: E402

SUPER = ROOT.parent / "shared" / "super"
SR = 22050


def synth(path, seconds, sr, seed):
    """A music-like stereo clip: harmonic notes with envelopes, a noise floor, a little pan."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    left = 0.003 * rng.standard_normal(n)
    right = 0.003 * rng.standard_normal(n)
    note_len = int(0.25 * sr)
    env = np.exp(-np.arange(note_len) / (0.08 * sr))
    for start in range(0, n - note_len, note_len):
        f0 = 55.0 * 2 ** (rng.integers(0, 48) / 12)
        seg = t[start:start + note_len]
        note = sum(0.2 / h * np.sin(2 * np.pi * f0 * h * seg + rng.uniform(0, 6.28)) for h in range(1, 8))
        pan = rng.uniform(0.3, 0.7)
        left[start:start + note_len] += pan * env * note
        right[start:start + note_len] += (1 - pan) * env * note
    data = np.stack([left, right], axis=1).astype(np.float32)
    sf.write(path, np.clip(data, -1, 1), sr, subtype="PCM_16")


def reference(paths, kind, out_dir):
    import librosa

    for i, path in enumerate(paths):
        y, _ = librosa.load(path, sr=SR)
        if kind == "mel":
            power = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=1024, n_mels=96)
        else:
            power = np.abs(librosa.cqt(y, sr=SR, hop_length=1024, n_bins=96, bins_per_octave=12,
                                       fmin=32.70319566257483)) ** 2
        np.save(out_dir / f"{i}.npy", librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None))


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu_counters():
    """(idle, total) jiffies of the whole machine, from /proc/stat (None where there is none)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])


def timed_idle(fn):
    """(seconds, idle fraction of the machine's cores meanwhile): a one-process run on an otherwise
    quiet machine leaves about (cores - 1) / cores idle; much less means other work was running."""
    before = _cpu_counters()
    seconds = timed(fn)
    after = _cpu_counters()
    if before is None or after is None or after[1] == before[1]:
        return seconds, None
    return seconds, (after[0] - before[0]) / (after[1] - before[1])


def _work_half(items, plan, reps):
    for _ in range(reps):
        runner.process_chunk(items, plan)


def two_plain_processes(rows, audio, scratch, entry):
    """(1 process, 2 processes) seconds for the same per-file work split in halves over two forked
    processes without joblib: the machine's own ceiling for two workers at that moment."""
    import multiprocessing

    plan = features.get_plan(entry)
    todo = [(item_id, str(audio / name), str(scratch / f"{item_id}.npy")) for item_id, name in rows]
    halves = [todo[0::2], todo[1::2]]
    one = timed(lambda: _work_half(todo, plan, 1))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_work_half, args=(half, plan, 1)) for half in halves]

    def both():
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    return one, timed(both)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=16, help="synthetic WAV files (default 16)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each synthetic file")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kinds", default="mel,cqt")
    ap.add_argument("--no-super", action="store_true", help="leave out the SUPER MP3s")
    args = ap.parse_args(argv)

    import librosa  # noqa: F401  (imported before any timing, for both pipelines)
    from threadpoolctl import threadpool_limits

    work = Path(tempfile.mkdtemp(prefix="tartarus-bench-"))
    try:
        audio = work / "audio"
        audio.mkdir()
        rows, groups = [], {"wav": [], "mp3": []}
        for i in range(args.files):
            name = f"synth_{i:02d}.wav"
            synth(audio / name, args.seconds, 44100, seed=i)
            rows.append((f"W{i}", name))
            groups["wav"].append(f"W{i}")
        if not args.no_super and (SUPER / "audio").is_dir():
            for item_id, name in fileio.read_tsv(SUPER / "index" / "index_audio_SUPER.tsv"):
                shutil.copyfile(SUPER / "audio" / name, audio / name)
                rows.append((item_id, name))
                groups["mp3"].append(item_id)
        layout = DataLayout(work)
        fileio.write_tsv(layout.audio_index("BENCH"), rows)
        paths = [audio / name for _, name in rows]
        total_s = sum(sf.info(p).duration for p in paths)
        print(f"{len(paths)} files ({len(groups['wav'])} synthetic WAV 44.1 kHz stereo, "
              f"{len(groups['mp3'])} SUPER MP3), {total_s:.0f} s of audio; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, python {platform.python_version()}, librosa {librosa.__version__}")
        print("load average at start: %.2f %.2f %.2f" % os.getloadavg())

        results = {}
        for kind in args.kinds.split(","):
            entry = DatasetEntry(name="BENCH", spectrogram_type=kind)
            features.get_plan(entry)
            ref_dir = work / f"ref_{kind}"
            ref_dir.mkdir()
            run = lambda jobs: runner.compute_spectrograms(layout, entry, n_jobs=jobs, progress=False,
                                                           overwrite=True)
            with threadpool_limits(1, user_api="blas"):
                reference(paths[:1], kind, ref_dir)  # warm-up
                run(1)
                cold2 = timed(lambda: run(2))  # starts the worker pool
                times = {"ref": [], "ours1": [], "ours2": []}
                quiet = []
                for _ in range(args.repeats):
                    # the 2-worker run sits between two one-process runs whose idle share tells
                    # whether other processes were competing for the cores around it
                    t1, idle1 = timed_idle(lambda: run(1))
                    t2 = timed(lambda: run(2))
                    tr, idle_r = timed_idle(lambda: reference(paths, kind, ref_dir))
                    times["ours1"].append(t1)
                    times["ours2"].append(t2)
                    times["ref"].append(tr)
                    expected = (os.cpu_count() - 1) / os.cpu_count()
                    quiet.append(None not in (idle1, idle_r) and min(idle1, idle_r) > 0.8 * expected)
                scratch = work / f"plain_{kind}"
                scratch.mkdir()
                plain = [two_plain_processes(rows, audio, scratch, entry) for _ in range(args.repeats)]
                plain_ratio = float(np.median([a / b for a, b in plain]))
            if any(quiet):  # keep the repeats during which nothing else ran
                times = {k: [t for t, q in zip(v, quiet) if q] for k, v in times.items()}
            best = {k: min(v) for k, v in times.items()}
            paired = {  # ratios within one repeat, less sensitive to load that comes and goes
                "ref/ours1": float(np.median([r / o for r, o in zip(times["ref"], times["ours1"])])),
                "ours1/ours2": float(np.median([a / b for a, b in zip(times["ours1"], times["ours2"])])),
            }
            ours = {item_id: np.load(layout.spectrogram("BENCH", item_id)) for item_id, _ in rows}
            diffs = {"all": 0.0, "loud": 0.0}
            for i, (item_id, _) in enumerate(rows):
                ref = np.load(ref_dir / f"{i}.npy").T
                assert ref.shape == ours[item_id].shape, (item_id, ref.shape, ours[item_id].shape)
                d = np.abs(ref - ours[item_id])
                diffs["all"] = max(diffs["all"], float(d.max()))
                diffs["loud"] = max(diffs["loud"], float(d[ref > ref.max() - 80].max()))
            # per-format single-process throughput, one pass each
            per_format = {}
            with threadpool_limits(1, user_api="blas"):
                for fmt, ids in groups.items():
                    if not ids:
                        continue
                    sel = [p for (item_id, _), p in zip(rows, paths) if item_id in ids]
                    secs = sum(sf.info(p).duration for p in sel)
                    sub = DataLayout(work / f"sub_{kind}_{fmt}")
                    fileio.write_tsv(sub.audio_index("BENCH"), [r for r in rows if r[0] in ids])
                    os.symlink(audio, sub.root / "audio")
                    t_ref = min(timed(lambda: reference(sel, kind, ref_dir)) for _ in range(args.repeats))
                    t_ours = min(timed(lambda: runner.compute_spectrograms(
                        sub, entry, n_jobs=1, progress=False, overwrite=True)) for _ in range(args.repeats))
                    per_format[fmt] = (secs / t_ref, secs / t_ours)
            results[kind] = (best, paired, cold2, diffs, per_format, plain_ratio)

            print(f"\n[{kind}] seconds of audio per second (best of {len(times['ref'])} repeats; "
                  f"{sum(quiet)} of {args.repeats} ran on an otherwise idle machine"
                  f"{', only those are used' if any(quiet) else ', none did: figures are contended'}):")
            print(f"  reference (librosa, 1 process)   {total_s / best['ref']:8.1f}   ({best['ref']:.2f} s)")
            print(f"  ours, 1 worker                   {total_s / best['ours1']:8.1f}   ({best['ours1']:.2f} s)")
            print(f"  ours, 2 workers                  {total_s / best['ours2']:8.1f}   ({best['ours2']:.2f} s; "
                  f"cold, with pool start-up: {cold2:.2f} s)")
            print(f"  ours 1 worker / reference        {best['ref'] / best['ours1']:8.2f}x   (target >= 2; "
                  f"median of paired runs {paired['ref/ours1']:.2f}x)")
            print(f"  ours 2 workers / 1 worker        {best['ours1'] / best['ours2']:8.2f}x   (target >= 1.7; "
                  f"median of paired runs {paired['ours1/ours2']:.2f}x)")
            print(f"  machine ceiling: the same per-file work split over 2 plain forked processes "
                  f"(no joblib) runs {plain_ratio:.2f}x faster than in 1 (median of {args.repeats})")
            for fmt, (r, o) in per_format.items():
                print(f"  {fmt} only: reference {r:.1f}, ours {o:.1f} -> {o / r:.2f}x")
            print(f"  max |ours - reference|: {diffs['all']:.4f} dB over all bins, "
                  f"{diffs['loud']:.4f} dB within 80 dB of each file's maximum")
        print("\nload average at end: %.2f %.2f %.2f (other processes compete for the cores above 0)"
              % os.getloadavg())
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
