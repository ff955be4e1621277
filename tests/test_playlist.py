"""Seed-based playlists (`tartarus playlist`): ranking, whitelist, threshold, seeds left out, TSV and M3U."""

import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.errors import ConfigError, DataMismatch
from tartarus.layout import DataLayout
from tartarus.playlist import make_playlist, playlist_paths, seed_scores

DS = "PL"


def fake_model(root, vectors_by_set, model_id="model_1"):
    """A data root holding only what a playlist reads: a model config and its saved predictions."""
    lay = DataLayout(root)
    config = {"experiment": {"name": "fake", "dataset": {"dataset": DS, "dim": 2}}}
    fileio.write_json(lay.model_config(model_id), config)
    for set_, rows in vectors_by_set.items():
        fileio.write_lines(lay.items_index(set_, DS), list(rows))
        fileio.save_npy(lay.prediction(model_id, set_), np.array(list(rows.values()), np.float32))
        fileio.write_lines(lay.prediction_index(model_id, set_), list(rows))
    return lay


@pytest.fixture
def random_root(tmp_path):
    rng = np.random.default_rng(3)
    sets = {s: {f"{s[:2]}{i:02d}": rng.normal(size=5) * rng.uniform(0.2, 4) for i in range(k)}
            for s, k in (("train", 30), ("val", 6), ("test", 8))}
    return fake_model(tmp_path / "data", sets), sets


def _reference(sets, seeds, n, score, per_seed=False):
    """The ranking by plain numpy: scores of every non-seed item, highest first, ties by position."""
    ids = [i for rows in sets.values() for i in rows]
    x = np.array([v for rows in sets.values() for v in rows.values()], np.float32).astype(np.float64)
    s = x[[ids.index(q) for q in seeds]]
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    if score == "cosine":
        s = s / np.linalg.norm(s, axis=1, keepdims=True)
    table = s @ unit.T  # seeds x items
    out = []
    for row in (table if per_seed else [table.mean(axis=0)]):
        order = [j for j in np.argsort(-row, kind="stable") if ids[j] not in seeds][:n]
        out.append(([ids[j] for j in order], row[order]))
    return out


@pytest.mark.parametrize("score", ["dot", "cosine"])
def test_ranking_matches_a_numpy_reference(random_root, score):
    lay, sets = random_root
    seeds = ["tr03", "te01", "va02"]
    pl = make_playlist(lay, "model_1", seeds, n=12, score=score)
    (ref_ids, ref_scores), = _reference(sets, seeds, 12, score)
    assert [label for label, _ in pl.lists] == ["tr03+te01+va02"]
    assert [h.id for h in pl.hits] == ref_ids
    assert [h.score for h in pl.hits] == pytest.approx(ref_scores, abs=1e-9)
    assert not set(seeds) & {h.id for h in pl.hits}  # the seeds are never in their playlist
    each = make_playlist(lay, "model_1", seeds, n=5, score=score, combine="each")
    assert [label for label, _ in each.lists] == seeds
    for (label, hits), (ids, scores) in zip(each.lists, _reference(sets, seeds, 5, score, per_seed=True)):
        assert [h.id for h in hits] == ids and [h.score for h in hits] == pytest.approx(scores, abs=1e-9)
        assert not set(seeds) & {h.id for h in hits}


def test_dot_score_is_the_seed_vector_on_unit_candidates():
    seeds = np.array([[2.0, 0.0], [0.0, 0.0]])
    candidates = np.array([[1.0, 0.0], [3.0, 3.0], [0.0, -5.0]])
    r2 = np.sqrt(0.5)
    assert seed_scores(seeds, candidates, "dot") == pytest.approx(np.array([[2, 2 * r2, 0], [0, 0, 0]]))
    assert seed_scores(seeds, candidates, "cosine") == pytest.approx(np.array([[1, r2, 0], [0, 0, 0]]))


@pytest.fixture
def hand_root(tmp_path):
    # seed s = (2, 0): dot scores a 2, b sqrt 2, c 0, d -2, e 1 (e = (1, sqrt 3) / any length)
    test = {"s": [2, 0], "a": [1, 0], "b": [5, 5], "c": [0, 3], "d": [-0.5, 0], "e": [1, np.sqrt(3)]}
    return fake_model(tmp_path / "data", {"test": test})


def test_threshold_is_strict_and_n_cuts(hand_root):
    pl = make_playlist(hand_root, "model_1", ["s"], sets=["test"])
    assert [h.id for h in pl.hits] == ["a", "b", "e", "c", "d"]
    assert [h.score for h in pl.hits] == pytest.approx([2, np.sqrt(2), 1, 0, -2], abs=1e-6)
    pl = make_playlist(hand_root, "model_1", ["s"], threshold=0, sets=["test"])
    assert [h.id for h in pl.hits] == ["a", "b", "e"]  # c scores exactly 0: not above the threshold
    pl = make_playlist(hand_root, "model_1", ["s"], n=2, threshold=-3, sets=["test"])
    assert [h.id for h in pl.hits] == ["a", "b"]


def test_whitelist_keeps_only_its_items(hand_root, tmp_path):
    wl = tmp_path / "wl.tsv"
    wl.write_text("d\tsome note\nc\ns\nnot_an_item\n\n")
    pl = make_playlist(hand_root, "model_1", ["s"], whitelist=wl, sets=["test"])
    assert [h.id for h in pl.hits] == ["c", "d"]  # the seed is left out even when whitelisted
    assert pl.whitelist_unknown == ["not_an_item"]
    pl = make_playlist(hand_root, "model_1", ["s"], whitelist=["d", "b", "a"], threshold=0, sets=["test"])
    assert [h.id for h in pl.hits] == ["a", "b"]
    (tmp_path / "none.txt").write_text("x\ny\n")
    with pytest.raises(DataMismatch, match="none of the 2 whitelist items of .*none.txt"):
        make_playlist(hand_root, "model_1", ["s"], whitelist=tmp_path / "none.txt", sets=["test"])


