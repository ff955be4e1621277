"""`tartarus results`: every evaluated model of a data root in one table (issue 15, item 2).

Two tiny vector models trained and evaluated for real (a few seconds), and results JSONs written by
hand (our own format) for the ordering, a deleted model, models trained before epochs were timed
and a recommendation model's cut-offs.
"""

import csv
import io

import pytest

from tartarus import cli
from tartarus.cli import main
from tartarus.errors import ConfigError
from tartarus.fileio import read_json, write_json
from tartarus.layout import DataLayout
from tartarus.pipeline import run_experiment
from tartarus.report.runs import FORMATS, format_runs, gather_runs, latex_escape

from .test_protocol import vector_experiment, write_vector_dataset

METRICS = ["accuracy", "macro_f1", "roc_auc", "pr_auc", "map_at_k"]  # the defaults of a multiclass model


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """model_1 (``vec``, 2 epochs, evaluated on val and test), model_2 (``other_vec``, 1 epoch, test)."""
    layout = write_vector_dataset(tmp_path_factory.mktemp("results") / "data")
    run_experiment(vector_experiment(training={"n_epochs": 2, "early_stopping": False}), ("emb",), layout,
                   verbose=0, eval_sets=("val", "test"))
    run_experiment(vector_experiment(training={"n_epochs": 1}, name="other_vec"), ("emb",), layout, verbose=0)
    return layout


def _snapshot(root):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_rows_join_results_record_and_training_state(two_models):
    rows = gather_runs(two_models)
    assert [(r["model"], r["set"]) for r in rows] == [("model_1", "val"), ("model_1", "test"), ("model_2", "test")]
    assert [r["experiment"] for r in rows] == ["vec", "vec", "other_vec"]
    assert {(r["inputs"], r["dataset"], r["evaluation"]) for r in rows} == {("emb", "V", "multiclass")}
    for row in rows:
        result = read_json(two_models.result(row["model"], row["set"]))
        state = read_json(two_models.training_state(row["model"]))
        assert row["metrics"]["accuracy"] == result["accuracy"] and row["metrics"]["map_at_k"] == result["map_at_k"]
        assert row["epochs"] == state["epoch"] == len(state["epoch_seconds"])
        assert all(s > 0 for s in state["epoch_seconds"])
        assert row["training_seconds"] == sum(state["epoch_seconds"])
    assert [r["epochs"] for r in rows] == [2, 2, 1]
    # epoch times are the state's, not metrics of the history
    assert "epoch_seconds" not in read_json(two_models.history("model_1"))


def test_csv_parses_back_to_the_numbers(two_models):
    rows = _csv_rows(format_runs(gather_runs(two_models), fmt="csv"))
    assert list(rows[0]) == ["model", "experiment", "inputs", "dataset", "set", *METRICS, "epochs",
                             "training_seconds"]
    for row in rows:
        result = read_json(two_models.result(row["model"], row["set"]))
        state = read_json(two_models.training_state(row["model"]))
        assert [float(row[m]) for m in METRICS] == [result[m] for m in METRICS]  # full precision
        assert int(row["epochs"]) == state["epoch"]
        assert float(row["training_seconds"]) == sum(state["epoch_seconds"])


