"""Evaluation: the metrics for an experiment's evaluation kind, and where the results go.

``evaluate_scores`` turns ground truth and predicted scores into a JSON-ready dict;
``write_results`` stores it (``results/{model}_{set}.json``, a confusion-matrix PNG and one row of
``results/results.tsv``); ``format_results`` renders it for the terminal.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

import numpy as np

from . import fileio
from . import metrics as M
from .checks import check_choice, check_int
from .config.schema import EVALUATIONS, MAP_K, PROTOCOL_CHOICES, PROTOCOLS
from .errors import ConfigError, DataMismatch

RESULTS_COLUMNS = ("model", "experiment", "set", "evaluation", "n_items", "accuracy", "macro_f1",
                   "micro_f1", "roc_auc", "pr_auc", "map_at_k", "k", "timestamp")
PRECISION_AT = (1, 3, 5)


# ------------------------------------------------------------------------------- helpers
def _num(x):
    """A JSON-friendly float: NaN becomes None."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _check_finite(name, a):
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise DataMismatch(f"{name}: expected numbers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            kind = "NaN" if np.isnan(a).any() else "infinite"
            raise DataMismatch(f"{name}: contains {int(bad.sum())} {kind} value(s) (first at index {where})")


def _prepare(y_true, y_score, evaluation):
    """Validated ``(truth, scores)``: truth (n,) labels for multiclass, else (n, c) bool; scores (n, c)."""
    t = np.asarray(y_true)
    s = np.asarray(y_score)
    _check_finite("y_true", t)
    _check_finite("y_score", s)
    if s.ndim == 1 and evaluation == "binary":
        s = s[:, None]
    if s.ndim != 2:
        raise DataMismatch(f"y_score has shape {s.shape}: expected (n_items, n_classes)")
    n, c = s.shape
    if n == 0:
        raise DataMismatch("y_score has no rows: expected at least one item")
    if evaluation == "multiclass":
        if t.shape == (n, c):
            positives = (t > 0).sum(axis=1)
            bad = np.flatnonzero(positives != 1)
            if len(bad):
                raise DataMismatch(f"y_true row {int(bad[0])} has {int(positives[bad[0]])} positive classes "
                                   f"({len(bad)} such rows): multiclass needs exactly one per item "
                                   f"(use evaluation 'multilabel' for multi-hot targets)")
            return np.argmax(t, axis=1), s
        if t.shape == (n,):
            if not np.all(np.equal(np.mod(t, 1), 0)) or t.min() < 0 or t.max() >= c:
                raise DataMismatch(f"y_true labels must be integers in range({c}) to match y_score {s.shape}")
            return t.astype(np.int64), s
        raise DataMismatch(f"y_true has shape {t.shape} but y_score has shape {s.shape}: expected y_true "
                           f"{(n, c)} (one-hot) or {(n,)} (labels)")
    if t.ndim == 1 and c == 1:
        t = t[:, None]
    if t.shape != (n, c):
        raise DataMismatch(f"y_true has shape {t.shape} but y_score has shape {s.shape}: expected y_true "
                           f"{(n, c)} (0/1 indicators)")
    return t > 0, s


def _labels(labels, c):
    if labels is None:
        return [str(i) for i in range(c)]
    labels = [str(x) for x in labels]
    if len(labels) != c:
        raise DataMismatch(f"{len(labels)} class labels given for {c} score columns: {labels[:5]}")
    return labels


# ------------------------------------------------------------------------------- evaluation
def evaluate_scores(y_true, y_score, evaluation, labels=None, k=MAP_K, threshold=0.5):
    """Metrics of predicted scores against the truth, as a JSON-ready dict.

    y_score : (n, c) scores (softmax/sigmoid outputs, or any monotone scores).
    y_true : (n, c) one-hot (multiclass) or multi-hot (multilabel, binary) 0/1 arrays such as the
        seed's ``y_{set}_class_{dim}_{ds}.npy``; for multiclass also (n,) integer labels; for binary
        with one column also (n,) 0/1 with (n,) scores.
    evaluation :
        ``multiclass`` - prediction = argmax (ties: lowest index); accuracy, macro/micro
            precision/recall/F1, the confusion matrix, per-class and macro ROC-AUC and PR-AUC
            (one-vs-rest), and MAP@k over the classes ranked per item (= mean reciprocal rank of
            the true class when k >= c).
        ``multilabel`` / ``binary`` - prediction = score >= ``threshold`` (one number, or (c,) per
            class as from :func:`M.f_max_thresholds`); accuracy (exact match of
            the whole row), macro/micro P/R/F1, per-class and macro ROC-AUC and PR-AUC over the
            classes that have positives and negatives, MAP@k and P@{1,3,5} per item over the
            classes (items without positives left out). With a single column (binary) there is
            a 2x2 confusion matrix and no ranking metrics.
        ``recommendation`` - not implemented yet.
    labels : class names (c of them), default ``"0" .. "c-1"``.

    Raises DataMismatch on shapes that do not line up (naming both) and on NaN or infinite values.
    """
    check_choice("evaluation", evaluation, EVALUATIONS)
    if evaluation == "recommendation":
        raise NotImplementedError("evaluation 'recommendation' (MAP@k over users' held-out items) "
                                  "is not implemented yet")
    k = check_int("k (evaluating.map_k)", k)
    truth, scores = _prepare(y_true, y_score, evaluation)
    n, c = scores.shape
    names = _labels(labels, c)
    res = {"evaluation": evaluation, "n_items": int(n), "n_classes": int(c), "labels": names}

    if evaluation == "multiclass":
        pred = np.argmax(scores, axis=1)
        onehot = np.eye(c, dtype=bool)[truth]
        res["accuracy"] = M.accuracy(truth, pred)
        per = M.precision_recall_f1(truth, pred, None, n_classes=c)
        for avg in ("macro", "micro"):
            prf = M.precision_recall_f1(truth, pred, avg, n_classes=c)
            res.update({f"{avg}_{m}": prf[m] for m in ("precision", "recall", "f1")})
        res["confusion_matrix"] = M.confusion_matrix(truth, pred, c).tolist()
        support = onehot.sum(axis=0)
    else:
        onehot = truth
        thr = np.asarray(threshold, dtype=np.float64)
        if thr.ndim == 1 and thr.shape != (c,):
            raise DataMismatch(f"{len(thr)} thresholds given for {c} score columns: expected one per class")
        if thr.ndim > 1:
            raise DataMismatch(f"threshold: expected a number or (c,) per-class values, got shape {thr.shape}")
        pred = scores >= thr
        res["threshold"] = float(thr) if thr.ndim == 0 else thr.tolist()
        res["accuracy"] = M.accuracy(truth, pred)
        per = M.precision_recall_f1(truth, pred, None)
        for avg in ("macro", "micro"):
            prf = M.precision_recall_f1(truth, pred, avg)
            res.update({f"{avg}_{m}": prf[m] for m in ("precision", "recall", "f1")})
        support = truth.sum(axis=0)
        if c == 1:
            res["confusion_matrix"] = M.confusion_matrix(truth[:, 0].astype(int), pred[:, 0].astype(int), 2).tolist()
            res["confusion_labels"] = [f"not {names[0]}", names[0]]
        else:
            res["confusion_matrix"] = None

    auc = M.roc_auc(onehot, scores)
    ap = M.pr_auc(onehot, scores)
    res["roc_auc"] = _num(auc.macro)
    res["pr_auc"] = _num(ap.macro)
    res["auc_skipped"] = [names[j] for j in auc.skipped]

    res["k"] = int(k)
    if evaluation == "multiclass":
        res["map_at_k"] = M.map_at_k(onehot, scores, k)
    elif c > 1:
        res["map_at_k"] = _num(M.map_at_k(truth, scores, k, skip_empty=True))
        with_pos = truth.any(axis=1)
        res["precision_at"] = {str(kk): (M.precision_at_k(truth[with_pos], scores[with_pos], kk)
                                         if with_pos.any() else None)
                               for kk in PRECISION_AT if kk <= c}
    else:
        res["map_at_k"] = None

    res["per_class"] = [
        {"label": names[j], "support": int(support[j]), "precision": float(per["precision"][j]),
         "recall": float(per["recall"][j]), "f1": float(per["f1"][j]),
         "roc_auc": _num(auc.per_class[j]), "pr_auc": _num(ap.per_class[j])}
        for j in range(c)]
    if evaluation != "multiclass" and np.ndim(res["threshold"]) == 1:
        for j, row in enumerate(res["per_class"]):
            row["threshold"] = res["threshold"][j]
    return res


# ------------------------------------------------------------------------------- writing
def _now():
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _cell(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.4f}"
    return str(x)


def write_results(layout, model_id, set_, results, experiment_name="", extra=None, timestamp=None,
                  plot=True):
    """Store ``results`` (from :func:`evaluate_scores`) of model ``model_id`` on split ``set_``.

    Writes ``layout.result(model_id, set_)`` (JSON: the results plus model, experiment, set,
    timestamp and ``extra``), the confusion matrix as a PNG at ``layout.confusion_plot(...)`` when
    there is one and ``plot``, and appends one row to ``layout.results_table()`` (header on the
    first write). Returns ``{"json": path, "table": path, "confusion_plot": path or None}``.
    """
    timestamp = timestamp or _now()
    doc = {"model": model_id, "experiment": experiment_name, "set": set_, "timestamp": timestamp,
           **results}
    if extra is not None:
        doc["extra"] = extra
    json_path = layout.result(model_id, set_)
    fileio.write_json(json_path, doc)

    plot_path = None
    if plot and results.get("confusion_matrix") is not None:
        plot_path = layout.confusion_plot(model_id, set_)
        save_confusion_plot(plot_path, results["confusion_matrix"],
                            results.get("confusion_labels") or results.get("labels"),
                            title=f"{model_id} ({experiment_name or 'experiment'}) on {set_}")

    row = {"model": model_id, "experiment": experiment_name, "set": set_,
           "evaluation": results.get("evaluation"), "n_items": results.get("n_items"),
           "accuracy": results.get("accuracy"), "macro_f1": results.get("macro_f1"),
           "micro_f1": results.get("micro_f1"), "roc_auc": results.get("roc_auc"),
           "pr_auc": results.get("pr_auc"), "map_at_k": results.get("map_at_k"), "k": results.get("k"),
           "timestamp": timestamp}
    table = layout.results_table()
    fileio.append_tsv_row(table, RESULTS_COLUMNS, [_cell(row[col]) for col in RESULTS_COLUMNS])
    return {"json": json_path, "table": table, "confusion_plot": plot_path}


def save_confusion_plot(path, matrix, labels=None, title=""):
    """A labelled confusion-matrix heat map (rows: true, columns: predicted) as PNG, atomically
    (drawn by :func:`tartarus.report.figures.confusion_figure`)."""
    from .report.figures import confusion_figure, save_png

    return save_png(confusion_figure(matrix, labels, title=title), path, dpi=100)


# ------------------------------------------------------------------------------- trained models
def _experiment_of(layout, model_id):
    """The Experiment of a trained model, from its record (the Keras model itself is not loaded)."""
    from .store import read_record
    return read_record(layout, model_id).load_experiment()


def saved_scores(layout, model_id, set_, experiment):
    """``(scores, y_true, labels, missing)`` of ``model_id``'s saved predictions on ``set_``, rows in
    the split's order without the items that have no prediction (listed in ``missing``)."""
    ds = experiment.dataset
    split_ids = fileio.read_items_index(layout.items_index(set_, ds.dataset))
    aligned, missing = _aligned_predictions(layout, model_id, set_, split_ids)
    if ds.fact != "class" and layout.class_factors(ds.fact, ds.dim, ds.dataset).exists():
        # a model of class factors (the cosine / PMI setting): a class scores by its cosine with
        # the predicted vector, and the truth is the class indicator matrix
        classes = np.asarray(fileio.load_npy(layout.class_factors(ds.fact, ds.dim, ds.dataset), finite=True),
                             np.float64)
        aligned = class_scores(aligned, classes)
        y_path = layout.y(set_, "class", len(classes), ds.dataset)
    else:
        y_path = layout.y(set_, ds.fact, ds.dim, ds.dataset)
    y = fileio.load_npy(y_path, finite=True)
    if len(split_ids) != len(y):
        raise DataMismatch(f"{layout.items_index(set_, ds.dataset)} has {len(split_ids)} ids but "
                           f"{y_path} has {len(y)} rows")
    absent = set(missing)
    rows = [i for i, item in enumerate(split_ids) if item not in absent]
    scores, y_true = aligned[rows], y[rows]
    labels = None
    label_file = layout.genre_labels(ds.dataset)
    if label_file.exists():
        names = fileio.read_lines(label_file)
        labels = names if len(names) == np.asarray(scores).reshape(len(scores), -1).shape[1] else None
    return scores, y_true, labels, missing


def decision_thresholds(layout, model_id, experiment):
    """The multilabel decision thresholds of ``experiment.evaluating``, with where they came from.

    ``thresholds = "fixed"``: ``evaluating.threshold`` for every class. ``"per_class"`` (default) and
    ``"global"`` (the seed's ``scripts/threshold.py`` rule, but fitted on val rather than on test):
    :func:`M.f_max_thresholds` on the model's saved predictions for the ``val`` split (``tartarus
    predict MODEL -s val``); a class without a positive val item keeps ``evaluating.threshold``.
    Returns ``(threshold, info)``: a float or (c,) array, and a JSON-ready dict for the results.
    """
    ev = experiment.evaluating
    if ev.thresholds == "fixed":
        return ev.threshold, {"mode": "fixed", "chosen_on": None}
    ds = experiment.dataset
    if not layout.items_index("val", ds.dataset).exists():
        raise ConfigError(f"evaluating.thresholds = {ev.thresholds!r} chooses thresholds on the val split, but "
                          f"{layout.items_index('val', ds.dataset)} does not exist; make the split or set "
                          f"evaluating.thresholds = \"fixed\" (threshold {ev.threshold})")
    scores, y_true, labels, _ = saved_scores(layout, model_id, "val", experiment)
    chosen = M.f_max_thresholds(y_true, scores, per_class=ev.thresholds == "per_class", default=ev.threshold)
    names = _labels(labels, len(chosen.values))
    info = {"mode": ev.thresholds, "chosen_on": "val", "n_items": int(len(scores)),
            "val_f1": [_num(v) for v in chosen.f1],
            "fallback": [names[j] for j in chosen.fallback], "default": ev.threshold}
    return chosen.values, info


def evaluate_saved(layout, model_id, set_, experiment=None, write=True, verbose=0):
    """Evaluate the saved predictions of ``model_id`` on ``set_`` against the split's targets.

    Reads ``layout.prediction(model_id, set_)`` with its index (written by ``tartarus predict``),
    ``layout.y(set_, fact, dim, ds)`` aligned with ``layout.items_index(set_, ds)`` and, when it has
    ``dim`` lines, ``layout.genre_labels(ds)`` for class names. Items without a prediction (no
    patches) are left out and listed under ``missing_items``. A multilabel experiment's P/R/F use
    the thresholds of :func:`decision_thresholds` (``results["thresholds"]`` says how they were
    chosen, ``results["threshold"]`` holds them). Returns the results dict (after writing it with
    :func:`write_results` when ``write``).
    """
    experiment = experiment or _experiment_of(layout, model_id)
    ds = experiment.dataset
    scores, y_true, labels, missing = saved_scores(layout, model_id, set_, experiment)
    threshold, info = 0.5, None
    if ds.evaluation == "multilabel":
        threshold, info = decision_thresholds(layout, model_id, experiment)
    results = evaluate_scores(y_true, scores, ds.evaluation, labels=labels, k=experiment.evaluating.map_k,
                              threshold=threshold)
    if info is not None:
        results["thresholds"] = info
    results["missing_items"] = missing
    if write:
        write_results(layout, model_id, set_, results, experiment_name=experiment.name,
                      extra={"dataset": ds.dataset, "fact": ds.fact, "dim": ds.dim})
    if verbose:
        print(format_results({"model": model_id, "experiment": experiment.name, "set": set_, **results}))
    return results


def class_scores(predicted, class_factors):
    """Cosine similarity of each predicted vector with each class factor: ``(n, c)``.

    predicted : (n, d), NaN rows (items without a prediction) stay NaN; class_factors : (c, d).
    """
    if predicted.shape[1] != class_factors.shape[1]:
        raise DataMismatch(f"predictions have {predicted.shape[1]} columns but the class factors "
                           f"{class_factors.shape[1]}: expected the same factor dimension")
    unit = class_factors / np.maximum(np.linalg.norm(class_factors, axis=1, keepdims=True), 1e-12)
    pred = predicted / np.maximum(np.linalg.norm(predicted, axis=1, keepdims=True), 1e-12)
    return pred @ unit.T


def _aligned_predictions(layout, model_id, set_, split_ids):
    """Saved predictions of ``model_id`` with rows in ``split_ids`` order (absent items: NaN rows)."""
    cmd = layout.cli("predict", model_id, "-s", set_)
    scores = np.asarray(fileio.load_npy(layout.prediction(model_id, set_), cmd), dtype=np.float64)
    pred_ids = fileio.read_lines(layout.prediction_index(model_id, set_), cmd)
    if len(pred_ids) != len(scores):
        raise DataMismatch(f"{layout.prediction_index(model_id, set_)} has {len(pred_ids)} ids but "
                           f"{layout.prediction(model_id, set_)} has {len(scores)} rows")
    in_split = set(split_ids)
    unknown = [item for item in pred_ids if item not in in_split]
    if unknown:
        raise DataMismatch(f"{layout.prediction_index(model_id, set_)}: {len(unknown)} id(s) not in the "
                           f"{set_} split's items_index, e.g. {unknown[:3]}")
    scores = scores.reshape(len(scores), -1)
    row_of = {item: i for i, item in enumerate(pred_ids)}
    out = np.full((len(split_ids), scores.shape[1]), np.nan)
    present = [i for i, item in enumerate(split_ids) if item in row_of]
    out[present] = scores[[row_of[split_ids[i]] for i in present]]
    return out, [item for item in split_ids if item not in row_of]


def recommendation_scores(item_factors, user_factors, device="cpu"):
    """Users' factors times L2-normalised predicted item factors, as :class:`M.FactorScores`
    (``scores(start, stop)`` gives a block of users; never the whole users x items matrix).
    device : ``"cpu"``, ``"accelerator"`` or ``"auto"``, see :class:`M.FactorScores`."""
    items = item_factors / np.maximum(np.linalg.norm(item_factors, axis=1, keepdims=True), 1e-12)
    return M.FactorScores(np.asarray(user_factors, dtype=np.float64), items, device=device)


class UniformScores:
    """The random baseline's scores: ``np.random.default_rng(seed).random(shape)``, computed block
    by block (``scores(start, stop)``), so the users x items matrix never exists and a block on
    a cluster worker gets the same numbers as here. PCG64 draws one 64-bit word per float64, so
    row ``start`` begins ``start * n_items`` words into the stream."""

    def __init__(self, seed, shape):
        self.seed, self.shape = seed, tuple(shape)

    def __call__(self, start, stop):
        rng = np.random.Generator(np.random.PCG64(self.seed).advance(start * self.shape[1]))
        return rng.random((stop - start, self.shape[1]))


class PopularityScores:
    """The popularity baseline's scores: every user gets ``popularity`` (n_items,), ``scores(start, stop)``."""

    def __init__(self, popularity):
        self.popularity = np.asarray(popularity)

    def __call__(self, start, stop):
        return np.broadcast_to(self.popularity, (stop - start, len(self.popularity)))


def _protocols(protocol):
    """``evaluating.protocol`` / ``--protocol`` as the ordered protocols to report (first: the headline)."""
    check_choice("protocol", protocol, PROTOCOL_CHOICES)
    return PROTOCOLS if protocol == "both" else (protocol,)


@dataclass
class RecommendationInputs:
    """What a recommendation evaluation ranks, as :func:`recommendation_inputs` reads it.

    relevance : (n_users, n_items) CSR float64, the held-out counts of the evaluated users (rows)
        for the items with a prediction (columns). users : (n_users, f) their factors.
    predicted : (n_items, f) the model's predicted item factors (not normalised), rows as the columns.
    item_ids : (n_items,) the split's item ids of the columns; missing : the split's items without
        a prediction, left out. user_rows : (n_users,) each row's position among all users
        (``layout.user_factors`` rows, ``layout.interaction_users`` lines); user_ids : the ids of
        those lines when the file is there and lists every user, else None.
    """
    relevance: object
    users: np.ndarray
    predicted: np.ndarray
    item_ids: list
    missing: list
    user_rows: np.ndarray
    user_ids: list | None = None

    def scores(self, device="cpu"):
        """The model's scores of these users, :func:`recommendation_scores`."""
        return recommendation_scores(self.predicted, self.users, device)

    def baselines(self, seed=0):
        """``{"random": UniformScores, "popularity": PopularityScores}`` of these users, as evaluated."""
        return {"random": UniformScores(seed, self.relevance.shape),
                "popularity": PopularityScores(np.asarray((self.relevance > 0).sum(axis=0)).ravel())}


def recommendation_inputs(layout, model_id, set_, experiment=None):
    """The users, items and held-out relevance of ``model_id``'s recommendation evaluation on ``set_``,
    as :class:`RecommendationInputs`; reads files, writes nothing.

    Reads ``layout.items_index(set_, ds)``, the held-out ``layout.eval_matrix(set_, ds)`` (items x
    users), the user factors and the model's saved predictions (items without one are left out of
    the candidates). Users with neither a trained factor (a zero row: no train interaction) nor a
    held-out item are no user of the evaluation under either protocol and are left out.
    """
    experiment = experiment or _experiment_of(layout, model_id)
    ds = experiment.dataset
    from .factors import check_factors_current
    check_factors_current(layout, ds.dataset, ds.fact, ds.dim)  # held-out matrix and factors from one import
    split_ids = fileio.read_items_index(layout.items_index(set_, ds.dataset))
    matrix = fileio.load_sparse(layout.eval_matrix(set_, ds.dataset),
                                layout.cli("factors", ds.dataset, "--method", ds.fact, "--dim", ds.dim))
    if matrix.shape[0] != len(split_ids):
        raise DataMismatch(f"{layout.eval_matrix(set_, ds.dataset)} has {matrix.shape[0]} item rows but "
                           f"{layout.items_index(set_, ds.dataset)} lists {len(split_ids)} items")
    users = fileio.load_npy(layout.user_factors(ds.fact, ds.dim, ds.dataset),
                            layout.cli("factors", ds.dataset, "--method", ds.fact, "--dim", ds.dim), finite=True)
    if users.shape[0] != matrix.shape[1]:
        raise DataMismatch(f"{layout.user_factors(ds.fact, ds.dim, ds.dataset)} has {users.shape[0]} users but "
                           f"{layout.eval_matrix(set_, ds.dataset)} has {matrix.shape[1]} user columns")
    predicted, missing = _aligned_predictions(layout, model_id, set_, split_ids)
    item_ids = list(split_ids)
    if missing:  # items without a prediction cannot be ranked: leave them out of the candidates
        keep = ~np.isnan(predicted).any(axis=1)
        predicted, matrix = predicted[keep], matrix[np.flatnonzero(keep)]
        item_ids = [item for item, kept in zip(split_ids, keep) if kept]
    relevance = matrix.T.tocsr().astype(np.float64)  # users x items, the held-out counts
    relevance.eliminate_zeros()
    held = M.relevant_counts(relevance) > 0
    evaluated = np.flatnonzero(held | np.any(users != 0, axis=1))
    if len(evaluated) < len(users):
        relevance, users = relevance[evaluated], users[evaluated]
    user_ids = None
    names = layout.interaction_users(ds.dataset)
    if names.exists():
        lines = fileio.read_lines(names)
        # names only when the file lists exactly the factors' users (else the rows are another import's)
        user_ids = [lines[i] for i in evaluated] if len(lines) == matrix.shape[1] else None
    return RecommendationInputs(relevance, users, predicted, item_ids, missing, evaluated, user_ids)


def evaluate_recommendation(layout, model_id, set_, experiment=None, write=True, verbose=0, seed=0,
                            protocol=None, device="cpu", block_map=None, auc=None):
    """Cold-start recommendation metrics of ``model_id``'s predicted item factors on ``set_``.

    The held-out items of ``matrix_{set}_{ds}.npz`` (items x users) are ranked for each user by
    (user factor) . (normalised predicted item factor); MAP@k, P, nDCG and ADiv at the seed's
    cut-offs 1, 3, 5 and at k (``evaluating.map_k``), ROC-AUC and PR-AUC come from
    :func:`M.ranking_reports`, chunked over users.
    protocol : ``"tartarus"`` (only users with a held-out item count), ``"seed"`` (every user with
        a trained factor or a held-out item counts, the others scoring 0, the seed's P and nDCG;
        see :func:`M.ranking_reports`) or ``"both"`` (one pass; the headline keys are ours);
        default ``evaluating.protocol``. ``results["protocols"]`` holds each protocol's report.
    device : where the model's top-k scores are computed, ``"cpu"`` (default), ``"accelerator"``
        (``keras.ops`` on the backend's device) or ``"auto"``; the metrics are the same on each
        (see :class:`M.FactorScores`).
    auc : compute ROC-AUC and PR-AUC (they rank every item of every user in float64, ~20x the
        time of MAP@k on a CPU); None: ``evaluating.ranking_auc`` (true). Without them the report
        has no ``roc_auc`` / ``pr_auc`` keys.
    block_map : None (here) or a map over blocks of users, e.g. on a Dask cluster (see
        :func:`M.ranking_reports`; ``pipeline.evaluate_trained`` makes one for ``--scheduler``);
        the model and both baselines are evaluated through it, with the same numbers.
    Baselines on the same users, per protocol: ``random`` (seeded uniform scores) and
    ``popularity`` (the held-out items ranked by their number of listeners in the held-out matrix
    itself: an upper bound for any non-personalised ranking, since no model can know it for new
    items).
    """
    experiment = experiment or _experiment_of(layout, model_id)
    k = experiment.evaluating.map_k
    auc = experiment.evaluating.ranking_auc if auc is None else bool(auc)
    protocols = _protocols(protocol or experiment.evaluating.protocol)
    ds = experiment.dataset
    inputs = recommendation_inputs(layout, model_id, set_, experiment)
    relevance, missing = inputs.relevance, inputs.missing

    def report(scores):
        return M.ranking_reports(relevance, scores, k=k, protocols=protocols, block_map=block_map, with_auc=auc)

    reports = report(inputs.scores(device))
    baselines = {name: report(scores) for name, scores in inputs.baselines(seed).items()}
    per_protocol = {name: {**reports[name], "baselines": {b: baselines[b][name] for b in baselines}}
                    for name in protocols}
    head = per_protocol[protocols[0]]
    results = {"evaluation": "recommendation", "k": k, "n_items": int(relevance.shape[1]), **head,
               "protocols": per_protocol, "missing_items": missing}
    if write:
        write_results(layout, model_id, set_, results, experiment_name=experiment.name,
                      extra={"dataset": ds.dataset, "fact": ds.fact, "dim": ds.dim})
    if verbose:
        print(format_recommendation({"model": model_id, "set": set_, **results}))
    return results


def format_recommendation(results):
    """Each protocol's ranking metrics (rows), the model beside the random and popularity baselines
    (columns), as text."""
    k = results["k"]
    protocols = results.get("protocols") or {results.get("protocol", "tartarus"): results}
    lines = [f"recommendation evaluation | model {results.get('model')} | set {results.get('set')} | "
             f"{results['n_items']} items"]
    for name, rep in protocols.items():
        columns = [(results.get("model") or "model", rep)] + list((rep.get("baselines") or {}).items())
        cuts = list(rep.get("at") or {})
        metrics = [(f"MAP@{k}", lambda r: r.get("map_at_k"))]
        for key, label in (("precision", "P"), ("ndcg", "nDCG"), ("adiv", "ADiv")):
            metrics += [(f"{label}@{cut}", lambda r, key=key, cut=cut: (r.get("at") or {}).get(cut, {}).get(key))
                        for cut in cuts] or [(f"{label}@{k}", lambda r, key=key: r.get(key))]
        if "roc_auc" in rep:  # left out with --no-auc
            metrics += [("ROC-AUC", lambda r: r.get("roc_auc")), ("PR-AUC", lambda r: r.get("pr_auc"))]
        how = "users without a held-out item count as 0" if name == "seed" else "users with a held-out item"
        lines.append(f"  protocol {name}: {rep['n_users']} users ({how})")
        lines.append(f"    {'':<10}" + "".join(f"{col:>12}" for col, _ in columns))
        for label, get in metrics:
            lines.append(f"    {label:<10}" + "".join(_fmt(get(r), 12) for _, r in columns))
    return "\n".join(lines)


def sets_to_predict(layout, experiment, sets):
    """The splits whose saved predictions evaluating ``sets`` reads: ``sets``, and val for a multilabel
    experiment whose thresholds are chosen on val (when the dataset has a val split)."""
    wanted = list(sets)
    if (experiment.dataset.evaluation == "multilabel" and experiment.evaluating.thresholds != "fixed"
            and "val" not in wanted and layout.items_index("val", experiment.dataset.dataset).exists()):
        wanted.append("val")
    return wanted


def check_protocol(protocol):
    """A ``--protocol`` value (None: the experiment's), checked so that a bad one fails before any work."""
    if protocol is not None:
        _protocols(protocol)
    return protocol


def evaluate_model(layout, model_id, sets=("test",), verbose=1, protocol=None, experiment=None, device="cpu",
                   block_map=None, auc=None):
    """Evaluate the saved predictions of a trained model on each split and write the results.

    Returns ``{set: results}``; a ``recommendation`` experiment is evaluated by
    :func:`evaluate_recommendation` (``protocol``, ``device``, ``block_map``, ``auc``: see there;
    defaults ``evaluating.protocol``, ``evaluating.ranking_auc``),
    every other kind by :func:`evaluate_saved`. The predictions of :func:`sets_to_predict` must be
    saved first (``tartarus predict``; ``pipeline.evaluate_trained`` predicts, then calls this).
    """
    experiment = experiment or _experiment_of(layout, model_id)
    check_protocol(protocol)
    out = {}
    for set_ in sets:
        if experiment.dataset.evaluation == "recommendation":
            out[set_] = evaluate_recommendation(layout, model_id, set_, experiment, write=True, verbose=verbose,
                                                protocol=protocol, device=device, block_map=block_map, auc=auc)
            continue
        out[set_] = evaluate_saved(layout, model_id, set_, experiment, write=True, verbose=verbose)
    return out


# ------------------------------------------------------------------------------- display
def _fmt(x, width=8):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-".rjust(width)
    if isinstance(x, float):
        return f"{x:.4f}".rjust(width)
    return str(x).rjust(width)


def format_results(results):
    """A plain-text summary for the terminal: scalar metrics, a per-class table, the confusion matrix."""
    r = results
    lines = []
    head = [f"{r.get('evaluation', '?')} evaluation"]
    for key in ("model", "experiment", "set"):
        if r.get(key):
            head.append(f"{key} {r[key]}")
    head.append(f"{r.get('n_items', '?')} items, {r.get('n_classes', '?')} classes")
    lines.append(" | ".join(head))

    scalars = [("accuracy", "accuracy"),
               ("macro P / R / F1", ("macro_precision", "macro_recall", "macro_f1")),
               ("micro P / R / F1", ("micro_precision", "micro_recall", "micro_f1")),
               ("ROC-AUC (macro)", "roc_auc"), ("PR-AUC (macro)", "pr_auc"),
               (f"MAP@{r.get('k', 'k')}", "map_at_k")]
    for name, keys in scalars:
        if isinstance(keys, tuple):
            if not all(key in r for key in keys):
                continue
            value = " / ".join(_fmt(r[key], 0) for key in keys)
        else:
            if keys not in r:
                continue
            value = _fmt(r[keys], 0)
        lines.append(f"  {name:<18} {value}")
    for kk, v in (r.get("precision_at") or {}).items():
        lines.append(f"  {'P@' + str(kk):<18} {_fmt(v, 0)}")
    how = r.get("thresholds")
    if how and how.get("chosen_on"):
        text = f"{how['mode']}, maximum F1 on {how['chosen_on']}"
        if how.get("fallback"):
            text += f"; {how['default']} for {', '.join(how['fallback'])} (no positive there)"
        lines.append(f"  {'thresholds':<18} {text}")
    elif how:
        lines.append(f"  {'thresholds':<18} fixed {_fmt(r.get('threshold'), 0)}")
    if r.get("auc_skipped"):
        lines.append(f"  (AUC skipped for classes without positives or negatives: {', '.join(r['auc_skipped'])})")

    per = r.get("per_class") or []
    if per:
        w = max(5, *(len(p["label"]) for p in per))
        cols = ("support", "precision", "recall", "f1", "roc_auc", "pr_auc")
        cols += ("threshold",) if "threshold" in per[0] else ()
        lines.append("")
        lines.append(f"  {'class':<{w}} " + " ".join(c.rjust(9) for c in cols))
        for p in per:
            lines.append(f"  {p['label']:<{w}} " + " ".join(_fmt(p.get(c), 9) for c in cols))

    cm = r.get("confusion_matrix")
    if cm is not None:
        names = r.get("confusion_labels") or r.get("labels") or [str(i) for i in range(len(cm))]
        w = max(5, *(len(n) for n in names))
        cw = max(6, *(len(n) for n in names), *(len(str(v)) for row in cm for v in row))
        lines.append("")
        lines.append("  confusion matrix (rows: true, columns: predicted)")
        lines.append(f"  {'':<{w}} " + " ".join(n.rjust(cw) for n in names))
        for name, row in zip(names, cm):
            lines.append(f"  {name:<{w}} " + " ".join(str(v).rjust(cw) for v in row))
    return "\n".join(lines)
