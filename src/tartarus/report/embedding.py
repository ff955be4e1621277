"""An embedding map: a model layer's per-item outputs on a split, projected to 2-D, grouped by class or tag.

Computed in memory for the report (``predict.predict_items``, the same rows ``tartarus predict -l``
writes); nothing is written to the data root.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..checks import check_choice
from ..config.schema import PROJECTIONS
from ..errors import ConfigError
from ..fileio import load_npy, read_items_index, read_lines

NO_GROUP = "(none)"
MIN_NEIGHBOURS = 5  # fewer rows than this are projected by PCA: t-SNE and UMAP need neighbours


@dataclass
class EmbeddingMap:
    """``points`` (n, 2) of ``item_ids`` from layer ``layer`` on split ``set_``; ``groups`` (n,) the class
    or top tag of each item (``grouped_by``: "class", "top tag" or "" when the dataset has neither);
    ``method`` the projection used (PCA for fewer than :data:`MIN_NEIGHBOURS` items); ``n_items`` of the split before ``max_items`` sampled them."""
    item_ids: list
    points: np.ndarray
    groups: list
    grouped_by: str
    layer: str
    set_: str
    method: str
    n_items: int


def default_layer(model):
    """The layer an embedding map shows by default: the input of the output projection.

    From the output back, layers without weights (activation, dropout, normalisation) are passed
    over up to the first layer with weights (the output Dense), then it and the dropout before it;
    the layer reached (e.g. ``flat`` of an audio CNN, ``dense_1`` of a text MLP, ``concat`` of a fused
    model) is the model's last representation of an item. Returns its name.
    """
    import keras

    layers = list(model.layers)
    i = len(layers) - 1
    while i > 0 and not layers[i].weights:
        i -= 1
    i -= 1
    while i > 0 and isinstance(layers[i], keras.layers.Dropout):
        i -= 1
    if i < 0 or isinstance(layers[i], keras.layers.InputLayer):
        return layers[-1].name
    return layers[i].name


def project(values, method="tsne", seed=0):
    """2-D coordinates of ``values`` (n, d) (rows flattened): ``tsne`` (scikit-learn, PCA start,
    perplexity min(30, (n - 1) / 3)), ``pca`` or ``umap`` (umap-learn, when installed). Fewer than 5
    rows are projected by PCA whatever the method (t-SNE and UMAP need neighbours). Seeded: the same
    rows give the same points (UMAP then runs on one thread). Returns (n, 2)."""
    check_choice("projection", method, PROJECTIONS)
    x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2))
    if n < MIN_NEIGHBOURS or method == "pca":
        from sklearn.decomposition import PCA
        k = min(2, n, x.shape[1])
        points = PCA(n_components=k, random_state=seed).fit_transform(x) if n > 1 else np.zeros((1, k))
        return np.pad(points, ((0, 0), (0, 2 - k)))
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError("projection 'umap' needs umap-learn (installed with tartarus): pip install "
                              "umap-learn, or choose --projection tsne / pca") from None
        with warnings.catch_warnings():  # a seed makes UMAP single-threaded, and it says so each call
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            return np.asarray(umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
                              .fit_transform(x))
    from sklearn.manifold import TSNE
    return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed).fit_transform(x)


def item_groups(layout, dataset, evaluation, set_, item_ids):
    """``(groups, grouped_by)`` of ``item_ids`` of split ``set_`` of ``dataset``.

    Class labels (``splits/y_{set}_class_{c}_{ds}.npy`` with ``genre_labels_{ds}.tsv``) give each
    item its class (a multiclass dataset, and a factor dataset that also has classes, as the dummy's);
    a multilabel dataset's tag vectors give each item its top tag: of its positive tags the one most
    frequent in the split. Items of neither: :data:`NO_GROUP`, and grouped_by "".
    """
    labels_file = layout.genre_labels(dataset)
    if not labels_file.exists():
        return [NO_GROUP] * len(item_ids), ""
    names = read_lines(labels_file)
    y_file = layout.y(set_, "class", len(names), dataset)
    if not y_file.exists():
        return [NO_GROUP] * len(item_ids), ""
    y = np.asarray(load_npy(y_file, finite=True)).reshape(-1, len(names))
    split_ids = read_items_index(layout.items_index(set_, dataset))
    row = {item: i for i, item in enumerate(split_ids)}
    y = y[[row[item] for item in item_ids]] > 0
    if evaluation == "multilabel":
        frequency = y.sum(axis=0)
        # a tag's rank by frequency decides between an item's tags: argmax over the positive ones
        ranked = np.where(y, frequency[None, :], -1)
        groups = [names[j] if y[i, j] else NO_GROUP for i, j in enumerate(ranked.argmax(axis=1))]
        return groups, "top tag"
    groups = [names[j] if y[i, j] else NO_GROUP for i, j in enumerate(y.argmax(axis=1))]
    return groups, "class"


def embedding_map(layout, model_id, set_="test", layer=None, method="tsne", max_items=2000, seed=0):
    """The :class:`EmbeddingMap` of ``model_id``'s ``layer`` (index or name; default
    :func:`default_layer`) on split ``set_``: per-item outputs as ``tartarus predict -l`` computes
    them, at most ``max_items`` items (a seeded sample), projected by :func:`project`."""
    from ..predict import load_trained, predict_items

    check_choice("projection", method, PROJECTIONS)
    model, experiment, record = load_trained(layout, model_id)
    if layer is None:
        layer = default_layer(model)
    from ..models import resolve_layer
    name = resolve_layer(model, layer).name
    items = predict_items(model, layout, experiment, set_, layer, suffixes=record.suffixes)
    values, item_ids = items.values, list(items.item_ids)
    n_items = len(item_ids)
    if n_items > max_items:
        keep = np.sort(np.random.default_rng(seed).choice(n_items, max_items, replace=False))
        values, item_ids = values[keep], [item_ids[i] for i in keep]
    ds = experiment.dataset
    groups, grouped_by = item_groups(layout, ds.dataset, ds.evaluation, set_, item_ids)
    used = method if len(item_ids) >= MIN_NEIGHBOURS else "pca"  # what project() does: said on the page
    return EmbeddingMap(item_ids, project(values, method, seed), groups, grouped_by, name, set_, used, n_items)
