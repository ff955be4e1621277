"""The report pages: one model's (``tartarus report model_N``) and several models side by side
(``tartarus report --compare``). Each function reads the data root and returns HTML; nothing is written.

A part a model lacks the files for (predictions deleted, a model from before training times were
kept) becomes a note on the page naming the command that makes it; the rest of the page stands.
"""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..errors import MissingInput
from ..layout import DataLayout
from . import figures as F
from .gather import format_duration, gather_model
from .page import best_cells, config_html, esc, figure_html, metric_rows, page, table_html

GENERATOR = f"made by tartarus {__version__}"
N_SAMPLE_USERS = 5
N_RECOMMENDED = 10


def _note(text):
    return f'<p class="note">{esc(text)}</p>'


def _header(facts, level="h1"):
    meta = [f"dataset {facts.dataset}", f"evaluation {facts.evaluation}", f"inputs {facts.inputs}",
            f"backend {facts.backend or '?'}", f"{facts.epochs} epochs"]
    if facts.state and facts.state.get("best_epoch"):
        meta[-1] += f" (best {facts.state['best_epoch']})"
    if facts.training_seconds is not None:
        meta.append(f"trained in {format_duration(facts.training_seconds)}")
    if facts.finished:
        meta.append(f"finished {facts.finished}")
    text = f"<{level}>{esc(facts.model_id)} · {esc(facts.name)}</{level}><p class=\"meta\">{esc(' · '.join(meta))}</p>"
    if facts.experiment.get("description"):
        text += f"<p>{esc(facts.experiment['description'])}</p>"
    return text


# ------------------------------------------------------------------------------ evaluation parts
def _truth_and_scores(layout, model_id, set_, experiment):
    """``(y_true (n, c) bool, scores (n, c), labels)`` of a classification model's saved predictions."""
    from ..evaluate import saved_scores
    scores, y_true, labels, _ = saved_scores(layout, model_id, set_, experiment)
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    y = np.asarray(y_true)
    if y.ndim == 1 and scores.shape[1] > 1:  # class labels
        y = np.eye(scores.shape[1], dtype=bool)[y.astype(int)]
    y = y.reshape(len(scores), -1) > 0
    return y, scores, labels or [str(j) for j in range(scores.shape[1])]


def _per_class_table(result):
    per = result.get("per_class") or []
    if not per:
        return ""
    tagging = result.get("evaluation") == "multilabel"
    if tagging:  # the tag-wise table, best tags first (a tag without AUC last)
        per = sorted(per, key=lambda p: (p.get("roc_auc") is None, -(p.get("roc_auc") or 0.0)))
    cols = ["tag" if tagging else "class", "support", "precision", "recall", "F1", "ROC-AUC", "PR-AUC"]
    keys = ["label", "support", "precision", "recall", "f1", "roc_auc", "pr_auc"]
    if "threshold" in per[0]:
        cols.append("threshold")
        keys.append("threshold")
    rows = [[p.get(k) for k in keys] for p in per]
    heading = "<h3>Tag-wise results, by ROC-AUC</h3>" if tagging else "<h3>Per-class results</h3>"
    return heading + table_html(cols, rows, text_columns=(0,), css_class="scroll" if len(rows) > 15 else "")


