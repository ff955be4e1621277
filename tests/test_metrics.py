"""Metrics against hand-computed values and against plain per-row reference implementations."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import metrics as M
from tartarus.errors import DataMismatch


# ----------------------------------------------------------------------------- references
def ref_apk(actual, predicted, k):
    """ml_metrics.apk, verbatim in spirit."""
    if len(predicted) > k:
        predicted = predicted[:k]
    score, hits = 0.0, 0.0
    for i, p in enumerate(predicted):
        if p in actual and p not in predicted[:i]:
            hits += 1.0
            score += hits / (i + 1.0)
    if not actual:
        return 0.0
    return score / min(len(actual), k)


def ref_ranking(row):
    """Descending score, ties by ascending index."""
    return list(np.argsort(-row, kind="stable"))


def ref_rows(relevance, scores, k):
    ap, prec, ndcg = [], [], []
    for rel, sco in zip(relevance, scores):
        ranked = ref_ranking(sco)
        actual = [j for j in range(len(rel)) if rel[j] > 0]
        ap.append(ref_apk(actual, ranked, k))
        kk = min(k, len(rel))
        prec.append(sum(1 for j in ranked[:kk] if rel[j] > 0) / kk)
        dcg = sum(rel[j] / math.log2(i + 2) for i, j in enumerate(ranked[:kk]))
        ideal = sorted(rel, reverse=True)[:kk]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg.append(dcg / idcg if idcg > 0 else 0.0)
    return np.array(ap), np.array(prec), np.array(ndcg)


# ----------------------------------------------------------------------------- classification
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])


def test_accuracy_by_hand():
    assert M.accuracy([0, 1, 2, 1], [0, 2, 2, 1]) == pytest.approx(3 / 4)
    # indicator rows must match exactly: rows 0 and 2 match, row 1 does not
    assert M.accuracy([[1, 0], [1, 1], [0, 1]], [[1, 0], [1, 0], [0, 1]]) == pytest.approx(2 / 3)


def test_precision_recall_f1_by_hand():
    # class 0: predicted at {0, 5}, true at {0, 1}: TP 1 -> P 1/2, R 1/2, F1 1/2
    # class 1: predicted at {1, 2, 3}, true at {2, 3}: TP 2 -> P 2/3, R 1, F1 = 2(2/3)/(5/3) = 0.8
    # class 2: predicted at {4}, true at {4, 5}: TP 1 -> P 1, R 1/2, F1 = 2(1/2)/(3/2) = 2/3
    per = M.precision_recall_f1(Y_TRUE, Y_PRED, average=None)
    np.testing.assert_allclose(per["precision"], [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(per["recall"], [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(per["f1"], [1 / 2, 0.8, 2 / 3])
    macro = M.precision_recall_f1(Y_TRUE, Y_PRED, "macro")
    assert macro["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert macro["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert macro["f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert M.macro_f1(Y_TRUE, Y_PRED) == pytest.approx(macro["f1"])
    # micro over single-label classes = accuracy = 4/6
    micro = M.precision_recall_f1(Y_TRUE, Y_PRED, "micro")
    assert micro["precision"] == micro["recall"] == micro["f1"] == pytest.approx(4 / 6)
    assert M.micro_f1(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_precision_recall_f1_absent_class_and_indicators():
    # n_classes=4: class 3 never occurs -> contributes 0 to the macro mean, no warning
    macro4 = M.precision_recall_f1(Y_TRUE, Y_PRED, "macro", n_classes=4)
    assert macro4["f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 4)
    # indicators: column 0 TP 1 FP 1 FN 1; column 1 TP 1 FP 0 FN 1 -> micro P = 2/3, R = 2/4
    t = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[1, 0], [1, 0], [0, 1]])
    micro = M.precision_recall_f1(t, p, "micro")
    assert micro["precision"] == pytest.approx(2 / 3) and micro["recall"] == pytest.approx(1 / 2)
    # a single indicator column is one class: TP 1, FP 1, FN 1 -> P = R = F1 = 1/2
    one = M.precision_recall_f1([[1], [0], [1], [0]], [[1], [1], [0], [0]], "macro")
    assert (one["precision"], one["recall"], one["f1"]) == pytest.approx((0.5, 0.5, 0.5))


def test_confusion_matrix_by_hand():
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, 3)
    # rows = true: true 0 -> predicted 0, 1; true 1 -> 1, 1; true 2 -> 2, 0
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert M.confusion_matrix([0, 0], [0, 0], 3).shape == (3, 3)
    with pytest.raises(DataMismatch, match="range"):
        M.confusion_matrix([0, 3], [0, 1], 3)


def test_roc_and_pr_auc_by_hand():
    # positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 pairs, 3 are ordered right -> 0.75
    # ranking 0.8+ 0.4- 0.35+ 0.1-: precision at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert M.roc_auc(y, s).macro == pytest.approx(0.75)
    assert M.pr_auc(y, s).macro == pytest.approx((1 + 2 / 3) / 2)


def test_auc_skips_classes_without_positives_or_negatives():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.5], [0.8, 0.2, 0.5], [0.1, 0.4, 0.5]])
    auc = M.roc_auc(y, s)
    assert auc.skipped == [1, 2]  # 1: no positives, 2: no negatives
    assert auc.per_class[0] == pytest.approx(1.0) and np.isnan(auc.per_class[1:]).all()
    assert auc.macro == pytest.approx(1.0)
    assert auc.evaluated == [0]
    none = M.pr_auc(np.zeros((3, 2)), np.ones((3, 2)))
    assert math.isnan(none.macro) and none.skipped == [0, 1]


@pytest.mark.parametrize("fn", [M.roc_auc, M.pr_auc])
def test_auc_shape_errors_name_both_shapes(fn):
    with pytest.raises(DataMismatch, match=r"\(4, 3\).*\(4, 2\)"):
        fn(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(DataMismatch, match="NaN"):
        fn(np.array([[1], [0]]), np.array([[np.nan], [0.2]]))


def test_label_shape_errors():
    with pytest.raises(DataMismatch, match=r"\(3,\).*\(4,\)"):
        M.accuracy([0, 1, 2], [0, 1, 2, 0])
    with pytest.raises(DataMismatch, match=r"expected shape"):
        M.accuracy(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


# ----------------------------------------------------------------------------- ranking
def test_apk_by_hand():
    # hits at ranks 1, 3, 5: (1/1 + 2/3 + 3/5) / min(3, 5)
    assert M.average_precision_at_k([1, 2, 3], [1, 4, 2, 5, 3], 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # cut at k = 2: one hit at rank 1 -> 1 / min(3, 2)
    assert M.average_precision_at_k([1, 2, 3], [1, 4, 2, 5, 3], 2) == pytest.approx(0.5)
    assert M.average_precision_at_k([], [1, 2], 2) == 0.0
    # a repeated prediction counts once
    assert M.average_precision_at_k([1], [1, 1], 2) == pytest.approx(1.0)
    for actual, predicted, k in [([1, 2, 3], [1, 4, 2, 5, 3], 5), ([7], [1, 2, 7], 3), ([2, 9], [9, 2], 1)]:
        assert M.average_precision_at_k(actual, predicted, k) == pytest.approx(ref_apk(actual, predicted, k))


REL = np.array([[1, 0, 1, 0], [0, 0, 0, 1]])
SCO = np.array([[0.9, 0.8, 0.7, 0.1], [0.4, 0.3, 0.2, 0.1]])


def test_map_precision_ndcg_by_hand():
    # row 0: ranking 0 1 2 3, hits at ranks 1 and 3 -> (1 + 2/3) / min(2, 3); row 1: its item is 4th -> 0
    np.testing.assert_allclose(M.ap_at_k_rows(REL, SCO, 3), [(1 + 2 / 3) / 2, 0.0])
    assert M.map_at_k(REL, SCO, 3) == pytest.approx((1 + 2 / 3) / 4)
    # with k = 4 row 1 hits at rank 4 -> 1/4
    assert M.map_at_k(REL, SCO, 4) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 4) / 2)
    # P@2: row 0 has 1 of 2, row 1 none
    np.testing.assert_allclose(M.precision_at_k_rows(REL, SCO, 2), [0.5, 0.0])
    assert M.precision_at_k(REL, SCO, 2) == pytest.approx(0.25)
    # NDCG@3 row 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal 1 + 1/log2(3)
    np.testing.assert_allclose(M.ndcg_at_k_rows(REL, SCO, 3), [1.5 / (1 + 1 / math.log2(3)), 0.0])


def test_ties_are_broken_by_index():
    # scores tie at 0.5 for items 0, 1, 2: ranking is 3, 0, 1, 2
    rel = np.array([[0, 0, 1, 0]])
    sco = np.array([[0.5, 0.5, 0.5, 0.9]])
    np.testing.assert_array_equal(M.top_k(sco, 2), [[3, 0]])
    np.testing.assert_array_equal(M.top_k(sco, 4), [[3, 0, 1, 2]])
    assert M.map_at_k(rel, sco, 2) == 0.0
    assert M.map_at_k(rel, sco, 4) == pytest.approx(1 / 4)


def test_empty_rows_and_skip_empty():
    rel = np.array([[0, 0, 0], [1, 0, 0]])
    sco = np.array([[0.1, 0.2, 0.3], [0.9, 0.2, 0.3]])
    assert M.map_at_k(rel, sco, 3) == pytest.approx(0.5)
    assert M.map_at_k(rel, sco, 3, skip_empty=True) == pytest.approx(1.0)
    assert M.ndcg_at_k(rel, sco, 3) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_stable_argsort_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(50, 30)).astype(float)  # many ties
    scores[::7] = rng.random((len(scores[::7]), 30))
    for k in (1, 2, 5, 17, 29, 30, 45):
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :min(k, 30)]
        np.testing.assert_array_equal(M.top_k(scores, k), expected)


@pytest.mark.parametrize("seed,tied", [(0, False), (1, True), (2, True)])
def test_ranking_metrics_match_reference(seed, tied):
    rng = np.random.default_rng(seed)
    n, c = 73, 40
    relevance = (rng.random((n, c)) < 0.15).astype(float)
    relevance[3] = 0  # a row without relevant items
    scores = rng.integers(0, 5, size=(n, c)).astype(float) if tied else rng.normal(size=(n, c))
    for k in (1, 5, 10, 40, 500):
        ap, prec, ndcg = ref_rows(relevance, scores, k)
        np.testing.assert_allclose(M.ap_at_k_rows(relevance, scores, k), ap, rtol=0, atol=1e-9)
        np.testing.assert_allclose(M.precision_at_k_rows(relevance, scores, k), prec, rtol=0, atol=1e-9)
        np.testing.assert_allclose(M.ndcg_at_k_rows(relevance, scores, k), ndcg, rtol=0, atol=1e-9)
        assert M.map_at_k(relevance, scores, k) == pytest.approx(ap.mean(), abs=1e-9)
        # chunking, sparse relevance and scores computed per chunk give the same numbers
        by_chunks = M.ap_at_k_rows(sp.csr_matrix(relevance), lambda a, b: scores[a:b], k, chunk_rows=8)
        np.testing.assert_allclose(by_chunks, ap, rtol=0, atol=1e-9)


def test_graded_ndcg_matches_reference():
    rng = np.random.default_rng(5)
    relevance = rng.integers(0, 4, size=(20, 12)).astype(float)
    scores = rng.random((20, 12))
    _, _, ndcg = ref_rows(relevance, scores, 6)
    np.testing.assert_allclose(M.ndcg_at_k_rows(relevance, scores, 6), ndcg, atol=1e-9)


def test_binary_ndcg_matches_scikit_learn_and_ideal_counts_all_relevant_items():
    from sklearn.metrics import ndcg_score
    rng = np.random.default_rng(6)
    relevance = (rng.random((30, 40)) < 0.2).astype(float)
    relevance[relevance.sum(axis=1) == 0, 0] = 1.0
    scores = rng.random((30, 40))  # continuous: no ties
    for k in (5, 40):
        expected = np.mean([ndcg_score(relevance[i:i + 1], scores[i:i + 1], k=k) for i in range(30)])
        assert M.ndcg_at_k(relevance, scores, k) == pytest.approx(expected, abs=1e-12)
    # one of 5 relevant items retrieved, at rank 1: 1 / ideal DCG of 5 hits (the seed's ideal would give 1)
    rel = np.zeros((1, 10))
    rel[0, [0, 6, 7, 8, 9]] = 1
    sco = -np.arange(10.0)[None]
    assert M.ndcg_at_k(rel, sco, 3) == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))


def test_factor_scores_path_is_exact_where_float32_is_not():
    """The float32 fast path of FactorScores re-ranks what float32 cannot separate: same numbers as
    the per-user float64 reference loop, on near-duplicate items, exact ties and every k."""
    rng = np.random.default_rng(7)
    users = rng.normal(size=(150, 24))
    base = rng.normal(size=(50, 24))
    near = base + 1e-7 * rng.normal(size=base.shape)  # float32 scores cannot order these pairs
    items = np.concatenate([base, near, np.round(base), np.round(base)])  # and exact ties
    relevance = (rng.random((150, len(items))) < 0.15).astype(float)
    relevance[:3] = 0  # users without relevant items
    scores64 = users @ items.T
    scores32 = (users.astype(np.float32) @ items.astype(np.float32).T).astype(np.float64)
    fs = M.FactorScores(users, items)
    for k in (1, 5, 50, 120, len(items)):
        ap, prec, ndcg = ref_rows(relevance, scores64, k)
        np.testing.assert_allclose(M.ap_at_k_rows(sp.csr_matrix(relevance), fs, k, chunk_rows=40), ap, atol=1e-12)
        np.testing.assert_allclose(M.precision_at_k_rows(relevance, fs, k), prec, atol=1e-12)
        fast = M.ranking_report(relevance, fs, k, with_auc=False)
        slow = M.ranking_report(relevance, lambda a, b: users[a:b] @ items.T, k, with_auc=False)
        keep = relevance.sum(axis=1) > 0
        assert fast["n_users"] == slow["n_users"] == int(keep.sum())
        for key in ("map_at_k", "precision", "ndcg", "adiv"):
            assert fast[key] == pytest.approx(slow[key], abs=1e-12), key
        assert fast["ndcg"] == pytest.approx(ndcg[keep].mean(), abs=1e-12)
    # the test has teeth: ranking by the float32 scores alone gets some users wrong
    ap32, _, _ = ref_rows(relevance, scores32, 5)
    assert np.abs(ap32 - ref_rows(relevance, scores64, 5)[0]).max() > 1e-3


def test_ranking_input_errors():
    with pytest.raises(DataMismatch, match=r"\(2, 4\).*\(2, 3\)"):
        M.map_at_k(REL, SCO[:, :3], 3)
    with pytest.raises(DataMismatch, match="NaN"):
        M.map_at_k(REL, np.where(SCO > 0.85, np.nan, SCO), 3)
    with pytest.raises(DataMismatch, match="returned shape"):
        M.map_at_k(REL, lambda a, b: np.zeros((b - a, 2)), 3)


def test_ranking_report_matches_per_user_references():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    rel = (rng.random((120, 300)) < 0.04).astype(float)
    rel[5] = 0  # a user without relevant items is not counted
    rel[7] = 1  # nor in the AUCs a user with only relevant items
    sco = rng.normal(size=(120, 300))
    sco[3, :10] = sco[3, 10]  # ties
    report = M.ranking_report(sp.csr_matrix(rel), lambda a, b: sco[a:b], k=50, chunk_rows=17)
    keep = rel.sum(axis=1) > 0
    auc_rows = [i for i in range(120) if keep[i] and rel[i].sum() < 300]
    expected = {
        "map_at_k": np.mean([M.average_precision_at_k(np.flatnonzero(rel[i]), np.argsort(-sco[i], kind="stable"), 50)
                        for i in range(120) if keep[i]]),
        "precision": M.precision_at_k_rows(rel, sco, 50)[keep].mean(),
        "ndcg": M.ndcg_at_k_rows(rel, sco, 50)[keep].mean(),
        "roc_auc": np.mean([roc_auc_score(rel[i], sco[i]) for i in auc_rows]),
        "adiv": len(np.unique(M.top_k(sco[keep], 50))) / 300,
    }
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-12), key
    # average precision over the whole ranking equals sklearn's where no ties are involved
    no_ties = [i for i in auc_rows if i != 3]
    ap = np.mean([average_precision_score(rel[i], sco[i]) for i in no_ties])
    report_no_ties = M.ranking_report(sp.csr_matrix(rel[no_ties]), sco[no_ties], k=50)
    assert report_no_ties["pr_auc"] == pytest.approx(ap, abs=1e-12)
    assert report["n_users"] == int(keep.sum())
