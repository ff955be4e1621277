"""evaluate_scores on hand-built arrays, the files write_results leaves, and evaluate_saved."""

import json

import numpy as np
import pytest

from tartarus import fileio
from tartarus.config import experiment_from_dict
from tartarus.errors import ConfigError, DataMismatch, MissingInput
from tartarus.evaluate import (RESULTS_COLUMNS, evaluate_saved, evaluate_scores, format_results,
                               write_results)
from tartarus.layout import DataLayout

NAMES = ["techno", "folk", "ambient"]
# true classes 0 0 1 1 2 2; argmax of the scores: 0 1 1 1 2 0
Y = np.eye(3)[[0, 0, 1, 1, 2, 2]]
S = np.array([[.8, .1, .1], [.3, .6, .1], [.2, .7, .1], [.1, .8, .1], [.1, .2, .7], [.5, .2, .3]])


def test_multiclass_numbers():
    r = evaluate_scores(Y, S, "multiclass", labels=NAMES, k=500)
    assert r["n_items"] == 6 and r["n_classes"] == 3 and r["labels"] == NAMES
    assert r["accuracy"] == pytest.approx(4 / 6)
    # per class F1 1/2, 4/5, 2/3 (see test_metrics)
    assert r["macro_f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert r["micro_f1"] == pytest.approx(4 / 6)
    assert r["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # rank of the true class per item: 1, 2, 1, 1, 1, 2 -> MAP = (1 + 1/2 + 1 + 1 + 1 + 1/2) / 6
    assert r["map_at_k"] == pytest.approx(5 / 6)
    # techno one-vs-rest: positives score .8 and .3, negatives .2 .1 .1 .5 -> 7 of 8 pairs right
    techno = r["per_class"][0]
    assert techno["label"] == "techno" and techno["support"] == 2
    assert techno["roc_auc"] == pytest.approx(7 / 8)
    assert r["auc_skipped"] == []
    # integer labels give the same results
    r2 = evaluate_scores(np.array([0, 0, 1, 1, 2, 2]), S, "multiclass", labels=NAMES)
    assert r2["accuracy"] == r["accuracy"] and r2["roc_auc"] == r["roc_auc"]
    json.dumps(r)  # JSON-ready


def test_multilabel_numbers():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    s = np.array([[.9, .2, .1], [.6, .4, .3], [.3, .8, .2], [.7, .1, .4]])
    r = evaluate_scores(y, s, "multilabel", labels=["a", "b", "c"], k=10)
    # predictions at 0.5: [1,0,0] [1,0,0] [0,1,0] [1,0,0]: rows 0 and 2 exactly right
    assert r["accuracy"] == pytest.approx(2 / 4)
    # TP 3 (a, a, b), FP 1 (a in row 3), FN 1 (b in row 1) -> micro P = R = 3/4
    assert r["micro_precision"] == pytest.approx(3 / 4) and r["micro_recall"] == pytest.approx(3 / 4)
    # class c has no positive: AUCs skipped and macro over a and b
    assert r["auc_skipped"] == ["c"]
    assert r["per_class"][2]["roc_auc"] is None
    # a: positives .9 .6 vs negatives .3 .7 -> 3 of 4 pairs; b: positives .4 .8 vs .2 .1 -> 4 of 4
    assert r["roc_auc"] == pytest.approx((3 / 4 + 1) / 2)
    # per item AP over classes (row 3 has no positive, left out):
    # row 0: a first -> 1; row 1: a, b first two -> 1; row 2: b first -> 1
    assert r["map_at_k"] == pytest.approx(1.0)
    # P@1 over rows 0..2: all top-1 right; P@3: 1/3, 2/3, 1/3
    assert r["precision_at"]["1"] == pytest.approx(1.0)
    assert r["precision_at"]["3"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    assert "5" not in r["precision_at"]  # more than the 3 classes
    assert r["confusion_matrix"] is None


def test_binary_single_column():
    y = np.array([1, 0, 1, 0, 1])
    s = np.array([.9, .6, .4, .2, .7])
    r = evaluate_scores(y, s, "binary", labels=["vocal"])
    # predictions 1 1 0 0 1: TP 2, FP 1, FN 1, TN 1
    assert r["confusion_matrix"] == [[1, 1], [1, 2]]
    assert r["confusion_labels"] == ["not vocal", "vocal"]
    assert r["macro_precision"] == pytest.approx(2 / 3) and r["macro_recall"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(3 / 5)
    # positives .9 .4 .7 vs negatives .6 .2: pairs right 2 + 1 + 2 = 5 of 6
    assert r["roc_auc"] == pytest.approx(5 / 6)
    assert r["map_at_k"] is None


def test_shape_and_value_errors():
    with pytest.raises(DataMismatch, match=r"\(6, 3\).*\(6, 4\)"):
        evaluate_scores(Y, np.zeros((6, 4)), "multiclass")
    with pytest.raises(DataMismatch, match=r"\(5, 3\).*\(6, 3\)"):
        evaluate_scores(Y[:5], S, "multilabel")
    with pytest.raises(DataMismatch, match=r"\(6, 3\).*\(5, 3\)"):
        evaluate_scores(Y, S[:5], "multiclass")
    with pytest.raises(DataMismatch, match="NaN"):
        evaluate_scores(Y, np.where(S > 0.75, np.nan, S), "multiclass")
    with pytest.raises(DataMismatch, match="positive classes"):
        evaluate_scores(np.ones((6, 3)), S, "multiclass")
    with pytest.raises(DataMismatch, match="2 class labels"):
        evaluate_scores(Y, S, "multiclass", labels=["a", "b"])
    with pytest.raises(ConfigError, match="evaluation"):
        evaluate_scores(Y, S, "regression")
    with pytest.raises(NotImplementedError):
        evaluate_scores(Y, S, "recommendation")


def test_write_results_files_and_table(tmp_path):
    layout = DataLayout(tmp_path)
    r = evaluate_scores(Y, S, "multiclass", labels=NAMES)
    paths = write_results(layout, "model_1", "test", r, experiment_name="dummy_audio",
                          extra={"dataset": "DUMMY"}, timestamp="2024-01-01T00:00:00")
    assert paths["json"] == layout.result("model_1", "test")
    doc = json.loads(layout.result("model_1", "test").read_text())
    assert doc["model"] == "model_1" and doc["experiment"] == "dummy_audio" and doc["set"] == "test"
    assert doc["accuracy"] == pytest.approx(4 / 6) and doc["extra"] == {"dataset": "DUMMY"}
    png = layout.confusion_plot("model_1", "test")
    assert paths["confusion_plot"] == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    write_results(layout, "model_2", "val", evaluate_scores(Y, S, "multilabel"), experiment_name="x")
    rows = fileio.read_tsv(layout.results_table())
    assert len(rows) == 3
    assert tuple(rows[0]) == RESULTS_COLUMNS
    first = dict(zip(rows[0], rows[1]))
    assert first["model"] == "model_1" and first["set"] == "test" and first["evaluation"] == "multiclass"
    assert float(first["accuracy"]) == pytest.approx(4 / 6, abs=1e-4)
    assert float(first["map_at_k"]) == pytest.approx(5 / 6, abs=1e-4) and first["k"] == "500"
    assert dict(zip(rows[0], rows[2]))["model"] == "model_2"
    assert not layout.confusion_plot("model_2", "val").exists()  # multilabel: no confusion matrix
    leftovers = [p.name for p in layout.results_dir.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_format_results_is_readable():
    text = format_results({"model": "model_1", **evaluate_scores(Y, S, "multiclass", labels=NAMES)})
    assert "model_1" in text and "accuracy" in text and "0.6667" in text and "MAP@500" in text
    assert "confusion matrix" in text
    for name in NAMES:
        assert name in text
    lines = text.splitlines()
    row = next(line for line in lines[lines.index("  confusion matrix (rows: true, columns: predicted)"):]
               if line.strip().startswith("ambient"))
    assert row.split()[1:] == ["1", "0", "1"]
    ml = format_results(evaluate_scores(np.array([[1, 0], [0, 1]]), np.array([[.9, .1], [.2, .8]]), "multilabel"))
    assert "P@1" in ml and "confusion" not in ml


def _fake_model(layout, model_id="model_7"):
    exp = experiment_from_dict("dummy_audio", {
        "dataset": {"dataset": "TOY", "fact": "class", "dim": 3, "evaluation": "multiclass"},
        "evaluating": {"map_k": 2}})
    fileio.write_json(layout.model_config(model_id), {"model_id": model_id, "experiment": exp.to_dict()})
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    fileio.write_lines(layout.items_index("test", "TOY"), ids)
    fileio.save_npy(layout.y("test", "class", 3, "TOY"), np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2, 0]])
    fileio.write_lines(layout.genre_labels("TOY"), NAMES)
    # predictions for all but "g", in another order than the split
    order = [5, 4, 3, 2, 1, 0]
    fileio.save_npy(layout.prediction(model_id, "test"), S[order].astype(np.float32))
    fileio.write_lines(layout.prediction_index(model_id, "test"), [ids[i] for i in order])
    return model_id


def test_evaluate_saved_aligns_predictions(tmp_path, capsys):
    layout = DataLayout(tmp_path)
    model_id = _fake_model(layout)
    r = evaluate_saved(layout, model_id, "test", verbose=1)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["labels"] == NAMES and r["k"] == 2 and r["missing_items"] == ["g"]
    assert layout.result(model_id, "test").exists() and layout.results_table().exists()
    assert "techno" in capsys.readouterr().out

    fileio.write_lines(layout.prediction_index(model_id, "test"), ["a", "b", "c", "d", "e", "zz"])
    with pytest.raises(DataMismatch, match="zz"):
        evaluate_saved(layout, model_id, "test", write=False)
    layout.prediction(model_id, "test").unlink()
    with pytest.raises(MissingInput, match="predict"):
        evaluate_saved(layout, model_id, "test", write=False)