def test_two_seeds_mean_and_a_seed_outside_the_candidate_splits(tmp_path):
    lay = fake_model(tmp_path / "data", {"train": {"s1": [1, 0], "s2": [0, 4]},
                                        "test": {"x": [1, 1], "y": [1, 0], "z": [-1, 0.1]}})
    pl = make_playlist(lay, "model_1", ["s1", "s2"], sets=["test"])
    # mean of (1, 0) . unit and (0, 4) . unit: x (1/sqrt2 + 4/sqrt2) / 2, y 1/2, z (-1 + 0.4) / 2 / |z|
    z = np.array([-1, 0.1]) / np.hypot(1, 0.1)
    assert [h.id for h in pl.hits] == ["x", "y", "z"]
    assert [h.score for h in pl.hits] == pytest.approx([5 / np.sqrt(2) / 2, 0.5, (z[0] + 4 * z[1]) / 2], abs=1e-6)


def test_errors_name_what_is_wrong(hand_root, random_root):
    with pytest.raises(ConfigError, match="'nope' is neither an item"):
        make_playlist(random_root[0], "model_1", ["nope"], sets=["test"])  # looked for in every split
    with pytest.raises(ConfigError, match="at least one seed"):
        make_playlist(hand_root, "model_1", [], sets=["test"])
    with pytest.raises(ConfigError, match="n must be an integer >= 1"):
        make_playlist(hand_root, "model_1", ["s"], n=0, sets=["test"])
    with pytest.raises(ConfigError, match="combine must be one of"):
        make_playlist(hand_root, "model_1", ["s"], combine="sum", sets=["test"])


def test_cli_writes_tsv_and_m3u_with_the_audio_paths(hand_root, capsys):
    lay = hand_root
    fileio.write_tsv(lay.audio_index(DS), [("a", "rock/a.mp3"), ("b", "b.mp3"), ("s", "s.mp3")])
    # the data root's own entry puts the audio elsewhere; the M3U follows it
    lay.datasets_file().write_text(f'[{DS}]\naudio_folder = "music"\n')
    assert main(["playlist", "model_1", "s", "-n", "3", "-s", "test", "--data-dir", str(lay.root)]) == 0
    out = capsys.readouterr().out
    assert "playlist of 3 items for s" in out and "1 item(s) without an audio file" in out
    tsv, m3u = lay.results_dir / "playlist_model_1_s.tsv", lay.results_dir / "playlist_model_1_s.m3u"
    rows = fileio.read_tsv(tsv)
    assert rows[0] == ["seed", "rank", "item", "score", "set", "audio"]
    assert [r[:4] for r in rows[1:]] == [["s", "1", "a", "2.000000"], ["s", "2", "b", "1.414214"],
                                         ["s", "3", "e", "1.000000"]]
    assert rows[1][5] == str(lay.root / "music" / "rock" / "a.mp3")
    lines = m3u.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and lines[1].startswith("# tartarus playlist model_1: seeds s")
    assert lines[2:] == ["#EXTINF:-1,a (2.000000)", "../music/rock/a.mp3",
                         "#EXTINF:-1,b (1.414214)", "../music/b.mp3",
                         "# e (1.000000): no audio file in the dataset's audio index"]
    assert not list(lay.results_dir.glob(".*tmp*"))  # written atomically, nothing left behind


def test_cli_out_and_each(hand_root, tmp_path, capsys):
    out = tmp_path / "lists" / "mine.tsv"
    assert main(["playlist", "model_1", "s", "a", "--each", "--threshold", "0.6", "--score", "cosine",
                 "--out", str(out), "-s", "test", "--data-dir", str(hand_root.root)]) == 0
    rows = fileio.read_tsv(out)[1:]
    assert {r[0] for r in rows} == {"s", "a"} and not {"s", "a"} & {r[2] for r in rows}
    # cosines to s (and to a): b 0.707, e 0.5, c 0, d -1
    assert [r[2] for r in rows if r[0] == "s"] == ["b"] and [r[2] for r in rows if r[0] == "a"] == ["b"]
    assert (tmp_path / "lists" / "mine_1.m3u").exists() and (tmp_path / "lists" / "mine_2.m3u").exists()


def test_default_paths_name_model_and_first_seed(hand_root):
    pl = make_playlist(hand_root, "model_1", ["s", "a"], sets=["test"])
    tsv, m3us = playlist_paths(hand_root, pl)
    assert tsv.name == "playlist_model_1_s.tsv" and [p.name for p in m3us] == ["playlist_model_1_s.m3u"]
    assert hand_root.playlist("model_1", "/some/where/My Song.mp3", "m3u").name == "playlist_model_1_My_Song.m3u"


def test_a_trained_model_predicts_what_is_missing(experiments_dir, tiny_layout):
    root = str(tiny_layout.root)
    assert main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", root,
                 "--set", "training.n_epochs=1", "--no-eval"]) == 0
    from tartarus.recommend import item_vectors
    pl = make_playlist(tiny_layout, "model_1", ["T000"], n=4, sets=["test"], layer="9")  # predicted on demand
    ids, x = item_vectors(tiny_layout, "model_1", ["train", "val", "test"], layer="9")
    test_ids = fileio.read_lines(tiny_layout.items_index("test", "TINY"))
    scores = {i: float(x[ids.index("T000")] @ x[ids.index(i)] / np.linalg.norm(x[ids.index(i)])) for i in test_ids}
    assert [h.id for h in pl.hits] == sorted(test_ids, key=lambda i: -scores[i])[:4]
