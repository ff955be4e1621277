"""Metrics as plain functions over arrays: classification, multilabel and ranking.

Conventions
-----------
* ``n`` is the number of items (or queries), ``c`` the number of classes (or candidate items).
* Label vectors are integer arrays of shape ``(n,)``; indicator matrices are ``(n, c)`` arrays of
  0/1 (any value > 0 counts as positive); scores are ``(n, c)`` floats, higher meaning more likely.
* Every function checks its inputs and raises :class:`~tartarus.errors.DataMismatch` naming the
  shape it expected and the shape it got.

Ranking and ties
----------------
The ranking metrics rank each row's candidates by descending score; **equal scores are ordered by
ascending column index** (a stable sort of ``-score``). The top ``k`` is found with
``np.argpartition``-style selection (``np.partition`` for the k-th value, then the tied
candidates with the lowest indices), and only those ``k`` are sorted, so a row costs
``O(c + k log k)``. Rows are processed in chunks so memory stays bounded for many users.
A ``k`` larger than the number of candidates is clipped to it.

Chunks and blocks
-----------------
:func:`ranking_reports` computes per-user values chunk by chunk (:func:`ranking_rows`) and sums
them in fixed groups of users (:class:`RankingTotals`), so its numbers are the same bit for bit
whatever the chunk size, and whether the users are ranked here or in blocks elsewhere, e.g. on a
Dask cluster's workers (its ``block_map``; this module imports no Dask).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn import metrics as skm

from .checks import check_choice
from .config.schema import MAP_K, PROTOCOLS, SCORE_DEVICES
from .errors import DataMismatch

# elements of one dense chunk of rows (float64): 4M elements = 32 MB
CHUNK_ELEMENTS = 1 << 22


# ------------------------------------------------------------------------------- validation
def _shape(a):
    return tuple(getattr(a, "shape", np.shape(a)))


def _as_array(a, name, ndim=None, expected=""):
    if sp.issparse(a):
        raise DataMismatch(f"{name}: expected a dense array{' ' + expected if expected else ''}, "
                           f"got a sparse matrix of shape {a.shape}")
    arr = np.asarray(a)
    if ndim is not None and arr.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise DataMismatch(f"{name}: expected shape {expected or f'with {ndim} dimensions'}, got {arr.shape}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataMismatch(f"{name}: expected numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        bad = np.argwhere(np.isnan(arr))[0]
        raise DataMismatch(f"{name}: contains {int(np.isnan(arr).sum())} NaN values "
                           f"(first at index {tuple(int(i) for i in bad)})")
    return arr


def _labels_pair(y_true, y_pred):
    """Two label vectors (n,) or two indicator matrices (n, c) of the same shape."""
    t = _as_array(y_true, "y_true", (1, 2), "(n,) labels or (n, c) indicators")
    p = _as_array(y_pred, "y_pred", (1, 2), "(n,) labels or (n, c) indicators")
    if t.shape != p.shape:
        raise DataMismatch(f"y_true has shape {t.shape} but y_pred has shape {p.shape}: expected both "
                           f"(n,) labels or both (n, c) indicators")
    if t.shape[0] == 0:
        raise DataMismatch("y_true and y_pred are empty: expected at least one item")
    if t.ndim == 2:
        t, p = (t > 0).astype(int), (p > 0).astype(int)
    return t, p


def _truth_score_pair(y_true, y_score):
    """Indicator matrix (n, c) and scores (n, c); a pair of (n,) vectors is read as one class."""
    t = _as_array(y_true, "y_true", (1, 2), "(n, c) indicators or (n,) binary labels")
    s = _as_array(y_score, "y_score", (1, 2), "(n, c) scores or (n,) scores")
    if t.ndim == 1 and s.ndim == 1:
        t, s = t[:, None], s[:, None]
    if t.shape != s.shape:
        raise DataMismatch(f"y_true has shape {t.shape} but y_score has shape {s.shape}: expected both (n, c)")
    if t.shape[0] == 0:
        raise DataMismatch("y_true and y_score are empty: expected at least one item")
    return (t > 0), s.astype(np.float64, copy=False)


# ------------------------------------------------------------------------------- classification
def accuracy(y_true, y_pred):
    """Fraction of items predicted exactly right.

    y_true, y_pred : (n,) integer labels, or (n, c) 0/1 indicators (then the whole row must match:
    subset accuracy). Returns a float in [0, 1].
    """
    t, p = _labels_pair(y_true, y_pred)
    return float(skm.accuracy_score(t, p))


def precision_recall_f1(y_true, y_pred, average="macro", n_classes=None):
    """Precision, recall and F1 as a dict ``{"precision", "recall", "f1", "support"}``.

    y_true, y_pred : (n,) integer labels in ``range(n_classes)``, or (n, c) 0/1 indicators.
    average : ``"macro"`` (unweighted mean over classes), ``"micro"`` (global counts), ``"binary"``
        (the positive class 1 of (n,) labels) or ``None`` (per-class arrays of shape (c,)).
    n_classes : for labels, the number of classes (default: 1 + the largest label seen); classes
        absent from both arrays count with precision = recall = F1 = 0 in a macro average.
    A class never predicted has precision 0 (and a class with no items recall 0): no warning.
    """
    t, p = _labels_pair(y_true, y_pred)
    if average not in ("macro", "micro", "binary", None):
        raise ValueError(f"average must be 'macro', 'micro', 'binary' or None, got {average!r}")
    kwargs = {}
    if t.ndim == 2 and t.shape[1] == 1:
        # one indicator column is one class: every average is that class's score
        t, p = t[:, 0], p[:, 0]
        kwargs["labels"] = [1]
    elif average == "binary" and t.ndim == 2:
        raise DataMismatch(f"average='binary' needs (n,) labels or (n, 1) indicators, got {t.shape}")
    elif t.ndim == 1 and average != "binary":
        c = n_classes if n_classes is not None else int(max(t.max(), p.max())) + 1
        kwargs["labels"] = np.arange(c)
    prec, rec, f1, support = skm.precision_recall_fscore_support(t, p, average=average, zero_division=0,
                                                                  **kwargs)
    if average is None:
        return {"precision": prec, "recall": rec, "f1": f1, "support": support}
    if "labels" in kwargs and len(kwargs["labels"]) == 1:
        n_support = int(t.sum())
    else:
        n_support = int(t.sum() if t.ndim == 2 else len(t))
    return {"precision": float(prec), "recall": float(rec), "f1": float(f1), "support": n_support}


def macro_f1(y_true, y_pred, n_classes=None):
    """Unweighted mean of per-class F1; shapes as in :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, "macro", n_classes)["f1"]


