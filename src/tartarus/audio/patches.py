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
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import zlib

import numpy as np

from .. import fileio
from ..checks import check_choice, check_int
from ..config.schema import PATCH_MODES
from ..errors import ConfigError, DataMismatch, MissingInput
from ..layout import SETS
from . import features

log = logging.getLogger(__name__)

_WRITE_BLOCK = 64  # patches buffered per HDF5 write


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


def create_patches(layout, entry, sets=SETS, npatches=None, window=None, mode=None, seed=None):
    """Write the patch file of each set; None means the entry's value. Returns :class:`PatchFiles`."""
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
        _write(out, layout, ds, present, missing, frames, bins, fill, npatches, mode, seed,
               {**params, "set": set_, "dataset": ds})
        result[set_] = out
        result.missing[set_] = missing
        result.counts[set_] = len(present)
    return result


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


def _fill(h5, layout, ds, ids, missing, frames, bins, fill, npatches, mode, seed, params):
    import h5py

    total = len(ids) * npatches
    feats = h5.create_dataset("features", shape=(total, frames, bins, 1), dtype="f4",
                              chunks=(1, frames, bins, 1))
    index = np.array([i for i in ids for _ in range(npatches)], dtype=object)
    h5.create_dataset("index", data=index, dtype=h5py.string_dtype())
    h5.attrs["params"] = json.dumps(params)
    h5.attrs["missing"] = json.dumps(missing)
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
