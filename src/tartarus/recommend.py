"""Queries on a trained model: users for a new item, items for a user, items similar to an item.

``recommend_users(layout, "model_1", "D042")`` ranks the users of the model's dataset for an item
(or an audio file that belongs to no dataset) by (user factor) . (normalised predicted item
factor), the score the recommendation evaluation uses. ``recommend_items(layout, "model_1",
user="U007")`` ranks the items of some splits for one user the same way. ``similar_items(layout,
"model_1", "D042")`` returns the nearest items by cosine in the model's output space (predicted
factors, tag vectors, class scores) or in a layer's embedding space (``layer=``).

A query is an item id of the model's dataset or the path of an audio file. An item's vector comes
from the saved predictions (``tartarus predict``), computed in memory when missing: a query writes
nothing, so it works on a read-only data root. An audio
file is decoded and cut into patches with the spectrogram and patch settings the model was trained
on (stored in its config), then run through the model with dropout off, its patches aggregated as
``predicting.aggregation`` says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fileio
from .checks import check_int
from .config.schema import DatasetEntry
from .errors import ConfigError, DataMismatch, MissingInput
from .layout import SETS, DataLayout

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".m4a"}


@dataclass
class Hit:
    """One ranked result: an item (with what is known about it) or a user."""
    id: str
    score: float
    set: str = ""  # the item's split
    labels: list = field(default_factory=list)  # class names
    tags: list = field(default_factory=list)
    audio: str = ""  # the item's audio file, relative to the dataset's audio folder
    heard: bool | None = None  # the user / item pair has an interaction (None: unknown)


# ------------------------------------------------------------------------------ item facts
class ItemInfo:
    """Labels, tags and audio file name of a dataset's items, from whichever files exist.

    labels: ``genre_labels_{ds}.tsv`` names and the one-hot / multi-hot ``y_{set}_class_{n}_{ds}.npy``
    rows; tags: ``index/tags_{ds}.tsv``; audio: ``index/index_audio_{ds}.tsv``.
    """

    def __init__(self, layout, ds):
        self.labels, self.tags, self.audio, self.set_of = {}, {}, {}, {}
        for set_ in SETS:
            path = layout.items_index(set_, ds)
            if path.exists():
                for item in fileio.read_items_index(path):
                    self.set_of[item] = set_
        names_path = layout.genre_labels(ds)
        if names_path.exists():
            names = fileio.read_lines(names_path)
            for set_ in SETS:
                index, y_path = layout.items_index(set_, ds), layout.y(set_, "class", len(names), ds)
                if index.exists() and y_path.exists():
                    y = fileio.load_npy(y_path)
                    ids = fileio.read_items_index(index)
                    if y.ndim == 2 and len(y) == len(ids) and y.shape[1] == len(names):
                        for item, row in zip(ids, y):
                            self.labels[item] = [names[j] for j in np.flatnonzero(row > 0.5)]
        if layout.tags_index(ds).exists():
            for row in fileio.read_tsv(layout.tags_index(ds)):
                if len(row) >= 2:
                    self.tags[row[0]] = [t for t in row[1].split(",") if t]
        if layout.audio_index(ds).exists():
            for row in fileio.read_tsv(layout.audio_index(ds)):
                if len(row) >= 2:
                    self.audio[row[0]] = row[1]

    def hit(self, item, score, heard=None):
        return Hit(item, float(score), self.set_of.get(item, ""), self.labels.get(item, []),
                   self.tags.get(item, []), self.audio.get(item, ""), heard)


# ------------------------------------------------------------------------------ vectors
def _experiment(layout, model_id):
    """The model's Experiment, read from its record (the Keras model itself is not loaded)."""
    from .store import read_record
    return read_record(layout, model_id).load_experiment()


