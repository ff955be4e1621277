"""Batch extraction with the pretrained taggers (musicnn and its VGG baselines) over many audio files.

``extract(paths, "MTT_musicnn")`` returns every file's taggram; ``layers=("penultimate", ...)``
any of the model's named layers (:attr:`tartarus.pretrained.PretrainedSpec.layers`). The work is
split as the machine allows:

- **decoding** (``decode.load_audio`` at 16 kHz, musicnn's log-mel, 187-frame patches:
  :func:`tartarus.pretrained.file_patches`) runs in ``n_jobs`` joblib worker processes, one BLAS
  thread each, at most ``2 * n_jobs`` files in flight (joblib's ``pre_dispatch``), so memory stays
  bounded however many files there are; ``n_jobs=1`` decodes in this process, in one thread a
  couple of files ahead of the inference;
- **inference** runs here, on the backend's device, in batches of ``batch_size`` patches stacked
  across files (a file's patches may straddle two batches), every batch but the last of the same
  shape, the last padded with zeros to a power of two (the padding dropped), so the compiled predict
  step is traced once or twice, not once per file;
- the outputs are cut back into files, in the order the paths were given.

A file that cannot be decoded, or is shorter than one patch (3 s), is skipped and listed with the
reason, as the spectrogram stage does (:mod:`tartarus.audio.runner`); a full disk is not a bad file
and stops the run. The batches are formed in input order whatever ``n_jobs`` is, so ``n_jobs``
changes the speed and never the numbers.

On top of it: :func:`tag_files` (``tartarus tag``: the top tags of each file, as musicnn's CLI
prints them, and the taggrams written with ``--out``) and :func:`embed_dataset` (``tartarus
embed``: per-item embeddings of a dataset's splits as ``train_data`` inputs of vector experiments).
"""

from __future__ import annotations

import collections
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import fileio
from .checks import check_int, check_n_jobs
from .errors import ConfigError, DataMismatch

DEFAULT_BATCH_SIZE = 64  # patches per inference batch: 64 x 187 x 96 float32 is 4.6 MB
DEFAULT_TOP_N = 5


# ----------------------------------------------------------------------------- results
@dataclass
class FileOutput:
    """What one file gave: ``outputs[layer]`` is float32 ``(n_patches, *layer shape)`` (with
    ``pooled``: ``(n_patches, channels)``); ``index`` is its position among the given paths."""
    index: int
    path: str
    outputs: dict

    @property
    def n_patches(self):
        return next(iter(self.outputs.values())).shape[0]


@dataclass
class ExtractionReport:
    """What :func:`extract` did: the files extracted and the files skipped, each in input order."""
    model: str
    layers: tuple
    files: list = field(default_factory=list)  # FileOutput
    failed: list = field(default_factory=list)  # (path, reason)
    elapsed: float = 0.0

    @property
    def n_patches(self):
        return sum(f.n_patches for f in self.files)

    def summary(self):
        rate = len(self.files) / self.elapsed if self.elapsed > 0 else float("inf")
        return (f"{self.model}: {len(self.files)} file(s), {self.n_patches} patches in {self.elapsed:.1f} s "
                f"({rate:.2f} files/s), {len(self.failed)} failed")


# ----------------------------------------------------------------------------- extraction
def check_layers(spec, layers):
    """``layers`` (a name, a sequence of names, or None: the taggram) as a tuple of the spec's layer
    names; ConfigError naming the model and listing its layers otherwise."""
    if layers is None:
        layers = ("taggram",)
    elif isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    if not layers:
        raise ConfigError(f"{spec.name}: no layer to extract; its layers: {', '.join(spec.layers)}")
    for layer in layers:
        if layer not in spec.layers:
            raise ConfigError(f"{spec.name} has no layer {layer!r}; its layers: {', '.join(spec.layers)}")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{spec.name}: layer listed twice in {', '.join(layers)}")
    return layers


