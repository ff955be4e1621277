"""Report pages (tartarus report): one model's, and several side by side, on the dummy chains."""

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from tartarus import fileio
from tartarus.cli import main
from tartarus.config import Registry
from tartarus.errors import ConfigError
from tartarus.layout import DataLayout
from tartarus.pipeline import run_dummy_pipeline, run_dummy_recommendation
from tartarus.report import write_comparison, write_report
from tartarus.report.embedding import NO_GROUP, item_groups, project
from tartarus.report.page import best_cells, metric_rows

REPO = Path(__file__).resolve().parents[1]
IMG = re.compile(r'<img src="([^"]*)"')


@pytest.fixture(scope="module")
def dummy(tmp_path_factory):
    """The seed's dummy chain (audio model_1, text model_2 and model_3, fused model_4), 3 epochs each."""
    layout = DataLayout(tmp_path_factory.mktemp("report") / "data")
    run_dummy_pipeline(layout, Registry(REPO / "experiments", data_root=layout.root), n_epochs=3, verbose=0)
    return layout


@pytest.fixture(scope="module")
def dummy_rec(tmp_path_factory):
    """The dummy cold-start chain: audio, text and fused models to ALS factors, 3 epochs each."""
    layout = DataLayout(tmp_path_factory.mktemp("report_rec") / "data")
    run_dummy_recommendation(layout, Registry(REPO / "experiments", data_root=layout.root), n_epochs=3, verbose=0)
    return layout


def _images(html):
    return IMG.findall(html)


