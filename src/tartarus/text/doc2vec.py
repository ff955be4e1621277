"""doc2vec targets from tags: each item's tags as a document, its learned vector as the target.

An item's tags (``rock``, ``female vocalists``, ...) form a short document whose words are the
tags (a multi-word tag is one word). gensim's ``Doc2Vec`` in PV-DBOW mode (``dm=0``: each item's
vector is trained to predict the tags of its document) gives every item a dense vector; items
with similar tag sets get nearby vectors. These vectors are regression *targets*
(``y_{set}_d2v_{dim}_{ds}.npy``), the ground truth a model learns to predict from audio or text.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .. import fileio
from ..checks import check_choice, check_float, check_int
from ..errors import ConfigError, DataMismatch
from .corpus import FeatureFiles, _few, check_sets

__all__ = ["build_d2v_targets", "read_tags", "tags_from_matrix", "normalize_tag", "train_doc2vec",
           "train_doc2vec_shufl", "VARIANTS"]

FACT = "d2v"
VARIANTS = ("dbow", "shufl")
# shufl's train_tags_model.py: Doc2Vec(alpha=0.025, min_alpha=0.025, size=40), then 10 calls of train(),
# the rate lowered by 0.002 after each and held constant within it
SHUFL_PASSES, SHUFL_ALPHA, SHUFL_ALPHA_STEP = 10, 0.025, 0.002
# what shufl left to gensim, with the defaults of gensim 0.12 (current when shufl was written, April
# 2016): PV-DM, window 8, min_count 5, no down-sampling, hierarchical softmax, and train() running
# `iter` = 5 epochs per call
SHUFL_GENSIM = {"dm": 1, "window": 8, "min_count": 5, "sample": 0, "hs": 1, "negative": 0}
SHUFL_EPOCHS_PER_PASS = 5
_SPACES = re.compile(r"\s+")


def normalize_tag(tag):
    """A tag in canonical form: NFC, case-folded, BOM dropped, inner whitespace runs (NBSP too) one space."""
    tag = unicodedata.normalize("NFC", str(tag).replace("\ufeff", "")).casefold()
    return _SPACES.sub(" ", unicodedata.normalize("NFC", tag)).strip()


def _clean(tags):
    if isinstance(tags, str):
        tags = tags.split(",")
    return list(dict.fromkeys(t for t in (normalize_tag(t) for t in tags) if t))


def read_tags(path):
    """``{item id: [tag, ...]}`` from a tags file (``layout.tags_index(ds)``).

    Each line is ``id<TAB>tag1,tag2,...``; an id may also come back on several lines (one tag, or
    a few, a line) and its tags add up. Tags are normalised (``normalize_tag``) and each kept
    once, in order of appearance. A line with an id and no tag leaves the item with no tag.
    """
    tags = {}
    for row in fileio.read_tsv(path, ncols=1):
        item = row[0].strip()
        found = tags.setdefault(item, [])
        for t in _clean(",".join(row[1:])):
            if t not in found:
                found.append(t)
    return tags


def tags_from_matrix(matrix, tag_names, threshold=0.0):
    """Tag lists from a dense (or scipy sparse) item x tag matrix: one ``list[str]`` per row.

    Row ``i`` gets the names of the columns whose value is above ``threshold`` (default: any
    positive value), in column order. ``tag_names`` names the columns (e.g. the lines of a
    tag-names file). Pair the result with the ids of the rows, ``dict(zip(ids, tags_from_matrix(...)))``,
    to pass it as ``tags`` to ``build_d2v_targets``. A shape mismatch is a DataMismatch.
    """
    import scipy.sparse as sp
    tag_names = [str(n) for n in tag_names]
    if sp.issparse(matrix):
        matrix = sp.csr_matrix(matrix)
        if matrix.shape[1] != len(tag_names):
            raise DataMismatch(f"tag matrix has {matrix.shape[1]} columns but {len(tag_names)} tag names")
        out = []
        for i in range(matrix.shape[0]):
            start, end = matrix.indptr[i], matrix.indptr[i + 1]
            cols = matrix.indices[start:end][matrix.data[start:end] > threshold]
            out.append([tag_names[j] for j in sorted(cols)])
        return out
    matrix = np.asarray(matrix)
    if matrix.ndim != 2:
        raise DataMismatch(f"tag matrix must be 2-D (items x tags), got shape {matrix.shape}")
    if matrix.shape[1] != len(tag_names):
        raise DataMismatch(f"tag matrix has {matrix.shape[1]} columns but {len(tag_names)} tag names")
    return [[tag_names[j] for j in np.flatnonzero(row > threshold)] for row in matrix]


def train_doc2vec(documents, dim=40, n_epochs=40, min_count=1, seed=0, alpha=0.025):
    """A gensim PV-DBOW ``Doc2Vec`` over ``documents`` (``{item id: [tag, ...]}``); ``model.dv[id]``.

    ``Doc2Vec(dm=0, vector_size=dim, min_count=min_count, epochs=n_epochs, seed=seed, alpha=alpha,
    workers=1, negative=5, hs=0, sample=0)``: no down-sampling (a frequent tag is still
    informative), one worker so that the same documents and seed give the same vectors. The
    learning rate decays linearly from ``alpha`` (gensim's default 0.025) over the epochs; a very
    small collection (tens of items) gets few updates per epoch, and then needs more epochs (a
    few hundred) or a larger ``alpha`` (0.1) for well-separated vectors.
    """
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    corpus = [TaggedDocument(words=tags, tags=[item]) for item, tags in documents.items()]
    return Doc2Vec(corpus, dm=0, vector_size=dim, min_count=min_count, epochs=n_epochs, seed=seed,
                   alpha=alpha, workers=1, negative=5, hs=0, sample=0)


def train_doc2vec_shufl(documents, dim=40, passes=SHUFL_PASSES, epochs_per_pass=SHUFL_EPOCHS_PER_PASS, seed=0,
                        min_count=SHUFL_GENSIM["min_count"]):
    """A gensim PV-DM ``Doc2Vec`` trained as shufl's ``train_tags_model.py`` did; ``model.dv[id]``.

    ``passes`` (10) calls of ``train``, the first at a constant learning rate 0.025, each next one
    0.002 lower (0.025, 0.023, ..., 0.007), each of ``epochs_per_pass`` (5) epochs; other settings
    ``SHUFL_GENSIM`` (gensim 0.12's defaults, which shufl kept), one worker (reproducible).
    """
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument
    corpus = [TaggedDocument(words=tags, tags=[item]) for item, tags in documents.items()]
    settings = {**SHUFL_GENSIM, "min_count": min_count}
    model = Doc2Vec(vector_size=dim, alpha=SHUFL_ALPHA, min_alpha=SHUFL_ALPHA, seed=seed, workers=1, **settings)
    model.build_vocab(corpus)
    alpha = SHUFL_ALPHA
    for _ in range(passes):
        model.train(corpus, total_examples=len(corpus), epochs=epochs_per_pass, start_alpha=alpha, end_alpha=alpha)
        alpha -= SHUFL_ALPHA_STEP
    return model


def _tag_documents(layout, ds, tags):
    if tags is None:
        path = layout.require(layout.tags_index(ds), what=f"tags of {ds} (id<TAB>tag1,tag2,...)")
        return read_tags(path), str(path)
    if isinstance(tags, (str, Path)):
        path = layout.require(Path(tags), what="tags file (id<TAB>tag1,tag2,...)")
        return read_tags(path), str(path)
    if isinstance(tags, Mapping):
        return {str(item): _clean(t) for item, t in tags.items()}, "mapping"
    raise ConfigError(f"tags must be None, a tags file path or a mapping id -> tags, got {type(tags).__name__}")


def _tag_factors(layout, ds, dim, documents, split_ids, model, mean, normalize):
    """Write one vector a class of ``genre_labels_{ds}``: the mean target of the train items with
    that tag (zeros for a tag no train item has). A model's predicted vector then scores each tag by
    its cosine with these, as PMI class factors do. Only train items count, so val and test labels
    stay out of the scoring. Returns the path, or None when no label is one of the tags."""
    labels_path = layout.genre_labels(ds)
    if not labels_path.exists() or "train" not in split_ids:
        return None
    labels = [normalize_tag(t) for t in fileio.read_lines(labels_path)]
    train = split_ids["train"]
    if not train or not any(t in set(tags) for tags in documents.values() for t in labels[:1000]):
        return None
    y = np.stack([model.dv[i] - mean for i in train]).astype(np.float64)
    if normalize:
        y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    has = np.array([[t in set(documents[i]) for t in labels] for i in train], dtype=np.float64)  # (n, c)
    counts = has.sum(axis=0)
    factors = (has.T @ y) / np.maximum(counts, 1)[:, None]
    path = layout.class_factors(FACT, dim, ds)
    fileio.save_npy(path, factors.astype(np.float32))
    return path


def build_d2v_targets(layout, ds, dim=40, tags=None, sets=("train", "val", "test"), n_epochs=40, min_count=None,
                      seed=0, alpha=0.025, center=True, normalize=True, variant="dbow"):
    """Write doc2vec tag vectors as targets of each split of ``ds``; return ``{set: path}``.

    ``variant``: ``"dbow"`` (default, below) or ``"shufl"``, the targets of shufl's own code:
    ``train_doc2vec_shufl`` (PV-DM, 10 passes of 5 epochs at a falling constant rate; ``n_epochs``,
    ``alpha``, ``center`` and ``normalize`` are then unused, ``min_count`` defaults to gensim's 5),
    and every vector shifted by the absolute value of the smallest component over all trained
    vectors, so that they are (nearly) non-negative, as shufl's ``prepare_dataset.py`` did.

    ``tags``: where the tags come from, by default ``layout.tags_index(ds)`` (see ``read_tags``);
    also a path to another file of that format, or a mapping ``{id: [tag, ...]}`` (for a dense
    item x tag matrix, build it with ``tags_from_matrix``).

    The model (``train_doc2vec``: PV-DBOW, ``dim``, ``n_epochs``, ``min_count`` (default 1), ``seed``, ``alpha``, one
    worker: reproducible) is trained on the tag documents of ALL items of the tags source, whatever their
    split: tags are the ground truth the targets encode, not a model input, so using val and test
    items' tags leaks nothing, and an item's vector does not depend on ``sets``.

    Post-processing, in this order: with ``center`` (default) the mean vector of all trained items
    is subtracted (PV-DBOW with negative sampling leaves a direction shared by every vector, which
    makes all cosines high; once it is removed, cosines reflect tag overlap); with ``normalize`` (default)
    each vector is scaled to unit l2 norm, as for cosine-proximity training.

    Written, each atomically: ``layout.y(set, "d2v", dim, ds)``, float32 ``(n_items_of_split, dim)``
    in the order of ``layout.items_index(set, ds)``; when ``genre_labels_{ds}`` names tags, the tag
    vectors ``layout.class_factors("d2v", dim, ds)`` ``(n_labels, dim)`` (see ``_tag_factors``: a
    tag's mean train target, for multi-label evaluation by cosine); then ``layout.target_params("d2v", dim, ds)``
    (JSON of every parameter). An item of a split with no tag, or with only tags rarer than
    ``min_count``, is an error naming the first few.
    """
    sets = check_sets(sets)
    check_choice("variant", variant, VARIANTS)
    if min_count is None:  # PV-DBOW: every tag; shufl: gensim's default, which it kept
        min_count = SHUFL_GENSIM["min_count"] if variant == "shufl" else 1
    dim, n_epochs, min_count = check_int("dim", dim), check_int("n_epochs", n_epochs), check_int("min_count", min_count)
    seed, alpha = check_int("seed", seed, minimum=0), check_float("alpha", alpha)

    documents, source = _tag_documents(layout, ds, tags)
    split_ids = {}
    for set_ in sets:
        ids_path = layout.require(layout.items_index(set_, ds), what=f"items index of {ds} {set_}")
        ids = fileio.read_items_index(ids_path)
        untagged = [i for i in ids if not documents.get(i)]
        if untagged:
            raise DataMismatch(f"{len(untagged)} item(s) of {ds} {set_} have no tags in {source}: {_few(untagged)}")
        split_ids[set_] = ids
    documents = {item: t for item, t in documents.items() if t}
    counts = Counter(t for tags_ in documents.values() for t in tags_)
    for set_, ids in split_ids.items():
        rare = [i for i in ids if all(counts[t] < min_count for t in documents[i])]
        if rare:
            raise ConfigError(f"{len(rare)} item(s) of {ds} {set_} have only tags rarer than min_count={min_count}: "
                              f"{_few(rare)}")

    if variant == "shufl":
        model = train_doc2vec_shufl(documents, dim, seed=seed, min_count=min_count)
        shift = float(abs(model.dv.vectors.min()))
        mean = np.full(dim, -shift, np.float32)  # "minus the mean" below adds the shift
        center = normalize = False
    else:
        model = train_doc2vec(documents, dim, n_epochs, min_count, seed, alpha)
        mean = model.dv.vectors.mean(axis=0) if center else np.zeros(dim, np.float32)
    out = FeatureFiles(ds, f"{FACT}_{dim}")
    for set_, ids in split_ids.items():
        y = np.stack([model.dv[i] - mean for i in ids]).astype(np.float32) if ids else np.zeros((0, dim), np.float32)
        if normalize and len(y):
            y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), np.float32(1e-12))
        path = layout.y(set_, FACT, dim, ds)
        fileio.save_npy(path, y)
        out[set_] = path
        out.index[set_] = layout.items_index(set_, ds)
        out.shapes[set_] = y.shape

    tag_factors = _tag_factors(layout, ds, dim, documents, split_ids, model, mean, normalize)

    import gensim
    if variant == "shufl":
        how = {"model": "gensim Doc2Vec PV-DM as shufl's train_tags_model.py", **SHUFL_GENSIM, "min_count": min_count,
               "passes": SHUFL_PASSES, "epochs_per_pass": SHUFL_EPOCHS_PER_PASS,
               "alpha_per_pass": [round(SHUFL_ALPHA - k * SHUFL_ALPHA_STEP, 6) for k in range(SHUFL_PASSES)],
               "shift": -float(mean[0])}
    else:
        how = {"model": "gensim Doc2Vec PV-DBOW", "dm": 0, "n_epochs": n_epochs, "min_count": min_count,
               "alpha": float(alpha), "negative": 5, "hs": 0, "sample": 0}
    out.params = layout.target_params(FACT, dim, ds)
    fileio.write_json(out.params, {
        "stage": "d2v", "dataset": ds, "fact": FACT, "dim": dim, "tags": source, "variant": variant,
        "trained_on": "all items with tags", "n_documents": len(documents), "n_tags": len(counts),
        **how, "seed": seed, "n_jobs": 1, "center": bool(center),
        "normalize": bool(normalize), "dtype": "float32",
        "class_factors": str(tag_factors) if tag_factors else None,
        "shapes": {s: list(shape) for s, shape in out.shapes.items()}, "gensim_version": gensim.__version__,
    })
    return out