def extract(paths, name, layers=None, *, n_jobs=1, batch_size=DEFAULT_BATCH_SIZE, step=None, pooled=False,
            progress=True, cache_dir=None, model=None):
    """Outputs of pretrained model ``name`` for every audio file of ``paths``; see the module doc.

    paths : audio files (str or Path), in the order of the report.
    name : one of :data:`tartarus.pretrained.PRETRAINED_NAMES`.
    layers : a layer name or names of the model (default: ``"taggram"``, ``(n_patches, 50)``).
    n_jobs : decoding worker processes (joblib's convention: -1 every core; default 1: in process).
    batch_size : patches per inference batch (default 64).
    step : frames between patch starts (default 187: no overlap, as musicnn's default).
    pooled : average each output with axes beyond (patch, channels) over them in the compiled step
        (time for timbral/temporal/cnn1-3, time and frequency for pool1-4), so every layer gives
        ``(n_patches, channels)``; outputs already 2-D are unchanged.
    cache_dir : the converted weights' cache (default :func:`tartarus.pretrained.default_cache_dir`).
    model : the ``keras.Model`` of ``load_pretrained(name)``, when the caller has it loaded already.
    Returns an :class:`ExtractionReport`.
    """
    start = time.perf_counter()
    report = None
    for item in iter_extract(paths, name, layers, n_jobs=n_jobs, batch_size=batch_size, step=step,
                             pooled=pooled, progress=progress, cache_dir=cache_dir, model=model):
        if report is None:
            report = ExtractionReport(name, tuple(item.layers))
        if item.reason is None:
            report.files.append(FileOutput(item.index, item.path, item.outputs))
        else:
            report.failed.append((item.path, item.reason))
    if report is None:  # no paths
        from .pretrained import get_spec
        report = ExtractionReport(name, check_layers(get_spec(name), layers))
    report.elapsed = time.perf_counter() - start
    return report


@dataclass
class _Pending:
    """One file between decoding and the last of its patches coming out of the model."""
    index: int
    path: str
    layers: tuple
    n: int = 0  # patches
    done: int = 0  # patches through the model so far
    parts: Optional[dict] = None  # layer -> [output rows, in patch order]
    reason: Optional[str] = None  # why it was skipped
    outputs: Optional[dict] = None  # layer -> (n, ...) array, once complete

    @property
    def complete(self):
        return self.reason is not None or self.done == self.n

    def finish(self):
        if self.reason is None:
            self.outputs = {layer: np.concatenate(self.parts[layer]) for layer in self.layers}
        self.parts = None
        return self


def iter_extract(paths, name, layers=None, *, n_jobs=1, batch_size=DEFAULT_BATCH_SIZE, step=None, pooled=False,
                 progress=True, cache_dir=None, model=None):
    """Generator form of :func:`extract`, for callers that reduce or write each file as it comes:
    yields, in input order, one object per path with ``index``, ``path``, ``layers``, and either
    ``outputs`` (``{layer: array}``) and ``reason`` None, or ``reason`` (why it was skipped)."""
    from . import pretrained

    spec = pretrained.get_spec(name)
    layers = check_layers(spec, layers)
    batch_size = check_int("batch_size", batch_size)
    if step is not None:
        step = check_int("step", step)
    n_jobs = check_n_jobs("n_jobs", n_jobs)
    paths = [str(p) for p in paths]
    if not paths:
        return
    predict = _predict_step(model if model is not None else pretrained.load_pretrained(name, cache_dir),
                            layers, pooled)
    from tqdm.auto import tqdm

    # disable=None: tqdm's own test, off when stderr is not a terminal
    bar = tqdm(total=len(paths), unit="file", desc=f"{name} {','.join(layers)}", file=sys.stderr,
               disable=None if progress else True)
    queue = collections.deque()  # _Pending, in input order; decoded patches wait in `ready`
    ready = collections.deque()  # (pending, patches, first patch not yet batched)
    n_ready = 0
    try:
        for index, (path, patches, reason) in enumerate(_decoded(paths, step, n_jobs)):
            item = _Pending(index, path, layers, reason=reason)
            queue.append(item)
            if reason is None:
                item.n = patches.shape[0]
                item.parts = {layer: [] for layer in layers}
                ready.append([item, patches, 0])
                n_ready += item.n
            while n_ready >= batch_size:
                n_ready -= _run_batch(predict, ready, batch_size, layers)
            yield from _finished(queue, bar)
        while n_ready:
            n_ready -= _run_batch(predict, ready, batch_size, layers)
        yield from _finished(queue, bar)
    finally:
        bar.close()