def _self_contained(html):
    """No script, no stylesheet or image fetched from anywhere: every image inline PNG data."""
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:|//)', html)
    images = _images(html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    return images


def test_model_report_shows_the_results_it_was_made_from(dummy):
    path = write_report(dummy, "model_1")
    assert path == dummy.report("model_1") == dummy.root / "models" / "model_1" / "report.html"
    html = path.read_text()
    images = _self_contained(html)
    # confusion matrix, ROC/PR curves, embedding map, training curves
    assert len(images) == 4
    result = fileio.read_json(dummy.result("model_1", "test"))
    assert f"<td>{result['accuracy']:.3f}</td>" in html and f"<td>{result['roc_auc']:.3f}</td>" in html
    for row in result["per_class"]:
        assert f">{row['label']}</td>" in html
    assert "dummy_audio" in html and "model_1" in html
    # the embedding map: the layer before the output, on the test split, coloured by class
    assert re.search(r"Layer \S+ on the test split \(\d+ items\), projected by t-SNE, coloured by class", html)
    assert "n_epochs = 3" in html  # the resolved experiment
    for section in ("evaluation", "embedding", "training", "experiment"):
        assert f'<section id="{section}">' in html


def test_report_layer_projection_and_missing_predictions(dummy, tmp_path):
    out = tmp_path / "m2.html"
    assert write_report(dummy, "model_2", out=out, layer=5, projection="pca") == out
    html = out.read_text()
    layer_name = re.search(r"Layer (\S+) on the test split", html).group(1)
    assert "projected by PCA" in html and layer_name
    # predictions gone: the curves become a note naming the command, the rest of the page stands
    pred = dummy.prediction("model_3", "test")
    moved = pred.with_suffix(".bak")
    pred.rename(moved)
    try:
        html = write_report(dummy, "model_3", out=tmp_path / "m3.html", embedding=False).read_text()
    finally:
        moved.rename(pred)
    assert "no ROC or PR curves: missing" in html and "tartarus predict model_3" in html
    assert '<section id="embedding">' not in html
    assert len(_images(html)) == 2  # confusion matrix, training curves


def test_comparison_page_side_by_side(dummy):
    path = write_comparison(dummy, ["model_1", "model_2", "model_4"])
    assert path == dummy.root / "results" / "compare_model_1_model_2_model_4.html"
    html = path.read_text()
    images = _self_contained(html)
    assert len(images) == 1 + 3 * 2  # overlaid training curves; per model ROC/PR and confusion matrix
    results = {m: fileio.read_json(dummy.result(m, "test")) for m in ("model_1", "model_2", "model_4")}
    row = re.search(r"<tr><td class=\"text\">accuracy</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r'<td( class="best")?>([^<]*)</td>', row)
    assert [value for _, value in cells] == [f"{results[m]['accuracy']:.3f}" for m in results]
    top = max(r["accuracy"] for r in results.values())
    assert [bool(bold) for bold, _ in cells] == [r["accuracy"] == top for r in results.values()]


def test_report_cli(dummy, capsys):
    assert main(["report", "model_1", "model_2", "--no-embedding", "--data-dir", str(dummy.root)]) == 0
    out = capsys.readouterr().out
    assert f"model_1: report -> {dummy.report('model_1')}" in out and "model_2: report ->" in out
    assert main(["report", "--compare", "model_1", "model_4", "--data-dir", str(dummy.root)]) == 0
    assert dummy.comparison_report(["model_1", "model_4"]).exists()
    assert main(["report", "--compare", "model_1", "--data-dir", str(dummy.root)]) != 0
    assert "needs two or more models" in capsys.readouterr().err
    assert main(["report", "model_99", "--data-dir", str(dummy.root)]) != 0
    assert "model_99" in capsys.readouterr().err


def test_recommendation_report(dummy_rec):
    html = write_report(dummy_rec, "model_1").read_text()
    _self_contained(html)
    result = fileio.read_json(dummy_rec.result("model_1", "test"))
    # the model beside both baselines, MAP@k first
    row = re.search(rf"<tr><td class=\"text\">MAP@{result['k']}</td>(.*?)</tr>", html).group(1)
    values = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert values == [f"{v:.3f}" for v in (result["map_at_k"], result["baselines"]["random"]["map_at_k"],
                                           result["baselines"]["popularity"]["map_at_k"])]
    assert "MAP@k and P@k over the cut-off k" in html
    assert "Recommended items for a sample of users" in html
    compare = write_comparison(dummy_rec, ["model_1", "model_2", "model_3"]).read_text()
    # training curves; the three models' ranking curves in one figure, beside the baselines of their users
    assert len(_self_contained(compare)) == 1 + 1 and "each model beside the random and popularity" in compare
    # the metrics: the three models, then the baselines once
    row = re.search(rf"<tr><td class=\"text\">MAP@{result['k']}</td>(.*?)</tr>", compare).group(1)
    expected = [fileio.read_json(dummy_rec.result(m, "test"))["map_at_k"] for m in ("model_1", "model_2", "model_3")]
    expected += [result["baselines"][b]["map_at_k"] for b in ("random", "popularity")]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row) == [f"{v:.3f}" for v in expected]


def test_item_groups_class_and_top_tag(tmp_path):
    layout = DataLayout(tmp_path)
    fileio.write_lines(layout.genre_labels("D"), ["rock", "jazz", "pop"])
    fileio.write_lines(layout.items_index("test", "D"), ["a", "b", "c", "d"])
    y = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 0]], np.float32)
    fileio.save_npy(layout.y("test", "class", 3, "D"), y)
    # tag frequencies: rock 2, jazz 1, pop 2 -> a: rock (tie with pop, first), b: pop, c: none, d: rock
    assert item_groups(layout, "D", "multilabel", "test", ["d", "b", "c", "a"]) == (
        ["rock", "pop", NO_GROUP, "rock"], "top tag")
    onehot = np.eye(3, dtype=np.float32)[[2, 0, 1, 1]]
    fileio.save_npy(layout.y("test", "class", 3, "D"), onehot)
    assert item_groups(layout, "D", "multiclass", "test", ["b", "a"]) == (["rock", "pop"], "class")
    assert item_groups(layout, "OTHER", "multiclass", "test", ["a"]) == ([NO_GROUP], "")


