"""The spectrogram stage: every file of a dataset's audio index to one ``.npy`` spectrogram.

Output, under ``layout.spectrograms_dir(ds)``:

- ``{id}.npy``: float32 ``(frames, bins)``, one per decoded item, each written atomically;
- ``params.json``: ``entry.spectrogram_params()``, written before the first spectrogram;
- ``errors.tsv``: ``id<TAB>path<TAB>reason`` of the items that could not be decoded in the last
  run (rewritten atomically each run, removed when there are none).

Work is spread over ``n_jobs`` worker processes (joblib) in chunks of files; each worker decodes,
computes and writes its own files, and gets the filterbank or CQT kernels from the parent, so no
worker builds them again. A bad file is listed and skipped, and the run goes on; so is a file whose
extension is not in the entry's ``audio_ext`` (when that list is not empty). A full disk (or any
:class:`~tartarus.errors.OutputError`) is not a bad file: it stops the run at once, from any worker,
and blames no input. A rerun resumes:
items whose ``.npy`` exists are not recomputed, provided ``params.json`` holds the current
parameters (otherwise an error asks to delete the folder or pass ``overwrite=True``).

On a Dask cluster (``scheduler``: its address, or a connected ``distributed.Client``) the same chunks
(:func:`process_chunk`) run on the cluster's workers instead, the plan sent once to each; ``n_jobs``
is then unused (the workers' threads decide). The workers must see the data root at the same path
(checked before any work is sent) and write the ``.npy`` files themselves, atomically as here; the
client writes ``params.json`` and ``errors.tsv``, and its progress bar advances as chunks finish. A
task whose worker dies is run again on another worker; an OutputError on a worker stops the run as
here; a killed client leaves only whole files, and a rerun resumes. Start a cluster with ``dask
scheduler`` on one machine and ``dask worker ADDRESS --nworkers N --nthreads 1`` on each (see
:mod:`tartarus.scheduler`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import fileio
from ..checks import check_n_jobs
from ..errors import AudioError, ConfigError, DataMismatch, MissingInput, OutputError
from . import decode, features


@dataclass
class SpectrogramReport:
    """What one run of :func:`compute_spectrograms` did."""
    dataset: str
    done: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)  # (item_id, path, reason), in index order
    audio_seconds: float = 0.0  # duration of the audio decoded in this run
    elapsed: float = 0.0
    out_dir: Optional[Path] = None
    errors_path: Optional[Path] = None

    @property
    def total(self):
        return self.done + self.skipped + len(self.failed)

    def summary(self):
        text = (f"{self.dataset}: {self.done} spectrograms computed, {self.skipped} already present, "
                f"{len(self.failed)} failed")
        if self.failed and self.errors_path:
            text += f" (see {self.errors_path})"
        if self.done:
            rate = self.audio_seconds / self.elapsed if self.elapsed > 0 else float("inf")
            text += f"; {self.audio_seconds:.0f} s of audio in {self.elapsed:.1f} s ({rate:.0f}x real time)"
        return text


def audio_index_path(layout, entry):
    """The dataset's audio index: ``entry.index_file`` under the index folder if set, else the default."""
    if entry.index_file:
        return layout.index_dir / entry.index_file
    return layout.audio_index(entry.name)


def read_audio_index(layout, entry):
    """``[(item_id, audio path)]`` of the dataset's audio index, in its order."""
    path = audio_index_path(layout, entry)
    if not path.exists():
        raise MissingInput(path, what=f"audio index of dataset {entry.name}")
    rows = fileio.read_tsv(path, ncols=2)
    base = layout.root / entry.audio_folder
    items, seen = [], {}
    for line, row in enumerate(rows, 1):
        item_id, name = row[0].strip(), row[1].strip()
        if item_id in seen:
            raise DataMismatch(f"{path}: item id {item_id!r} appears twice (lines {seen[item_id]} and {line})")
        seen[item_id] = line
        items.append((item_id, base / name))
    return items


def _normalised(params):
    """Parameters as they read back from JSON, so that stored and current compare equal."""
    return json.loads(json.dumps(params))


def _valid_id(item_id):
    return bool(item_id) and item_id not in (".", "..") and not any(c in item_id for c in "/\\\0")


def compute_spectrograms(layout, entry, n_jobs=None, progress=True, overwrite=False, scheduler=None):
    """Compute the spectrogram of every item in the dataset's audio index; see the module doc.

    ``n_jobs`` defaults to ``entry.num_process`` (joblib's convention: -1 is every core).
    ``overwrite=True`` deletes the existing spectrograms of the folder and starts afresh.
    ``scheduler``: None (local, joblib), or a Dask scheduler address (``tcp://host:8786``) or a
    connected ``distributed.Client`` to run the chunks on; an unreachable scheduler, or workers that
    cannot see the data root, are a ConfigError raised before anything is written.
    Returns a :class:`SpectrogramReport`.
    """
    with contextlib.ExitStack() as stack:  # holds the cluster's client, if any, until the end
        return _compute(layout, entry, n_jobs, progress, overwrite, scheduler, stack)