def micro_f1(y_true, y_pred, n_classes=None):
    """F1 from global counts; shapes as in :func:`precision_recall_f1`."""
    return precision_recall_f1(y_true, y_pred, "micro", n_classes)["f1"]


def confusion_matrix(y_true, y_pred, n_classes=None):
    """Counts ``(c, c)`` int array: row = true class, column = predicted class.

    y_true, y_pred : (n,) integer labels in ``range(n_classes)`` (default: 1 + the largest label).
    """
    t = _as_array(y_true, "y_true", 1, "(n,) labels")
    p = _as_array(y_pred, "y_pred", 1, "(n,) labels")
    if t.shape != p.shape:
        raise DataMismatch(f"y_true has shape {t.shape} but y_pred has shape {p.shape}: expected both (n,)")
    c = n_classes if n_classes is not None else int(max(t.max(initial=0), p.max(initial=0))) + 1
    both = np.concatenate([t, p])
    bad = both[(both < 0) | (both >= c)]
    if len(bad):
        raise DataMismatch(f"labels must lie in range({c}) for {c} classes; found {sorted(set(bad.tolist()))[:5]}")
    return skm.confusion_matrix(t, p, labels=np.arange(c)).astype(np.int64)


@dataclass
class ClassScores:
    """A per-class metric: ``per_class`` (c,) with NaN for skipped classes, their ``macro`` mean
    (NaN when every class was skipped) and the ``skipped`` class indices (no positives or no
    negatives, where the metric is undefined)."""
    per_class: np.ndarray
    macro: float
    skipped: list = field(default_factory=list)

    @property
    def evaluated(self):
        return [i for i in range(len(self.per_class)) if i not in self.skipped]


def _per_class(y_true, y_score, fn):
    t, s = _truth_score_pair(y_true, y_score)
    n_pos = t.sum(axis=0)
    values = np.full(t.shape[1], np.nan)
    skipped = []
    for j in range(t.shape[1]):
        if n_pos[j] == 0 or n_pos[j] == len(t):
            skipped.append(j)
            continue
        values[j] = fn(t[:, j], s[:, j])
    macro = float(np.nanmean(values)) if len(skipped) < len(values) else float("nan")
    return ClassScores(values, macro, skipped)


def roc_auc(y_true, y_score):
    """Area under the ROC curve per class and their macro mean, as :class:`ClassScores`.

    y_true : (n, c) 0/1 indicators (a one-hot matrix for multiclass); y_score : (n, c) scores.
    A pair of (n,) vectors is one binary class. Classes with no positive or no negative item are
    skipped (listed in ``skipped``), since the area is undefined for them.
    """
    return _per_class(y_true, y_score, skm.roc_auc_score)


def pr_auc(y_true, y_score):
    """Average precision (area under the precision-recall curve, scikit-learn's step-wise
    definition) per class and macro, as :class:`ClassScores`; shapes and skipping as in :func:`roc_auc`."""
    return _per_class(y_true, y_score, skm.average_precision_score)


# ------------------------------------------------------------------------------- thresholds
@dataclass
class Thresholds:
    """Decision thresholds chosen to maximise F1: ``values`` (c,) (predict a class when its score
    >= its threshold), the F1 each reached on the data it was chosen on (``f1``, (c,), NaN for a
    fallback), and the ``fallback`` class indices (no positive item: F1 is 0 at any threshold, so
    the given default is used)."""
    values: np.ndarray
    f1: np.ndarray
    fallback: list = field(default_factory=list)


