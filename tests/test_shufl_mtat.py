"""shufl end to end on a miniature MagnaTagATune: import, spectrograms, patches, doc2vec targets,
the shufl CNN, multi-label evaluation by tag vectors, and `similar` clip queries."""

import numpy as np
import pytest

from tartarus import fileio
from tartarus.audio.patches import create_patches
from tartarus.audio.runner import compute_spectrograms
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.datasets.magna import import_magna
from tartarus.layout import SETS, DataLayout
from tartarus.recommend import item_vectors, similar_items
from tartarus.text import build_d2v_targets
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate
from tests.mini_magna import make_mini_magna

SMALL = ["training.n_epochs=3", "training.n_minibatch=4", "cnn.n_filters_1=16", "cnn.n_filters_2=16",
         "cnn.n_filters_3=32", "cnn.n_filters_4=32", "cnn.n_dense=64", "cnn.n_dense_2=64"]


@pytest.fixture(scope="module")
def mtat(tmp_path_factory):
    base = tmp_path_factory.mktemp("mtat")
    mini = make_mini_magna(base / "magnatagatune", n_songs=12, clips_per_song=3)
    layout = DataLayout(base / "data")
    import_magna(mini.annotations, mini.mp3_dir, layout, min_tags=1)
    entry = Registry().dataset("MTAT")
    report = compute_spectrograms(layout, entry, n_jobs=1, progress=False)
    assert report.failed == []
    create_patches(layout, entry)
    build_d2v_targets(layout, "MTAT", dim=40, n_epochs=200, alpha=0.1)
    result = run(Registry().experiment("shufl", SMALL), (), layout, verbose=0)
    return layout, mini, result


def test_tag_vectors_and_multilabel_evaluation(mtat):
    layout, mini, result = mtat
    tags = fileio.read_lines(layout.genre_labels("MTAT"))
    factors = fileio.load_npy(layout.class_factors("d2v", 40, "MTAT"))
    assert factors.shape == (len(tags), 40)
    # a tag's vector is the mean target of the train clips with that tag
    y = fileio.load_npy(layout.y("train", "d2v", 40, "MTAT"))
    has = fileio.load_npy(layout.y("train", "class", len(tags), "MTAT")) > 0
    j = int(np.argmax(has.sum(axis=0)))
    np.testing.assert_allclose(factors[j], y[has[:, j]].mean(axis=0), atol=1e-5)
    test = result.results["test"]
    assert test["evaluation"] == "multilabel" and test["n_classes"] == len(tags)
    assert test["labels"] == tags and 0 <= test["map_at_k"] <= 1


def test_similar_clips_show_tags_and_mp3_files(mtat, capsys):
    layout, mini, result = mtat
    model = result.model_id
    ids, vectors = item_vectors(layout, model, SETS)
    query = fileio.read_lines(layout.items_index("test", "MTAT"))[0]
    hits = similar_items(layout, model, query, k=5)
    assert len(hits) == 5 and query not in [h.id for h in hits]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit[ids.index(query)]
    cos[ids.index(query)] = -np.inf
    assert [h.id for h in hits] == [ids[i] for i in np.argsort(-cos, kind="stable")[:5]]
    paths = {clip: path for clip, path, _ in mini.clips}
    for h in hits:
        assert h.tags and h.audio.endswith(paths[h.id])  # the tags and the mp3 file of each clip
    assert main(["similar", model, query, "-k", "3", "--data-dir", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert "tags:" in out and ".mp3" in out and f"nearest to {query}" in out