def _finished(queue, bar):
    """Pop and yield the files at the front of ``queue`` that are complete (input order kept)."""
    while queue and queue[0].complete:
        bar.update(1)
        yield queue.popleft().finish()


def _run_batch(predict, ready, batch_size, layers):
    """Take up to ``batch_size`` patches off the front of ``ready`` (across files), run them, hand
    each file its rows. Returns the number of real patches run."""
    pieces, taken = [], 0
    while ready and taken < batch_size:
        entry = ready[0]
        item, patches, first = entry
        count = min(batch_size - taken, item.n - first)
        pieces.append((item, patches[first:first + count]))
        taken += count
        if first + count == item.n:
            ready.popleft()
        else:
            entry[2] = first + count
    x = np.concatenate([p for _, p in pieces]) if len(pieces) > 1 else pieces[0][1]
    size = _padded_size(taken, batch_size)
    if taken < size:  # few shapes: the compiled step is traced once per size, not once per call
        x = np.concatenate([x, np.zeros((size - taken,) + x.shape[1:], dtype=x.dtype)])
    outputs = predict(np.ascontiguousarray(x, dtype=np.float32))
    row = 0
    for item, p in pieces:
        for layer, out in zip(layers, outputs):
            item.parts[layer].append(out[row:row + len(p)])
        item.done += len(p)
        row += len(p)
    return taken


def _padded_size(n, batch_size):
    """The batch shape ``n`` patches are padded to: ``batch_size``, or for the last, partial batch
    the smallest power of two >= ``n`` (at most ``batch_size``), so that a short run does not
    compute a full batch of zeros, and the step is traced for at most log2(batch_size) more shapes."""
    if n >= batch_size:
        return batch_size
    return min(batch_size, 1 << max(0, int(n) - 1).bit_length())


def _predict_step(model, layers, pooled):
    """A function of one float32 ``(batch, 187, 96)`` array giving a list of numpy arrays, one per
    layer: the backend's compiled predict step (``predict_on_batch``) of the feature model."""
    import keras

    from .pretrained import feature_model

    features = feature_model(model, list(layers))
    if pooled:
        outputs = [keras.ops.mean(out, axis=tuple(range(1, len(out.shape) - 1))) if len(out.shape) > 2 else out
                   for out in features.outputs]
        features = keras.Model(features.inputs, outputs, name=f"{features.name}_pooled")

    def predict(x):
        out = features.predict_on_batch(x)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o, dtype=np.float32) for o in out]

    return predict


# ----------------------------------------------------------------------------- decoding (workers)
def _decoded(paths, step, n_jobs):
    """Yield ``(path, patches or None, reason or None)`` per path, in order: in this process, or on
    joblib workers with a bounded number of files in flight."""
    import joblib

    workers = max(1, min(joblib.effective_n_jobs(n_jobs), len(paths)))
    if workers == 1:
        yield from _decoded_in_thread(paths, step)
        return
    # ordered results: the batches, hence the numbers, do not depend on which worker finishes first
    parallel = joblib.Parallel(n_jobs=workers, return_as="generator", pre_dispatch="2*n_jobs", batch_size=1)
    yield from parallel(joblib.delayed(prepare_file)(path, step) for path in paths)


