"""Recommendation evaluation on a Dask cluster by blocks of users (``tartarus evaluate --scheduler``)
gives the same numbers, bit for bit, as the local chunked path; and ALS's ``device``.

The cluster is a ``distributed.LocalCluster`` of 2 worker processes, standing in for a real one:
the blocks are pickled to other processes and computed there, as they would be on other machines.
"""

import functools
import json

import numpy as np
import pytest
import scipy.sparse as sp

from tartarus import factors as F
from tartarus import metrics as M
from tartarus.errors import ConfigError, DataMismatch
from tartarus.evaluate import PopularityScores, UniformScores
from tests.fixtures import local_cluster

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture
def block_map(client):
    from tartarus.scheduler import map_unordered
    return functools.partial(map_unordered, client)


def _data(n=90, c=120, f=8, seed=0):
    """Factors with exact float32 ties (small integers) and graded relevance; users 0-9 and every
    7th user have no held-out item (so whole blocks of them exist)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(-2, 3, (n, f)).astype(np.float64)
    items = rng.integers(-2, 3, (c, f)).astype(np.float64)
    rel = sp.random(n, c, density=0.08, format="lil", random_state=rng,
                    data_rvs=lambda size: rng.integers(1, 6, size).astype(np.float64))
    rel[:10] = 0
    rel[::7] = 0
    return users, items, rel.tocsr()


def _reports(relevance, scores, **kw):
    return M.ranking_reports(relevance, scores, k=20, protocols=M.PROTOCOLS, **kw)


@pytest.mark.parametrize("with_auc", [True, False])
def test_cluster_blocks_give_the_local_numbers_bit_for_bit(block_map, monkeypatch, with_auc):
    # groups of 16 users (not the default 4096), so the sums cross many group boundaries
    monkeypatch.setattr(M.RankingTotals, "GROUP", 16)
    users, items, rel = _data()
    scores = M.FactorScores(users, items)
    local = _reports(rel, scores, with_auc=with_auc, chunk_rows=13)
    assert local["seed"]["n_users"] == 90 > local["tartarus"]["n_users"] > 0
    # another local chunking: the same bits (the per-user values do not depend on the chunks)
    assert _reports(rel, scores, with_auc=with_auc) == local
    for block_rows in (1, 10, 16, 37, None):  # 10: a first block of users without a held-out item
        got = _reports(rel, scores, with_auc=with_auc, block_map=block_map, block_rows=block_rows)
        assert got == local, block_rows
    # and they are the metrics of plain float64 scores
    plain = _reports(rel, users @ items.T, with_auc=with_auc)
    for name in M.PROTOCOLS:
        assert got[name]["map_at_k"] == pytest.approx(plain[name]["map_at_k"], abs=1e-12)


def test_cluster_blocks_of_callables_and_arrays(block_map):
    """The baselines' scores (a seeded callable, a broadcast popularity) and a dense array."""
    _, _, rel = _data(seed=1)
    popularity = np.asarray((rel > 0).sum(axis=0)).ravel()
    uniform = UniformScores(7, rel.shape)
    assert np.array_equal(uniform(0, rel.shape[0]), np.random.default_rng(7).random(rel.shape))
    assert np.array_equal(uniform(31, 45), np.random.default_rng(7).random(rel.shape)[31:45])
    for scores in (uniform, PopularityScores(popularity), uniform(0, rel.shape[0])):
        local = _reports(rel, scores, chunk_rows=11)
        assert _reports(rel, scores, block_map=block_map, block_rows=23) == local


def test_accelerator_device_through_the_cluster(block_map):
    """``--device accelerator`` with ``--scheduler``: the keras.ops path runs on the workers (here their CPU)."""
    users, items, rel = _data(seed=2)
    local = _reports(rel, M.FactorScores(users, items), with_auc=False)
    acc = M.FactorScores(users, items, device="accelerator")
    assert _reports(rel, acc, with_auc=False, block_map=block_map, block_rows=25) == local


