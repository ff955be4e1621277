"""Report figures (report/figures.py) and the recommendation curves behind them (report/ranking.py)."""

import re
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tartarus import fileio
from tartarus import metrics as M
from tartarus.errors import DataMismatch
from tartarus.report import figures as F

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path_or_bytes):
    """(height, width) of a PNG read back by matplotlib, after checking its magic bytes."""
    import io

    import matplotlib.image as mpimg
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    assert data[:8] == PNG_MAGIC
    return mpimg.imread(io.BytesIO(data), format="png").shape[:2]


def _size_is(shape, inches, dpi):
    """A PNG's (height, width) is the figure's (width, height) in inches times dpi (to a pixel, as
    matplotlib rounds)."""
    w, h = inches
    return abs(shape[0] - h * dpi) <= 1 and abs(shape[1] - w * dpi) <= 1


def _legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def _history(n, metric=True):
    h = {"loss": list(np.linspace(1.0, 0.2, n)), "val_loss": list(np.linspace(1.1, 0.4, n))}
    if metric:
        h.update(accuracy=list(np.linspace(0.4, 0.9, n)), val_accuracy=list(np.linspace(0.3, 0.8, n)),
                 learning_rate=[1e-3] * n)
    return h


# ------------------------------------------------------------------------------ PNG
def test_png_bytes_and_save_png_have_the_figure_size(tmp_path):
    fig = F.confusion_figure([[3, 1], [0, 4]], ["a", "b"])
    assert _size_is(_png_size(F.png_bytes(fig, dpi=50)), fig.get_size_inches(), 50)
    path = F.save_png(fig, tmp_path / "sub" / "cm.png", dpi=80)
    assert _size_is(_png_size(path), fig.get_size_inches(), 80)
    assert [p.name for p in path.parent.iterdir()] == ["cm.png"]  # no temporary left


def test_no_pyplot_is_imported():
    if "matplotlib.pyplot" in sys.modules:
        pytest.skip("another test imported pyplot already")
    F.png_bytes(F.training_curves({"m": _history(3)}), dpi=30)
    F.png_bytes(F.embedding_map(np.zeros((2, 2)), ["a", "b"]), dpi=30)
    assert "matplotlib.pyplot" not in sys.modules


# ------------------------------------------------------------------------------ training curves
def test_training_curves_one_run():
    fig = F.training_curves({"model_1": _history(5)}, title="model_1")
    loss, acc = fig.axes
    assert [ln.get_linestyle() for ln in loss.lines] == ["-", "--"]
    np.testing.assert_allclose(loss.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(loss.lines[1].get_ydata(), np.linspace(1.1, 0.4, 5))
    np.testing.assert_allclose(acc.lines[0].get_ydata(), np.linspace(0.4, 0.9, 5))  # not the learning rate
    assert acc.get_ylabel() == "accuracy" and loss.get_xlabel() == "epoch"
    assert _legend_texts(loss.get_legend()) == ["train", "validation"]
    fig.canvas.draw()
    ticks = [t for t in loss.get_xticks() if 1 <= t <= 5]
    assert ticks and all(float(t).is_integer() for t in ticks)  # whole epochs only
    assert _png_size(F.png_bytes(fig, dpi=40)) == (160, 400)  # 10 x 4 in


def test_training_curves_several_runs_and_loss_only():
    runs = {"model_1": _history(4), "model_2": _history(7), "model_3": _history(2)}
    fig = F.training_curves(runs)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 6 for ax in fig.axes)
    assert _legend_texts(fig.legends[0]) == ["model_1", "model_2", "model_3", "train", "validation"]
    # one colour a run, the same in both panels, train and validation alike
    colors = [ln.get_color() for ln in fig.axes[0].lines]
    assert colors[0] == colors[1] != colors[2] == colors[3] != colors[4]
    assert colors == [ln.get_color() for ln in fig.axes[1].lines]
    only = F.training_curves({"m": {"loss": [1.0, 0.5, 0.3]}})
    assert len(only.axes) == 1 and len(only.axes[0].lines) == 1
    assert _legend_texts(only.axes[0].get_legend()) == ["train"]
    one = F.training_curves({"m": {"loss": [-0.7], "val_loss": [-0.2]}})  # one epoch: a point each, tick 1
    one.canvas.draw()
    lo, hi = one.axes[0].get_xlim()
    assert [t for t in one.axes[0].get_xticks() if lo <= t <= hi] == [1]
    assert [ln.get_marker() for ln in one.axes[0].lines] == ["o", "s"]
    with pytest.raises(DataMismatch, match="no history"):
        F.training_curves({"m": {}})


