"""The patch stage: fixed-length crops of each item's spectrogram, one HDF5 file per split.

``layout.patches(set, ds, npatches, window)`` holds

- ``features``: float32 ``(N, frames, bins, 1)`` (channels last), chunked one patch per chunk;
- ``index``: ``(N,)`` UTF-8 strings, the item id of each patch, in ``items_index`` order with the
  ``npatches`` patches of an item next to each other;
- attribute ``params``: JSON of the spectrogram parameters plus ``npatches``, ``window``, ``mode``,
  ``seed``, ``n_frames`` and ``n_bins``; attribute ``missing``: JSON list of the split's items that
  had no spectrogram and so have no patch.

Modes: ``random`` crops at offsets drawn from a generator seeded by ``(seed, item id)``, so an
item's patches do not depend on which other items exist; ``even`` spreads the crops evenly from
the first frame to the last (one patch: the middle). A clip shorter than a patch is padded at the
end with the silence value of the spectrogram (``features.silence_value``).

On a Dask cluster (``scheduler``: an address or a ``distributed.Client``), the items of a split are
cut into shards of consecutive items (:func:`shard_size`), and each worker writes whole shards,
``layout.patch_shard(set, ds, n, s, k)``, each atomically, so no HDF5 file ever has two writers.
The client then writes, atomically, the usual ``layout.patches(...)`` file whose ``features`` is an
HDF5 virtual dataset over the shards' ``features`` (same shape, dtype and values as a local run;
the source paths are relative to that file, so the data root can be moved or mounted elsewhere as a
whole), with ``index``, ``params`` and ``missing`` as above: ``h5py.File(path)["features"]`` reads it
as it reads a local file (HDF5 >= 1.10). A rerun reuses the shards whose parameters and items match
and rewrites the others. HDF5 would read NaN where a shard file is gone, without an error:
:func:`missing_sources` lists such shards, and every tartarus reader (``fileio.open_hdf5``) refuses
the file, naming one. A later local run replaces the virtual file by a plain one and removes the shards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import fileio
from ..checks import check_choice, check_int
from ..config.schema import PATCH_MODES
from ..errors import ConfigError, DataMismatch, MissingInput
from ..layout import SETS, DataLayout
from . import features

log = logging.getLogger(__name__)

_WRITE_BLOCK = 64  # patches buffered per HDF5 write
SHARD_BYTES = 256 << 20  # most patch bytes in one shard of a cluster run
_SHARD_MIN_BYTES = 16 << 20  # fewest (but for the last shard): each file costs its creation and a task
_SHARDS_PER_SET = 64  # shards a split is cut into when the bytes allow (work for up to 64 workers)


class PatchFiles(dict):
    """``{set: path of its HDF5 file}``, with what was left out.

    ``missing[set]``: ids of the split with no spectrogram (no patch written for them);
    ``counts[set]``: number of items that have patches.
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset
        self.missing = {}
        self.counts = {}

    def summary(self):
        parts = []
        for set_, path in self.items():
            text = f"{set_}: {self.counts[set_]} items -> {path.name}"
            if self.missing.get(set_):
                text += f" ({len(self.missing[set_])} without spectrogram skipped)"
            parts.append(text)
        return f"{self.dataset} patches: " + "; ".join(parts)