def _classification_set(layout, facts, experiment, set_, result):
    parts = [table_html(["metric", "value"], metric_rows(result), text_columns=(0,))]
    how = result.get("thresholds")
    if how and how.get("chosen_on"):
        parts.append(_note(f"decision thresholds: {how['mode']}, at maximum F1 on {how['chosen_on']}"))
    if result.get("auc_skipped"):
        parts.append(_note("AUC left out for classes without positives or negatives: "
                           + ", ".join(result["auc_skipped"])))
    if result.get("missing_items"):
        parts.append(_note(f"{len(result['missing_items'])} item(s) without a prediction (no patches) are "
                           f"left out: {', '.join(result['missing_items'][:10])}"))
    parts.append(_per_class_table(result))
    parts = ['<div class="row"><div>' + "".join(parts) + "</div>"]
    figs = []
    if result.get("confusion_matrix") is not None:
        labels = result.get("confusion_labels") or result.get("labels")
        figs.append(figure_html(F.confusion_figure(result["confusion_matrix"], labels,
                                                   title=f"{facts.model_id} on {set_}"),
                                "confusion matrix", "Confusion matrix (rows: true class, columns: predicted).",
                                size="narrow"))
    parts.append("".join(figs) + "</div>")  # the tables and the confusion matrix side by side
    figs = []
    try:
        y, scores, labels = _truth_and_scores(layout, facts.model_id, set_, experiment)
        figs.append(figure_html(F.roc_pr_curves(y, scores, labels, title=f"{facts.model_id} on {set_}"),
                                "ROC and precision-recall curves",
                                "Per-class ROC (left) and precision-recall (right) curves, one-vs-rest, "
                                "with the micro average."))
    except MissingInput as exc:
        figs.append(_note(f"no ROC or PR curves: {exc}"))
    parts += figs
    return "".join(parts)


def _recommendation_set(layout, facts, experiment, set_, result):
    from ..evaluate import recommendation_inputs
    from .ranking import ranking_curves, sample_recommendations

    baselines = result.get("baselines") or {}
    columns = [facts.model_id, *baselines]
    reports = [result, *baselines.values()]
    labelled = [metric_rows(r) for r in reports]
    rows = [[label] + [dict(rows).get(label) for rows in labelled] for label, _ in labelled[0]]
    parts = [f"<p>{result.get('n_users', '?')} users, {result.get('n_items', '?')} items; protocol "
             f"{esc(result.get('protocol') or experiment.evaluating.protocol)}.</p>",
             table_html(["metric", *columns], rows, best=best_cells(rows), text_columns=(0,))]
    try:
        inputs = recommendation_inputs(layout, facts.model_id, set_, experiment)  # read once for both
        curves = ranking_curves(layout, facts.model_id, set_, experiment, inputs=inputs)
        parts.append(figure_html(F.ranking_curves_figure(curves, title=f"{facts.model_id} on {set_}"),
                                 "MAP@k and P@k curves",
                                 "MAP@k and P@k over the cut-off k, beside the random and popularity baselines "
                                 "(popularity ranks by the held-out listeners themselves: an upper bound for a "
                                 "non-personalised ranking)."))
        sample = sample_recommendations(layout, facts.model_id, set_, experiment, n_users=N_SAMPLE_USERS,
                                        n=N_RECOMMENDED, inputs=inputs)
        parts.append(_recommendation_sample(sample))
    except MissingInput as exc:
        parts.append(_note(f"no ranking curves: {exc}"))
    return "".join(parts)