def _compute(layout, entry, n_jobs, progress, overwrite, scheduler, stack):
    start = time.perf_counter()
    ds = entry.name
    items = read_audio_index(layout, entry)
    from librosa.util.exceptions import ParameterError
    try:
        plan = features.get_plan(entry)
    except (ValueError, ParameterError) as exc:  # ours, and librosa's from its filter builders; a bug propagates
        raise ConfigError(f"dataset {ds!r}: spectrogram parameters: {exc}") from None
    _resolve_jobs(n_jobs, entry, 1)  # a bad n_jobs fails before anything is written
    from ..scheduler import on_cluster
    # None locally; an unreachable or blind cluster fails here, before anything is written too
    client = stack.enter_context(on_cluster(scheduler, layout.root))

    out_dir = layout.spectrograms_dir(ds)
    params_path = layout.spectrogram_params(ds)
    errors_path = layout.spectrogram_errors(ds)
    params = _normalised(entry.spectrogram_params())
    if overwrite:
        _clear(layout, ds, params_path, errors_path)
    else:
        _check_params(layout, ds, out_dir, params_path, params)
    fileio.make_dirs(out_dir)
    fileio.remove_stale_temps(out_dir)  # a killed run's half-written spectrograms
    if not params_path.exists():
        fileio.write_json(params_path, params)

    report = SpectrogramReport(ds, out_dir=out_dir, errors_path=errors_path)
    todo, failed = [], {}
    extensions = _audio_extensions(entry)
    for item_id, audio in items:
        if not _valid_id(item_id):
            failed[item_id] = (item_id, str(audio), "item id cannot be used as a file name")
            continue
        if extensions and audio.suffix.lower().lstrip(".") not in extensions:
            failed[item_id] = (item_id, str(audio), f"extension {audio.suffix or '(none)'!r} is not in the "
                                                    f"dataset's audio_ext ({', '.join(sorted(extensions))})")
            continue
        target = layout.spectrogram(ds, item_id)
        if target.exists():
            report.skipped += 1
        else:
            todo.append((item_id, str(audio), str(target)))

    for item_id, path, ok, value in _run(todo, plan, entry, n_jobs, progress, client):
        if ok:
            report.done += 1
            report.audio_seconds += value
        else:
            failed[item_id] = (item_id, path, value)

    order = {item_id: i for i, (item_id, _) in enumerate(items)}
    report.failed = sorted(failed.values(), key=lambda row: order.get(row[0], 0))
    if report.failed:
        fileio.write_tsv(errors_path, report.failed)
    elif errors_path.exists():
        errors_path.unlink()
    report.elapsed = time.perf_counter() - start
    return report


def _audio_extensions(entry):
    """The entry's ``audio_ext`` as a set of lower-case extensions without dot (empty: any file)."""
    return {str(ext).lower().lstrip(".") for ext in entry.audio_ext if str(ext).strip(". ")}


def _check_params(layout, ds, out_dir, params_path, params):
    if not out_dir.is_dir():
        return
    if params_path.exists():
        try:
            stored = json.loads(params_path.read_text(encoding="utf-8"))
        except ValueError:
            stored = None
        if stored == params:
            return
        if isinstance(stored, dict):
            diffs = ", ".join(f"{k}: {stored.get(k)!r} -> {params.get(k)!r}"
                              for k in sorted(set(stored) | set(params)) if stored.get(k) != params.get(k))
        else:
            diffs = "unreadable params.json"
        raise DataMismatch(f"the spectrograms in {out_dir} were computed with other parameters ({diffs}); "
                           f"delete that folder, or recompute them all with overwrite=True "
                           f"({layout.cli('spectrograms', ds, '--overwrite')})")
    if layout.spectrogram_files(ds):
        raise DataMismatch(f"{out_dir} holds spectrograms but no params.json, so their parameters are "
                           f"unknown; delete that folder, or recompute them all with overwrite=True "
                           f"({layout.cli('spectrograms', ds, '--overwrite')})")


def _clear(layout, ds, params_path, errors_path):
    """Remove a previous run's outputs: params first, so no state pairs old arrays with new params."""
    out_dir = layout.spectrograms_dir(ds)
    if not out_dir.is_dir():
        return
    for path in (params_path, errors_path):
        if path.exists():
            path.unlink()
    # the spectrograms, and any half-written temporary of an earlier run (all of them: overwrite)
    for path in layout.spectrogram_files(ds) + [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]:
        if path.is_file():
            path.unlink()


def _resolve_jobs(n_jobs, entry, n_tasks):
    import joblib

    # the entry's seed key num_process is this n_jobs (DatasetEntry documents the mapping)
    n_jobs = check_n_jobs("n_jobs", entry.num_process if n_jobs is None else n_jobs)
    return max(1, min(joblib.effective_n_jobs(n_jobs), n_tasks))