# ------------------------------------------------------------------------------ ROC and PR
def test_roc_pr_legend_values_are_sklearns():
    # class a by hand: positives score 0.9 and 0.3, negatives 0.8 and 0.1: 3 of 4 pairs in order, AUC 0.75
    y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]])
    s = np.array([[0.9, 0.2, 0.8, 0.5], [0.8, 0.7, 0.1, 0.4], [0.3, 0.6, 0.2, 0.3], [0.1, 0.1, 0.7, 0.2]])
    fig = F.roc_pr_curves(y, s, ["a", "b", "c", "never"], title="m on test")
    roc, pr = fig.axes
    texts = _legend_texts(roc.get_legend())
    assert texts[0] == "a (AUC 0.75)"
    for j, name in enumerate("abc"):
        assert f"{name} (AUC {roc_auc_score(y[:, j], s[:, j]):.2f})" in texts
        assert f"{name} (AP {average_precision_score(y[:, j], s[:, j]):.2f})" in _legend_texts(pr.get_legend())
    used = y[:, :3].ravel(), s[:, :3].ravel()
    assert texts[3] == f"micro-average (AUC {roc_auc_score(*used):.2f})" and texts[4] == "chance"
    # 3 classes + micro + chance diagonal; PR: 3 classes + micro + 3 dotted prevalences
    assert len(roc.lines) == 5 and len(pr.lines) == 7
    # the same class has the same colour in both panels; the micro average is black and thicker
    assert [ln.get_color() for ln in roc.lines[:4]] == [ln.get_color() for ln in pr.lines if ln.get_linestyle() != ":"]
    assert roc.lines[3].get_color() == "black" and roc.lines[3].get_linewidth() > roc.lines[0].get_linewidth()
    assert "never" in fig.get_suptitle() and "no positive" in fig.get_suptitle()
    assert "never" not in " ".join(texts)


def test_roc_pr_max_classes_keeps_the_most_positives():
    rng = np.random.default_rng(0)
    n, c = 200, 6
    prevalence = np.array([0.05, 0.5, 0.1, 0.4, 0.3, 0.2])
    y = rng.random((n, c)) < prevalence
    s = y + rng.normal(size=(n, c))
    labels = [f"tag{j}" for j in range(c)]
    fig = F.roc_pr_curves(y, s, labels, max_classes=3)
    roc, pr = fig.axes
    drawn = [t.split(" (")[0] for t in _legend_texts(roc.get_legend())]
    most = sorted(np.argsort(-y.sum(axis=0), kind="stable")[:3])
    assert drawn == [labels[j] for j in most] + ["micro-average of all 6", "chance"]
    assert "3 of 6 classes shown" in fig.get_suptitle()
    assert len(roc.lines) == 5
    # more than 5 classes would clutter per-class prevalences: here 3 are drawn, each dotted
    assert sum(ln.get_linestyle() == ":" for ln in pr.lines) == 3
    with pytest.raises(DataMismatch, match="expected both"):
        F.roc_pr_curves(y[:, :2], s, labels)