def _recommendation_sample(sample):
    if not sample:
        return ""
    rows = []
    for user in sample:
        ranked = ", ".join(f"<b>{esc(r['item'])}</b> ✓" if r["hit"] else esc(r["item"]) for r in user["recommended"])
        rows.append(f"<tr><td class=\"text\">{esc(user['user'])}</td><td class=\"text\">"
                    f"{esc(', '.join(map(str, user['held_out'][:10])))}</td><td class=\"text\">{ranked}</td></tr>")
    return ("<h3>Recommended items for a sample of users</h3><p class=\"meta\">Top items by predicted score; "
            "held-out items found are bold with ✓.</p><table><thead><tr><th class=\"text\">user</th>"
            "<th class=\"text\">held-out items</th><th class=\"text\">recommended</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _evaluation_section(layout, facts, experiment):
    if not facts.results:
        return _note(f"not evaluated yet: {layout.cli('evaluate', facts.model_id)}")
    parts = []
    for set_, result in facts.results.items():
        parts.append(f"<h3>{esc(set_)} split · {result.get('n_items', '?')} items</h3>")
        if result.get("evaluation") == "recommendation":
            parts.append(_recommendation_set(layout, facts, experiment, set_, result))
        else:
            parts.append(_classification_set(layout, facts, experiment, set_, result))
    return "".join(parts)


def _embedding_section(layout, facts, set_, layer, projection):
    from .embedding import embedding_map

    try:
        emb = embedding_map(layout, facts.model_id, set_, layer=layer, method=projection)
    except MissingInput as exc:
        return _note(f"no embedding map: {exc}")
    titles = {"tsne": "t-SNE", "pca": "PCA", "umap": "UMAP"}
    method = titles[emb.method]
    if emb.method != projection:
        method += f" (too few items for {titles[projection]})"
    shown = f"{len(emb.item_ids)} of {emb.n_items}" if len(emb.item_ids) < emb.n_items else f"{emb.n_items}"
    by = f", coloured by {emb.grouped_by}" if emb.grouped_by else ""
    fig = F.embedding_map(emb.points, emb.groups, title=f"{facts.model_id} · layer {emb.layer} · {titles[emb.method]}",
                          names=emb.item_ids)
    return figure_html(fig, "embedding map", size="medium", caption=(
                       f"Layer {emb.layer} on the {set_} split ({shown} items), projected by {method}{by}. "
                       f"Another layer: {layout.cli('report', facts.model_id, '--layer', 'LAYER')}."))


def _training_section(facts):
    if not facts.history:
        return _note("no training history recorded")
    parts = [figure_html(F.training_curves({facts.model_id: facts.history}, title=f"{facts.model_id} ({facts.name})"),
                         "training curves", "Loss per epoch on the train and validation splits.")]
    last = [(key, values[-1]) for key, values in facts.history.items() if values]
    if last:
        parts.append(table_html(["last epoch", "value"], last, text_columns=(0,)))
    return "".join(parts)


def _inputs_section(facts):
    parts = [config_html(facts.experiment)]
    manifest = facts.manifest
    if manifest:
        rows = [[i.get("path", ""), i.get("size"), (i.get("sha256") or i.get("hash") or "")[:16]]
                for i in manifest.get("inputs") or []]
        if rows:
            parts.append("<h3>Input files</h3>" + table_html(["file", "bytes", "sha256 (start)"], rows,
                                                               text_columns=(0, 2)))
        versions = manifest.get("versions") or {}
        if versions:
            parts.append("<h3>Versions</h3>" + table_html(["package", "version"], sorted(versions.items()),
                                                           text_columns=(0, 1)))
    return "".join(parts)


def model_page(layout, model_id, layer=None, projection="tsne", embedding=True):
    """The HTML of ``model_id``'s report: header, evaluation (metric tables, per-class or tag-wise table,
    confusion matrix, ROC and PR curves; for recommendation the baselines, MAP@k and P@k curves and
    a sample of recommendations), embedding map of ``layer`` on the test split (``embedding``),
    training curves, the resolved experiment and its input files."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    facts = gather_model(layout, model_id)
    experiment = facts.record.load_experiment()
    sections = [("evaluation", "Evaluation", _evaluation_section(layout, facts, experiment))]
    if embedding:
        set_ = "test" if layout.items_index("test", facts.dataset).exists() else next(iter(facts.results), "test")
        sections.append(("embedding", "Embedding map", _embedding_section(layout, facts, set_, layer, projection)))
    sections += [("training", "Training", _training_section(facts)),
                 ("experiment", "Experiment and inputs", _inputs_section(facts))]
    return page(f"{model_id} · {facts.name} · tartarus", _header(facts), sections, GENERATOR)


# ------------------------------------------------------------------------------ comparison
def comparison_page(layout, model_ids):
    """The HTML of several models side by side: a table of the models, each evaluated split's metrics
    (one column a model, the best bold), the training curves overlaid, and each model's curves
    (ROC/PR or MAP@k/P@k) and confusion matrix in a grid."""
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    facts = [gather_model(layout, m) for m in model_ids]
    experiments = {f.model_id: f.record.load_experiment() for f in facts}
    overview = [[f.model_id, f.name, f.dataset, f.evaluation, f.inputs, f.epochs,
                 format_duration(f.training_seconds)] for f in facts]
    sections = [("models", "Models", table_html(["model", "experiment", "dataset", "evaluation", "inputs", "epochs",
                                                  "training time"], overview, text_columns=(0, 1, 2, 3, 4, 6)))]
    metrics = []
    for set_ in dict.fromkeys(s for f in facts for s in f.results):
        labelled = [dict(metric_rows(f.results[set_])) if set_ in f.results else {} for f in facts]
        columns = list(model_ids)
        evaluated = [f for f in facts if set_ in f.results]
        if (len({f.dataset for f in evaluated}) == 1
                and all(f.results[set_].get("evaluation") == "recommendation" for f in evaluated)):
            # one dataset's held-out users: the baselines are the same for every model, shown once
            baselines = evaluated[0].results[set_].get("baselines") or {}
            columns += list(baselines)
            labelled += [dict(metric_rows(b)) for b in baselines.values()]
        names = list(dict.fromkeys(name for rows in labelled for name in rows))
        rows = [[name] + [rows.get(name) for rows in labelled] for name in names]
        metrics.append(f"<h3>{esc(set_)} split</h3>"
                       + table_html(["metric", *columns], rows, best=best_cells(rows), text_columns=(0,)))
    sections.append(("metrics", "Metrics", "".join(metrics) or _note("none of these models is evaluated yet")))
    histories = {f"{f.model_id} ({f.name})": f.history for f in facts if f.history}
    if histories:
        sections.append(("training", "Training curves", figure_html(
            F.training_curves(histories, title="training curves"), "training curves",
            "Loss per epoch, train (solid) and validation (dashed), one colour a model.")))
    curves = []
    ranked = _ranking_comparison(layout, facts, experiments)
    if ranked:
        curves.append(ranked)
    for f in facts:
        for set_, result in f.results.items():
            if set_ != "test" and "test" in f.results:
                continue  # the test split's curves only, when there is one
            if not (ranked and result.get("evaluation") == "recommendation"):
                curves.append(_model_curves(layout, f, experiments[f.model_id], set_, result))
    if curves:
        sections.append(("curves", "Curves", "".join(curves)))
    title = "comparison · " + ", ".join(model_ids)
    header = f"<h1>{esc(' vs '.join(model_ids))}</h1><p class=\"meta\">{esc(', '.join(f.name for f in facts))}</p>"
    return page(f"{title} · tartarus", header, sections, GENERATOR)


def _ranking_comparison(layout, facts, experiments, set_="test"):
    """One figure of the recommendation models' MAP@k and P@k on ``set_``, with the baselines, when
    they are two or more and rank the same users (one dataset); else "" (each model its own figure)."""
    from .ranking import ranking_curves

    rec = [f for f in facts if (f.results.get(set_) or {}).get("evaluation") == "recommendation"]
    if len(rec) < 2 or len({f.dataset for f in rec}) > 1:
        return ""
    try:
        curves = [ranking_curves(layout, f.model_id, set_, experiments[f.model_id]) for f in rec]
    except MissingInput as exc:
        return _note(f"no ranking curves: {exc}")
    if any(c["k"] != curves[0]["k"] or c["n_users"] != curves[0]["n_users"] for c in curves):
        return ""
    return figure_html(F.ranking_curves_figure(curves, title=f"on {set_}"), "ranking curves",
                       f"MAP@k and P@k over the cut-off k on the {set_} split, each model beside the random and "
                       f"popularity baselines of the same users.")


def _model_curves(layout, facts, experiment, set_, result):
    """One model's figures for the comparison grid."""
    label = f"{facts.model_id} ({facts.name}) on {set_}"
    try:
        if result.get("evaluation") == "recommendation":
            from .ranking import ranking_curves
            return figure_html(F.ranking_curves_figure(ranking_curves(layout, facts.model_id, set_, experiment),
                                                       title=label), "ranking curves", label)
        y, scores, labels = _truth_and_scores(layout, facts.model_id, set_, experiment)
        parts = [figure_html(F.roc_pr_curves(y, scores, labels, title=label), "ROC and PR curves", label)]
        if result.get("confusion_matrix") is not None:
            parts.append(figure_html(F.confusion_figure(result["confusion_matrix"], result.get("confusion_labels")
                                                        or result.get("labels"), title=label),
                                     "confusion matrix", label))
        return f'<div class="pair">{"".join(parts)}</div>'
    except MissingInput as exc:
        return _note(f"{label}: {exc}")
