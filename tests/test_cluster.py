"""`tartarus cluster` (shufl's clustering.py): k-means over tag vectors or any embedding file, with
the commonest tags and labels of each cluster."""

import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.cluster import cluster_items, kmeans, read_vectors
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.layout import SETS, DataLayout

GROUPS = {  # group: (centre coordinate, tags, label); sizes 12, 9, 6
    "a": (0.0, ["rock", "guitar", "loud"], "rock"),
    "b": (10.0, ["piano", "classical"], "classical"),
    "c": (-10.0, ["techno", "beat"], "electronic"),
}
SIZES = {"a": 12, "b": 9, "c": 6}


@pytest.fixture
def blobs(tmp_path):
    """Three far-apart blobs of 8-d vectors over three splits, with tags and class labels."""
    layout = DataLayout(tmp_path / "data")
    rng = np.random.default_rng(0)
    labels = ["rock", "classical", "electronic"]
    members = {s: [] for s in SETS}
    tag_rows = []
    for g, n in SIZES.items():
        for k in range(n):
            item = f"{g}{k:02d}"
            members[SETS[k % 3]].append(item)
            tags = GROUPS[g][1][: 1 + k % len(GROUPS[g][1])]  # the first tag on every member
            tag_rows.append((item, ",".join(tags)))
    for set_, ids in members.items():
        fileio.write_lines(layout.items_index(set_, "B"), ids)
        centres = np.array([GROUPS[i[0]][0] for i in ids])[:, None]
        x = centres + rng.normal(scale=0.3, size=(len(ids), 8))
        layout.splits_dir.mkdir(parents=True, exist_ok=True)
        np.save(layout.y(set_, "d2v", 8, "B"), x)
        np.save(layout.y(set_, "class", 3, "B"), np.eye(3)[[labels.index(GROUPS[i[0]][2]) for i in ids]])
        layout.train_data_dir.mkdir(parents=True, exist_ok=True)
        np.save(layout.x(set_, "emb", "B"), -x)  # an embedding file (no items index of its own)
    fileio.write_tsv(layout.tags_index("B"), tag_rows)
    fileio.write_lines(layout.genre_labels("B"), labels)
    return layout, members


def test_clusters_are_the_blobs_with_their_tags(blobs):
    layout, members = blobs
    clusters, ids, assignment = cluster_items(layout, "B", k=3, fact="d2v", dim=8)
    assert ids == members["train"] + members["val"] + members["test"]
    # largest first: a (12), b (9), c (6); every member of a blob in its cluster
    assert [c.size for c in clusters] == [12, 9, 6]
    for c, g in zip(clusters, "abc"):
        assert sorted(c.members) == sorted(i for i in ids if i[0] == g)
        assert c.top_labels == [(GROUPS[g][2], SIZES[g])]
    # tag counts: a's first tag on all 12, the second on 8 (k % 3 >= 1), the third on 4
    assert clusters[0].top_tags == [("rock", 12), ("guitar", 8), ("loud", 4)]
    assert clusters[1].top_tags == [("piano", 9), ("classical", 4)]
    assert clusters[2].top_tags == [("techno", 6), ("beat", 3)]
    assert [assignment[ids.index(i)] for i in ("a00", "b00", "c00")] == [0, 1, 2]
    # top limits the lists; one split only
    clusters, ids, _ = cluster_items(layout, "B", k=3, dim=8, sets=["train"], top=1)
    assert ids == members["train"] and [c.top_tags for c in clusters] == [[("rock", 4)], [("piano", 3)], [("techno", 2)]]


def test_embedding_file_source_and_kmeans_reference(blobs):
    layout, members = blobs
    ids, x = read_vectors(layout, "B", "features", suffix="emb")
    assert ids == members["train"] + members["val"] + members["test"] and x.shape == (27, 8)
    labels, centroids = kmeans(x, 3, seed=0)
    from sklearn.cluster import KMeans
    want = KMeans(n_clusters=3, n_init=10, random_state=0).fit(x)
    assert np.array_equal(labels, want.labels_) and np.allclose(centroids, want.cluster_centers_)
    clusters, _, _ = cluster_items(layout, "B", k=3, source="features", suffix="emb")
    assert [c.top_labels[0][0] for c in clusters] == ["rock", "classical", "electronic"]


def test_errors_name_the_problem(blobs):
    layout, _ = blobs
    with pytest.raises(ConfigError, match="at least 30"):
        cluster_items(layout, "B", k=30, dim=8)
    with pytest.raises(MissingInput, match="y_train_d2v_40_B"):
        cluster_items(layout, "B", k=3, dim=40)
    with pytest.raises(ConfigError, match="suffix"):
        read_vectors(layout, "B", "features")
    np.save(layout.y("val", "d2v", 8, "B"), np.zeros((2, 8)))
    with pytest.raises(DataMismatch, match="2 rows"):
        cluster_items(layout, "B", k=3, dim=8)


def test_cli_prints_clusters_and_writes_assignments(blobs, tmp_path, capsys):
    layout, members = blobs
    before = sorted(p.relative_to(layout.root) for p in layout.root.rglob("*"))
    assert main(["cluster", "B", "-k", "3", "--dim", "8", "--data-dir", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert "3 k-means clusters of 27 B items" in out and "cluster 0: 12 item(s)" in out
    assert "tags: rock (12), guitar (8), loud (4)" in out and "labels: classical (9)" in out
    assert sorted(p.relative_to(layout.root) for p in layout.root.rglob("*")) == before  # wrote nothing
    path = tmp_path / "clusters.tsv"
    assert main(["cluster", "B", "-k", "3", "--suffix", "emb", "-o", str(path), "--data-dir", str(layout.root)]) == 0
    rows = fileio.read_tsv(path, ncols=2)
    assert [r[0] for r in rows] == members["train"] + members["val"] + members["test"]
    assert {r[0][0]: r[1] for r in rows} == {"a": "0", "b": "1", "c": "2"}
