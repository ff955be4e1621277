"""Evaluation the seed's way beside ours: both recommendation protocols against plain per-user loops,
F1-maximising thresholds against a brute-force search, and the seed's removed `evaluating` keys."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import f1_score, precision_recall_curve

from tartarus import fileio
from tartarus import metrics as M
from tartarus.config import Registry, experiment_from_dict
from tartarus.errors import ConfigError
from tartarus.evaluate import (evaluate_recommendation, evaluate_saved, evaluate_scores, format_recommendation,
                               format_results)
from tartarus.layout import DataLayout

CUTS = (1, 3, 5)


# ------------------------------------------------------------------------ plain references
def _dcg(gains, k):
    gains = np.asarray(gains, dtype=float)[:k]
    return float(sum(g / np.log2(i + 2) for i, g in enumerate(gains)))


def reference(rel, scores, k, protocol):
    """Per-user loop. seed: every row counts (0 without a relevant item), P divides by k, nDCG's
    ideal sorts the gains of the retrieved top max(cut, 5); tartarus: only rows with a relevant
    item, P divides by min(k, n), binary nDCG against all relevant items."""
    n_users, n_items = rel.shape
    cutoffs = sorted(set(CUTS) | {k})
    depth = max(cutoffs)
    sums = {"map_at_k": 0.0, **{f"{m}@{c}": 0.0 for m in ("p", "ndcg") for c in cutoffs}}
    shown = {c: set() for c in cutoffs}
    counted = 0
    for u in range(n_users):
        relevant = [j for j in range(n_items) if rel[u, j] > 0]
        if protocol == "tartarus" and not relevant:
            continue
        counted += 1
        ranked = list(np.argsort(-scores[u], kind="stable"))[:depth]
        sums["map_at_k"] += M.average_precision_at_k(relevant, ranked, k)
        for c in cutoffs:
            top = ranked[:c]
            shown[c].update(top)
            n_hit = sum(1 for j in top if rel[u, j] > 0)
            if protocol == "seed":
                sums[f"p@{c}"] += n_hit / c
                retrieved = [rel[u, j] for j in ranked[:max(c, max(CUTS))]]
                ideal = _dcg(sorted(retrieved, reverse=True), c)
                sums[f"ndcg@{c}"] += _dcg([rel[u, j] for j in top], c) / ideal if ideal else 0.0
            else:
                sums[f"p@{c}"] += n_hit / min(c, n_items)
                ideal = _dcg([1.0] * len(relevant), c)
                sums[f"ndcg@{c}"] += _dcg([float(rel[u, j] > 0) for j in top], c) / ideal
    out = {key: value / counted for key, value in sums.items()}
    out.update({f"adiv@{c}": len(shown[c]) / n_items for c in cutoffs})
    out["n_users"] = counted
    return out


def _check(report, ref, k):
    assert report["n_users"] == ref["n_users"]
    assert report["map_at_k"] == pytest.approx(ref["map_at_k"], abs=1e-12)
    for c in sorted(set(CUTS) | {k}):
        at = report["at"][str(c)]
        assert at["precision"] == pytest.approx(ref[f"p@{c}"], abs=1e-12), c
        assert at["ndcg"] == pytest.approx(ref[f"ndcg@{c}"], abs=1e-12), c
        assert at["adiv"] == pytest.approx(ref[f"adiv@{c}"], abs=1e-12), c
    at_k = report["at"][str(k)]
    assert (report["precision"], report["ndcg"], report["adiv"]) == (at_k["precision"], at_k["ndcg"], at_k["adiv"])


def _data(seed=0, n_users=70, n_items=40, f=6):
    rng = np.random.default_rng(seed)
    users, items = rng.normal(size=(n_users, f)), rng.normal(size=(n_items, f))
    # graded relevance (play counts 1..4), biased towards well-scored items; some users have none
    liked = (users @ items.T + rng.normal(scale=1.5, size=(n_users, n_items))) > 2.0
    rel = liked * rng.integers(1, 5, (n_users, n_items))
    rel[::7] = 0
    return users, items, rel.astype(float)


# ------------------------------------------------------------------------ recommendation protocols
@pytest.mark.parametrize("k", [10, 2])
def test_both_protocols_match_per_user_reference(k):
    users, items, rel = _data()
    scores = users @ items.T
    assert (rel.sum(axis=1) == 0).sum() >= 10  # users without a held-out item
    refs = {p: reference(rel, scores, k, p) for p in M.PROTOCOLS}
    assert refs["seed"]["n_users"] == len(rel) > refs["tartarus"]["n_users"]
    for how in (scores, lambda a, b: scores[a:b], M.FactorScores(users, items)):
        for with_auc in (True, False):
            reports = M.ranking_reports(sp.csr_matrix(rel), how, k=k, protocols=M.PROTOCOLS, chunk_rows=16,
                                        with_auc=with_auc)
            for name in M.PROTOCOLS:
                _check(reports[name], refs[name], k)
            if with_auc:  # the AUCs leave users without a held-out item out in both protocols
                assert reports["seed"]["roc_auc"] == reports["tartarus"]["roc_auc"]
    # one protocol alone gives the same numbers
    alone = M.ranking_report(rel, scores, k=k, protocol="seed")
    _check(alone, refs["seed"], k)
    # the seed's MAP is ours scaled by the share of users with a held-out item
    ratio = refs["tartarus"]["n_users"] / refs["seed"]["n_users"]
    assert refs["seed"]["map_at_k"] == pytest.approx(refs["tartarus"]["map_at_k"] * ratio)


def test_seed_protocol_by_hand():
    # 3 users x 4 items; user 2 has no held-out item
    rel = np.array([[0, 2, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], float)
    scores = np.array([[.9, .8, .1, .7], [.1, .2, .3, .4], [.4, .3, .2, .1]])
    rep = M.ranking_reports(rel, scores, k=3, cuts=(1, 3), protocols=M.PROTOCOLS)
    # user 0 ranks 0, 1, 3: hits at 2 and 3 -> AP = (1/2 + 2/3) / 2; user 1 ranks 3, 2, 1: no hit in 3
    ap0 = (1 / 2 + 2 / 3) / 2
    assert rep["tartarus"]["map_at_k"] == pytest.approx(ap0 / 2)
    assert rep["seed"]["map_at_k"] == pytest.approx(ap0 / 3)
    assert rep["seed"]["at"]["3"]["precision"] == pytest.approx((2 / 3) / 3)
    # seed nDCG@3 of user 0: gains (0, 2, 1) against its sorted self (2, 1, 0)
    seed0 = (2 / np.log2(3) + 1 / 2) / (2 + 1 / np.log2(3))
    assert rep["seed"]["at"]["3"]["ndcg"] == pytest.approx(seed0 / 3)
    # ours: 0/1 gains against two relevant items at the top
    ours0 = (1 / np.log2(3) + 1 / 2) / (1 + 1 / np.log2(3))
    assert rep["tartarus"]["at"]["3"]["ndcg"] == pytest.approx(ours0 / 2)
    # ADiv@1: the top items 0 (user 0) and 3 (user 1), plus 0 again (user 2, seed only)
    assert rep["tartarus"]["at"]["1"]["adiv"] == rep["seed"]["at"]["1"]["adiv"] == pytest.approx(2 / 4)
    assert rep["seed"]["n_users"] == 3 and rep["tartarus"]["n_users"] == 2


def test_factor_scores_sub_cut_offs_are_exact_under_float32_ties():
    # 8 items whose float64 scores differ by less than float32 can tell apart: for the users that
    # rank them first they fill ranks 1 to 8, straddling the cut-offs 1, 3, 5 but not k = 10
    rng = np.random.default_rng(3)
    users = rng.normal(size=(200, 8))
    items = np.vstack([rng.normal(size=8) + 1e-9 * rng.normal(size=(8, 8)), rng.normal(size=(30, 8)) * 0.1])
    exact = users @ items.T
    col, _ = M.factor_top_hits(M.FactorScores(users, items), sp.csr_matrix((200, 38)), 0, 200, 10, CUTS)
    for c in CUTS:
        ref = M.top_k(exact, c)
        assert all(set(col[u, :c]) == set(ref[u]) for u in range(200)), c
    rel = np.zeros((200, 38))
    rel[:, 30] = 1
    fast = M.ranking_reports(rel, M.FactorScores(users, items), k=10, protocols=M.PROTOCOLS, with_auc=False)
    slow = M.ranking_reports(rel, exact, k=10, protocols=M.PROTOCOLS, with_auc=False)
    for name in M.PROTOCOLS:
        assert fast[name]["at"] == slow[name]["at"] and fast[name]["map_at_k"] == slow[name]["map_at_k"]


def _rec_layout(tmp_path):
    lay = DataLayout(tmp_path)
    rng = np.random.default_rng(0)
    ids = [f"i{j}" for j in range(25)]
    fileio.write_lines(lay.items_index("test", "R"), ids)
    truth, users = rng.normal(size=(25, 4)), rng.normal(size=(60, 4))
    counts = ((users @ truth.T + rng.normal(scale=0.5, size=(60, 25))) > 1.2) * rng.integers(1, 6, (60, 25))
    counts[:8] = 0  # users with a factor but no held-out item: 0 in the seed's protocol
    counts[50:] = 0
    users[50:] = 0  # users without a train interaction: no factor, not evaluated by either
    fileio.save_sparse(lay.eval_matrix("test", "R"), sp.csr_matrix(counts.T.astype(np.float32)))
    fileio.save_npy(lay.user_factors("als", 4, "R"), users)
    predicted = truth + rng.normal(scale=0.3, size=truth.shape)
    fileio.save_npy(lay.prediction("model_1", "test"), predicted)
    fileio.write_lines(lay.prediction_index("model_1", "test"), ids)
    unit = predicted / np.linalg.norm(predicted, axis=1, keepdims=True)
    return lay, counts.astype(float), users @ unit.T


def test_evaluate_recommendation_reports_both_protocols(tmp_path):
    lay, counts, scores = _rec_layout(tmp_path)
    exp = Registry().experiment("rec_sparse", ["dataset.dataset='R'", "dataset.dim=4", "evaluating.map_k=10"])
    assert exp.evaluating.protocol == "both"  # the paper experiments report both
    res = evaluate_recommendation(lay, "model_1", "test", exp, write=True)
    assert set(res["protocols"]) == {"tartarus", "seed"} and res["protocol"] == "tartarus"
    _check(res["protocols"]["tartarus"], reference(counts, scores, 10, "tartarus"), 10)
    _check(res["protocols"]["seed"], reference(counts[:50], scores[:50], 10, "seed"), 10)
    assert res["protocols"]["seed"]["n_users"] == 50 and res["n_users"] == int((counts.sum(axis=1) > 0).sum())
    assert res["map_at_k"] == res["protocols"]["tartarus"]["map_at_k"] > res["protocols"]["seed"]["map_at_k"]
    assert set(res["protocols"]["seed"]["baselines"]) == {"random", "popularity"}
    doc = fileio.read_json(lay.result("model_1", "test"))
    assert doc["protocols"]["seed"]["at"]["5"]["precision"] == res["protocols"]["seed"]["at"]["5"]["precision"]
    text = format_recommendation({"model": "model_1", "set": "test", **res})
    assert "protocol seed: 50 users" in text and "nDCG@3" in text and "ADiv@10" in text
    # --protocol overrides the experiment's
    only = evaluate_recommendation(lay, "model_1", "test", exp, write=False, protocol="seed")
    assert list(only["protocols"]) == ["seed"] and only["map_at_k"] == res["protocols"]["seed"]["map_at_k"]
    with pytest.raises(ConfigError, match="protocol"):
        evaluate_recommendation(lay, "model_1", "test", exp, write=False, protocol="paper")


def test_cli_evaluate_passes_protocol(monkeypatch, tmp_path):
    import tartarus.pipeline as P
    from tartarus.cli import main
    seen = {}
    monkeypatch.delenv("TARTARUS_SCHEDULER", raising=False)
    monkeypatch.setattr(P, "evaluate_trained", lambda layout, model, sets, verbose, protocol, device, scheduler, auc:
                        seen.update(model=model, protocol=protocol, device=device, scheduler=scheduler, auc=auc))
    main(["evaluate", "model_3", "--protocol", "seed", "--data-dir", str(tmp_path)])
    assert seen == {"model": "model_3", "protocol": "seed", "device": "auto", "scheduler": None, "auc": None}
    main(["evaluate", "model_3", "--scheduler", "tcp://h:8786", "--no-auc", "--data-dir", str(tmp_path)])
    assert seen["scheduler"] == "tcp://h:8786" and seen["auc"] is False
    with pytest.raises(SystemExit):
        main(["evaluate", "model_3", "--protocol", "paper", "--data-dir", str(tmp_path)])


# ------------------------------------------------------------------------ thresholds
def _brute_per_class(y, s):
    out = []
    for j in range(y.shape[1]):
        best = (-1.0, None)
        for t in sorted(set(s[:, j])):  # ascending: a later threshold must do strictly better
            pred = s[:, j] >= t
            tp = (pred & (y[:, j] > 0)).sum()
            f = 2 * tp / (pred.sum() + (y[:, j] > 0).sum())
            if f > best[0] + 1e-12:
                best = (f, t)
        out.append(best)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_thresholds_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((60, 5)) < 0.3).astype(int)
    s = np.round(0.4 * y + rng.random((60, 5)), 2)  # rounded: equal scores occur
    y[:, 4] = 0  # no positive: keeps the default
    chosen = M.f_max_thresholds(y, s, per_class=True, default=0.5)
    brute = _brute_per_class(y, s)
    for j in range(4):
        assert chosen.values[j] == brute[j][1] and chosen.f1[j] == pytest.approx(brute[j][0], abs=1e-12)
    assert chosen.values[4] == 0.5 and np.isnan(chosen.f1[4]) and chosen.fallback == [4]


@pytest.mark.parametrize("seed", [0, 1])
def test_global_threshold_is_the_seed_scripts_choice(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((50, 6)) < 0.25).astype(int)
    s = 0.5 * y + rng.random((50, 6))
    chosen = M.f_max_thresholds(y, s, per_class=False)
    # the seed's threshold.py: precision_recall_curve over all pairs, F1 only where p > r, argmax
    p, r, thr = precision_recall_curve(y.ravel(), s.ravel())
    f = np.nan_to_num(2 * p * r / (p + r) * (p > r))
    assert np.all(chosen.values == thr[np.argmax(f)])
    # and by brute force over every score: the best F1 where precision > recall, lowest threshold first
    truth, score = y.ravel() > 0, s.ravel()
    best = (-1.0, None)
    for t in sorted(set(score)):
        pred = score >= t
        tp = (pred & truth).sum()
        if tp / pred.sum() > tp / truth.sum() and f1_score(truth, pred) > best[0] + 1e-12:
            best = (f1_score(truth, pred), t)
    assert chosen.values[0] == best[1] and chosen.f1[0] == pytest.approx(best[0])


def test_thresholds_apply_per_class_in_evaluate_scores():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[.3, .9], [.2, .6], [.4, .7], [.1, .65]])
    r = evaluate_scores(y, s, "multilabel", threshold=np.array([.25, .68]))
    # a: .3 .4 above .25 -> TP 2; b: .9 .7 above .68 -> TP 1 (row 2), FP 1 (row 0), FN 1 (row 1)
    assert r["per_class"][0]["f1"] == pytest.approx(1.0) and r["per_class"][1]["f1"] == pytest.approx(0.5)
    assert r["threshold"] == [.25, .68] and r["per_class"][1]["threshold"] == .68
    with pytest.raises(Exception, match="thresholds given for 2"):
        evaluate_scores(y, s, "multilabel", threshold=np.array([.5, .5, .5]))


def _multilabel_model(layout, thresholds="per_class", with_val=True):
    exp = experiment_from_dict("tagger", {
        "dataset": {"dataset": "TAGS", "fact": "class", "dim": 3, "evaluation": "multilabel"},
        "evaluating": {"thresholds": thresholds, "threshold": 0.5}})
    fileio.write_json(layout.model_config("model_9"), {"model_id": "model_9", "experiment": exp.to_dict()})
    rng = np.random.default_rng(5)
    for set_, n in (("val", 40), ("test", 30)) if with_val else (("test", 30),):
        ids = [f"{set_}{i}" for i in range(n)]
        y = (rng.random((n, 3)) < 0.4).astype(np.float32)
        fileio.write_lines(layout.items_index(set_, "TAGS"), ids)
        fileio.save_npy(layout.y(set_, "class", 3, "TAGS"), y)
        fileio.save_npy(layout.prediction("model_9", set_), (0.3 * y + 0.35 * rng.random((n, 3))).astype(np.float32))
        fileio.write_lines(layout.prediction_index("model_9", set_), ids)
    return exp


def test_evaluate_saved_uses_thresholds_chosen_on_val(tmp_path):
    layout = DataLayout(tmp_path)
    exp = _multilabel_model(layout)
    res = evaluate_saved(layout, "model_9", "test", exp, write=True)
    val_y = fileio.load_npy(layout.y("val", "class", 3, "TAGS"))
    val_s = fileio.load_npy(layout.prediction("model_9", "val")).astype(np.float64)
    chosen = M.f_max_thresholds(val_y, val_s)
    assert res["threshold"] == chosen.values.tolist() and res["thresholds"]["mode"] == "per_class"
    assert res["thresholds"]["chosen_on"] == "val" and res["thresholds"]["val_f1"] == pytest.approx(chosen.f1.tolist())
    # the P/R/F figures are those at these thresholds, not at 0.5 (every score here is < 0.65)
    test_y = fileio.load_npy(layout.y("test", "class", 3, "TAGS"))
    test_s = fileio.load_npy(layout.prediction("model_9", "test")).astype(np.float64)
    pred = test_s >= chosen.values
    assert res["macro_f1"] == pytest.approx(f1_score(test_y, pred, average="macro", zero_division=0))
    assert res["macro_f1"] != pytest.approx(evaluate_scores(test_y, test_s, "multilabel")["macro_f1"])
    assert fileio.read_json(layout.result("model_9", "test"))["threshold"] == res["threshold"]
    assert "per_class, maximum F1 on val" in format_results({"model": "model_9", **res})


def test_fixed_threshold_and_missing_val_split(tmp_path):
    layout = DataLayout(tmp_path / "fixed")
    exp = _multilabel_model(layout, "fixed")
    assert evaluate_saved(layout, "model_9", "test", exp, write=False)["threshold"] == 0.5
    layout = DataLayout(tmp_path / "noval")
    exp = _multilabel_model(layout, with_val=False)
    with pytest.raises(ConfigError, match="items_index_val.*fixed"):
        evaluate_saved(layout, "model_9", "test", exp, write=False)


# ------------------------------------------------------------------------ removed keys
@pytest.mark.parametrize("key", ["get_map", "get_p", "get_knn"])
def test_seed_evaluating_switches_are_removed(key):
    with pytest.raises(ConfigError, match=f"evaluating.{key}: this key was removed"):
        experiment_from_dict("x", {"dataset": {"dataset": "D", "dim": 2}, "evaluating": {key: True}})
    # a model saved when the key existed still loads
    exp = experiment_from_dict("x", {"dataset": {"dataset": "D", "dim": 2}, "evaluating": {key: True}}, saved=True)
    assert exp.evaluating.map_k == 500

