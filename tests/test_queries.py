"""Cold start on the dummy data end to end, and the queries: recommend users / items, similar items."""

import shutil

import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.datasets.dummy import plan_dummy
from tartarus.errors import ConfigError
from tartarus.layout import SETS, DataLayout
from tartarus.recommend import ItemInfo, _top, item_vectors, recommend_items, recommend_users, similar_items


def test_top_orders_by_score_then_position():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    assert _top(scores, 3).tolist() == [1, 4, 0]
    assert _top(scores, 10).tolist() == [1, 4, 0, 2, 3]


def test_item_info_reads_labels_tags_and_audio(tmp_path):
    lay = DataLayout(tmp_path)
    fileio.write_lines(lay.items_index("test", "X"), ["a", "b"])
    fileio.write_lines(lay.genre_labels("X"), ["rock", "jazz"])
    fileio.save_npy(lay.y("test", "class", 2, "X"), np.array([[1, 0], [1, 1]], np.float32))
    fileio.write_tsv(lay.tags_index("X"), [("a", "loud,guitar"), ("b", "")])
    fileio.write_tsv(lay.audio_index("X"), [("a", "a.mp3")])
    info = ItemInfo(lay, "X")
    a, b = info.hit("a", 0.5), info.hit("b", 0.25)
    assert (a.set, a.labels, a.tags, a.audio) == ("test", ["rock"], ["loud", "guitar"], "a.mp3")
    assert (b.labels, b.tags, b.audio) == (["rock", "jazz"], [], "")


@pytest.fixture(scope="module")
def cold_start(tmp_path_factory):
    """`tartarus pipeline dummy-rec` on a fresh data root (about a minute or two)."""
    layout = DataLayout(tmp_path_factory.mktemp("rec") / "data")
    assert main(["pipeline", "dummy-rec", "--data-dir", str(layout.root)]) == 0
    return layout


