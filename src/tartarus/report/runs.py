"""The results of every evaluated model of a data root as one table (``tartarus results``); writes nothing.

:func:`gather_runs` reads one row per results JSON (one model on one split), joined with the
model's record (inputs) and training state (epochs, training time); :func:`format_runs` lays the
rows out as aligned text, GitHub markdown, CSV or a LaTeX ``tabular`` (booktabs rules, three
decimals, as the papers print their tables).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
import numbers

from ..errors import ConfigError
from ..fileio import read_json
from ..layout import SETS, DataLayout
from ..store import MODEL_ID, has_record, read_record
from .gather import format_duration, inputs_label, training_time

FORMATS = ("table", "md", "csv", "latex")
DEFAULT_METRICS = ("accuracy", "macro_f1", "roc_auc", "pr_auc", "map_at_k")
"""Shown by default when some row has them; ``precision@C`` and ``ndcg@C`` at the largest cut-off
``C`` of the rows besides MAP's ``k`` follow (recommendation: P and nDCG at the seed's 1, 3, 5)."""
NOT_METRICS = frozenset({"n_items", "n_classes", "n_users", "k", "threshold"})
"""Numbers of a results JSON that count or configure rather than score."""
TEXT_COLUMNS = ("model", "experiment", "inputs", "dataset", "set")


def _number(value):
    """``value`` as a float when it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def result_metrics(doc):
    """``{name: float or None}`` of a results JSON (:func:`tartarus.evaluate.write_results`).

    Every top-level number that scores (``accuracy``, ``macro_f1``, ``roc_auc``, ``map_at_k``, ...;
    not the counts of :data:`NOT_METRICS`), and the metrics at cut-offs as ``{metric}@{cut}``: a
    recommendation's ``at`` (``precision@5``, ``ndcg@5``, ``adiv@5``) and a multilabel model's
    ``precision_at`` (``precision@3``). A metric the evaluation could not compute (JSON null, e.g.
    ``map_at_k`` of a binary tagger) is None.
    """
    metrics = {}
    for key, value in doc.items():
        if key in NOT_METRICS:
            continue
        if value is None and key in DEFAULT_METRICS:
            metrics[key] = None
        elif (number := _number(value)) is not None:
            metrics[key] = number
    for cut, at in (doc.get("at") or {}).items():
        for key, value in (at or {}).items():
            metrics[f"{key}@{cut}"] = _number(value)
    for cut, value in (doc.get("precision_at") or {}).items():
        metrics[f"precision@{cut}"] = _number(value)
    return metrics


def _model_number(model_id):
    """The sort key of a model id: ``model_2`` before ``model_10``; other names after, by name."""
    match = MODEL_ID.match(model_id)
    return (0, int(match.group(1)), "") if match else (1, 0, model_id)


def _read_optional(path):
    return read_json(path) if path.exists() else None


def gather_runs(layout, experiment=None, dataset=None):
    """One row per evaluated (model, split) of ``layout``, read from ``results/{model}_{set}.json``.

    experiment : a glob (``fnmatch``, case-sensitive) on the experiment name, e.g. ``"dummy_*"``;
        None keeps all.
    dataset : keep only the rows of this dataset (exact name); None keeps all.

    Each row is a dict: ``model``, ``experiment``, ``inputs`` (the record's input suffixes joined
    by ``+``, ``patches`` for none, "" when the record is gone), ``dataset``, ``set``, ``evaluation``,
    ``k`` (MAP's cut-off), ``metrics`` (:func:`result_metrics`), ``epochs`` (from
    ``training_state.json``, None without one), ``training_seconds`` (the sum of the state's
    ``epoch_seconds``; None for a model trained before epochs were timed, or when they cover only
    some of its epochs, as after resuming such a model).
    A model whose folder was deleted is still listed, from its results JSON alone. Rows are sorted
    by model number (``model_2`` before ``model_10``), then split (train, val, test). Nothing is
    written.
    """
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    rows = []
    for model_id, set_, path in layout.result_files():
        doc = read_json(path)
        model_id, set_ = doc.get("model") or model_id, doc.get("set") or set_
        record = read_record(layout, model_id) if has_record(layout, model_id) else None
        saved = record.experiment if record else {}
        name = doc.get("experiment") or saved.get("name") or ""
        ds = (doc.get("extra") or {}).get("dataset") or (saved.get("dataset") or {}).get("dataset") or ""
        if experiment is not None and not fnmatch.fnmatchcase(name, experiment):
            continue
        if dataset is not None and ds != dataset:
            continue
        epochs, seconds = _training(layout, model_id)
        rows.append({"model": model_id, "experiment": name, "inputs": inputs_label(record.suffixes) if record else "",
                     "dataset": ds, "set": set_, "evaluation": doc.get("evaluation") or "", "k": doc.get("k"),
                     "metrics": result_metrics(doc), "epochs": epochs, "training_seconds": seconds})
    set_order = {s: i for i, s in enumerate(SETS)}
    rows.sort(key=lambda r: (_model_number(r["model"]), set_order.get(r["set"], len(SETS)), r["set"]))
    return rows


