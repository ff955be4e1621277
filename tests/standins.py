"""Small synthetic stand-ins of the datasets the original Tartarus used (MSD-A, MuMu, MSD-I, and the
AcousticBrainz genre sets of its last commit).

The archives cannot be downloaded here, so these write, under a data root, the files of each
release with its file names, array ranks and dtypes (float32 targets and embeddings, sparse CSR
text vectors in .npz, items x users CSR test matrices, one id a line item indexes, HDF5 vector
features), at a few dozen items instead of tens of thousands, with the seed's label counts and
input widths where the seed states them. The targets carry signal from the inputs, so a model can learn.
"""

from __future__ import annotations

import h5py
import numpy as np
import scipy.sparse as sp

from tartarus import fileio
from tartarus.layout import SETS, DataLayout

SIZES = {"train": 30, "val": 10, "test": 10}

# dataset -> the inputs its release ships: suffix -> (dimension, sparse?)
INPUTS = {
    "MSD-A-artists": {"sem-bio": (300, True)},
    "MSD-A-songs": {"audio-emb": (64, False), "a-sem-emb": (48, False), "sem-bio": (300, True)},
    "MuMu-albums": {"VSM": (400, True), "VSM-SEM": (400, True), "model_audio": (64, False),
                    "model_text": (48, False), "model_visual": (32, False)},
    # the inputs of the seed's TISMIR commands (its README): no text
    "MSD-I": {"audio": (64, False), "visual": (48, False), "mm-audio": (40, False), "mm-visual": (32, False)},
}
# AcousticBrainz genres (the seed's b214f66): four train_data vectors for the `_multimodal` and
# `_singlemodal` experiments (the seed does not name them; these names are the stand-in's), and the
# HDF5 vector features of the single-input ones (AB_FEATURES wide, the seed's n_metafeatures)
AB_DATASETS = ("allmusic", "discogs", "lastfm", "tagtraum")
AB_FEATURES = 2669
for _ds in AB_DATASETS:
    INPUTS[_ds] = {"vec-a": (40, False), "vec-b": (32, False), "vec-c": (24, False), "vec-d": (16, False)}
CLASSES = {"MuMu-albums": 250, "MuMu-tracks": 250, "MSD-I": 15,
           "allmusic": 766, "discogs": 315, "lastfm": 327, "tagtraum": 296}
MULTILABEL = {"MuMu-albums", "MuMu-tracks", *AB_DATASETS}


def _ids(ds, set_):
    start = {"train": 0, "val": 1000, "test": 2000}[set_]
    return [f"{ds[:4]}{start + i:05d}" for i in range(SIZES[set_])]


def _latent(rng, n, k=6):
    return rng.normal(size=(n, k)).astype(np.float32)


def write_standin(root, ds, seed=0):
    """Write the stand-in of dataset ``ds`` under ``root``; return its DataLayout."""
    layout = DataLayout(root)
    rng = np.random.default_rng([seed, sum(map(ord, ds))])
    latent = {s: _latent(rng, SIZES[s]) for s in SETS}
    for set_ in SETS:
        fileio.write_lines(layout.items_index(set_, ds), _ids(ds, set_))
    for suffix, (dim, sparse) in INPUTS.get(ds, {}).items():
        w = rng.normal(size=(6, dim))
        for set_ in SETS:
            x = latent[set_] @ w + 0.3 * rng.normal(size=(SIZES[set_], dim))
            if sparse:
                fileio.save_sparse(layout.x(set_, suffix, ds, sparse=True),
                                   sp.csr_matrix(np.where(x > 1.0, x, 0.0).astype(np.float32)))
            else:
                fileio.save_npy(layout.x(set_, suffix, ds), x.astype(np.float32))
    if ds in CLASSES:
        n = CLASSES[ds]
        w = rng.normal(size=(6, n))
        for set_ in SETS:
            logits = latent[set_] @ w
            if ds in MULTILABEL:
                y = (logits > np.quantile(logits, 0.9, axis=1, keepdims=True)).astype(np.float32)
            else:
                y = np.eye(n, dtype=np.float32)[logits.argmax(axis=1)]
            fileio.save_npy(layout.y(set_, "class", n, ds), y)
        fileio.write_lines(layout.genre_labels(ds), [f"genre_{j:03d}" for j in range(n)])
        if ds.startswith("MuMu"):
            # 50-d PMI class factors and the items' PMI targets (their classes' mean factor)
            classes = rng.normal(size=(n, 50)).astype(np.float32)
            fileio.save_npy(layout.class_factors("pmi", 50, ds), classes)
            for set_ in SETS:
                y = fileio.load_npy(layout.y(set_, "class", n, ds))
                fileio.save_npy(layout.y(set_, "pmi", 50, ds),
                                ((y @ classes) / np.maximum(y.sum(axis=1, keepdims=True), 1)).astype(np.float32))
    if ds.startswith("MSD-A"):
        n_users = 40
        users = rng.normal(size=(n_users, 200)).astype(np.float32)
        w = rng.normal(size=(6, 200))
        for set_ in SETS:  # the release ships factors of every split (the seed's protocol)
            fileio.save_npy(layout.y(set_, "als", 200, ds), (latent[set_] @ w).astype(np.float32))
        fileio.save_npy(layout.user_factors("als", 200, ds), users)
        scores = (latent["test"] @ w) @ users.T  # items x users
        plays = (scores > np.quantile(scores, 0.8, axis=0, keepdims=True)) * rng.integers(1, 9, scores.shape)
        fileio.save_sparse(layout.eval_matrix("test", ds), sp.csr_matrix(plays.astype(np.float32)))
    if ds in AB_DATASETS:
        w = rng.normal(size=(6, AB_FEATURES))
        for set_ in SETS:
            x = (latent[set_] @ w + 0.3 * rng.normal(size=(SIZES[set_], AB_FEATURES))).astype(np.float32)
            write_vector_features(layout.patches(set_, ds, 1, 1), _ids(ds, set_), x, rng)
    return layout


def write_vector_features(path, ids, x, rng=None):
    """The seed's HDF5 layout with one vector a row: ``features`` (N, D) float32, ``index`` (N,) ids.

    With ``rng`` the rows are written in a shuffled order, so that readers must align them by id."""
    order = rng.permutation(len(ids)) if rng is not None else np.arange(len(ids))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x[order])
        f.create_dataset("index", data=np.array([ids[i] for i in order], dtype=object), dtype=h5py.string_dtype())


def write_patch_standin(root, ds, n_classes, fact="class", frames=322, bins=96, seed=0):
    """Audio stand-in: ``patches_{set}_{ds}_1x15.hdf5`` (float32 (N, frames, bins, 1)) per split."""
    layout = write_standin(root, ds, seed)
    rng = np.random.default_rng([seed, 7])
    n = CLASSES.get(ds, n_classes)
    for set_ in SETS:
        ids = fileio.read_lines(layout.items_index(set_, ds))
        y = fileio.load_npy(layout.y(set_, "class", n, ds))
        feats = rng.normal(-40, 3, size=(len(ids), frames, bins, 1)).astype(np.float32)
        band = (np.argmax(y, axis=1) * bins // n)
        for i, b in enumerate(band):
            feats[i, :, b:b + 4, 0] += 12
        path = layout.patches(set_, ds, 1, 15)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("features", data=feats, chunks=(1, frames, bins, 1))
            f.create_dataset("index", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
    return layout