def test_cold_start_models_beat_popularity(cold_start):
    rows = fileio.read_tsv(cold_start.comparison_table("dummy-rec"))
    table = {r[1] if r[1] != "baseline" else r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert list(table) == ["dummy_audio_als", "dummy_text_als", "dummy_multi_als", "random", "popularity"]
    map_at_500 = {name: float(r["map_at_k"]) for name, r in table.items()}
    assert map_at_500["popularity"] > map_at_500["random"]
    for name in ("dummy_audio_als", "dummy_text_als", "dummy_multi_als"):
        assert map_at_500[name] > map_at_500["popularity"], map_at_500
    # every user with a held-out interaction and a train factor was evaluated
    result = fileio.read_json(cold_start.result("model_1", "test"))
    matrix = fileio.load_sparse(cold_start.eval_matrix("test", "DUMMY"))
    users = fileio.load_npy(cold_start.user_factors("als", 4, "DUMMY"))
    with_test = np.diff(matrix.T.tocsr().indptr) > 0
    assert result["n_users"] == int((with_test & np.any(users != 0, axis=1)).sum())


def _users(layout):
    return fileio.read_lines(layout.interaction_users("DUMMY")), fileio.load_npy(layout.user_factors("als", 4, "DUMMY"))


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_recommend_users_for_an_item_by_hand(cold_start, capsys):
    lay = cold_start
    item = fileio.read_lines(lay.items_index("test", "DUMMY"))[0]
    ids, vectors = item_vectors(lay, "model_1", ["test"])
    names, factors = _users(lay)
    scores = factors.astype(np.float64) @ _unit(vectors[ids.index(item)])
    hits = recommend_users(lay, "model_1", item, n=7)
    assert [h.score for h in hits] == pytest.approx(sorted(scores, reverse=True)[:7], abs=1e-6)
    assert [h.id for h in hits] == [names[i] for i in np.argsort(-scores, kind="stable")[:7]]
    # `heard` says whether the user played the item
    matrix, users, items = (fileio.load_sparse(lay.interactions_matrix("DUMMY")), names,
                            fileio.read_lines(lay.interaction_items("DUMMY")))
    for h in hits:
        assert h.heard == bool(matrix[users.index(h.id), items.index(item)] > 0)
    assert main(["recommend", "model_1", item, "-n", "3", "--data-dir", str(lay.root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"top 3 users for {item}") and out[1].split()[1] == hits[0].id


def test_recommend_items_for_a_user_ranks_the_cold_start_items(cold_start, capsys):
    lay = cold_start
    names, factors = _users(lay)
    user = names[int(np.flatnonzero(np.any(factors != 0, axis=1))[0])]
    ids, vectors = item_vectors(lay, "model_2", ["test"])
    scores = _unit(vectors) @ factors[names.index(user)].astype(np.float64)
    hits = recommend_items(lay, "model_2", user, n=5)
    assert [h.id for h in hits] == [ids[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert all(h.set == "test" for h in hits)
    plan = plan_dummy(0)
    for h in hits:  # the item's genre is shown
        assert h.labels == [plan.class_names[plan.classes[plan.ids.index(h.id)]]]
    assert main(["recommend", "model_2", "--user", user, "-n", "2", "--data-dir", str(lay.root)]) == 0
    assert f"items for user {user}" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="not among the 400 users"):
        recommend_items(lay, "model_2", "nobody")


def test_similar_items_exclude_the_query_and_use_cosine(cold_start):
    lay = cold_start
    ids, vectors = item_vectors(lay, "model_1", SETS, layer="flat")
    query = ids[3]
    cos = _unit(vectors) @ _unit(vectors[3])
    cos[3] = -np.inf
    hits = similar_items(lay, "model_1", query, k=6, layer="flat")
    assert query not in [h.id for h in hits] and len(hits) == 6
    assert [h.id for h in hits] == [ids[i] for i in np.argsort(-cos, kind="stable")[:6]]
    assert [h.score for h in hits] == pytest.approx(np.sort(cos)[::-1][:6], abs=1e-9)


def test_audio_file_outside_the_dataset_is_cut_like_the_training_patches(cold_start, tmp_path, capsys):
    lay = cold_start
    item = fileio.read_lines(lay.items_index("test", "DUMMY"))[2]
    outside = tmp_path / "elsewhere" / f"{item}.wav"  # same stem: the same random crop as the item's
    outside.parent.mkdir()
    shutil.copy(lay.audio_dir / f"{item}.wav", outside)
    hits = similar_items(lay, "model_1", str(outside), k=3)
    assert hits[0].id == item and hits[0].score == pytest.approx(1.0, abs=1e-5)
    by_item = recommend_users(lay, "model_1", item, n=5)
    by_file = recommend_users(lay, "model_1", str(outside), n=5)
    assert [h.id for h in by_file] == [h.id for h in by_item]
    assert all(h.heard is None for h in by_file)  # a new file has no interactions
    assert main(["similar", "model_1", str(outside), "-k", "2", "--data-dir", str(lay.root)]) == 0
    assert item in capsys.readouterr().out
    # a text model cannot take audio; a missing file is named
    with pytest.raises(ConfigError, match="does not read audio"):
        recommend_users(lay, "model_2", str(outside))
    with pytest.raises(ConfigError, match="no such file"):
        similar_items(lay, "model_1", str(tmp_path / "missing.mp3"))
    assert main(["recommend", "model_1", "--data-dir", str(lay.root)]) == 2
    assert "item id or audio file" in capsys.readouterr().err


def _listing(root):
    """``{relative path: (size, mtime_ns)}`` of every file and folder under ``root``."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_queries_on_a_read_only_root_write_nothing(cold_start, tmp_path, capsys):
    """recommend, similar, playlist (--out elsewhere) and cluster read a trained root and write nothing
    to it, also when a split's predictions were never saved (they are computed in memory)."""
    root = tmp_path / "ro"
    shutil.copytree(cold_start.root, root)
    lay = DataLayout(root)
    for set_ in ("train", "val"):  # similar/playlist over every split must predict these in memory
        lay.prediction("model_1", set_).unlink(missing_ok=True)
        lay.prediction_index("model_1", set_).unlink(missing_ok=True)
    names, factors = _users(lay)
    user = names[int(np.flatnonzero(np.any(factors != 0, axis=1))[0])]
    item = fileio.read_lines(lay.items_index("test", "DUMMY"))[0]
    where = ["--data-dir", str(root)]
    commands = [["recommend", "model_1", item], ["recommend", "model_1", "--user", user, "-n", "3"],
                ["similar", "model_1", item, "-k", "3"], ["similar", "model_1", item, "-k", "3", "-l", "logits"],
                ["playlist", "model_1", item, "-n", "5", "--out", str(tmp_path / "elsewhere" / "pl")],
                ["cluster", "DUMMY", "--suffix", "model_1-pred_flat", "-k", "3"]]
    before = _listing(root)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        for command in commands:
            assert main(command + where) == 0, command
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert _listing(root) == before
    out = capsys.readouterr().out
    assert f"items for user {user}" in out and (tmp_path / "elsewhere" / "pl.tsv").exists()
    # what is computed in memory equals what `tartarus predict` saves
    in_memory = item_vectors(lay, "model_1", ["train"])
    assert not lay.prediction("model_1", "train").exists()
    assert main(["predict", "model_1", "-s", "train"] + where) == 0
    saved = item_vectors(lay, "model_1", ["train"])
    assert saved[0] == in_memory[0] and np.allclose(saved[1], in_memory[1], atol=1e-6)