def test_table_markdown_and_latex_layouts(two_models):
    rows = gather_runs(two_models)
    test_1 = read_json(two_models.result("model_1", "test"))

    table = format_runs(rows).splitlines()
    assert table[0].split() == ["model", "experiment", "inputs", "dataset", "set", *METRICS, "epochs",
                                "training", "time"]
    assert len(table) == 1 + len(rows)
    cells = table[2].split()
    assert cells[:5] == ["model_1", "vec", "emb", "V", "test"]
    assert cells[5:10] == [f"{test_1[m]:.4f}" for m in METRICS] and cells[10] == "2"
    # right-aligned numbers: every line ends its accuracy column at the same place
    end = table[0].index("accuracy") + len("accuracy")
    assert all(line[end - 6:end] == f"{value:.4f}" for line, value in
               zip(table[1:], (read_json(two_models.result(r["model"], r["set"]))["accuracy"] for r in rows)))

    md = format_runs(rows, fmt="md").splitlines()
    assert len(md) == 2 + len(rows)
    assert all(line.startswith("| ") and line.endswith(" |") and line.count(" | ") == 11 for line in md[:1] + md[2:])
    assert md[1] == "|" + "|".join(["---"] * 5 + ["---:"] * 7) + "|"
    assert md[3].split(" | ")[5] == f"{test_1['accuracy']:.4f}"

    latex = format_runs(rows, metrics=["roc_auc", "macro_f1"], fmt="latex").splitlines()
    assert latex[0] == r"\begin{tabular}{lllllrrrr}" and latex[-1] == r"\end{tabular}"
    assert (latex[1], latex[3], latex[-2]) == (r"\toprule", r"\midrule", r"\bottomrule")
    assert latex[2] == r"model & experiment & inputs & dataset & set & roc\_auc & macro\_f1 & epochs & training time \\"
    body = [line.removesuffix(r" \\").split(" & ") for line in latex[4:-2]]
    assert [b[:2] for b in body] == [[r"model\_1", "vec"], [r"model\_1", "vec"], [r"model\_2", r"other\_vec"]]
    assert body[1][5:7] == [f"{test_1['roc_auc']:.3f}", f"{test_1['macro_f1']:.3f}"]  # 3 decimals


def test_latex_escapes_its_special_characters():
    assert latex_escape("a_b & 50% #1 {x} $y ~^\\") == \
        r"a\_b \& 50\% \#1 \{x\} \$y \textasciitilde{}\textasciicircum{}\textbackslash{}"


def test_filters(two_models):
    assert {r["model"] for r in gather_runs(two_models, experiment="vec")} == {"model_1"}
    assert {r["model"] for r in gather_runs(two_models, experiment="other_*")} == {"model_2"}
    assert {r["model"] for r in gather_runs(two_models, experiment="*vec")} == {"model_1", "model_2"}
    assert gather_runs(two_models, experiment="VEC") == []  # case-sensitive, as experiment names are
    assert len(gather_runs(two_models, dataset="V")) == 3
    assert gather_runs(two_models, dataset="V2") == []


def test_unknown_metric_is_an_error_listing_the_names(two_models):
    rows = gather_runs(two_models)
    with pytest.raises(ConfigError, match=r"--metric ndcg@5, nope: .*the metrics the results have: accuracy, "
                                          r"macro_f1, roc_auc, pr_auc, map_at_k, macro_precision"):
        format_runs(rows, metrics=["accuracy", "ndcg@5", "nope"])
    # a name some row has is fine
    assert _csv_rows(format_runs(rows, metrics=["micro_f1"], fmt="csv"))[0]["micro_f1"]
    with pytest.raises(ConfigError, match="results format 'html'"):
        format_runs(rows, fmt="html")


def _result(layout, model_id, set_, experiment="fake", dataset="D", **metrics):
    write_json(layout.result(model_id, set_), {"model": model_id, "experiment": experiment, "set": set_,
                                               "evaluation": "multiclass", "k": 500, **metrics,
                                               "extra": {"dataset": dataset, "fact": "class", "dim": 3}})


def test_order_by_model_number_and_models_without_a_folder(tmp_path):
    layout = DataLayout(tmp_path)
    for model_id, set_ in [("model_10", "test"), ("model_2", "test"), ("model_2", "val"), ("model_1", "train")]:
        _result(layout, model_id, set_, accuracy=0.5)
    write_json(layout.results_dir / "summary.json", {"not": "a result"})  # no {model}_{set}.json name
    # model_2 trained before epochs were timed: epochs shown, time blank (not 0)
    write_json(layout.training_state("model_2"), {"epoch": 3, "history": {}})
    # model_10 resumed after the change: 2 of its 4 epochs timed, so its total is unknown too
    write_json(layout.training_state("model_10"), {"epoch": 4, "epoch_seconds": [1.0, 2.0]})
    rows = gather_runs(layout)
    assert [(r["model"], r["set"]) for r in rows] == [("model_1", "train"), ("model_2", "val"), ("model_2", "test"),
                                                      ("model_10", "test")]
    assert [(r["epochs"], r["training_seconds"], r["inputs"]) for r in rows] == \
        [(None, None, ""), (3, None, ""), (3, None, ""), (4, None, "")]
    out = _csv_rows(format_runs(rows, fmt="csv"))
    assert [(r["epochs"], r["training_seconds"]) for r in out] == [("", ""), ("3", ""), ("3", ""), ("4", "")]
    assert format_runs(rows).splitlines()[2].split()[-2:] == ["0.5000", "3"]  # no time cell at all


