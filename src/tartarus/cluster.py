"""k-means clusters of a dataset's item vectors, each described by its members' tags or labels.

shufl's ``clustering.py`` grouped the doc2vec tag vectors of the MagnaTagATune clips into 40
clusters with scikit-learn's ``KMeans`` and printed, for each cluster, its five most frequent tags.
``cluster_items`` does the same for any vectors with an items index:

- ``source="targets"``: a dataset's targets ``splits/y_{set}_{fact}_{dim}_{ds}.npy`` (the doc2vec
  tag vectors of ``tartarus text d2v``: ``fact="d2v"``, ``dim=40``), rows in items-index order;
- ``source="features"``: an embedding file ``train_data/X_{set}_{suffix}_{ds}.npy`` with its
  ``items_index_{set}_{ds}_{suffix}.tsv`` (e.g. ``tartarus predict MODEL -l pooled`` writes
  ``X_{set}_{model}-pred_pooled_{ds}.npy``), or without one, in the order of the split's items index.

Each cluster is described by the most frequent tags (``index/tags_{ds}.tsv``) and class labels
(``genre_labels_{ds}.tsv`` with ``y_{set}_class_{n}_{ds}.npy``) of its members. Reading writes
nothing; ``write_assignments`` writes the ``id<TAB>cluster`` table atomically.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from . import fileio
from .checks import check_int
from .errors import ConfigError, DataMismatch
from .layout import SETS, DataLayout

__all__ = ["Cluster", "read_vectors", "kmeans", "cluster_items", "format_clusters", "write_assignments"]

SOURCES = ("targets", "features")


@dataclass
class Cluster:
    """One cluster: its number, member ids (in input order), and its members' commonest tags and labels."""
    index: int
    members: list
    top_tags: list = field(default_factory=list)  # [(tag, count), ...], most frequent first
    top_labels: list = field(default_factory=list)  # [(label, count), ...]

    @property
    def size(self):
        return len(self.members)


def read_vectors(layout, ds, source="targets", fact="d2v", dim=40, suffix=None, sets=SETS):
    """``(ids, vectors)`` of ``sets`` of ``ds`` from ``source`` (see the module docstring).

    vectors : float64 ``(n_items, n_dims)`` (higher-rank rows are flattened). Missing files are
    MissingInput naming the path; a row count that differs from the ids is a DataMismatch.
    """
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "features" and not suffix:
        raise ConfigError("source 'features' needs the suffix of the X_{set}_{suffix}_{ds}.npy files")
    ids, blocks = [], []
    for set_ in sets:
        if source == "targets":
            path = layout.require(layout.y(set_, fact, dim, ds), what=f"targets {fact} {dim} of {ds} {set_}")
            index = layout.items_index(set_, ds)
        else:
            path = layout.require(layout.x(set_, suffix, ds), what=f"features {suffix} of {ds} {set_}")
            index = layout.items_index(set_, ds, suffix)
            if not index.exists():
                index = layout.items_index(set_, ds)
        names = fileio.read_items_index(layout.require(index, what=f"items index of {ds} {set_}"))
        x = np.asarray(fileio.load_npy(path), dtype=np.float64)
        if len(x) != len(names):
            raise DataMismatch(f"{path} has {len(x)} rows but {index} lists {len(names)} items")
        ids.extend(names)
        blocks.append(x.reshape(len(x), -1))
    if not ids:
        raise DataMismatch(f"no items in {ds} {'/'.join(sets)}: nothing to cluster")
    return ids, np.concatenate(blocks)


def kmeans(vectors, k=40, seed=0, n_init=10):
    """Cluster number of each row of ``vectors`` (int array) and the ``(k, n_dims)`` centroids.

    scikit-learn's ``KMeans(n_clusters=k, n_init=n_init, random_state=seed)`` (k-means++ starts, the
    best of ``n_init`` runs); shufl used k = 40 with scikit-learn's defaults of the time (10 runs).
    """
    from sklearn.cluster import KMeans
    vectors = np.asarray(vectors, dtype=np.float64)
    k = check_int("k", k)
    if len(vectors) < k:
        raise ConfigError(f"k = {k} clusters need at least {k} items, got {len(vectors)}")
    if not np.isfinite(vectors).all():
        raise DataMismatch("the vectors to cluster hold NaN or infinite values")
    model = KMeans(n_clusters=int(k), n_init=n_init, random_state=seed).fit(vectors)
    return model.labels_.astype(np.int64), model.cluster_centers_


def cluster_items(layout, ds, k=40, source="targets", fact="d2v", dim=40, suffix=None, sets=SETS, seed=0, top=5):
    """k-means clusters of ``ds``'s item vectors, largest first: a list of ``Cluster``.

    Each cluster lists its members and the ``top`` most frequent tags and labels among them (ties by
    name). Returns ``(clusters, ids, assignment)``, ``assignment[i]`` the cluster of ``ids[i]``
    renumbered so that cluster 0 is the largest (ties by the first member's position).
    """
    from .recommend import ItemInfo
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    ids, vectors = read_vectors(layout, ds, source, fact, dim, suffix, sets)
    labels, _ = kmeans(vectors, k, seed)
    first = {c: int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)}
    order = sorted(first, key=lambda c: (-int(np.sum(labels == c)), first[c]))
    renumber = {c: i for i, c in enumerate(order)}
    assignment = np.array([renumber[c] for c in labels], dtype=np.int64)
    info = ItemInfo(layout, ds)
    clusters = []
    for i in range(len(order)):
        members = [ids[r] for r in np.flatnonzero(assignment == i)]
        tags = Counter(t for m in members for t in info.tags.get(m, []))
        names = Counter(lab for m in members for lab in info.labels.get(m, []))
        clusters.append(Cluster(i, members, _commonest(tags, top), _commonest(names, top)))
    return clusters, ids, assignment


def _commonest(counts, n):
    return sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:n]


def format_clusters(clusters, title, members=5):
    """The clusters as text: size, commonest tags and labels (with counts), the first ``members`` ids."""
    lines = [title]
    for c in clusters:
        lines.append(f"cluster {c.index}: {c.size} item(s)")
        if c.top_tags:
            lines.append("  tags: " + ", ".join(f"{t} ({n})" for t, n in c.top_tags))
        if c.top_labels:
            lines.append("  labels: " + ", ".join(f"{t} ({n})" for t, n in c.top_labels))
        if members:
            more = f" ... (+{c.size - members})" if c.size > members else ""
            lines.append("  items: " + ", ".join(c.members[:members]) + more)
    return "\n".join(lines)


def write_assignments(path, ids, assignment):
    """Write ``id<TAB>cluster`` a line, in input order, atomically."""
    fileio.write_tsv(path, ((item, int(c)) for item, c in zip(ids, assignment)))
    return path