def _f1_curve(truth, score):
    """Every distinct score as a threshold, ascending: (thresholds, tp, predicted positives)."""
    order = np.argsort(score, kind="stable")[::-1]  # descending score
    s, t = score[order], truth[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last item of each group of equal scores
    tp = np.cumsum(t)[last]
    pp = np.flatnonzero(last) + 1.0
    return s[last][::-1], tp[::-1].astype(np.float64), pp[::-1]


def f_max_thresholds(y_true, y_score, per_class=True, default=0.5):
    """Thresholds that maximise F1 on ``(y_true, y_score)`` (the validation set), as :class:`Thresholds`.

    y_true : (n, c) 0/1 indicators; y_score : (n, c) scores. The candidates are the distinct scores
    (prediction: score >= threshold), and among equal F1 the lowest threshold wins (the first
    maximum over ascending thresholds, as the seed's ``scripts/threshold.py`` took it).
    per_class : True - one threshold per class, each maximising that class's F1; False - the seed's
        ``threshold.py``: one threshold for every class, maximising the F1 of all (item, class)
        pairs together among the thresholds where precision > recall (without such a threshold,
        the unconstrained maximum). default : the threshold of a class (or of all, with
        ``per_class=False``) without a positive item.
    """
    t, s = _truth_score_pair(y_true, y_score)
    c = t.shape[1]
    columns = [(t[:, j], s[:, j]) for j in range(c)] if per_class else [(t.ravel(), s.ravel())]
    values, f1, fallback = np.full(len(columns), float(default)), np.full(len(columns), np.nan), []
    for j, (truth, score) in enumerate(columns):
        n_pos = truth.sum()
        if n_pos == 0:
            fallback.append(j)
            continue
        thr, tp, pp = _f1_curve(truth, score)
        f = 2.0 * tp / (pp + n_pos)
        if not per_class:
            constrained = np.where(tp / pp > tp / n_pos, f, 0.0)
            f = constrained if constrained.max() > 0 else f
        best = int(np.argmax(f))
        values[j], f1[j] = thr[best], f[best]
    if not per_class:
        values, f1 = np.full(c, values[0]), np.full(c, f1[0])
        fallback = list(range(c)) if fallback else []
    return Thresholds(values, f1, fallback)


# ------------------------------------------------------------------------------- ranking
def average_precision_at_k(actual, predicted, k=MAP_K):
    """AP@k of one ranked list, the ``ml_metrics.apk`` definition.

    actual : the relevant items (any iterable); predicted : ranked items, best first.
    score = sum over the ranks i (1-based, i <= k) holding a relevant, not yet seen item of
    precision@i, divided by ``min(len(actual), k)``; 0.0 when ``actual`` is empty.
    """
    actual = set(actual)
    if not actual:
        return 0.0
    predicted = list(predicted)[:k]
    score, hits, seen = 0.0, 0, set()
    for i, p in enumerate(predicted):
        if p in actual and p not in seen:
            hits += 1
            score += hits / (i + 1.0)
        seen.add(p)
    return score / min(len(actual), k)


def top_k(scores, k):
    """Column indices of each row's ``k`` highest scores, best first: (r, k) int array.

    scores : (r, c) floats without NaN. Ties are broken by ascending column index, exactly as
    ``np.argsort(-scores, kind="stable")[:, :k]`` would, at O(c + k log k) per row.
    """
    scores = np.asarray(scores)
    r, c = scores.shape
    k = min(int(k), c)
    if k <= 0:
        return np.zeros((r, 0), dtype=np.int64)
    if k == c:
        return np.argsort(-scores, axis=1, kind="stable")
    # fast path: one argpartition; exact unless a tie straddles the k-th place, which is checked
    part = np.argpartition(scores, c - k, axis=1)[:, c - k:]
    picked = np.take_along_axis(scores, part, axis=1)
    kth = picked.min(axis=1, keepdims=True)
    if ((scores == kth).sum(axis=1) == (picked == kth).sum(axis=1)).all():
        # stable order: by descending score, then ascending column index
        order = np.lexsort((part, -picked), axis=1)
        return np.take_along_axis(part, order, axis=1)
    return _top_k_ties(scores, k)


def _top_k_ties(scores, k):
    """top_k for rows where equal scores straddle the k-th place (the general, slower way)."""
    r, c = scores.shape
    # the k-th largest value of each row; everything above it is in, ties fill up by index
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | tied
    over = (tied.sum(axis=1, keepdims=True) > need).ravel()  # rows with more ties than room
    if over.any():
        sub = tied[over]
        chosen[over] = above[over] | (sub & (np.cumsum(sub, axis=1) <= need[over]))
    cols = np.nonzero(chosen)[1].reshape(r, k)  # ascending column index within each row
    picked = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def _row_chunks(relevance, scores, chunk_rows=None, dense=True, offset=0):
    """Yield ``(start, stop, rel, sco)`` chunks of rows; validates shapes once. ``offset``: the
    position of the first row among all rows (a block of them), for the messages.

    ``rel`` is a dense float array, or with ``dense=False`` and sparse relevance a CSR chunk
    (cheaper: only the top k of each row is looked up in it).
    """
    if callable(scores):
        score_shape = None
    else:
        scores = scores if sp.issparse(scores) or isinstance(scores, np.ndarray) else np.asarray(scores)
        score_shape = scores.shape
    rel_shape = relevance.shape if sp.issparse(relevance) else np.shape(relevance)
    if len(rel_shape) != 2:
        raise DataMismatch(f"relevance: expected shape (n_queries, n_candidates), got {tuple(rel_shape)}")
    if score_shape is not None and tuple(score_shape) != tuple(rel_shape):
        raise DataMismatch(f"relevance has shape {tuple(rel_shape)} but scores has shape {tuple(score_shape)}: "
                           f"expected both (n_queries, n_candidates)")
    n, c = rel_shape
    if n == 0:
        raise DataMismatch("relevance has no rows: expected at least one query")
    step = chunk_rows or max(1, CHUNK_ELEMENTS // max(1, c))
    rel_src = relevance.tocsr() if sp.issparse(relevance) else np.asarray(relevance)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rel = rel_src[start:stop]
        if sp.issparse(rel) and not dense:
            rel.sort_indices()
            rel.eliminate_zeros()
        elif sp.issparse(rel):
            rel = rel.toarray()
        if callable(scores):
            sco = np.asarray(scores(start, stop))
            if sco.shape != (stop - start, c):
                raise DataMismatch(f"scores({start}, {stop}) returned shape {sco.shape}, "
                                   f"expected {(stop - start, c)}")
        else:
            sco = scores[start:stop]
            sco = sco.toarray() if sp.issparse(sco) else np.asarray(sco)
        sco = sco.astype(np.float64, copy=False)
        if np.isnan(np.add.reduce(sco, axis=None)):  # one cheap pass; locate only when needed
            if np.isnan(sco).any():
                r, j = np.argwhere(np.isnan(sco))[0]
                raise DataMismatch(f"scores: NaN at row {offset + start + int(r)}, column {int(j)}")
        if not sp.issparse(rel):
            rel = _as_array(rel, "relevance").astype(np.float64, copy=False)
        yield start, stop, rel, sco


class FactorScores:
    """Scores that are dot products, ``users @ items.T``, for ranking metrics over many users.

    users : (n, f) floats; items : (c, f) floats. Called as ``scores(start, stop)`` it gives the
    float64 block of those users, so it works wherever a score callable does. :func:`map_at_k`,
    :func:`ap_at_k_rows`, :func:`precision_at_k_rows` and :func:`ranking_report` (without AUC) use
    the faster exact path instead: float32 products with a rigorous error bound, and float64 only
    where the bound leaves the ranking in doubt (see :func:`factor_top_hits`).
    device : where that float32 product and the choice of top-k candidates run: ``"cpu"`` (numpy,
        the default), ``"accelerator"`` (``keras.ops`` on the active backend's device, chunk by
        chunk; the float64 re-check stays on the CPU, so the metrics are the same) or ``"auto"``
        (``"accelerator"`` when the backend sees a GPU or TPU, else ``"cpu"``); see
        :func:`resolve_score_device`. ``scores(start, stop)`` (float64) is always numpy.
    """

    def __init__(self, users, items, device="cpu"):
        self.device = resolve_score_device(device)
        # {"items": (f, c) float32 tensor}, made on first use, shared with with_users' copies
        self._on_device = {}
        self.users = np.ascontiguousarray(users, dtype=np.float64)
        self.items = np.ascontiguousarray(items, dtype=np.float64)
        if self.users.ndim != 2 or self.items.ndim != 2 or self.users.shape[1] != self.items.shape[1]:
            raise DataMismatch(f"factor scores: expected users (n, f) and items (c, f), got "
                               f"{self.users.shape} and {self.items.shape}")
        for name, a in (("users", self.users), ("items", self.items)):
            if not np.isfinite(a).all():
                raise DataMismatch(f"factor scores: {name} has NaN or infinite values")
        self.shape = (len(self.users), len(self.items))
        self.items32 = self.items.astype(np.float32)
        # |fl32(u . v) - u . v| <= (f + 3) * 2**-24 * sum|u_i v_i| <= that * |u| * |v|: f accumulation
        # steps, the float32 rounding of u and of v; 1.01 covers the second-order terms and the
        # float64 reference's own rounding
        self.item_norm_max = float(np.linalg.norm(self.items, axis=1).max(initial=0.0))
        self.gamma = 1.01 * (self.users.shape[1] + 3) * 2.0 ** -24

    def __call__(self, start, stop):
        return self.users[start:stop] @ self.items.T

    def with_users(self, users):
        """The scores of other users (n', f) against the same items, sharing the item arrays and
        their error bound (so each user's metrics do not depend on who else is scored)."""
        users = np.ascontiguousarray(users, dtype=np.float64)
        if users.ndim != 2 or users.shape[1] != self.items.shape[1]:
            raise DataMismatch(f"factor scores: expected users (n, {self.items.shape[1]}), got {users.shape}")
        if not np.isfinite(users).all():
            raise DataMismatch("factor scores: users has NaN or infinite values")
        other = object.__new__(FactorScores)
        other.__dict__.update(self.__dict__)
        other.users = users
        other.shape = (len(users), len(self.items))
        return other

    def __getstate__(self):
        # sent to a worker: no device tensor, and the float32 items are remade there (smaller)
        state = dict(self.__dict__)
        state.update(_on_device={}, items32=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.items32 = self.items.astype(np.float32)

    def users32(self, start, stop):
        """Users ``start:stop`` in float32, (stop - start, f): made per chunk, so that no float32 copy
        of every user's factors is held (n x f x 4 bytes: 240 MB for 300k users of 200 factors)."""
        return self.users[start:stop].astype(np.float32)

    def items_on_device(self):
        """The float32 item factors transposed, (f, c), as a tensor of the active Keras backend: made
        on first use, then kept (and shared by the copies of :meth:`with_users`, e.g. a worker's blocks)."""
        if "items" not in self._on_device:
            from keras import ops
            self._on_device["items"] = ops.convert_to_tensor(self.items32.T)
        return self._on_device["items"]

    def bound(self, start, stop):
        """Per-user bound on the float32 score error, (stop - start,) float64."""
        return self.gamma * np.linalg.norm(self.users[start:stop], axis=1) * self.item_norm_max


def accelerator_available():
    """Whether the active Keras backend sees a GPU or TPU (imports Keras and its backend)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return any(d.platform != "cpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf
        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    if backend == "torch":
        import torch
        return bool(torch.cuda.is_available())
    return False


def resolve_score_device(device):
    """``"cpu"`` or ``"accelerator"`` for a :class:`FactorScores` ``device`` (one of
    :data:`SCORE_DEVICES`): ``"auto"`` is ``"accelerator"`` when :func:`accelerator_available`, else
    ``"cpu"`` (so nothing changes by default on a machine without one). ``"accelerator"`` runs the
    float32 product through ``keras.ops`` on the backend's device, whatever that is (the CPU too)."""
    check_choice("device", device, SCORE_DEVICES)
    if device == "auto":
        return "accelerator" if accelerator_available() else "cpu"
    return device


@contextmanager
def _full_float32_matmul():
    """Float32 products in full float32 for the duration: GPUs may otherwise round the inputs to
    TF32 (TensorFlow on Ampere and later) or bfloat16 (JAX's default precision on TPU), and the
    error bound of :class:`FactorScores` assumes float32 inputs."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        with jax.default_matmul_precision("highest"):
            yield
    elif backend == "tensorflow":
        import tensorflow as tf
        was = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(was)
    elif backend == "torch":
        import torch
        was = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(was)
    else:
        yield


def _numpy_candidates(scores, start, stop, k, delta2):
    """Candidates for the exact top-k of users ``start:stop`` (see :func:`factor_top_hits`), with
    numpy: every item whose float32 score is within ``delta2`` (the (r,) doubled error bound) of
    the row's k-th float32 score. Returns (rows, columns, float32 scores), each (n_candidates,),
    ordered by row, then column."""
    c = scores.shape[1]
    s32 = scores.users32(start, stop) @ scores.items32.T
    kth = np.partition(s32, c - k, axis=1)[:, c - k].astype(np.float64)
    # the threshold rounded down in float32, so that nothing within the bound is missed
    floor = np.nextafter((kth - delta2).astype(np.float32), np.float32(-np.inf))
    flat = np.flatnonzero(s32 >= floor[:, None])  # row-major: columns ascending in each row
    rows, cols = np.divmod(flat, c)  # (one flat pass is several times faster than 2-d nonzero)
    return rows, cols, s32.ravel()[flat]


def _keras_candidates(scores, start, stop, k, delta2):
    """:func:`_numpy_candidates` with the float32 product and the top-m selection done by
    ``keras.ops`` on the backend's device; only (r, m) values and columns come back to the CPU.
    m starts at ``max(2k, k + 64)`` and doubles for the rows whose m-th score is still above the
    threshold (many ties or near-ties), up to all c items, so the candidate set is complete."""
    from keras import ops

    r, c = stop - start, scores.shape[1]
    with _full_float32_matmul():
        s32 = ops.matmul(ops.convert_to_tensor(scores.users32(start, stop)), scores.items_on_device())
    found_rows, found_cols, found_vals = [], [], []
    todo = np.arange(r)
    m = min(c, max(2 * k, k + 64))
    while len(todo):
        block = s32 if len(todo) == r else ops.take(s32, ops.convert_to_tensor(todo), axis=0)
        vals, idx = ops.top_k(block, m, sorted=True)
        vals, idx = ops.convert_to_numpy(vals), ops.convert_to_numpy(idx)
        kth = vals[:, k - 1].astype(np.float64)
        floor = np.nextafter((kth - delta2[todo]).astype(np.float32), np.float32(-np.inf))
        # complete when the m-th score is below the threshold: every candidate is then in the top m
        done = (vals[:, -1] < floor) if m < c else np.ones(len(todo), bool)
        rows, place = np.nonzero((vals >= floor[:, None]) & done[:, None])
        found_rows.append(todo[rows])
        found_cols.append(idx[rows, place].astype(np.int64))
        found_vals.append(vals[rows, place])
        todo, m = todo[~done], min(c, 2 * m)
    rows, cols, vals = (np.concatenate(x) for x in (found_rows, found_cols, found_vals))
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], vals[order]


def factor_top_hits(scores, rel, start, stop, k, cuts=()):
    """Exact top-k of users ``start:stop`` of a :class:`FactorScores`: ((r, k) columns, (r, k) gains).

    rel : CSR (r, c) relevance of these users with sorted indices (> 0 relevant); the gains are its
    values at the top k (0 where not relevant). cuts : further cut-offs (< k) whose top sets must
    be exact too (ADiv@1, @3, @5 from the same top k). The order is that
    of float64 scores, ties by column index, except that neighbours of equal relevance may swap,
    which none of the metrics here can see. Float32 scores pick the candidates: every item within
    twice the error bound of the k-th float32 score. Sorted by float32 score, neighbours closer than
    twice the bound form runs whose order float32 cannot decide; only the runs that hold a relevant
    item or straddle the k-th place (or a cut) are re-ranked, by float64 dot products of their items alone.
    """
    r, c = stop - start, scores.shape[1]
    k = min(int(k), c)
    delta2 = 2.0 * scores.bound(start, stop)
    pick = _keras_candidates if scores.device == "accelerator" else _numpy_candidates
    rows, cols, vals = pick(scores, start, stop, k, delta2)
    # candidates as an (r, m) matrix, padded with -inf (sorts last) and the column c (no item)
    counts = np.bincount(rows, minlength=r)
    place = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    m = int(counts.max())
    val = np.full((r, m), -np.inf)
    val[rows, place] = vals
    col = np.full((r, m), c, dtype=np.int64)
    col[rows, place] = cols
    order = np.argsort(-val, axis=1, kind="stable")  # stable: equal scores by column
    val, col = np.take_along_axis(val, order, axis=1), np.take_along_axis(col, order, axis=1)
    # relevance of each candidate: its (row, column) key among the CSR's sorted keys
    rel_keys = np.repeat(np.arange(r, dtype=np.int64), np.diff(rel.indptr)) * (c + 1) + rel.indices
    positive = rel.data > 0
    rel_keys, rel_vals = rel_keys[positive], rel.data[positive].astype(np.float64)
    keys = np.arange(r, dtype=np.int64)[:, None] * (c + 1) + col
    found = np.minimum(np.searchsorted(rel_keys, keys), max(len(rel_keys) - 1, 0))
    if len(rel_keys):
        hit = np.where(rel_keys[found] == keys, rel_vals[found], 0.0)
    else:
        hit = np.zeros(keys.shape)
    # runs: consecutive candidates of a row closer than twice the bound (never across rows)
    linked = np.zeros((r, m), bool)
    with np.errstate(invalid="ignore"):  # -inf - -inf in the padding: not linked
        linked[:, 1:] = (val[:, :-1] - val[:, 1:]) <= delta2[:, None]
    run = (np.cumsum(~linked.ravel()) - 1).reshape(r, m)
    n_runs = int(run[-1, -1]) + 1
    rank = np.broadcast_to(np.arange(m), (r, m))
    size = np.bincount(run.ravel(), minlength=n_runs)
    with_hit = np.bincount(run.ravel(), weights=hit.ravel(), minlength=n_runs) > 0
    straddle = np.zeros(n_runs, bool)
    for cut in {k, *(int(x) for x in cuts if 0 < int(x) < k)}:
        # a run is a range of consecutive ranks of one row: it straddles the cut when it holds the
        # ranks cut - 1 and cut both
        if cut < m:
            same = run[:, cut - 1] == run[:, cut]
            straddle[run[same, cut]] = True
    doubt = ((size > 1) & (with_hit | straddle))[run]
    redo_rows = np.flatnonzero(doubt.any(axis=1))
    if len(redo_rows):
        d_rows, d_cols = np.nonzero(doubt[redo_rows])
        key = rank[redo_rows].astype(np.float64)  # the float32 order where it is certain
        key[d_rows, d_cols] = -np.einsum("ij,ij->i", scores.users[start + redo_rows[d_rows]],
                                         scores.items[col[redo_rows[d_rows], d_cols]])
        # runs stay in place; a doubtful one is re-ranked by exact score, then column
        sub = np.lexsort((col[redo_rows], key, run[redo_rows]), axis=1)
        col[redo_rows] = np.take_along_axis(col[redo_rows], sub, axis=1)
        hit[redo_rows] = np.take_along_axis(hit[redo_rows], sub, axis=1)
    return col[:, :k], hit[:, :k]


def _ranked_hits(rel, sco, k):
    """Top-k columns of each row and the relevance found there: ((r, k) ints, (r, k) floats)."""
    top = top_k(sco, k)
    if not sp.issparse(rel):
        return top, np.take_along_axis(rel, top, axis=1)
    # look the top k up among the row's stored entries: keys row * c + column, sorted in CSR
    c = rel.shape[1]
    rows = np.repeat(np.arange(rel.shape[0], dtype=np.int64), np.diff(rel.indptr))
    keys = rows * c + rel.indices
    wanted = (np.arange(rel.shape[0], dtype=np.int64)[:, None] * c + top).ravel()
    pos = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    found = (keys[pos] == wanted) if len(keys) else np.zeros(wanted.shape, bool)
    values = np.where(found, rel.data[pos] if len(keys) else 0.0, 0.0)
    return top, values.reshape(top.shape).astype(np.float64)


def _hit_chunks(relevance, scores, k, chunk_rows=None, cuts=()):
    """Yield ``(rel, top, hits)`` per chunk of rows: CSR-or-dense relevance, (r, k) top columns,
    (r, k) relevance found there; the exact float32 path for :class:`FactorScores` (``cuts``: see
    :func:`factor_top_hits`)."""
    if not isinstance(scores, FactorScores):
        for _, _, rel, sco in _row_chunks(relevance, scores, chunk_rows, dense=False):
            yield (rel, *_ranked_hits(rel, sco, k))
        return
    rel_shape = relevance.shape if sp.issparse(relevance) else np.shape(relevance)
    if tuple(rel_shape) != scores.shape:
        raise DataMismatch(f"relevance has shape {tuple(rel_shape)} but the factor scores are "
                           f"{scores.shape}: expected both (n_users, n_items)")
    n, c = scores.shape
    step = chunk_rows or max(1, CHUNK_ELEMENTS // max(1, c))
    rel_src = sp.csr_matrix(relevance)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rel = rel_src[start:stop]
        rel.sum_duplicates()  # sorted, unique indices
        rel.eliminate_zeros()
        yield (rel, *factor_top_hits(scores, rel, start, stop, k, cuts))


def ap_at_k_rows(relevance, scores, k=MAP_K, chunk_rows=None):
    """AP@k of every row (ml_metrics ``apk``): (n,) float array.

    relevance : (n, c) 0/1 (dense array or scipy sparse; > 0 counts as relevant), one row per
        query (an item over its classes, a user over items); scores : (n, c) floats, or a callable
        ``scores(start, stop) -> (stop - start, c)`` array for computing scores chunk by chunk.
    A row without relevant candidates scores 0 (as in ml_metrics). Ties: see the module docstring.
    """
    out = []
    for rel, _, hits in _hit_chunks(relevance, scores, k, chunk_rows):
        if sp.issparse(rel):
            rel.data = (rel.data > 0).astype(np.float64)
            rel.eliminate_zeros()
        hits = hits > 0
        n_rel = relevant_counts(rel)
        prec = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
        denom = np.minimum(n_rel, k)
        total = (prec * hits).sum(axis=1)
        out.append(np.divide(total, denom, out=np.zeros_like(total), where=denom > 0))
    return np.concatenate(out)


def map_at_k(relevance, scores, k=MAP_K, chunk_rows=None, skip_empty=False):
    """Mean AP@k over rows (ml_metrics ``mapk``); shapes as in :func:`ap_at_k_rows`.

    skip_empty : leave out rows without relevant candidates instead of counting them as 0.
    """
    ap = ap_at_k_rows(relevance, scores, k, chunk_rows)
    if skip_empty:
        rel_rows = relevant_counts(relevance) > 0
        ap = ap[rel_rows]
        if len(ap) == 0:
            return float("nan")
    return float(ap.mean())


def relevant_counts(relevance):
    """Relevant (> 0) entries per row: (n,) ints, for a dense array or a scipy sparse matrix."""
    if sp.issparse(relevance):
        return np.asarray((relevance > 0).sum(axis=1)).ravel()
    return (np.asarray(relevance) > 0).sum(axis=1)


def precision_at_k_rows(relevance, scores, k=10, chunk_rows=None):
    """Fraction of relevant candidates among each row's top k: (n,) floats; shapes as in
    :func:`ap_at_k_rows`. The denominator is ``min(k, c)``."""
    out = []
    for _, _, hits in _hit_chunks(relevance, scores, k, chunk_rows):
        out.append((hits > 0).sum(axis=1) / max(1, hits.shape[1]))
    return np.concatenate(out)


def precision_at_k(relevance, scores, k=10, chunk_rows=None):
    """Mean precision@k over rows; see :func:`precision_at_k_rows`."""
    return float(precision_at_k_rows(relevance, scores, k, chunk_rows).mean())


def ndcg_at_k_rows(relevance, scores, k=10, chunk_rows=None):
    """NDCG@k of every row: (n,) floats in [0, 1]; shapes as in :func:`ap_at_k_rows`.

    The gain of a candidate is its relevance value (0/1, or graded), discounted by
    ``1 / log2(rank + 1)`` (rank from 1). The ideal DCG ranks *all* relevant candidates of the row
    by gain; a row without relevant candidates scores 0.
    """
    out = []
    for _, _, rel, sco in _row_chunks(relevance, scores, chunk_rows):
        _, gains = _ranked_hits(rel, sco, k)
        kk = gains.shape[1]
        discount = 1.0 / np.log2(np.arange(2, kk + 2))
        dcg = (gains * discount).sum(axis=1)
        ideal = np.take_along_axis(rel, top_k(rel, kk), axis=1)
        idcg = (ideal * discount).sum(axis=1)
        out.append(np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0))
    return np.concatenate(out)


def ndcg_at_k(relevance, scores, k=10, chunk_rows=None):
    """Mean NDCG@k over rows; see :func:`ndcg_at_k_rows`."""
    return float(ndcg_at_k_rows(relevance, scores, k, chunk_rows).mean())


# ------------------------------------------------------------------------ recommendation
RANK_CUTS = (1, 3, 5)  # the seed's cut-offs of P@k, nDCG@k and ADiv@k (its eval.py)


def _seed_ndcg(gains, cut, depth, discount):
    """The seed's nDCG@cut of each row: DCG of the first ``cut`` gains over the DCG of the first
    ``cut`` of the top ``depth`` gains sorted (its ideal ranks the retrieved list, not all items)."""
    dcg = (gains[:, :cut] * discount[:cut]).sum(axis=1)
    ideal = (-np.sort(-gains[:, :depth], axis=1)[:, :cut] * discount[:cut]).sum(axis=1)
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def _cutoffs(k, cuts):
    """(sorted cut-offs including k, the seed's nDCG depth) of :func:`ranking_reports`."""
    cutoffs = sorted({int(c) for c in cuts if int(c) > 0} | {int(k)})
    return cutoffs, max((int(c) for c in cuts), default=int(k))


@dataclass
class RankingRows:
    """The ranking values of users ``start:stop`` (a chunk or a block of them), before averaging.

    values : (stop - start, 3 + 2 n_cut) float64 per user: AP@k, our nDCG at each cut-off, the
        seed's nDCG at each cut-off (0 without the seed protocol), ROC-AUC and PR-AUC (0 where a
        user has no relevant or no irrelevant item); every value is 0 for a user without a
        relevant item. found : (n_cut,) int64, relevant items in the top cut, summed over the users.
    n_relevant : users with a relevant item; n_auc : users with both relevant and irrelevant items.
    recommended : (n_protocols, n_cut, n_items) bool, the items in some counted user's top cut.
    Per-user values, not sums, so that :class:`RankingTotals` adds them up the same way however
    the users were split into chunks or blocks.
    """
    start: int
    stop: int
    values: np.ndarray
    found: np.ndarray
    n_relevant: int
    n_auc: int
    recommended: np.ndarray

    @classmethod
    def concatenate(cls, parts):
        """One RankingRows of consecutive parts (in user order)."""
        for a, b in zip(parts, parts[1:]):
            if a.stop != b.start:
                raise ValueError(f"RankingRows: rows {a.start}:{a.stop} then {b.start}:{b.stop}, expected consecutive")
        recommended = parts[0].recommended.copy()
        for part in parts[1:]:
            recommended |= part.recommended
        return cls(parts[0].start, parts[-1].stop, np.concatenate([p.values for p in parts]),
                   np.sum([p.found for p in parts], axis=0), sum(p.n_relevant for p in parts),
                   sum(p.n_auc for p in parts), recommended)


class RankingTotals:
    """Sums of :class:`RankingRows` added in user order, and the reports they make.

    The per-user values are summed in fixed groups of :attr:`GROUP` users counted from user 0,
    and the group sums added in order, so the totals (and so every metric) are the same bit for
    bit whether the rows came in chunks of one size or another, locally or from a cluster's
    blocks. Memory: one group of values and the (n_protocols, n_cut, n_items) ADiv masks.
    """

    GROUP = 4096

    def __init__(self, n_items, k=MAP_K, cuts=RANK_CUTS, protocols=("tartarus",), with_auc=True):
        for name in protocols:
            if name not in PROTOCOLS:
                raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
        self.k, self.protocols, self.with_auc = int(k), tuple(protocols), with_auc
        self.cutoffs, self.seed_depth = _cutoffs(k, cuts)
        n_cut = len(self.cutoffs)
        self.sums = np.zeros(3 + 2 * n_cut)
        self.found = np.zeros(n_cut, dtype=np.int64)
        self.recommended = np.zeros((len(self.protocols), n_cut, int(n_items)), dtype=bool)
        self.n_rows = self.n_relevant = self.n_auc = 0
        self._pending = []  # values of the users since the last whole group

    def add(self, rows):
        """Add the next users' :class:`RankingRows` (``rows.start`` must be where the last ended)."""
        self.add_counts(rows)
        self.add_values(rows.start, rows.values)

    def add_counts(self, rows):
        """Add what does not depend on the order (integer counts, the ADiv items) of any rows."""
        self.found += rows.found
        self.n_relevant += rows.n_relevant
        self.n_auc += rows.n_auc
        self.recommended |= rows.recommended

    def add_values(self, start, values):
        """Add the per-user values of the next users, ``start`` to ``start + len(values)``."""
        if start != self.n_rows:
            raise ValueError(f"RankingTotals: got users from {start}, expected the next from {self.n_rows}")
        self.n_rows = start + len(values)
        self._pending.append(values)
        if sum(len(v) for v in self._pending) >= self.GROUP:
            pending = np.concatenate(self._pending)
            whole = len(pending) - len(pending) % self.GROUP
            for g in range(0, whole, self.GROUP):
                self.sums += np.add.reduce(pending[g:g + self.GROUP], axis=0)
            self._pending = [pending[whole:]]

    def reports(self):
        """``{protocol: report}`` as :func:`ranking_reports` returns it."""
        sums = self.sums.copy()
        if self._pending:  # the last, partial group: one reduction, as if it were whole
            sums += np.add.reduce(np.concatenate(self._pending), axis=0)
        n_cut = len(self.cutoffs)
        c = self.recommended.shape[-1]
        kk = min(max(self.cutoffs), c)
        out = {}
        for p, name in enumerate(self.protocols):
            n = self.n_relevant if name == "tartarus" else self.n_rows
            if n == 0:
                raise DataMismatch("relevance: no user has a relevant item: nothing to evaluate"
                                   if name == "tartarus" else "relevance: no user to evaluate")
            ndcg = sums[1:1 + n_cut] if name == "tartarus" else sums[1 + n_cut:1 + 2 * n_cut]
            at = {}
            for i, cut in enumerate(self.cutoffs):
                # ours divides by the items it could show (min(cut, n_items)), the seed's by the cut
                denom = min(cut, kk) if name == "tartarus" else cut
                at[str(cut)] = {"precision": float(self.found[i] / denom / n), "ndcg": float(ndcg[i] / n),
                                "adiv": float(self.recommended[p, i].mean())}
            rep = {"protocol": name, "map_at_k": float(sums[0] / n), **at[str(self.k)], "at": at}
            if self.with_auc:
                rep["roc_auc"] = float(sums[-2] / self.n_auc) if self.n_auc else float("nan")
                rep["pr_auc"] = float(sums[-1] / self.n_auc) if self.n_auc else float("nan")
            rep["n_users"] = n
            rep["k"] = self.k
            out[name] = rep
        return out


def ranking_rows(relevance, scores, k=MAP_K, cuts=RANK_CUTS, protocols=("tartarus",), chunk_rows=None,
                 with_auc=True, offset=0):
    """Yield the :class:`RankingRows` of each chunk of users; arguments as in :func:`ranking_reports`.

    offset : added to the users' positions (``start``, ``stop``): where ``relevance``'s first row
        is among all users, for a block of them.
    """
    cutoffs, seed_depth = _cutoffs(k, cuts)
    depth = max(cutoffs)
    n_cut, n_items = len(cutoffs), _shape(relevance)[-1]
    seed = "seed" in protocols
    ranks = np.arange(1, depth + 1)
    discount = 1.0 / np.log2(ranks + 1)

    def add_top(out, rows, top, gains, n_rel):  # everything but the AUCs, from the top of ``rows``
        values, found, recommended = out
        kk = top.shape[1]
        hits = gains > 0
        has = n_rel > 0
        km = min(int(k), kk)
        ap = (np.cumsum(hits[:, :km], axis=1) / ranks[:km] * hits[:, :km]).sum(axis=1)
        values[rows, 0] = np.divide(ap, np.minimum(n_rel, k), out=np.zeros_like(ap), where=has)
        hit_count = np.cumsum(hits, axis=1)
        dcg = np.cumsum(hits * discount[:kk], axis=1)
        ideal_dcg = np.cumsum(discount[:kk])
        for i, cut in enumerate(cutoffs):
            cc = min(cut, kk)
            found[i] += int(hit_count[:, cc - 1].sum())
            ideal = ideal_dcg[np.maximum(np.minimum(n_rel, cc), 1) - 1]
            values[rows, 1 + i] = np.where(has, dcg[:, cc - 1] / ideal, 0.0)
            for p, name in enumerate(protocols):
                counted = top[has, :cc] if name == "tartarus" else top[:, :cc]
                recommended[p, i, counted.ravel()] = True
            if seed:
                values[rows, 1 + n_cut + i] = _seed_ndcg(gains, cc, max(cut, seed_depth), discount[:kk])

    # the top k from the exact float32 path; the AUCs need every score in float64, so on the CPU
    # they take the top k from those scores too, while on an accelerator the top k still come from it
    fast = isinstance(scores, FactorScores) and (not with_auc or scores.device == "accelerator")
    tops = _hit_chunks(relevance, scores, depth, chunk_rows, cuts=cutoffs) if fast else None
    fulls = _row_chunks(relevance, scores, chunk_rows, offset=offset) if with_auc or not fast else None
    start = 0
    while True:
        if fast:
            chunk = next(tops, None)
            if chunk is None:
                return
            rel_top, top, gains = chunk
            n_rel = relevant_counts(rel_top)
        if fulls is not None:
            chunk = next(fulls, None)
            if chunk is None:
                return
            _, _, rel, sco = chunk
            n_rel = (rel > 0).sum(axis=1)
        r = len(n_rel)
        out = (np.zeros((r, 3 + 2 * n_cut)), np.zeros(n_cut, dtype=np.int64),
               np.zeros((len(protocols), n_cut, n_items), dtype=bool))
        has = n_rel > 0
        n_auc = 0
        if fast:
            add_top(out, slice(None), top, gains, n_rel)
        if fulls is not None:
            # only users with a relevant item matter to ours alone: rank those alone
            rows = np.arange(r) if seed else np.flatnonzero(has)
            if len(rows) and not fast:
                top = top_k(sco[rows], depth)
                add_top(out, rows, top, np.take_along_axis(rel[rows], top, axis=1), n_rel[rows])
            both = has & (n_rel < rel.shape[1])
            if with_auc and both.any():
                from scipy.stats import rankdata
                r_, s, p = rel[both] > 0, sco[both], n_rel[both]
                rank = rankdata(s, axis=1)  # ascending, ties averaged
                neg = r_.shape[1] - p
                out[0][both, -2] = ((rank * r_).sum(axis=1) - p * (p + 1) / 2) / (p * neg)
                order = np.argsort(-s, axis=1, kind="stable")
                ranked = np.take_along_axis(r_, order, axis=1)
                prec = np.cumsum(ranked, axis=1) / np.arange(1, r_.shape[1] + 1)
                out[0][both, -1] = (prec * ranked).sum(axis=1) / p
                n_auc = int(both.sum())
        yield RankingRows(offset + start, offset + start + r, out[0], out[1], int(has.sum()), n_auc, out[2])
        start += r


def ranking_reports(relevance, scores, k=MAP_K, cuts=RANK_CUTS, protocols=("tartarus",), chunk_rows=None,
                    with_auc=True, block_map=None, block_rows=None):
    """All ranking metrics of a recommendation run, under one or both protocols, in one pass.

    relevance : (n_users, n_items) dense or sparse; > 0 is relevant, and the value itself is the
        gain of the seed's graded nDCG (held-out play counts). scores : (n_users, n_items) floats,
        a callable ``scores(start, stop)`` (computed chunk by chunk, so a full users x items matrix
        never exists) or a :class:`FactorScores` (exact float32 path for the top k when ``with_auc``
        is false or its ``device`` is the accelerator; the AUCs always rank float64 scores on the CPU).
    k : the MAP cut-off (``evaluating.map_k``); cuts : further cut-offs for P, nDCG and ADiv
        (default the seed's 1, 3, 5). Every report holds them all under ``at`` (``{"1": {"precision",
        "ndcg", "adiv"}, ...}``, with ``k`` among them) and the values at ``k`` as ``map_at_k``,
        ``precision``, ``ndcg``, ``adiv``.
    protocols : which of
        ``"tartarus"`` - only users with at least one relevant item count; P@k divides by
            ``min(k, n_items)``; nDCG has gains 0/1 and an ideal that ranks all of the user's
            relevant items first; ADiv over the counted users' top k.
        ``"seed"`` - every row counts, a user without a relevant item scoring 0 in MAP, P and nDCG
            (as the seed's ``eval.py``); P@k divides by ``k``; nDCG is the seed's: gains are the
            relevance values and the ideal sorts the gains of the model's own top ``max(cut,
            max(cuts))`` (its top 5 for @1, @3, @5); ADiv over every row's top k.
    block_map : None (here, chunk by chunk) or ``block_map(fn, blocks, *shared)`` yielding
        ``fn(block, *shared)`` for every block in any order, e.g. ``functools.partial(
        scheduler.map_unordered, client)`` for a Dask cluster: the users are then sent out in blocks
        of ``block_rows`` (default: about :data:`BLOCK_ELEMENTS` scores each) with their relevance
        rows (and their factors, for a FactorScores, whose items go out once), each block comes back
        as per-user values (:class:`RankingRows`, small) and they are added up in user order: the
        same numbers, bit for bit, as here (see :class:`RankingTotals`).
    ``roc_auc`` (Mann-Whitney, average ranks for ties) and ``pr_auc`` (average precision over the
    full ranking, ties by column index) are per user, averaged over users that have both relevant
    and irrelevant items, in both protocols (the seed's macro average over users with a held-out
    item is the same). ``n_users`` is the number of users counted. Returns ``{protocol: report}``.
    """
    totals = RankingTotals(_shape(relevance)[-1], k, cuts, protocols, with_auc)
    if block_map is None:
        for rows in ranking_rows(relevance, scores, k, cuts, protocols, chunk_rows, with_auc):
            totals.add(rows)
    else:
        _add_blocks(totals, block_map, relevance, scores, block_rows, (k, cuts, protocols, chunk_rows, with_auc))
    return totals.reports()


# scores in one block of users sent to a worker (float64): 32M = 256 MB dense, a few seconds of work
BLOCK_ELEMENTS = 1 << 25


class _ScoreRows:
    """``scores(start, stop)`` of a callable, for a block of users starting at ``offset``."""

    def __init__(self, scores, offset):
        self.scores, self.offset = scores, offset

    def __call__(self, start, stop):
        return self.scores(self.offset + start, self.offset + stop)


class _BlockContext:
    """What every block of one :func:`ranking_reports` call shares (sent to each worker once):
    ``items`` (a FactorScores without users, or None) and the metric options."""

    def __init__(self, items, options):
        self.items, self.options = items, options


def _ranking_block(block, context):
    """Worker side of :func:`ranking_reports` with ``block_map``: the RankingRows of one block.

    block : (start, relevance rows, score rows): the score rows are the users' factors when the
    context has items (see :meth:`FactorScores.with_users`), else an array or a
    ``scores(start, stop)`` callable of the block's own rows."""
    start, relevance, scores = block
    if context.items is not None:
        scores = context.items.with_users(scores)
    return RankingRows.concatenate(list(ranking_rows(relevance, scores, *context.options, offset=start)))


def _add_blocks(totals, block_map, relevance, scores, block_rows, options):
    """Add the RankingRows of every block of users, computed by ``block_map``, to ``totals``: the
    counts as each block comes, the per-user values in user order (a block that comes early keeps
    only those, (users, 3 + 2 n_cut) floats, until the blocks before it are in)."""
    rel_shape = relevance.shape if sp.issparse(relevance) else np.shape(relevance)
    if len(rel_shape) != 2:
        raise DataMismatch(f"relevance: expected shape (n_queries, n_candidates), got {tuple(rel_shape)}")
    n, c = rel_shape
    if n == 0:
        raise DataMismatch("relevance has no rows: expected at least one query")
    is_factors = isinstance(scores, FactorScores)
    if not callable(scores) or is_factors:
        score_shape = scores.shape if is_factors or sp.issparse(scores) else np.shape(scores)
        if tuple(score_shape) != tuple(rel_shape):
            raise DataMismatch(f"relevance has shape {tuple(rel_shape)} but scores has shape {tuple(score_shape)}: "
                               f"expected both (n_queries, n_candidates)")
    step = int(block_rows) if block_rows else max(1, BLOCK_ELEMENTS // max(1, c))
    rel_src = relevance.tocsr() if sp.issparse(relevance) else np.asarray(relevance)

    def blocks():
        for start in range(0, n, step):
            stop = min(n, start + step)
            if is_factors:
                rows = scores.users[start:stop]
            elif callable(scores):
                rows = _ScoreRows(scores, start)
            else:
                rows = scores[start:stop]
            yield start, rel_src[start:stop], rows

    context = _BlockContext(scores.with_users(scores.users[:0]) if is_factors else None, options)
    waiting = {}
    for rows in block_map(_ranking_block, blocks(), context):
        totals.add_counts(rows)
        waiting[rows.start] = rows.values
        while totals.n_rows in waiting:
            totals.add_values(totals.n_rows, waiting.pop(totals.n_rows))
    if totals.n_rows != n:  # pragma: no cover - a block_map that lost blocks
        raise DataMismatch(f"block_map returned users up to {totals.n_rows} of {n}")


def ranking_report(relevance, scores, k=MAP_K, chunk_rows=None, with_auc=True, cuts=RANK_CUTS,
                   protocol="tartarus"):
    """The ranking metrics of one protocol (default ours): :func:`ranking_reports` for that one."""
    return ranking_reports(relevance, scores, k, cuts, (protocol,), chunk_rows, with_auc)[protocol]