# ------------------------------------------------------------------------------ confusion
def test_confusion_figure_cells_and_labels(tmp_path):
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 7]])
    fig = F.confusion_figure(cm, ["low", "mid", "high"], title="model_1 on test")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
    assert [t.get_text() for t in ax.texts] == [str(v) for v in cm.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low", "mid", "high"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert len(fig.axes) == 2  # the heat map and its colour bar
    # the darkest cell writes white
    assert [t.get_color() for t in ax.texts][8] == "white" and ax.texts[1].get_color() == "black"
    big = F.confusion_figure(np.eye(40, dtype=int), None)
    assert len(big.axes[0].texts) == 0 and big.get_size_inches()[0] <= 12
    # evaluate's PNG is drawn by it
    from tartarus.evaluate import save_confusion_plot
    path = save_confusion_plot(tmp_path / "cm.png", cm, ["low", "mid", "high"])
    assert _size_is(_png_size(path), fig.get_size_inches(), 100)


# ------------------------------------------------------------------------------ ranking curves figure
def _curves(ks, map_k=500):
    k = np.asarray(ks, float)
    return {"k": list(ks), "model": {"map_at_k": list(0.3 * k / k.max()), "precision": list(0.2 / k)},
            "random": {"map_at_k": list(0.01 * k / k.max()), "precision": list(0.01 + 0 * k)},
            "popularity": {"map_at_k": list(0.1 * k / k.max()), "precision": list(0.05 / k)},
            "n_users": 40, "n_items": int(k.max()), "map_k": map_k, "model_id": "model_2"}


def test_ranking_curves_figure_lines_and_scale():
    fig = F.ranking_curves_figure(_curves([1, 2, 3, 5, 10, 20, 50, 100, 200, 500]), title="t")
    left, right = fig.axes
    assert left.get_xscale() == "log"  # 1 .. 500: more than two decades
    assert [ln.get_label() for ln in left.lines[:3]] == ["model_2", "random", "popularity"]
    model, random, popularity, marker = left.lines
    assert model.get_linestyle() == "-" and random.get_linestyle() == "--" and popularity.get_linestyle() != "-"
    assert np.allclose(marker.get_xdata(), 500)  # the evaluation's k
    np.testing.assert_allclose(right.lines[0].get_ydata(), 0.2 / np.array([1, 2, 3, 5, 10, 20, 50, 100, 200, 500]))
    assert _legend_texts(left.get_legend()) == ["model_2", "random", "popularity"]
    assert left.get_ylabel() == "MAP@k" and right.get_ylabel() == "precision@k"
    small = F.ranking_curves_figure(_curves([1, 2, 3, 5, 10, 12]))
    assert small.axes[0].get_xscale() == "linear" and len(small.axes[0].lines) == 3  # 500 is off the axis
    assert "MAP@500 = MAP@12 (12 items)" in small.get_suptitle()
    bad = _curves([1, 2, 3])
    bad["random"]["precision"] = [0.1]
    with pytest.raises(DataMismatch, match="random has 1 precision values for 3 cut-offs"):
        F.ranking_curves_figure(bad)
    # several models on the same users: one colour each, the first's baselines
    other = _curves([1, 2, 3])
    other["model_id"] = "model_3"
    other["model"]["map_at_k"] = [0.5, 0.6, 0.7]
    both = F.ranking_curves_figure([_curves([1, 2, 3]), other])
    lines = both.axes[0].lines
    assert [ln.get_label() for ln in lines[:4]] == ["model_2", "model_3", "random", "popularity"]
    assert lines[0].get_color() != lines[1].get_color()
    np.testing.assert_allclose(lines[1].get_ydata(), [0.5, 0.6, 0.7])
    with pytest.raises(DataMismatch, match="expected the same users and cut-offs"):
        F.ranking_curves_figure([_curves([1, 2, 3]), _curves([1, 2, 5])])


# ------------------------------------------------------------------------------ embedding map
def test_embedding_map_groups_names_and_other():
    pts = np.arange(20, dtype=float).reshape(10, 2)
    groups = ["rock"] * 5 + ["jazz"] * 3 + ["(none)"] * 2
    fig = F.embedding_map(pts, groups, title="m · layer d · PCA", names=[f"D{i}" for i in range(10)])
    ax = fig.axes[0]
    assert _legend_texts(fig.legends[0]) == ["rock (5)", "jazz (3)", "(none) (2)"]
    assert [t.get_text() for t in ax.texts] == [f"D{i}" for i in range(10)]
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    by_label = {c.get_label(): c for c in ax.collections}
    np.testing.assert_array_equal(by_label["jazz (3)"].get_offsets(), pts[5:8])
    grey = by_label["(none) (2)"].get_facecolor()[0][:3]
    assert np.allclose(grey, grey[0])  # no group is grey
    many = F.embedding_map(np.random.default_rng(0).normal(size=(100, 2)), [f"g{i % 25}" for i in range(100)],
                           names=[str(i) for i in range(100)])
    texts = _legend_texts(many.legends[0])
    assert len(texts) == 18 and texts[-1] == "other (8 groups, 32)"  # 17 coloured groups, then the rest
    assert len(many.axes[0].texts) == 0  # no names beyond 40 points
    with pytest.raises(DataMismatch, match=r"expected \(n, 2\)"):
        F.embedding_map(np.zeros((3, 3)), ["a"] * 3)


# ------------------------------------------------------------------------------ ranking data
@pytest.fixture(scope="module")
def dummy_rec(tmp_path_factory):
    """The dummy data with 4-d ALS factors and a rec_sparse model to them (1 epoch), evaluated on test."""
    from tests.fixtures import dummy_text_recommender
    return dummy_text_recommender(tmp_path_factory.mktemp("report_figures") / "data", evaluate=True)


def _files(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_ranking_curves_hold_the_evaluations_numbers(dummy_rec):
    from tartarus.evaluate import recommendation_inputs
    from tartarus.report.ranking import ranking_curves

    layout, model_id = dummy_rec
    before = _files(layout.root)
    curves = ranking_curves(layout, model_id)
    assert _files(layout.root) == before  # reads only
    doc = fileio.read_json(layout.result(model_id, "test"))
    assert doc["protocol"] == "tartarus" and curves["n_users"] == doc["n_users"]
    n_items = curves["n_items"]
    assert n_items == doc["n_items"] < doc["k"]  # the dummy's test split is smaller than map_k
    assert curves["k"] == [k for k in (1, 2, 3, 5, 10, 20, 50) if k < n_items] + [n_items]
    at = curves["k"].index(min(doc["k"], n_items))
    # exactly the results JSON's, model and baselines, at k and at the seed's cut-offs
    assert curves["model"]["map_at_k"][at] == doc["map_at_k"]
    assert curves["model"]["precision"][at] == doc["precision"]
    for name in ("random", "popularity"):
        assert curves[name]["map_at_k"][at] == doc["baselines"][name]["map_at_k"]
    for cut in ("1", "3", "5"):
        i = curves["k"].index(int(cut))
        assert curves["model"]["precision"][i] == doc["at"][cut]["precision"]
        for name in ("random", "popularity"):
            assert curves[name]["precision"][i] == doc["baselines"][name]["at"][cut]["precision"]
    # every k against the plain reference (ml_metrics apk over a stable full sort)
    inputs = recommendation_inputs(layout, model_id, "test")
    unit = inputs.predicted / np.linalg.norm(inputs.predicted, axis=1, keepdims=True)
    rel = inputs.relevance.toarray() > 0
    counted = np.flatnonzero(rel.any(axis=1))
    order = np.argsort(-(inputs.users[counted] @ unit.T), axis=1, kind="stable")
    for i, k in enumerate(curves["k"]):
        ap = [M.average_precision_at_k(np.flatnonzero(rel[u]), order[r], k) for r, u in enumerate(counted)]
        hits = np.take_along_axis(rel[counted], order[:, :k], axis=1).sum(axis=1)
        assert curves["model"]["map_at_k"][i] == pytest.approx(np.mean(ap), abs=1e-12)
        assert curves["model"]["precision"][i] == pytest.approx(hits.mean() / k, abs=1e-12)
    # popularity knows the held-out plays: at least as good as random at the top
    for i in range(3):
        assert curves["popularity"]["map_at_k"][i] >= curves["random"]["map_at_k"][i]
    # chosen cut-offs: those within the items, and map_k's place
    assert ranking_curves(layout, model_id, ks=[4, 1, 100])["k"] == [1, 4, n_items]


def test_sample_recommendations(dummy_rec):
    from tartarus.report.ranking import sample_recommendations

    layout, model_id = dummy_rec
    before = _files(layout.root)
    sample = sample_recommendations(layout, model_id, n_users=4, n=6, seed=3)
    assert _files(layout.root) == before
    assert sample == sample_recommendations(layout, model_id, n_users=4, n=6, seed=3)
    other = sample_recommendations(layout, model_id, n_users=4, n=6, seed=4)
    assert [u["user"] for u in other] != [u["user"] for u in sample]
    users = fileio.read_lines(layout.interaction_users("DUMMY"))
    test_items = set(fileio.read_items_index(layout.items_index("test", "DUMMY")))
    assert len(sample) == 4
    for user in sample:
        assert user["user"] in users and user["held_out"] and set(user["held_out"]) <= test_items
        recommended = [r["item"] for r in user["recommended"]]
        assert len(recommended) == len(set(recommended)) == 6
        scores = [r["score"] for r in user["recommended"]]
        assert scores == sorted(scores, reverse=True)
        assert {r["item"] for r in user["recommended"] if r["hit"]} == set(user["held_out"]) & set(recommended)
    # the held-out items of a user are those of the test matrix's column
    from tartarus.evaluate import recommendation_inputs
    inputs = recommendation_inputs(layout, model_id, "test")
    row = inputs.user_ids.index(sample[0]["user"])
    held = {inputs.item_ids[j] for j in inputs.relevance[row].indices if inputs.relevance[row, j] > 0}
    assert held == set(sample[0]["held_out"])
    assert sample_recommendations(layout, model_id, n_users=0) == []


def test_ranking_curves_figure_of_the_dummy(dummy_rec):
    from tartarus.report.ranking import ranking_curves

    layout, model_id = dummy_rec
    fig = F.ranking_curves_figure(ranking_curves(layout, model_id), title=f"{model_id} on test")
    assert len(fig.axes) == 2 and re.search(r"\d+ users with a held-out item", fig.get_suptitle())
    assert _png_size(F.png_bytes(fig, dpi=30))[1] == 300