def patch_starts(length, frames, npatches, mode, rng=None):
    """First frame of each patch of a ``length``-frame spectrogram (0 for a clip too short)."""
    room = length - frames
    if room <= 0:
        return np.zeros(npatches, dtype=np.int64)
    if mode == "random":
        return np.sort(rng.integers(0, room + 1, size=npatches))
    if npatches == 1:
        return np.array([room // 2], dtype=np.int64)
    return np.round(np.linspace(0, room, npatches)).astype(np.int64)


def item_rng(seed, item_id):
    """The generator of one item's random crops: deterministic in (seed, item id)."""
    return np.random.default_rng([int(seed) % 2**63, zlib.crc32(item_id.encode("utf-8"))])


def crop(spec, start, frames, fill):
    """``frames`` rows of ``spec`` from ``start``, padded with ``fill`` past its end."""
    part = spec[start:start + frames]
    if part.shape[0] == frames:
        return part
    out = np.full((frames, spec.shape[1]), fill, dtype=np.float32)
    out[:part.shape[0]] = part
    return out


def item_patches(spec, item_id, frames, npatches, mode, seed, fill):
    """``(npatches, frames, bins)`` float32 crops of one item's ``(n, bins)`` spectrogram.

    The crops :func:`create_patches` writes for ``item_id``; also used for audio files outside any
    dataset (the file's stem is the id), so a query is cut like the model's training patches.
    """
    rng = item_rng(seed, item_id) if mode == "random" else None
    return np.stack([crop(spec, int(start), frames, fill)
                     for start in patch_starts(spec.shape[0], frames, npatches, mode, rng)])


def create_patches(layout, entry, sets=SETS, npatches=None, window=None, mode=None, seed=None,
                   scheduler=None, shard_items=None, progress=True):
    """Write the patch file of each set; None means the entry's value. Returns :class:`PatchFiles`.

    ``scheduler``: None (here, one file per set), or a Dask scheduler address or connected
    ``distributed.Client`` (shards written by the workers, a virtual dataset over them; see the
    module doc). An unreachable scheduler, or workers that cannot see the data root, are a
    ConfigError raised before anything is written. ``shard_items``: items per shard on a cluster
    (default :func:`shard_size`). ``progress``: a progress bar of a cluster run (items written).
    """
    ds = entry.name
    npatches = entry.npatches if npatches is None else npatches
    window = entry.window if window is None else window
    mode = entry.patch_mode if mode is None else mode
    seed = entry.seed if seed is None else seed
    if isinstance(sets, str):
        sets = (sets,)
    npatches = check_int(f"dataset {ds!r}: npatches", npatches)
    check_choice(f"dataset {ds!r}: patch mode", mode, PATCH_MODES)
    frames = features.n_frames(window, entry)
    if frames < 1:
        raise ConfigError(f"dataset {ds!r}: a window of {window} s is shorter than one frame "
                          f"(hop {entry.hop} at {entry.resample_sr} Hz)")

    spec_dir = layout.spectrograms_dir(ds)
    command = layout.cli("spectrograms", ds)
    if not spec_dir.is_dir():
        raise MissingInput(spec_dir, command, what=f"spectrograms folder of dataset {ds}")
    stored = fileio.read_json(layout.spectrogram_params(ds), command)
    current = json.loads(json.dumps(entry.spectrogram_params()))
    if stored != current:
        diffs = ", ".join(f"{k}: {stored.get(k)!r} (stored) vs {current.get(k)!r} (entry)"
                          for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k))
        raise DataMismatch(f"the spectrograms in {spec_dir} do not match dataset {ds!r} ({diffs}); "
                           f"recompute them: {layout.cli('spectrograms', ds, '--overwrite')}")
    bins = entry.n_bins
    fill = features.silence_value(entry)
    params = {**stored, "npatches": int(npatches), "window": float(window), "mode": mode,
              "seed": int(seed), "n_frames": frames, "n_bins": bins}

    # read every split's index first, so a missing one fails before any file is written
    split_ids = {}
    for set_ in sets:
        path = layout.items_index(set_, ds)
        if not path.exists():
            raise MissingInput(path, what=f"{set_} split of dataset {ds}")
        split_ids[set_] = fileio.read_items_index(path)

    if shard_items is not None:
        shard_items = check_int("shard_items", shard_items)
    from ..scheduler import on_cluster
    with on_cluster(scheduler, layout.root) as client:
        result = PatchFiles(ds)
        fileio.remove_stale_temps(layout.patches(sets[0], ds, npatches, window).parent)  # killed runs' partial files
        for set_ in sets:
            ids = split_ids[set_]
            present, missing = [], []
            for item_id in ids:
                (present if layout.spectrogram(ds, item_id).exists() else missing).append(item_id)
            if missing:
                shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
                msg = (f"{ds} {set_}: {len(missing)} of {len(ids)} items have no spectrogram and get no "
                       f"patch: {shown}")
                warnings.warn(msg, stacklevel=2)
                log.warning(msg)
            if not present:
                raise DataMismatch(f"{ds} {set_}: none of the {len(ids)} items of "
                                   f"{layout.items_index(set_, ds)} has a spectrogram in {spec_dir}")
            out = layout.patches(set_, ds, npatches, window)
            set_params = {**params, "set": set_, "dataset": ds}
            if client is None:
                _write(out, layout, ds, present, missing, frames, bins, fill, npatches, mode, seed, set_params)
                # a cluster run's shards, which the virtual file just replaced referred to
                shutil.rmtree(layout.patch_shards_dir(set_, ds, npatches, window), ignore_errors=True)
            else:
                job = ShardJob(os.path.abspath(layout.root), ds, frames, bins, fill, npatches, mode, seed,
                               set_params)
                per = shard_items or shard_size(len(present), npatches, frames, bins)
                _write_sharded(client, out, layout, set_, window, present, missing, job, per, progress)
            result[set_] = out
            result.missing[set_] = missing
            result.counts[set_] = len(present)
    return result


def shard_size(n_items, npatches, frames, bins):
    """Items per shard of a cluster run: the split in about 64 shards, each of 16 MiB of patches at
    least and :data:`SHARD_BYTES` at most (an MSD-sized split of 1M items of one 599 x 128 patch:
    876 items, 256 MiB a shard). Depends only on the split's size and the patch shape, so that a
    rerun cuts the same shards and can reuse them."""
    item = npatches * frames * bins * 4
    most, least = max(1, SHARD_BYTES // item), max(1, _SHARD_MIN_BYTES // item)
    return min(most, max(least, math.ceil(n_items / _SHARDS_PER_SET)))


class ShardJob(NamedTuple):
    """What every shard of one split shares, sent once to each worker (``root``: absolute)."""
    root: str
    dataset: str
    frames: int
    bins: int
    fill: float
    npatches: int
    mode: str
    seed: int
    params: dict


def write_shard(task, job):
    """Worker side: write the shard ``task = (path, item ids)`` of ``job``, atomically, as a patches
    file of those items (``features``, ``index``, ``params``). Returns the number of items."""
    path, ids = task
    _write(Path(path), DataLayout(job.root), job.dataset, ids, [], job.frames, job.bins, job.fill,
           job.npatches, job.mode, job.seed, job.params)
    return len(ids)


def _shard_done(path, ids, job):
    """True when the shard file ``path`` holds the patches of ``ids`` made with ``job``'s parameters
    (a complete file: shards are written atomically)."""
    import h5py

    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as h5:
            return (json.loads(h5.attrs["params"]) == json.loads(json.dumps(job.params))
                    and h5["features"].shape == (len(ids) * job.npatches, job.frames, job.bins, 1)
                    and list(h5["index"].asstr()[::job.npatches]) == list(ids))
    except (OSError, KeyError, ValueError, TypeError):  # unreadable or not ours: write it again
        return False


def _write_sharded(client, out, layout, set_, window, ids, missing, job, per, progress):
    """One split on the cluster: the shards not already done, then the virtual file over all."""
    from tqdm.auto import tqdm

    from ..scheduler import map_unordered

    folder = layout.patch_shards_dir(set_, job.dataset, job.npatches, window)
    fileio.make_dirs(folder)
    fileio.remove_stale_temps(folder)  # killed workers' partial shards (of this host; others' age out)
    groups = [ids[start:start + per] for start in range(0, len(ids), per)]
    paths = [layout.patch_shard(set_, job.dataset, job.npatches, window, k) for k in range(len(groups))]
    todo = [(os.path.abspath(path), group) for path, group in zip(paths, groups) if not _shard_done(path, group, job)]
    bar = tqdm(total=len(ids), initial=len(ids) - sum(len(group) for _, group in todo), unit="item",
               desc=f"patches {job.dataset} {set_}", disable=not progress)
    try:
        for n in map_unordered(client, write_shard, todo, job):
            bar.update(n)
    finally:
        bar.close()
    _write_virtual(out, [(path, len(group) * job.npatches) for path, group in zip(paths, groups)],
                   ids, missing, job)
    keep = {path.name for path in paths}
    for path in folder.glob("shard_*.hdf5"):  # shards of an earlier, longer split
        if path.name not in keep:
            path.unlink()


def _write_virtual(out, shards, ids, missing, job):
    """The patches file ``out`` whose ``features`` is a virtual dataset over ``shards``
    (``[(path, number of patches)]`` in order), with the index and attributes of a local file."""
    import h5py

    shape = (job.frames, job.bins, 1)
    total = sum(n for _, n in shards)
    virtual = h5py.VirtualLayout(shape=(total, *shape), dtype="f4")
    start, folder = 0, os.path.abspath(out.parent)
    for path, n in shards:
        # relative to the virtual file, which HDF5 tries before the working folder; '%' would be a
        # pattern character in an HDF5 source name
        name = Path(os.path.relpath(os.path.abspath(path), folder)).as_posix().replace("%", "%%")
        virtual[start:start + n] = h5py.VirtualSource(name, "features", shape=(n, *shape))
        start += n
    # as in _write: HDF5 must not meet a full disk at its close (the index is most of the file)
    fileio.reserve_space(out, sum(len(i.encode("utf-8")) + 64 for i in ids) * job.npatches + (1 << 20))
    with fileio.atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_virtual_dataset("features", virtual, fillvalue=np.nan)  # NaN, not 0, where a shard is gone
            _write_index(h5, ids, missing, job.npatches, job.params)
    return out


def missing_sources(path):
    """The shard files a virtual ``features`` dataset in the patches file ``path`` refers to and
    that cannot be found (HDF5 would read NaN for their rows); [] for a plain file. Reading the
    file through ``fileio.open_hdf5`` (as every tartarus reader does) refuses it then."""
    import h5py

    with h5py.File(path, "r") as h5:
        return fileio.missing_virtual_sources(h5["features"], path)


def _write(out, layout, ds, ids, missing, frames, bins, fill, npatches, mode, seed, params):
    import h5py

    # HDF5 cannot close a file whose flush failed (and then crashes at exit): check the room first
    fileio.reserve_space(out, len(ids) * npatches * frames * bins * 4 * 1.05 + (1 << 20))
    with fileio.atomic_path(out) as tmp:
        # no chunk cache: each block goes straight to disk, so that after a failed write (a full
        # disk) only a little metadata is pending, which the close in _discard can still flush
        h5 = h5py.File(tmp, "w", rdcc_nbytes=0)
        try:
            _fill(h5, layout, ds, ids, missing, frames, bins, fill, npatches, mode, seed, params)
            h5.close()
        except BaseException:
            _discard(h5, tmp)
            raise
    return out


def _discard(h5, tmp):
    """Close a patch file whose writing failed, so that HDF5 holds no half-closed file.

    A file HDF5 could not close (its last flush failed on a full disk) stays open in the library,
    which then crashes the interpreter at exit (a segmentation fault). Truncating the temporary
    file first gives back its space, so that the close's flush of the pending metadata succeeds;
    the file is deleted afterwards in any case.
    """
    try:
        os.truncate(tmp, 0)
    except OSError:
        pass
    try:
        h5.close()
    except (OSError, RuntimeError, ValueError):  # h5py's errors of a failed flush: the caller raises the
        pass  # error that brought us here, which names the file; this one follows from it


def _write_index(h5, ids, missing, npatches, params):
    """The ``index`` dataset and the ``params`` and ``missing`` attributes of a patches file."""
    import h5py

    index = np.array([i for i in ids for _ in range(npatches)], dtype=object)
    h5.create_dataset("index", data=index, dtype=h5py.string_dtype())
    h5.attrs["params"] = json.dumps(params)
    h5.attrs["missing"] = json.dumps(missing)


def _fill(h5, layout, ds, ids, missing, frames, bins, fill, npatches, mode, seed, params):
    total = len(ids) * npatches
    feats = h5.create_dataset("features", shape=(total, frames, bins, 1), dtype="f4",
                              chunks=(1, frames, bins, 1))
    _write_index(h5, ids, missing, npatches, params)
    block = np.empty((min(_WRITE_BLOCK, total), frames, bins), dtype=np.float32)
    filled, written = 0, 0
    for item_id in ids:
        path = layout.spectrogram(ds, item_id)
        try:
            spec = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
            raise DataMismatch(f"{path}: unreadable spectrogram ({exc}); delete it and run "
                               f"{layout.cli('spectrograms', ds)} again") from None
        if spec.ndim != 2 or spec.shape[1] != bins or spec.shape[0] < 1:
            raise DataMismatch(f"{path}: spectrogram of shape {spec.shape}, expected "
                               f"(frames, {bins})")
        for patch in item_patches(spec, item_id, frames, npatches, mode, seed, fill):
            block[filled] = patch
            filled += 1
            if filled == block.shape[0]:
                feats[written:written + filled] = block[:filled, :, :, np.newaxis]
                written, filled = written + filled, 0
    if filled:
        feats[written:written + filled] = block[:filled, :, :, np.newaxis]