def _training(layout, model_id):
    """``(epochs, training seconds)`` of a model from its training state; None where unknown."""
    return training_time(_read_optional(layout.training_state(model_id)))


def available_metrics(rows):
    """The metric names the rows have (with a value in some row): :data:`DEFAULT_METRICS` first,
    then the rest by name."""
    names = {name for row in rows for name, value in row["metrics"].items() if value is not None}
    return [m for m in DEFAULT_METRICS if m in names] + sorted(names - set(DEFAULT_METRICS), key=_metric_order)


def _metric_order(name):
    metric, _, cut = name.partition("@")
    return (metric, int(cut) if cut.isdigit() else -1, cut)


def default_metrics(rows):
    """The columns :func:`format_runs` shows without ``metrics``: those of :data:`DEFAULT_METRICS`
    the rows have, then ``precision@C`` and ``ndcg@C`` at the largest cut-off ``C`` they have other
    than MAP's ``k`` (a recommendation's ``at`` holds ``k`` = 500 too; the papers print P@5)."""
    names = available_metrics(rows)
    chosen = [m for m in DEFAULT_METRICS if m in names]
    cuts = [int(cut) for row in rows for name, value in row["metrics"].items()
            for metric, _, cut in [name.partition("@")]
            if value is not None and metric in ("precision", "ndcg") and cut.isdigit() and int(cut) != row.get("k")]
    if cuts:
        chosen += [m for m in (f"precision@{max(cuts)}", f"ndcg@{max(cuts)}") if m in names]
    return chosen


def format_runs(rows, metrics=None, fmt="table"):
    """The rows of :func:`gather_runs` as text.

    Columns: model, experiment, inputs, dataset, set, the metrics, epochs and training time.

    metrics : metric names (:func:`result_metrics`: ``accuracy``, ``map_at_k``, ``precision@5``
        ...); None: :func:`default_metrics`. A name no row has is a ConfigError listing the names
        the rows have.
    fmt : ``table`` (aligned text, metrics with 4 decimals, "-" for none), ``md`` (a GitHub markdown
        table), ``csv`` (full-precision numbers, training time as ``training_seconds``, empty cells
        for none) or ``latex`` (a ``tabular`` with booktabs ``\\toprule``/``\\midrule``/``\\bottomrule``,
        3 decimals, special characters escaped).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"results format {fmt!r} is not known; choose one of: {', '.join(FORMATS)}")
    have = available_metrics(rows)
    if metrics is None:
        metrics = default_metrics(rows)
    else:
        metrics = list(dict.fromkeys(metrics))
        unknown = [m for m in metrics if m not in have]
        if unknown:
            raise ConfigError(f"--metric {', '.join(unknown)}: no evaluated model here has "
                              f"{'it' if len(unknown) == 1 else 'them'}; the metrics the results have: "
                              f"{', '.join(have) or 'none'}")
    if fmt == "csv":
        return _csv(rows, metrics)
    decimals = 3 if fmt == "latex" else 4
    header = [*TEXT_COLUMNS, *metrics, "epochs", "training time"]
    body = []
    for row in rows:
        values = [row["metrics"].get(m) for m in metrics]
        cells = [_fmt_metric(v, decimals, "-" if fmt == "table" else "") for v in values]
        body.append([str(row[c]) for c in TEXT_COLUMNS] + cells
                    + ["" if row["epochs"] is None else str(row["epochs"]), format_duration(row["training_seconds"])])
    right = [False] * len(TEXT_COLUMNS) + [True] * (len(metrics) + 2)
    if fmt == "md":
        return _markdown(header, body, right)
    if fmt == "latex":
        return _latex(header, body, right)
    return _aligned(header, body, right)


def _fmt_metric(value, decimals, blank):
    if value is None or math.isnan(value):
        return blank
    return f"{value:.{decimals}f}"


def _aligned(header, body, right):
    widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(line, widths, right)).rstrip()
             for line in [header, *body]]
    return "\n".join(lines)


def _markdown(header, body, right):
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    rule = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text):
    """``text`` with LaTeX's special characters escaped (``dummy_audio`` -> ``dummy\\_audio``)."""
    return "".join(LATEX_SPECIAL.get(c, c) for c in str(text))


def _latex(header, body, right):
    spec = "".join("r" if r else "l" for r in right)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(latex_escape(c) for c in header) + " \\\\",
             "\\midrule"]
    lines += [" & ".join(latex_escape(c) for c in cells) + " \\\\" for cells in body]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def _csv(rows, metrics):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*TEXT_COLUMNS, *metrics, "epochs", "training_seconds"])
    for row in rows:
        values = [row["metrics"].get(m) for m in metrics]
        writer.writerow([row[c] for c in TEXT_COLUMNS] + ["" if v is None or math.isnan(v) else repr(v) for v in values]
                        + ["" if row["epochs"] is None else row["epochs"],
                           "" if row["training_seconds"] is None else repr(row["training_seconds"])])
    return out.getvalue().rstrip("\n")