def item_vectors(layout, model_id, sets=SETS, layer=None):
    """``(ids, vectors)`` of the items of ``sets``: the model's per-item outputs or ``layer``'s.

    Read from the saved predictions (``layout.predictions_of``: ``predictions/pred_{model}_{set}.npy``
    or, for a layer, ``train_data/X_{set}_{model}-pred_{layer}_{ds}.npy``); a split whose files are
    missing is predicted in memory (nothing is written; ``tartarus predict`` saves them). Items
    without a prediction (no patches) are left out.
    """
    from .predict import predict_sets

    ds = _experiment(layout, model_id).dataset.dataset
    ids, blocks = [], []
    for set_ in sets:
        values, index = layout.predictions_of(model_id, set_, ds, layer)
        if values.exists() and index.exists():
            x = fileio.load_npy(values)
            names = fileio.read_items_index(index)
            if len(names) != len(x):
                raise DataMismatch(f"{index} lists {len(names)} items but {values} has {len(x)} rows: "
                                   f"predict again ({layout.cli('predict', model_id, '-s', set_)})")
        else:
            (_, result), = predict_sets(layout, model_id, [set_], layer=layer)
            names, x = result.item_ids, result.values
        ids.extend(names)
        blocks.append(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    return ids, (np.concatenate(blocks) if blocks else np.zeros((0, 0)))


def _audio_entry(params, ds):
    keys = ("spectrogram_type", "resample_sr", "hop", "n_fft", "n_mels", "cqt_bins", "bins_per_octave", "fmin", "log",
            "db_ref", "top_db")
    return DatasetEntry(name=ds, **{k: params[k] for k in keys if k in params})


def audio_vector(layout, model_id, path, layer=None):
    """The model's output (or ``layer``'s) for an audio file outside any dataset, shape ``(d,)``.

    The file is decoded, turned into a spectrogram and cut into patches exactly as the model's
    training patches were (settings from the model's config, else from its train patches file).
    """
    from .audio.decode import load_audio
    from .audio.features import silence_value, spectrogram
    from .audio.patches import item_patches
    from .inputs import patch_params
    from .models import get_architecture, layer_model
    from .predict import AGGREGATORS, load_trained

    path = Path(path)
    if not path.is_file():
        raise MissingInput(path, what="audio file to query")
    model, experiment, record = load_trained(layout, model_id)
    ds = experiment.dataset
    kind = get_architecture(experiment.cnn.architecture).input_kind
    if kind == "patches+vectors":
        raise ConfigError(f"{model_id} reads audio patches together with a metadata vector "
                          f"({', '.join(record.suffixes)}), which a new audio file does not have: "
                          f"query it with an item id of {ds.dataset}")
    if kind != "patches":
        raise ConfigError(f"{model_id} does not read audio (experiment {experiment.name!r}, inputs "
                          f"{', '.join(record.suffixes) or 'none'}): query it with an item id of "
                          f"{ds.dataset}")
    params = record.audio_params
    if not params:  # a model trained before its record kept them
        params = patch_params(layout.require(layout.patches("train", ds.dataset, ds.npatches, ds.window),
                                             layout.cli("patches", ds.dataset)))
    if not params:
        raise DataMismatch(f"{model_id} was trained on patches without spectrogram settings (no 'params' "
                           f"attribute), so a new audio file cannot be cut like them: query it with an item id")
    entry = _audio_entry(params, ds.dataset)
    spec = spectrogram(load_audio(path, entry.resample_sr), entry)  # AudioError names the file
    crops = item_patches(spec, path.stem, int(params["n_frames"]), int(params["npatches"]), params["mode"],
                         int(params["seed"]), silence_value(entry))
    net = model if layer is None else layer_model(model, layer)
    out = np.asarray(net.predict_on_batch(crops[..., np.newaxis]), dtype=np.float64)
    return AGGREGATORS[experiment.predicting.aggregation](out.reshape(len(out), -1), axis=0)


def _is_audio_path(query):
    p = Path(str(query))
    return p.suffix.lower() in AUDIO_SUFFIXES or p.is_file()


def query_vector(layout, model_id, query, layer=None, sets=SETS, items=None):
    """``(vector, item id or None)`` of a query: an item id of the model's dataset or an audio file.

    items : the ``(ids, vectors)`` of ``item_vectors(layout, model_id, sets, layer)`` when the caller
    already has them (they are read otherwise).
    """
    if _is_audio_path(query) and Path(str(query)).exists():
        return audio_vector(layout, model_id, query, layer), None
    ids, vectors = items if items is not None else item_vectors(layout, model_id, sets, layer)
    try:
        return vectors[ids.index(str(query))], str(query)
    except ValueError:
        hint = f"; {query} looks like a path, but no such file" if _is_audio_path(query) else ""
        raise ConfigError(f"{query!r} is neither an item of {model_id}'s {'/'.join(sets)} predictions "
                          f"({len(ids)} items, e.g. {', '.join(ids[:3])}) nor an audio file{hint}") from None


def _normalised(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _top(scores, n):
    """Indices of the ``n`` highest ``scores``, best first; ties by position (metrics.top_k)."""
    from .metrics import top_k
    return top_k(np.asarray(scores)[np.newaxis], n)[0]


# ------------------------------------------------------------------------------ users
def _users(layout, experiment):
    """``(user ids, user factors)`` of the experiment's factors; users without a factor dropped."""
    ds = experiment.dataset
    command = layout.cli("factors", ds.dataset, "--method", ds.fact, "--dim", ds.dim)
    if experiment.dataset.evaluation != "recommendation":
        raise ConfigError(f"experiment {experiment.name!r} predicts {ds.fact!r} targets, not factors for "
                          f"recommendation (dataset.evaluation is {ds.evaluation!r}): use `tartarus similar`")
    factors = np.asarray(fileio.load_npy(layout.user_factors(ds.fact, ds.dim, ds.dataset), command), np.float64)
    names_path = layout.interaction_users(ds.dataset)
    names = fileio.read_lines(names_path) if names_path.exists() else [str(i) for i in range(len(factors))]
    if len(names) != len(factors):
        raise DataMismatch(f"{names_path} lists {len(names)} users but "
                           f"{layout.user_factors(ds.fact, ds.dim, ds.dataset)} has {len(factors)} rows")
    return names, factors


def _heard(layout, ds):
    """``(matrix users x items CSR, user row of id, item column of id)`` or None when not imported."""
    if not layout.interactions_matrix(ds).exists():
        return None
    from .interactions import load_interactions
    matrix, users, items = load_interactions(layout, ds)
    return matrix, {u: i for i, u in enumerate(users)}, {t: j for j, t in enumerate(items)}


def recommend_users(layout, model_id, query, n=10):
    """The ``n`` users with the highest score for an item id or audio file, best first (Hits)."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    n = check_int("n", n)
    experiment = _experiment(layout, model_id)
    names, users = _users(layout, experiment)
    vector, item = query_vector(layout, model_id, query)
    if vector.shape[-1] != users.shape[1]:
        raise DataMismatch(f"{model_id} predicts {vector.shape[-1]}-d vectors but the user factors are "
                           f"{users.shape[1]}-d")
    scores = users @ _normalised(vector)
    active = np.flatnonzero(np.any(users != 0, axis=1))  # users with no train interaction have no factor
    heard = _heard(layout, experiment.dataset.dataset) if item is not None else None
    hits = []
    for r in active[_top(scores[active], n)]:
        known = None
        if heard is not None and item in heard[2] and names[r] in heard[1]:
            known = bool(heard[0][heard[1][names[r]], heard[2][item]] > 0)
        hits.append(Hit(names[r], float(scores[r]), heard=known))
    return hits


def recommend_items(layout, model_id, user, n=10, sets=("test",)):
    """The ``n`` items of ``sets`` with the highest score for ``user``, best first (Hits).

    The default candidates are the test items, the cold-start items no factorisation saw.
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    n = check_int("n", n)
    experiment = _experiment(layout, model_id)
    ds = experiment.dataset.dataset
    names, users = _users(layout, experiment)
    if str(user) not in names:
        raise ConfigError(f"user {user!r} is not among the {len(names)} users of {ds} "
                          f"(e.g. {', '.join(names[:3])})")
    factor = users[names.index(str(user))]
    if not np.any(factor):
        raise DataMismatch(f"user {user!r} has no train interaction and so no factor: nothing to rank by")
    ids, vectors = item_vectors(layout, model_id, sets)
    scores = _normalised(vectors) @ factor
    info, heard = ItemInfo(layout, ds), _heard(layout, ds)
    hits = []
    for r in _top(scores, n):
        known = None
        if heard is not None and ids[r] in heard[2]:
            known = bool(heard[0][heard[1][str(user)], heard[2][ids[r]]] > 0) if str(user) in heard[1] else False
        hits.append(info.hit(ids[r], scores[r], known))
    return hits


# ------------------------------------------------------------------------------ similar items
def target_vectors(layout, experiment, sets=SETS):
    """``(ids, vectors)``: the ground-truth targets ``y_{set}_{fact}_{dim}_{ds}.npy`` of ``sets``, rows
    in items-index order (e.g. the doc2vec tag vectors a shufl model learns to predict)."""
    d = experiment.dataset
    ids, blocks = [], []
    for set_ in sets:
        index = layout.require(layout.items_index(set_, d.dataset), what=f"items of {d.dataset} {set_}")
        path = layout.require(layout.y(set_, d.fact, d.dim, d.dataset), what=f"targets of {d.dataset} {set_}")
        names, y = fileio.read_items_index(index), fileio.load_npy(path)
        if len(y) != len(names):
            raise DataMismatch(f"{path} has {len(y)} rows but {index} lists {len(names)} items")
        ids.extend(names)
        blocks.append(np.asarray(y, dtype=np.float64).reshape(len(y), -1))
    return ids, (np.concatenate(blocks) if blocks else np.zeros((0, 0)))


def similar_items(layout, model_id, query, k=10, layer=None, sets=SETS, metric="cosine", against="predictions"):
    """The ``k`` items of ``sets`` nearest to the query, best first (Hits).

    metric : ``"cosine"`` (score: the cosine, highest first) or ``"euclidean"`` (score: the
        distance, smallest first).
    against : ``"predictions"``: the model's outputs, or ``layer``'s embeddings, of the items; an
        item query is left out of its own results. ``"targets"``: the items' ground-truth vectors
        (``target_vectors``), which the query's prediction is compared with, the query's own
        target included. shufl's user mode: ``metric="euclidean", against="targets"``.
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    k = check_int("k", k)
    if metric not in ("cosine", "euclidean"):
        raise ConfigError(f"metric must be cosine or euclidean, got {metric!r}")
    if against not in ("predictions", "targets"):
        raise ConfigError(f"against must be predictions or targets, got {against!r}")
    if against == "targets" and layer is not None:
        raise ConfigError("a layer's embeddings have no ground truth to compare with: use -l without --targets")
    experiment = _experiment(layout, model_id)
    ids, vectors = item_vectors(layout, model_id, sets, layer)
    vector, item = query_vector(layout, model_id, query, layer, sets, items=(ids, vectors))
    if against == "targets":
        ids, vectors = target_vectors(layout, experiment, sets)
        if vectors.shape[1:] != np.shape(vector):
            raise DataMismatch(f"{model_id} predicts {np.shape(vector)} vectors, its targets are {vectors.shape[1:]}")
        item = None  # the query's own ground truth is a candidate, as in shufl
    if metric == "cosine":
        scores = _normalised(vectors) @ _normalised(vector)
    else:
        scores = -np.linalg.norm(vectors - np.asarray(vector, dtype=np.float64), axis=1)
    if item is not None:
        scores[[i for i, name in enumerate(ids) if name == item]] = -np.inf
    order = _top(scores, k + (item is not None))
    info = ItemInfo(layout, experiment.dataset.dataset)
    sign = 1.0 if metric == "cosine" else -1.0
    return [info.hit(ids[r], sign * scores[r]) for r in order if np.isfinite(scores[r])][:k]


def format_hits(hits, title, kind="item"):
    """Ranked hits as a text table (labels, tags and audio file shown when known)."""
    lines = [title]
    if not hits:
        return title + "\n  (nothing to rank)"
    width = max(len(h.id) for h in hits)
    for rank, h in enumerate(hits, 1):
        parts = [f"{rank:>3}. {h.id:<{width}}  {h.score:+.4f}"]
        if kind == "item":
            parts.append(f"{h.set:<5}")
            if h.labels:
                parts.append("labels: " + ", ".join(h.labels))
            if h.tags:
                parts.append("tags: " + ", ".join(h.tags))
            if h.audio:
                parts.append(h.audio)
        if h.heard is not None:
            parts.append("(listened)" if h.heard else "")
        lines.append("  ".join(p for p in parts if p))
    return "\n".join(lines)
