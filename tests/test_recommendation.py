"""Recommendation evaluation: predicted item factors ranked for every user of matrix_test."""

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import metrics as M
from tartarus.config import Registry
from tartarus.evaluate import evaluate_recommendation
from tartarus.fileio import save_npy, save_sparse, write_lines
from tartarus.layout import DataLayout


def test_every_user_of_matrix_test_is_evaluated(tmp_path):
    lay = DataLayout(tmp_path)
    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(30)]
    write_lines(lay.items_index("test", "R"), items)
    n_users = 12000  # more than the seed's first 10,000
    truth = rng.normal(size=(30, 4))
    users = rng.normal(size=(n_users, 4))
    # users listen to the held-out items they score highly (plus noise)
    listen = (users @ truth.T + rng.normal(scale=0.5, size=(n_users, 30))) > 1.5
    listen[:5] = False  # users without held-out interactions are not counted
    save_sparse(lay.eval_matrix("test", "R"), sp.csr_matrix(listen.T.astype(np.float32)))
    save_npy(lay.user_factors("als", 4, "R"), users)
    predicted = truth + rng.normal(scale=0.3, size=truth.shape)
    save_npy(lay.prediction("model_1", "test"), predicted[::-1])  # rows in another order, by id
    write_lines(lay.prediction_index("model_1", "test"), items[::-1])
    exp = Registry().experiment("dummy_audio_als", ["dataset.dataset='R'", "dataset.dim=4", "evaluating.map_k=10"])
    res = evaluate_recommendation(lay, "model_1", "test", exp, write=True)
    relevance = sp.csr_matrix(listen.astype(float))
    unit = predicted / np.linalg.norm(predicted, axis=1, keepdims=True)
    expected = M.ranking_report(relevance, users @ unit.T, k=10)
    assert res["n_users"] == int((listen.sum(axis=1) > 0).sum()) > 10000
    for key in ("map_at_k", "precision", "ndcg", "roc_auc", "pr_auc", "adiv"):
        assert res[key] == pytest.approx(expected[key], abs=1e-12)
    # and by hand, not through the metrics module: each counted user's AP@10 over the 30 items ranked
    # by score (ties by index), hits' precisions over min(relevant, 10); P@10 over 10
    counted = listen[listen.any(axis=1)]
    order = np.argsort(-(users[listen.any(axis=1)] @ unit.T), axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(counted, order, axis=1)
    ap = (np.cumsum(hits, axis=1) / np.arange(1, 11) * hits).sum(axis=1) / np.minimum(counted.sum(axis=1), 10)
    assert res["map_at_k"] == pytest.approx(ap.mean(), abs=1e-12)
    assert res["precision"] == pytest.approx(hits.sum(axis=1).mean() / 10, abs=1e-12)
    # a model close to the truth beats both baselines; popularity beats random
    assert res["map_at_k"] > res["baselines"]["popularity"]["map_at_k"] > res["baselines"]["random"]["map_at_k"]
    assert lay.result("model_1", "test").exists()