def test_project_shapes_and_seeds():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (10, 6)), rng.normal(5, 0.1, (10, 6))])
    a, b = project(x, "tsne", seed=1), project(x, "tsne", seed=1)
    assert a.shape == (20, 2) and np.array_equal(a, b)
    # two far-apart clusters stay apart: each point's nearest neighbour is in its own cluster
    d = np.linalg.norm(a[:, None] - a[None], axis=2) + np.eye(20) * 1e9
    assert np.all(d.argmin(axis=1) // 10 == np.arange(20) // 10)
    pca = project(x, "pca")
    assert pca.shape == (20, 2) and abs(np.corrcoef(pca[:, 0], np.repeat([0, 1], 10))[0, 1]) > 0.99
    assert project(x[:3], "tsne").shape == (3, 2)  # too few rows for t-SNE: PCA
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and UMAP's note that a seed makes it single-threaded is not shown
        u = project(x, "umap", seed=1)
    assert np.array_equal(u, project(x, "umap", seed=1))
    d = np.linalg.norm(u[:, None] - u[None], axis=2) + np.eye(20) * 1e9
    assert np.all(d.argmin(axis=1) // 10 == np.arange(20) // 10)
    with pytest.raises(ConfigError, match="projection"):
        project(x, "mds")


def test_metric_rows_and_best_cells():
    r = {"evaluation": "multiclass", "k": 500, "accuracy": 0.5, "macro_f1": 0.25, "roc_auc": 0.75,
         "map_at_k": 0.6, "precision_at": {"1": 0.5}}
    assert metric_rows(r) == [("accuracy", 0.5), ("macro F1", 0.25), ("ROC-AUC", 0.75), ("MAP@500", 0.6),
                              ("P@1", 0.5)]
    rec = {"evaluation": "recommendation", "k": 10, "map_at_k": 0.2, "at": {"1": {"precision": 0.3, "ndcg": 0.3,
                                                                                 "adiv": 0.1}}}
    assert metric_rows(rec) == [("MAP@10", 0.2), ("P@1", 0.3), ("nDCG@1", 0.3), ("ADiv@1", 0.1)]
    assert best_cells([["a", 0.1, 0.3, 0.3], ["b", None, 0.2, float("nan")]]) == {(0, 2), (0, 3)}


def test_report_opens_in_chromium(dummy, tmp_path):
    from tests.browser import check_page, chromium_or_skip
    chromium_or_skip()
    shots = Path(os.environ.get("TARTARUS_SCREENSHOTS") or tmp_path)
    for name, path in (("report_model_1", write_report(dummy, "model_1")),
                       ("compare_dummy", write_comparison(dummy, ["model_1", "model_2", "model_4"]))):
        check = check_page(path, shots / f"{name}.png")
        assert check.console_errors == [] and check.broken_images == []
        assert check.n_images == len(_images(path.read_text())) and check.page_height > 1000
        assert (shots / f"{name}.png").stat().st_size > 10_000


def test_tagging_report_has_the_tag_wise_table(dummy):
    from tartarus.pipeline import run_experiment
    experiment = Registry(REPO / "experiments", data_root=dummy.root).experiment(
        "dummy_text_vsm", ['dataset.evaluation="multilabel"', "training.n_epochs=3"])
    model_id = run_experiment(experiment, ("bow",), dummy, verbose=0, report=True).model_id
    html = dummy.report(model_id).read_text()
    assert "Tag-wise results, by ROC-AUC" in html and "decision thresholds: per_class, at maximum F1 on val" in html
    assert "coloured by top tag" in html
    result = fileio.read_json(dummy.result(model_id, "test"))
    table = html[html.index("Tag-wise results"):]
    positions = [table.index(f">{row['label']}</td>") for row in result["per_class"]]
    by_auc = sorted(range(len(positions)), key=lambda j: -result["per_class"][j]["roc_auc"])  # stable: ties keep order
    assert sorted(range(len(positions)), key=positions.__getitem__) == by_auc


def test_tag_wise_table_sorts_by_roc_auc_with_missing_last():
    from tartarus.report.pages import _per_class_table
    per = [{"label": name, "support": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "roc_auc": auc, "pr_auc": 0.5}
           for name, auc in (("a", 0.5), ("b", 0.9), ("c", None), ("d", 0.7))]
    table = _per_class_table({"evaluation": "multilabel", "per_class": per})
    assert [m.group(1) for m in re.finditer(r'<td class="text">(\w)</td>', table)] == ["b", "d", "a", "c"]
    table = _per_class_table({"evaluation": "multiclass", "per_class": per})  # classes keep their order
    assert [m.group(1) for m in re.finditer(r'<td class="text">(\w)</td>', table)] == ["a", "b", "c", "d"]
