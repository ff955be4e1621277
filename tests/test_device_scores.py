"""The accelerator path of FactorScores (keras.ops product and top-k, float64 re-check on the CPU)
gives the same ranking metrics as the numpy path and as plain float64 scores, ties included.

It runs through keras.ops on whatever backend is active; on a machine without a GPU that is the
CPU, which exercises exactly the code a GPU would run."""

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import metrics as M
from tartarus.errors import ConfigError


def _relevance(rng, n, c, density=0.05):
    """(n, c) CSR of graded relevance (play counts 1..5), a few users without any."""
    rel = sp.random(n, c, density=density, format="csr", random_state=rng,
                    data_rvs=lambda size: rng.integers(1, 6, size).astype(np.float64))
    rel = sp.lil_matrix(rel)
    rel[::7] = 0  # users without a held-out item
    return rel.tocsr()


def _integer_factors(rng, n, c, f=8):
    """Small integer factors: many scores tie exactly (also in float32)."""
    return (rng.integers(-2, 3, (n, f)).astype(np.float64),
            rng.integers(-2, 3, (c, f)).astype(np.float64))


def _near_tie_factors(rng, n, c, f=16):
    """Items in pairs whose scores differ by far less than float32 resolution (relative 1e-12), so
    float32 cannot order them and only the float64 re-check can."""
    users = rng.normal(size=(n, f))
    base = rng.normal(size=(c // 2, f))
    items = np.concatenate([base, base * (1 + 1e-12 * rng.normal(size=(c // 2, 1)))])
    return users, items[rng.permutation(len(items))]


def _reports(relevance, scores, k, chunk_rows):
    return M.ranking_reports(relevance, scores, k=k, protocols=("tartarus", "seed"), chunk_rows=chunk_rows,
                             with_auc=False)


def _assert_same(got, want):
    for name in want:
        for key in ("map_at_k", "precision", "ndcg", "adiv"):
            assert got[name][key] == pytest.approx(want[name][key], abs=1e-9), (name, key)
        for cut in want[name]["at"]:
            for key, value in want[name]["at"][cut].items():
                assert got[name]["at"][cut][key] == pytest.approx(value, abs=1e-9), (name, cut, key)
        assert got[name]["n_users"] == want[name]["n_users"]


@pytest.mark.parametrize("make", [_integer_factors, _near_tie_factors])
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, None])
def test_accelerator_path_equals_cpu_path_and_float64(make, chunk_rows):
    rng = np.random.default_rng(3)
    n, c, k = 60, 300, 50
    users, items = make(rng, n, c)
    relevance = _relevance(rng, n, c)
    exact = users @ items.T  # plain float64 scores: the reference ranking
    cpu = M.FactorScores(users, items, device="cpu")
    acc = M.FactorScores(users, items, device="accelerator")
    assert acc.device == "accelerator"
    want = _reports(relevance, exact, k, chunk_rows)
    _assert_same(_reports(relevance, cpu, k, chunk_rows), want)
    _assert_same(_reports(relevance, acc, k, chunk_rows), want)
    for metric in (M.map_at_k, M.precision_at_k):
        ref = metric(relevance, exact, k, chunk_rows)
        assert metric(relevance, acc, k, chunk_rows) == pytest.approx(ref, abs=1e-9)
        assert metric(relevance, cpu, k, chunk_rows) == pytest.approx(ref, abs=1e-9)
    np.testing.assert_allclose(M.ap_at_k_rows(relevance, acc, k, chunk_rows),
                               M.ap_at_k_rows(relevance, exact, k, chunk_rows), rtol=0, atol=1e-9)


def test_accelerator_path_widens_the_candidates_until_complete():
    """All items equal for some users (every score ties) and long near-tie runs for others: the
    device's top-m must grow to every tied item, and the order be the float64 one (ties by column)."""
    rng = np.random.default_rng(5)
    n, c, k = 12, 700, 20
    items = np.repeat(rng.normal(size=(7, 4)), 100, axis=0) * (1 + 1e-13 * rng.normal(size=(c, 1)))
    users = rng.normal(size=(n, 4))
    users[:3] = 0.0  # scores all exactly 0: the whole row ties
    relevance = _relevance(rng, n, c, density=0.2)
    exact = users @ items.T
    acc = M.FactorScores(users, items, device="accelerator")
    rows, cols, _ = M._keras_candidates(acc, 0, n, k, 2.0 * acc.bound(0, n))
    assert np.all(np.bincount(rows, minlength=n)[:3] == c)  # every item of the tied rows
    want = _reports(relevance, exact, k, None)
    _assert_same(_reports(relevance, acc, k, None), want)
    _assert_same(_reports(relevance, acc, k, 5), want)


def test_device_choice_is_checked_and_auto_follows_the_backend():
    users, items = np.ones((2, 3)), np.ones((4, 3))
    assert M.FactorScores(users, items).device == "cpu"  # the default never touches Keras
    auto = M.FactorScores(users, items, device="auto").device
    assert auto == ("accelerator" if M.accelerator_available() else "cpu")
    with pytest.raises(ConfigError, match=r"device must be one of 'auto', 'cpu', 'accelerator', got 'gpu'"):
        M.FactorScores(users, items, device="gpu")


@pytest.mark.parametrize("chunk_rows", [9, None])
def test_accelerator_path_with_auc_equals_float64(chunk_rows):
    """With the AUCs (what ``tartarus evaluate`` reports) the top k come from the accelerator path
    and the AUCs from float64 scores on the CPU: every metric as with plain float64 scores."""
    rng = np.random.default_rng(11)
    users, items = _near_tie_factors(rng, 40, 200)
    relevance = _relevance(rng, 40, 200, density=0.1)
    exact = users @ items.T
    protocols = ("tartarus", "seed")
    want = M.ranking_reports(relevance, exact, k=30, protocols=protocols, chunk_rows=chunk_rows)
    for device in ("cpu", "accelerator"):
        got = M.ranking_reports(relevance, M.FactorScores(users, items, device=device), k=30,
                                protocols=protocols, chunk_rows=chunk_rows)
        _assert_same(got, want)
        for name in protocols:
            for key in ("roc_auc", "pr_auc"):
                assert got[name][key] == pytest.approx(want[name][key], abs=1e-12), (device, name, key)


def test_evaluate_device_option_parses_and_rejects_bad_values(tmp_path, capsys):
    from tartarus.cli import build_parser
    from tartarus.pipeline import evaluate_trained

    parser = build_parser()
    assert parser.parse_args(["evaluate", "model_1"]).device == "auto"
    for device in ("auto", "cpu", "accelerator"):
        assert parser.parse_args(["evaluate", "model_1", "--device", device]).device == device
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["evaluate", "model_1", "--device", "gpu"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--device: invalid choice: 'gpu'" in err and "'accelerator'" in err
    # through the API: a bad value fails before anything is read or predicted
    with pytest.raises(ConfigError, match=r"device must be one of .* got 'tpu'"):
        evaluate_trained(tmp_path, "model_1", device="tpu")