def test_training_time_format(tmp_path):
    layout = DataLayout(tmp_path)
    for n, seconds in [(1, [40.0, 43.2]), (2, [4.5]), (3, [3000.0, 720.0])]:
        _result(layout, f"model_{n}", "test", accuracy=1.0)
        write_json(layout.training_state(f"model_{n}"), {"epoch": len(seconds), "epoch_seconds": seconds})
    lines = format_runs(gather_runs(layout), fmt="md").splitlines()[2:]
    assert [line.split(" | ")[-1] for line in lines] == ["1m 23s |", "4.5s |", "1h 02m |"]


def test_recommendation_cut_offs(tmp_path):
    layout = DataLayout(tmp_path)
    at = {cut: {"precision": p, "ndcg": g, "adiv": 0.1} for cut, p, g in
          [("1", 0.4, 0.4), ("3", 0.3, 0.35), ("5", 0.25, 0.3), ("500", 0.01, 0.2)]}
    write_json(layout.result("model_1", "test"),
               {"model": "model_1", "experiment": "rec", "set": "test", "evaluation": "recommendation", "k": 500,
                "n_users": 40, "map_at_k": 0.12, "precision": 0.01, "roc_auc": 0.7, "pr_auc": 0.2, "at": at,
                "extra": {"dataset": "DUMMY", "fact": "als", "dim": 4}})
    rows = gather_runs(layout)
    # P and nDCG at the largest cut-off besides MAP's k (the seed's 5, not 500); counts are no metric
    out = _csv_rows(format_runs(rows, fmt="csv"))[0]
    assert list(out)[5:-2] == ["roc_auc", "pr_auc", "map_at_k", "precision@5", "ndcg@5"]
    assert (out["precision@5"], out["ndcg@5"], out["map_at_k"]) == ("0.25", "0.3", "0.12")
    assert "n_users" not in rows[0]["metrics"] and "k" not in rows[0]["metrics"]
    wanted = format_runs(rows, metrics=["precision@500", "adiv@3"], fmt="csv")
    assert _csv_rows(wanted)[0]["precision@500"] == "0.01" and _csv_rows(wanted)[0]["adiv@3"] == "0.1"


def test_cli_results(two_models, capsys):
    before = _snapshot(two_models.root)
    assert main(["results", "--data-dir", str(two_models.root), "--format", "csv", "--metric", "roc_auc",
                 "--metric", "accuracy", "--experiment", "other_*"]) == 0
    rows = _csv_rows(capsys.readouterr().out)
    result = read_json(two_models.result("model_2", "test"))
    assert [(r["model"], float(r["roc_auc"]), float(r["accuracy"])) for r in rows] == \
        [("model_2", result["roc_auc"], result["accuracy"])]
    assert main(["results", "--data-dir", str(two_models.root), "--metric", "bogus"]) == 2
    assert "--metric bogus" in capsys.readouterr().err
    assert _snapshot(two_models.root) == before  # reads only


def test_cli_results_on_an_empty_root(tmp_path, capsys):
    root = tmp_path / "empty"
    assert main(["results", "--data-dir", str(root)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no evaluated model under {DataLayout(root).results_dir}" in captured.err
    assert DataLayout(root).cli("run", "EXPERIMENT") in captured.err
    assert not root.exists()  # nothing made
    assert main(["results", "--data-dir", str(root), "--dataset", "X"]) == 0
    assert "no evaluated model matching --dataset X under" in capsys.readouterr().err


def test_parser_formats_are_the_library_s():
    results = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["results"]
    assert tuple(next(a for a in results._actions if a.dest == "format").choices) == FORMATS