# Decoding cost per byte relative to PCM: compressed formats cost far more per byte.
_COST_PER_BYTE = {".mp3": 10.0, ".ogg": 10.0, ".opus": 10.0, ".m4a": 10.0, ".aac": 10.0,
                  ".wma": 10.0, ".flac": 3.0}


def _estimated_cost(audio_path):
    try:
        size = os.stat(audio_path).st_size
    except OSError:
        return 0.0
    return size * _COST_PER_BYTE.get(os.path.splitext(audio_path)[1].lower(), 1.0)


def _longest_first(todo):
    """Order the files by estimated work, largest first, so that the last tasks are short ones and
    the workers finish together (longest-processing-time scheduling). Output order is unaffected."""
    return sorted(todo, key=lambda item: -_estimated_cost(item[1]))


def _chunks(todo, n_workers, largest=32):
    """Chunks of files, shrinking as the work runs out ("guided" scheduling): few tasks to send,
    and small ones at the end, so that the workers finish together."""
    chunks, start = [], 0
    while start < len(todo):
        size = max(1, min(largest, (len(todo) - start) // (2 * n_workers)))
        chunks.append(todo[start:start + size])
        start += size
    return chunks


def _run(todo, plan, entry, n_jobs, progress, client=None):
    """Yield ``(item_id, path, ok, seconds or reason)`` for every file of ``todo``: in this process,
    on ``n_jobs`` joblib workers, or (``client``) on a Dask cluster."""
    if not todo:
        return
    from tqdm.auto import tqdm

    workers = _resolve_jobs(n_jobs, entry, len(todo))
    bar = tqdm(total=len(todo), unit="file", desc=f"spectrograms {entry.name}", disable=not progress)
    try:
        if client is not None:
            yield from _run_on_cluster(client, todo, plan, bar)
            return
        if workers == 1:
            with one_blas_thread():
                for item in todo:
                    yield _process_one(*item, plan)
                    bar.update(1)
            return
        import joblib
        chunks = _chunks(_longest_first(todo), workers)
        try:  # results as they finish (joblib >= 1.4), else in order
            parallel = joblib.Parallel(n_jobs=workers, return_as="generator_unordered")
        except ValueError:
            parallel = joblib.Parallel(n_jobs=workers, return_as="generator")
        results = parallel(joblib.delayed(process_chunk)(chunk, plan) for chunk in chunks)
        for rows in results:
            yield from rows
            bar.update(len(rows))
    finally:
        bar.close()


def _run_on_cluster(client, todo, plan, bar):
    """The chunks of :func:`_run` on a Dask cluster, the plan sent once to each worker.

    Workers get absolute paths (their working folder is not ours); the rows come back with the
    paths as given, so the errors file reads as after a local run.
    """
    from ..scheduler import map_unordered, n_worker_threads

    given = {item_id: audio for item_id, audio, _ in todo}
    absolute = [(item_id, os.path.abspath(audio), os.path.abspath(target)) for item_id, audio, target in todo]
    chunks = _chunks(_longest_first(absolute), n_worker_threads(client))
    for rows in map_unordered(client, process_chunk, chunks, plan):
        yield from ((item_id, given[item_id], ok, value) for item_id, _, ok, value in rows)
        bar.update(len(rows))


def process_chunk(chunk, plan):
    """Worker side: decode, compute and write each ``(item_id, audio path, npy path)`` of ``chunk``.

    One BLAS thread per process: the matrix products are small, and competing BLAS threads on busy
    cores slow them down by orders of magnitude.
    """
    with one_blas_thread():
        return [_process_one(item_id, audio, target, plan) for item_id, audio, target in chunk]


def _process_one(item_id, audio, target, plan):
    try:
        y = decode.load_audio(audio, plan.sr)
        spec = features.compute(y, plan)
        fileio.save_npy(target, spec)
        return item_id, audio, True, y.shape[0] / plan.sr
    except Exception as exc:  # one bad file must not end the run
        return item_id, audio, False, failure_reason(exc, audio, target)


def failure_reason(exc, audio, target):
    """The ``errors.tsv`` reason of an audio file whose processing raised ``exc``.

    What is no fault of the file ends the run instead, in a worker too: an OutputError is raised
    again, and a full disk or quota (e.g. a decoder's scratch file) becomes an OutputError naming
    ``target``. Any other exception is the file's: its message, prefixed with its type unless it is
    an AudioError.
    """
    if isinstance(exc, OutputError):
        raise exc
    if isinstance(exc, AudioError):
        return _reason(exc, audio)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise OutputError(target, exc.errno) from None
    return _reason(exc, audio, prefix=f"{type(exc).__name__}: ")


def _reason(exc, audio, prefix=""):
    text = " ".join(str(exc).split()) or type(exc).__name__
    lead = f"{audio}: "
    if text.startswith(lead):
        text = text[len(lead):]
    return (prefix + text).replace("\t", " ")


class one_blas_thread:
    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: without it, BLAS keeps its own setting
            self._limits = None
            return self
        self._limits = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
        return False