def test_cluster_errors_are_the_local_ones(block_map):
    users, items, rel = _data()
    empty = sp.csr_matrix(rel.shape)
    with pytest.raises(DataMismatch, match="no user has a relevant item"):
        M.ranking_reports(empty, M.FactorScores(users, items), k=5, block_map=block_map, block_rows=30)
    with pytest.raises(DataMismatch, match="expected both"):
        M.ranking_reports(rel[:5], M.FactorScores(users, items), k=5, block_map=block_map)

    def nan_at_user_50(start, stop):  # a worker finds the NaN: its DataMismatch comes back as is,
        out = np.zeros((stop - start, rel.shape[1]))  # naming the row among all users
        out[np.arange(start, stop) == 50, 3] = np.nan
        return out

    with pytest.raises(DataMismatch, match="NaN at row 50, column 3"):
        M.ranking_reports(rel, nan_at_user_50, k=5, block_map=block_map, block_rows=20)


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    from tartarus.pipeline import evaluate_trained
    with pytest.raises(ConfigError, match="127.0.0.1:9"):
        evaluate_trained(tmp_path, "model_1", scheduler="tcp://127.0.0.1:9")


# ------------------------------------------------------------------------ the CLI, end to end
@pytest.fixture(scope="module")
def dummy_rec(tmp_path_factory):
    """A dummy data root with 4-d ALS factors and a trained rec_sparse model (1 epoch) to them."""
    from tests.fixtures import dummy_text_recommender
    return dummy_text_recommender(tmp_path_factory.mktemp("dask_eval") / "data", evaluate=False)


def _metrics(layout, model_id):
    doc = json.loads(layout.result(model_id, "test").read_text())
    return {key: doc[key] for key in ("protocols", "n_users", "map_at_k", "baselines")}


def test_cli_evaluate_on_the_cluster_equals_local(dummy_rec, cluster, client, monkeypatch, capsys):
    from tartarus.cli import main
    layout, model_id = dummy_rec
    monkeypatch.delenv("TARTARUS_SCHEDULER", raising=False)
    base = ["evaluate", model_id, "--device", "cpu", "--protocol", "both", "--data-dir", str(layout.root)]
    assert main(base) == 0
    local = _metrics(layout, model_id)
    assert local["n_users"] > 0 and local["map_at_k"] > 0
    layout.result(model_id, "test").unlink()
    assert main(base + ["--scheduler", cluster.scheduler_address]) == 0
    assert _metrics(layout, model_id) == local  # JSON floats: every digit
    layout.result(model_id, "test").unlink()
    monkeypatch.setenv("TARTARUS_SCHEDULER", cluster.scheduler_address)  # the environment's cluster
    with distributed.get_task_stream(client=client) as stream:
        assert main(base) == 0
    assert _metrics(layout, model_id) == local
    # the model and both baselines went out in blocks (here: one each, the dummy has few users)
    assert sum("_ranking_block" in str(task["key"]) for task in stream.data) >= 3
    capsys.readouterr()
    # --no-auc: the same ranking metrics, without the AUCs (locally and on the cluster alike)
    monkeypatch.delenv("TARTARUS_SCHEDULER")
    for extra in ([], ["--scheduler", cluster.scheduler_address]):
        layout.result(model_id, "test").unlink()
        assert main(base + ["--no-auc"] + extra) == 0
        fast = _metrics(layout, model_id)
        assert "ROC-AUC" not in capsys.readouterr().out
        for name, rep in local["protocols"].items():
            quick = fast["protocols"][name]
            assert "roc_auc" not in quick and "pr_auc" not in quick
            assert {key: quick[key] for key in ("map_at_k", "at", "n_users")} == \
                {key: rep[key] for key in ("map_at_k", "at", "n_users")}