def _decoded_in_thread(paths, step, ahead=2):
    """:func:`prepare_file` of each path in one thread of this process, ``ahead`` files ahead of the
    caller: decoding (soundfile, soxr and numpy release the GIL) overlaps the inference that
    consumes the patches. A generator closed early waits for the files under way, at most ``ahead``."""
    from concurrent.futures import ThreadPoolExecutor

    upcoming = iter(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tartarus-decode") as pool:
        futures = collections.deque(pool.submit(prepare_file, path, step)
                                    for path in itertools.islice(upcoming, ahead))
        while futures:
            result = futures.popleft().result()
            for path in itertools.islice(upcoming, 1):
                futures.append(pool.submit(prepare_file, path, step))
            yield result


def prepare_file(path, step=None):
    """Worker side: ``(path, (n, 187, 96) float32 patches, None)``, or ``(path, None, reason)`` when
    the file cannot be used (the reason as in the spectrogram stage's errors.tsv). A full disk
    (a decoder's scratch file) raises OutputError instead: it is no fault of the file."""
    from .audio.runner import failure_reason, one_blas_thread
    from .pretrained import file_patches

    try:
        with one_blas_thread():  # small products on busy cores: one thread each is fastest
            return path, file_patches(path, step), None
    except Exception as exc:  # one bad file must not end the run
        return path, None, failure_reason(exc, path, path)


# ----------------------------------------------------------------------------- tartarus tag
def audio_files(inputs):
    """The audio files named by ``inputs``: a file is taken as it is (whatever its extension; a
    missing one is reported by the extraction), a folder is walked recursively for files with an
    audio extension (``recommend.AUDIO_SUFFIXES``), sorted. The same file named twice counts once.
    ConfigError when a folder holds no audio file."""
    from .recommend import AUDIO_SUFFIXES

    files, seen = [], set()
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                raise ConfigError(f"{given}: no audio files in this folder (looked for "
                                  f"{', '.join(sorted(AUDIO_SUFFIXES))}, in subfolders too)")
        else:
            found = [given]
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def taggram_paths(out_dir, files):
    """``{file: out_dir/<stem>.npy}``; a ConfigError naming the files when two share a stem (one
    taggram would overwrite the other), telling to tag them into separate ``--out`` folders."""
    by_stem = collections.defaultdict(list)
    for path in files:
        by_stem[Path(path).stem].append(str(path))
    clashes = {stem: group for stem, group in by_stem.items() if len(group) > 1}
    if clashes:
        stem, group = next(iter(sorted(clashes.items())))
        raise ConfigError(f"--out {out_dir}: {len(clashes)} file name(s) shared by several files, e.g. "
                          f"{', '.join(group)} would all be {Path(out_dir) / (stem + '.npy')}; tag them "
                          f"into separate --out folders")
    return {str(path): Path(out_dir) / f"{Path(path).stem}.npy" for path in files}


def top_tags(taggram, labels, n=DEFAULT_TOP_N):
    """The ``n`` labels of the highest mean over the patches of ``taggram`` ``(patches, 50)``,
    highest first (musicnn's ``top_tags``: ``mean.argsort()[-n:][::-1]``)."""
    mean = np.mean(np.asarray(taggram), axis=0)
    return [labels[i] for i in mean.argsort()[-n:][::-1]]


def format_top_tags(path, tags):
    """The lines musicnn's CLI prints for one file: ``[path] TopN tags: `` then `` - tag`` each."""
    return "\n".join([f"[{path}] Top{len(tags)} tags: "] + [f" - {tag}" for tag in tags])


@dataclass
class TagReport:
    """What :func:`tag_files` did."""
    model: str
    tags: dict = field(default_factory=dict)  # path -> top tags, in input order
    written: list = field(default_factory=list)  # taggram files written (--out)
    failed: list = field(default_factory=list)  # (path, reason)
    elapsed: float = 0.0


def tag_files(inputs, name="MTT_musicnn", n=DEFAULT_TOP_N, out_dir=None, *, n_jobs=1,
              batch_size=DEFAULT_BATCH_SIZE, progress=True, cache_dir=None, model=None, echo=print):
    """``tartarus tag``: the top ``n`` tags of every audio file of ``inputs`` (files, or folders
    walked by :func:`audio_files`), each file's lines passed to ``echo`` as it is done.

    out_dir : also write ``out_dir/<stem>.npy`` (the taggram, float32 ``(patches, 50)``) per file
        and ``out_dir/tags.txt`` (the 50 labels, one a line, in column order), each atomically;
        two files with one stem are refused before any work (:func:`taggram_paths`).
    Returns a :class:`TagReport`; skipped files are in ``failed``, and it is the caller's choice
    what to do when every file failed (the CLI exits non-zero then).
    """
    from .pretrained import get_spec

    spec = get_spec(name)
    n = check_int("n", n, maximum=len(spec.labels))
    files = audio_files(inputs)
    if not files:
        raise ConfigError("no audio files given")
    targets = taggram_paths(out_dir, files) if out_dir is not None else {}
    report = TagReport(name)
    start = time.perf_counter()
    if out_dir is not None:
        fileio.write_lines(Path(out_dir) / "tags.txt", spec.labels)
    for item in iter_extract(files, name, "taggram", n_jobs=n_jobs, batch_size=batch_size, progress=progress,
                             cache_dir=cache_dir, model=model):
        if item.reason is not None:
            report.failed.append((item.path, item.reason))
            continue
        taggram = item.outputs["taggram"]
        report.tags[item.path] = top_tags(taggram, spec.labels, n)
        echo(format_top_tags(item.path, report.tags[item.path]))
        if out_dir is not None:
            fileio.save_npy(targets[item.path], taggram.astype(np.float32))
            report.written.append(targets[item.path])
    report.elapsed = time.perf_counter() - start
    return report


# ----------------------------------------------------------------------------- tartarus embed
@dataclass
class EmbedReport:
    """What :func:`embed_dataset` did: per set ``(X path, items index path, rows, dim)`` written or
    found up to date, and the items left out as ``(set, item id, path, reason)``."""
    model: str
    dataset: str
    layer: str
    suffix: str
    written: dict = field(default_factory=dict)  # set -> (x path, index path, rows, dim)
    current: dict = field(default_factory=dict)  # set -> (x path, index path): already complete
    failed: list = field(default_factory=list)
    errors_path: Optional[Path] = None
    elapsed: float = 0.0

    def summary(self):
        lines = []
        for set_, (x, index) in self.current.items():
            lines.append(f"{self.dataset} {set_}: {x} is up to date (with {index.name})")
        for set_, (x, index, rows, dim) in self.written.items():
            lines.append(f"{self.dataset} {set_}: {rows} items x {dim} -> {x} (+ {index.name})")
        if self.failed:
            shown = "; ".join(f"{item} ({set_}): {reason}" for set_, item, _, reason in self.failed[:5])
            lines.append(f"{len(self.failed)} item(s) left out (see {self.errors_path}): {shown}")
        return "\n".join(lines)


def embed_dataset(layout, entry, name, layer=None, sets=("train", "val", "test"), *, n_jobs=1,
                  batch_size=DEFAULT_BATCH_SIZE, progress=True, cache_dir=None, overwrite=False, model=None):
    """``tartarus embed``: one vector per item of the dataset's splits, from pretrained model ``name``.

    An item's vector is the mean over its patches (3 s, no overlap) of ``layer``'s output (default:
    the model's ``default_layer``, ``penultimate`` for musicnn, ``pool5`` for VGG); a layer with a
    time axis (``timbral``, ``temporal``, ``cnn1``-``cnn3``) or time and frequency axes (``pool1``-
    ``pool4``) is first averaged over those (in the compiled step), so every row is its channels'
    vector. The items are the split's (``splits/items_index_{set}_{ds}.tsv``), their audio the
    dataset's audio index (``entry``: its ``audio_folder`` and ``index_file``); each item is decoded
    once however many sets are asked for.

    Writes, per set, ``train_data/X_{set}_{name}-{layer}_{ds}.npy`` (float32 ``(items, dim)``) and
    its ``items_index_{set}_{name}-{layer}_{ds}.tsv``, atomically (the index last, so an index
    always describes its array): the input suffix ``{name}-{layer}`` of ``tartarus run``. Items not
    in the audio index or that cannot be decoded are left out of both and listed in
    ``train_data/errors_{suffix}_{ds}.tsv`` (``set, id, path, reason``; removed when there are
    none). A set whose index already lists every item of the split is not recomputed unless
    ``overwrite``, so a rerun is cheap. Returns an :class:`EmbedReport`.
    """
    from .audio.runner import read_audio_index
    from .pretrained import get_spec

    spec = get_spec(name)
    layer = spec.default_layer if layer is None else layer
    check_layers(spec, layer)
    sets = list(dict.fromkeys(sets))
    ds = entry.name
    suffix = layout.pretrained_suffix(name, layer)
    report = EmbedReport(name, ds, layer, suffix, errors_path=layout.input_errors(suffix, ds))
    start = time.perf_counter()

    split_ids = {set_: fileio.read_items_index(layout.items_index(set_, ds),
                                               f"the split {set_} of dataset {ds} (its splits/ files)")
                 for set_ in sets}
    todo = []
    for set_ in sets:
        x_path, index_path = layout.x(set_, suffix, ds), layout.items_index(set_, ds, suffix)
        if not overwrite and x_path.exists() and index_path.exists() \
                and fileio.read_items_index(index_path) == split_ids[set_] \
                and _rows(x_path) == len(split_ids[set_]):
            report.current[set_] = (x_path, index_path)
        else:
            todo.append(set_)
    if todo:
        audio = dict(read_audio_index(layout, entry))
        wanted = list(dict.fromkeys(item for set_ in todo for item in split_ids[set_]))
        reasons = {item: f"not in the audio index {layout.audio_index(ds)}" for item in wanted if item not in audio}
        present = [item for item in wanted if item in audio]
        vectors = {}
        for got in iter_extract([audio[item] for item in present], name, layer, n_jobs=n_jobs,
                                batch_size=batch_size, pooled=True, progress=progress, cache_dir=cache_dir,
                                model=model):
            item = present[got.index]
            if got.reason is None:
                vectors[item] = got.outputs[layer].mean(axis=0, dtype=np.float64).astype(np.float32)
            else:
                reasons[item] = got.reason
        for set_ in todo:
            kept = [item for item in split_ids[set_] if item in vectors]
            report.failed += [(set_, item, str(audio.get(item, "")), reasons[item])
                              for item in split_ids[set_] if item not in vectors]
            x_path, index_path = layout.x(set_, suffix, ds), layout.items_index(set_, ds, suffix)
            if index_path.exists():  # no moment where an old index describes the new array
                index_path.unlink()
            if not kept:  # nothing to write (the items are listed as failed), and nothing stale kept
                if x_path.exists():
                    x_path.unlink()
                continue
            x = np.stack([vectors[item] for item in kept])
            fileio.save_npy(x_path, x)
            fileio.write_lines(index_path, kept)
            report.written[set_] = (x_path, index_path, x.shape[0], x.shape[1])
        if report.failed:
            fileio.write_tsv(report.errors_path, report.failed)
        elif report.errors_path.exists():
            report.errors_path.unlink()
    report.elapsed = time.perf_counter() - start
    return report


def _rows(path):
    try:
        return fileio.load_npy(path, mmap=True).shape[0]
    except (DataMismatch, IndexError):
        return -1