def test_cli_evaluate_unreachable_scheduler(dummy_rec, capsys):
    from tartarus.cli import main
    layout, model_id = dummy_rec
    code = main(["evaluate", model_id, "--data-dir", str(layout.root), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code != 0 and "127.0.0.1:9" in err and "dask scheduler" in err


# ------------------------------------------------------------------------ ALS device
def _interactions():
    rng = np.random.default_rng(1)
    x = sp.random(40, 30, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    x.data = np.ceil(x.data * 5)
    return x


def test_als_device_cpu_is_todays_factors_and_auto_is_cpu_here():
    import implicit
    import implicit.gpu
    from threadpoolctl import threadpool_limits
    if implicit.gpu.HAS_CUDA:
        pytest.skip("this machine has a CUDA build of implicit: auto would be the GPU")
    x = _interactions()
    # today's call, by hand: implicit's CPU ALS with the same arguments
    with threadpool_limits(1, "blas"):
        model = implicit.als.AlternatingLeastSquares(factors=6, regularization=0.01, alpha=1.0, iterations=8,
                                                     random_state=7, use_gpu=False, num_threads=0)
        model.fit(x, show_progress=False)
    for device in ("cpu", "auto"):
        users, items = F.als_factors(x, 6, seed=7, iterations=8, device=device)
        assert users.dtype == np.float32 and users.shape == (40, 6) and items.shape == (30, 6)
        assert np.array_equal(users, model.user_factors[:, :6]) and np.array_equal(items, model.item_factors[:, :6])
    assert F.als_device("auto") == "cpu" and F.AlsParams().device == "auto"


def test_als_gpu_without_cuda_is_one_clear_error(tmp_path, monkeypatch):
    import implicit.gpu
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", False)
    with pytest.raises(ConfigError, match="implicit.gpu.HAS_CUDA is False"):
        F.als_factors(_interactions(), 4, device="gpu")
    with pytest.raises(ConfigError, match="device must be one of 'auto', 'cpu', 'gpu', got 'cuda'"):
        F.AlsParams(device="cuda")
    # the pipeline refuses before writing anything
    from tartarus.pipeline import make_factors
    with pytest.raises(ConfigError, match="HAS_CUDA"):
        make_factors(tmp_path, "DS", F.AlsParams(device="gpu"), dim=4)
    assert not any(tmp_path.iterdir())


def test_factors_cli_device(monkeypatch, tmp_path):
    import tartarus.pipeline as P
    from tartarus import cli
    from tartarus.layout import DataLayout
    seen = []
    monkeypatch.setattr(P, "make_factors", lambda layout, ds, params, **kw: seen.append(params) or _Report())
    assert cli.main(["factors", "DS", "--device", "cpu", "--data-dir", str(tmp_path)]) == 0
    assert seen[-1] == F.AlsParams(device="cpu")
    assert cli.main(["factors", "DS", "--data-dir", str(tmp_path)]) == 0
    assert seen[-1] == F.AlsParams()  # auto
    # PMI runs on the CPU: auto and cpu are that, gpu is an error
    assert cli.main(["factors", "DS", "--method", "pmi", "--device", "auto", "--data-dir", str(tmp_path)]) == 0
    assert seen[-1] == F.PmiParams()
    assert cli.main(["factors", "DS", "--method", "pmi", "--device", "gpu", "--data-dir", str(tmp_path)]) != 0
    # the remake command of factors made on a device names it; params files from before device read as before
    layout = DataLayout("data")
    made_on_cpu = {"method": "als", "dim": 4, "params": F.AlsParams(device="cpu").get_config()}
    line = F.factors_command(layout, "DS", made_on_cpu)
    assert line == "tartarus factors DS --method als --dim 4 --device cpu"
    args = cli.parse_command_line(line)
    assert args.device == "cpu"
    old = {"method": "als", "dim": 4, "params": {"use_gpu": None, "iterations": 15}}
    assert F.factors_command(layout, "DS", old) == "tartarus factors DS --method als --dim 4"
    old["params"]["use_gpu"] = False
    assert F.factors_command(layout, "DS", old) == "tartarus factors DS --method als --dim 4 --device cpu"


class _Report:
    def summary(self):
        return "factors"
