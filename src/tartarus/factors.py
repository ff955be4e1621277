"""Latent factors of interactions (ALS, PMI + SVD) as regression targets.

``factorize(layout, ds, params, dim)`` factorises the TRAIN items' interactions of a cold-start
split (``tartarus.splits.cold_start_split``): ALS with ``implicit`` (:class:`AlsParams`) or positive
PMI + truncated SVD (:class:`PmiParams`), and writes the item factors ``layout.y("train", fact, dim,
ds)`` (rows in ``items_index_train`` order), the user factors and a params JSON. The pipeline's
``make_factors`` composes the stage: import the dataset's shipped triplets, load, split, write the
held-out matrices, factorise.

Val and test items have no factors in the cold-start setting: an item's factor needs its
interactions. To train a model with a validation loss (and to reproduce the published seed
targets, whose ``y_test_als_200`` came from the full matrix), ``targets_all_items=True``
factorises the interactions of ALL items of the three splits and writes ``y_{train,val,test}``
and user factors from that one factorisation (one latent space). The user factors have then
seen the test items' interactions: an evaluation against ``matrix_test`` with them is the
seed's protocol, not a strict cold start; the params JSON says which one was made.

Users with no interaction with a train item get no trained factor: they are dropped from the
evaluated users (their columns of ``matrix_val``/``matrix_test`` are left empty, and their row of
the user factors is zero), and every report says how many. Train items of the split file that
have no interactions get a zero row in ``y_train`` (the rows stay aligned with the index) and are
reported.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from . import fileio
from .checks import check_choice, check_float, check_int, check_n_jobs
from .config.schema import FACTOR_DEVICES
from .errors import ConfigError, DataMismatch
from .interactions import current_import_id, load_interactions, read_factor_params
from .layout import SETS
from .splits import ColdStartSplit, cold_start_split, read_item_splits

__all__ = [
    "AlsParams", "PmiParams", "factor_params", "check_factor_run", "METHODS",
    "FactorReport", "factorize", "als_factors", "pmi_factors", "cooccurrence", "ppmi", "svd_factors",
    "factors_command", "check_factors_current",
]

SHOWN = 5  # ids named in a message
METHODS = ("als", "pmi")
PMI_SOURCES = ("cooccurrence", "class")
COUNT_TRANSFORMS = ("raw", "log", "binary")


def _few(items):
    items = list(items)
    text = ", ".join(str(i) for i in items[:SHOWN])
    return text + (f" ... ({len(items)} in all)" if len(items) > SHOWN else "")


# ================================================================================ parameters
@dataclass(frozen=True)
class AlsParams:
    """Implicit-feedback ALS (``implicit``): every parameter, checked on construction.

    regularization: L2 weight (>= 0); iterations: sweeps (>= 1); alpha: confidence of an observed
    entry per unit of count (> 0); counts: what a count becomes before ALS: ``raw``, ``log``
    (log1p) or ``binary``; n_jobs: CPU threads (-1: every core, -2: all but one; the result does
    not depend on it); device: where ALS runs, ``"cpu"``, ``"gpu"`` (implicit's CUDA ALS; a
    ConfigError when this ``implicit`` build has no CUDA or sees no GPU) or ``"auto"`` (the GPU
    when ``implicit.gpu.HAS_CUDA``, else the CPU). The GPU solver gives different (equally valid)
    factors than the CPU one; the params JSON records the device asked for and where ALS ran.
    """
    method: ClassVar[str] = "als"
    regularization: float = 0.01
    iterations: int = 15
    alpha: float = 1.0
    counts: str = "raw"
    n_jobs: int = -1
    device: str = "auto"

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: store the normalised values
        set_(self, "regularization", check_float("regularization", self.regularization, allow_zero=True))
        set_(self, "iterations", check_int("iterations", self.iterations))
        set_(self, "alpha", check_float("alpha", self.alpha))
        if self.counts not in COUNT_TRANSFORMS:
            raise ConfigError(f"counts must be one of {', '.join(COUNT_TRANSFORMS)}, got {self.counts!r}")
        set_(self, "n_jobs", check_n_jobs("n_jobs", self.n_jobs))
        set_(self, "device", check_choice("device", self.device, FACTOR_DEVICES))

    @property
    def uses_interactions(self):
        return True

    def get_config(self):
        """The parameters as a JSON-ready dict (the params JSON's ``params``)."""
        return asdict(self)


@dataclass(frozen=True)
class PmiParams:
    """Positive PMI + truncated SVD: every parameter, checked on construction.

    pmi_source: ``cooccurrence`` (item-item co-occurrence of the interactions) or ``class`` (item
    x class labels ``y_*_class_{class_dim}``); n_iter, n_oversamples: of the randomized SVD
    (>= 0); class_dim: the number of classes (None: the lines of ``genre_labels``).
    """
    method: ClassVar[str] = "pmi"
    pmi_source: str = "cooccurrence"
    n_iter: int = 7
    n_oversamples: int = 10
    class_dim: int | None = None

    def __post_init__(self):
        if self.pmi_source not in PMI_SOURCES:
            raise ConfigError(f"pmi_source must be one of {', '.join(PMI_SOURCES)}, got {self.pmi_source!r}")
        object.__setattr__(self, "n_iter", check_int("n_iter", self.n_iter, minimum=0))
        object.__setattr__(self, "n_oversamples", check_int("n_oversamples", self.n_oversamples, minimum=0))
        if self.class_dim is not None:
            if self.pmi_source != "class":  # would be accepted and ignored
                raise ConfigError(f"class_dim is read only with pmi_source='class', not {self.pmi_source!r}")
            object.__setattr__(self, "class_dim", check_int("class_dim", self.class_dim))

    @property
    def uses_interactions(self):
        return self.pmi_source == "cooccurrence"

    def get_config(self):
        return asdict(self)


_PARAMS = {"als": AlsParams, "pmi": PmiParams}


def factor_params(method, **given):
    """The parameters of ``method`` (``"als"`` or ``"pmi"``) from ``given`` names and values, the rest
    defaults; ConfigError naming the method for an unknown method or parameter."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    cls = _PARAMS[method]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown {method} parameter(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return cls(**given)


# =================================================================================== factors
@dataclass
class FactorReport:
    """What ``factorize`` wrote: ``files`` maps a role (``y_train``, ``user_factors``, ...) to its path."""
    dataset: str
    method: str
    fact: str
    dim: int
    params: dict = field(default_factory=dict)
    trained_on: str = "train items"
    shapes: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    n_users: int = 0
    n_users_dropped: int = 0
    absent: dict = field(default_factory=dict)  # set -> ids with no interactions (zero rows)
    split: ColdStartSplit | None = None
    elapsed: float = 0.0

    def summary(self):
        parts = [f"{role}: {' x '.join(str(n) for n in self.shapes[role])} -> {Path(p).name}"
                 for role, p in self.files.items() if role in self.shapes]
        text = f"{self.dataset} {self.method} dim {self.dim} on {self.trained_on}: " + "; ".join(parts)
        if self.n_users_dropped:
            text += f"; {self.n_users_dropped} of {self.n_users} users without train interactions (zero factors, not evaluated)"
        for set_, absent in self.absent.items():
            if absent:
                text += f"; {len(absent)} {set_} items without interactions have zero rows: {_few(absent)}"
        return text + f" [{self.elapsed:.1f} s]"


def _transform_counts(matrix, counts):
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if counts == "log":
        m.data = np.log1p(m.data)
    elif counts == "binary":
        m.data = np.ones_like(m.data)
    elif counts != "raw":
        raise ConfigError(f"counts must be one of {', '.join(COUNT_TRANSFORMS)}, got {counts!r}")
    return m


def _implicit_threads(n_jobs):
    """``implicit``'s ``num_threads`` for a worker count ``n_jobs``: 0 means every core there."""
    if n_jobs > 0:
        return n_jobs
    return 0 if n_jobs == -1 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


def als_device(device="auto"):
    """Where ALS runs for ``device`` (one of :data:`FACTOR_DEVICES`): ``"cpu"`` or ``"gpu"``.

    ``"auto"`` is ``"gpu"`` when ``implicit.gpu.HAS_CUDA`` (implicit built with CUDA and a GPU
    seen), else ``"cpu"``; ``"gpu"`` without it is a ConfigError.
    """
    import implicit.gpu

    device = check_choice("device", device, FACTOR_DEVICES)
    if device == "auto":
        return "gpu" if implicit.gpu.HAS_CUDA else "cpu"
    if device == "gpu" and not implicit.gpu.HAS_CUDA:
        raise ConfigError("device='gpu' (tartarus factors --device gpu) but implicit has no GPU support here "
                          "(implicit.gpu.HAS_CUDA is False: no CUDA build of implicit, or no GPU seen); "
                          "use --device cpu, or auto to take the GPU only when there is one")
    return device


def _to_numpy(factors, dim):
    """(n, dim) float32 numpy factors from implicit's CPU arrays or GPU ``implicit.gpu.Matrix``
    (``.to_numpy()``), without any padding columns beyond ``dim``."""
    if hasattr(factors, "to_numpy"):
        factors = factors.to_numpy()
    return np.ascontiguousarray(np.asarray(factors)[:, :dim], dtype=np.float32)


def als_factors(user_items, dim, seed=0, regularization=0.01, iterations=15, alpha=1.0, n_jobs=-1,
                device="auto"):
    """Implicit-feedback ALS (``implicit``) of a users x items CSR matrix of confidences.

    Returns ``(user_factors, item_factors)``, float32 ``(n_users, dim)`` and ``(n_items, dim)``.
    The observed entries' confidence is ``alpha * value``. Factors start from ``seed``; the CPU
    solver updates each row independently and BLAS runs on one thread, so the result does not
    depend on ``n_jobs`` (the threads: -1 every core, -2 all but one; unused on the GPU).
    device : ``"auto"``, ``"cpu"`` or ``"gpu"``, see :func:`als_device`.
    """
    import implicit.als
    from threadpoolctl import threadpool_limits

    dim = check_int("dim", dim)
    iterations = check_int("iterations", iterations)
    n_jobs = check_n_jobs("n_jobs", n_jobs)
    regularization = check_float("regularization", regularization, allow_zero=True)
    alpha = check_float("alpha", alpha)
    use_gpu = als_device(device) == "gpu"
    user_items = sp.csr_matrix(user_items, dtype=np.float32)
    with threadpool_limits(1, "blas"):
        model = implicit.als.AlternatingLeastSquares(
            factors=dim, regularization=regularization, alpha=alpha, iterations=iterations,
            random_state=int(seed), use_gpu=use_gpu, num_threads=_implicit_threads(n_jobs))
        model.fit(user_items, show_progress=False)
    return _to_numpy(model.user_factors, dim), _to_numpy(model.item_factors, dim)


def cooccurrence(user_items):
    """Item-item co-occurrence of a users x items matrix: CSR ``(n_items, n_items)``.

    Entry ``(i, j)`` counts the users who interacted with both ``i`` and ``j`` (counts are made
    binary first); the diagonal is zero.
    """
    b = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    b.eliminate_zeros()
    b.data = np.ones_like(b.data)
    c = sp.csr_matrix(b.T @ b)
    c.setdiag(0)
    c.eliminate_zeros()
    return c


def ppmi(counts):
    """Positive pointwise mutual information of a non-negative count matrix: CSR float64, same shape.

    ``PMI(i, j) = log(n_ij * N / (n_i * n_j))`` with ``N`` the sum of all counts and ``n_i``,
    ``n_j`` the row and column sums; entries with ``n_ij = 0`` or ``PMI <= 0`` are 0.
    """
    m = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    m.eliminate_zeros()
    if m.nnz and m.data.min() < 0:
        raise DataMismatch("ppmi needs non-negative counts")
    total = m.data.sum()
    if total == 0:
        return sp.csr_matrix(m.shape, dtype=np.float64)
    rows = np.asarray(m.sum(axis=1)).ravel()
    cols = np.asarray(m.sum(axis=0)).ravel()
    coo = m.tocoo()
    pmi = np.log(coo.data * total / (rows[coo.row] * cols[coo.col]))
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)


def svd_factors(matrix, dim, seed=0, n_iter=7, n_oversamples=10):
    """Truncated SVD ``M ~ U S V^T`` (``sklearn.utils.extmath.randomized_svd``, seeded, signs fixed).

    Returns ``(U * sqrt(S), V * sqrt(S), S)``: float32 ``(n_rows, dim)``, ``(n_cols, dim)`` and
    ``(dim,)``, so that the rows' factors times the columns' factors transposed give back ``M``'s
    best rank-``dim`` approximation. ``dim`` must not exceed ``min(M.shape)``.
    """
    from sklearn.utils.extmath import randomized_svd

    dim = check_int("dim", dim)
    if dim > min(matrix.shape):
        raise ConfigError(f"dim={dim} exceeds the rank limit of a {matrix.shape[0]} x {matrix.shape[1]} matrix "
                          f"(at most {min(matrix.shape)})")
    u, s, vt = randomized_svd(sp.csr_matrix(matrix, dtype=np.float64), dim, n_oversamples=n_oversamples,
                              n_iter=n_iter, random_state=int(seed))
    root = np.sqrt(s)
    return (u * root).astype(np.float32), (vt.T * root).astype(np.float32), s.astype(np.float32)


def pmi_factors(user_items, dim, seed=0, n_iter=7, n_oversamples=10):
    """PPMI of the item-item co-occurrence of ``user_items`` (users x items), reduced by SVD.

    Returns ``(user_factors, item_factors)``: items ``U * sqrt(S)`` of ``svd_factors(ppmi(
    cooccurrence(user_items)))``, float32 ``(n_items, dim)``; a user's factor is the mean of the
    factors of the items they interacted with (so that ``user . item`` scores item-based
    similarity), float32 ``(n_users, dim)``, zero for a user with none.
    """
    items, _, _ = svd_factors(ppmi(cooccurrence(user_items)), dim, seed, n_iter, n_oversamples)
    b = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    b.eliminate_zeros()
    b.data = np.ones_like(b.data)
    n = np.asarray(b.sum(axis=1)).ravel()
    users = np.asarray(b @ items) / np.maximum(n, 1)[:, None]
    return users.astype(np.float32), items


def _fit_columns(split, sets):
    """Users x (present items of ``sets``, in set order) and, per set, the item positions fitted."""
    blocks, where = [], {}
    for set_ in sets:
        where[set_] = np.flatnonzero(split.present[set_])
        blocks.append(split.user_items[set_][:, where[set_]])
    return sp.csr_matrix(sp.hstack(blocks), dtype=np.float32), where


def check_factor_run(params, dim, seed, fact=None):
    """``(params, dim, seed, fact)`` of a factorisation, checked before anything is read or written.

    params: AlsParams / PmiParams, or a method name for its defaults; fact: None means the method.
    """
    if isinstance(params, str):
        params = factor_params(params)
    if not isinstance(params, (AlsParams, PmiParams)):
        raise ConfigError(f"params must be AlsParams, PmiParams or a method name ({', '.join(METHODS)}), "
                          f"got {params!r}")
    dim = check_int("dim", dim)
    seed = check_int("seed", seed, minimum=0)
    if isinstance(params, AlsParams):
        als_device(params.device)  # a GPU asked for where there is none
    if fact is not None and (not isinstance(fact, str) or not fact.isidentifier()):
        raise ConfigError(f"fact must be a name of letters, digits and underscores, got {fact!r}")
    return params, dim, seed, fact or params.method


def factorize(layout, ds, params="als", dim=200, seed=0, split=None, targets_all_items=False, fact=None):
    """Compute latent factors of ``ds`` and write them as targets; return a FactorReport.

    params: an :class:`AlsParams` (implicit ALS) or :class:`PmiParams` (PMI + SVD), or a method
        name (``"als"``, ``"pmi"``) for its defaults (see :func:`factor_params`).
    dim: number of factors; seed: initialisation / SVD seed (same seed, same factors).
    split: a ColdStartSplit (``tartarus.splits.cold_start_split``); None reads the interactions
        and the items_index files and splits them in memory (nothing but the factors is written:
        the held-out matrices are ``splits.write_held_out``'s, see the pipeline's ``make_factors``).
    targets_all_items: factorise the items of all three splits instead of train only, and write
        ``y`` for val and test as well (the seed's protocol; user factors then saw test items).
    fact: the name in the files, default the method (e.g. ``"pmiclass"`` to keep both PMI sources).

    Interaction sources (ALS, PMI co-occurrence) write, float32, rows in items_index order:
    ``layout.y(set, fact, dim, ds)`` ``(n_items_of_set, dim)`` for train (all sets with
    targets_all_items); ``layout.user_factors(fact, dim, ds)`` ``(n_users, dim)`` in
    ``interaction_users`` order. PMI over classes reads the train labels
    ``layout.y(set, "class", class_dim, ds)`` (an item x class indicator matrix; ``class_dim``
    defaults to the number of lines of ``genre_labels``), and writes ``y`` plus
    ``layout.class_factors(fact, dim, ds)`` ``(n_classes, dim)`` (``V * sqrt(S)``: cosine of a
    predicted item factor with each class factor scores the class), no user factors; ``dim`` is
    at most the number of classes. Last, ``layout.factor_params(fact, dim, ds)`` (JSON).
    """
    start = time.perf_counter()
    params, dim, seed, fact = check_factor_run(params, dim, seed, fact)
    method = params.method
    targets_all_items = bool(targets_all_items)
    sets = SETS if targets_all_items else ("train",)
    recorded = {**params.get_config(), "targets_all_items": targets_all_items}
    report = FactorReport(dataset=ds, method=method, fact=fact, dim=dim, params=recorded,
                          trained_on="items of all splits (train, val, test)" if targets_all_items
                          else "train items")
    extra = {}
    if not params.uses_interactions:
        item_factors, extra = _pmi_class(layout, ds, dim, seed, params, sets, report)
        user_factors = None
    else:
        if split is None:
            matrix, users, items = load_interactions(layout, ds)
            split = cold_start_split(ds, matrix, users, items, read_item_splits(layout, ds))
        report.split = split
        fit, where = _fit_columns(split, sets)
        fit_users = np.diff(fit.indptr) > 0  # users with an interaction among the fitted items
        fit = fit[fit_users]
        if fit.nnz == 0:
            raise DataMismatch(f"no interactions with the {' / '.join(sets)} items of {ds} to factorise")
        ran_on = None
        if method == "als":
            ran_on = als_device(params.device)  # "auto" resolved once: the fit and the record agree
            uf, itf = als_factors(_transform_counts(fit, params.counts), dim, seed, params.regularization,
                                  params.iterations, params.alpha, params.n_jobs, ran_on)
        else:
            uf, itf = pmi_factors(fit, dim, seed, params.n_iter, params.n_oversamples)
        user_factors = np.zeros((len(split.user_ids), dim), np.float32)
        user_factors[fit_users] = uf
        item_factors, offset = {}, 0
        for set_ in sets:
            y = np.zeros((len(split.ids[set_]), dim), np.float32)
            y[where[set_]] = itf[offset:offset + len(where[set_])]
            offset += len(where[set_])
            item_factors[set_] = y
            report.absent[set_] = split.absent(set_)
        report.n_users = len(split.user_ids)
        report.n_users_dropped = split.n_users_dropped
        extra = {"interactions": str(layout.interactions_matrix(ds)),
                 "interactions_import": current_import_id(layout, ds), "n_fit_users": int(fit.shape[0]),
                 "n_fit_items": int(fit.shape[1]), "n_fit_interactions": int(fit.nnz),
                 "n_users": report.n_users, "n_users_without_train_interactions": report.n_users_dropped,
                 "n_users_evaluated_test": split.n_evaluated("test"),
                 "n_test_users_lost": split.n_lost("test"),
                 "absent_items": {s: len(a) for s, a in report.absent.items()},
                 "random_split": split.random,
                 "user_factors": "fitted" if method == "als" else "mean of the factors of the user's fitted items",
                 "user_factors_saw_test_items": targets_all_items}
        if ran_on is not None:
            extra["als_device"] = ran_on

    for set_, y in item_factors.items():
        report.files[f"y_{set_}"] = layout.y(set_, fact, dim, ds)
        report.shapes[f"y_{set_}"] = y.shape
        fileio.save_npy(report.files[f"y_{set_}"], y)
    if user_factors is not None:
        report.files["user_factors"] = layout.user_factors(fact, dim, ds)
        report.shapes["user_factors"] = user_factors.shape
        fileio.save_npy(report.files["user_factors"], user_factors)
    if "class_factors" in extra:
        report.files["class_factors"] = layout.class_factors(fact, dim, ds)
        report.shapes["class_factors"] = extra["class_factors"].shape
        fileio.save_npy(report.files["class_factors"], extra.pop("class_factors"))

    report.files["params"] = layout.factor_params(fact, dim, ds)
    versions = {}
    if method == "als":
        import implicit
        versions["implicit_version"] = implicit.__version__
    else:
        import sklearn
        versions["sklearn_version"] = sklearn.__version__
    report.elapsed = time.perf_counter() - start
    fileio.write_json(report.files["params"], {
        "stage": "factors", "dataset": ds, "method": method, "fact": fact, "dim": dim, "seed": seed,
        "params": recorded, "trained_on": report.trained_on,
        **extra, "dtype": "float32", "shapes": {k: list(v) for k, v in report.shapes.items()}, **versions,
    })
    return report


def _pmi_class(layout, ds, dim, seed, params, sets, report):
    class_dim = params.class_dim
    if class_dim is None:
        labels = layout.require(layout.genre_labels(ds), what=f"class names of {ds} (or give class_dim)")
        class_dim = len(fileio.read_lines(labels))
    class_dim = check_int("class_dim", class_dim)
    blocks = {}
    for set_ in sets:
        y = fileio.load_npy(layout.require(layout.y(set_, "class", class_dim, ds), what=f"{ds} {set_} class labels"))
        ids = fileio.read_items_index(layout.require(layout.items_index(set_, ds), what=f"items index of {ds} {set_}"))
        if y.ndim != 2 or y.shape != (len(ids), class_dim):
            raise DataMismatch(f"{layout.y(set_, 'class', class_dim, ds)} has shape {y.shape}, expected "
                               f"({len(ids)}, {class_dim}) for {layout.items_index(set_, ds)}")
        blocks[set_] = (np.asarray(y) > 0).astype(np.float64)
    stacked = np.vstack([blocks[s] for s in sets])
    items, classes, _ = svd_factors(ppmi(stacked), dim, seed, params.n_iter, params.n_oversamples)
    out, offset = {}, 0
    for set_ in sets:
        out[set_] = items[offset:offset + len(blocks[set_])]
        offset += len(blocks[set_])
        unlabelled = np.flatnonzero(blocks[set_].sum(axis=1) == 0)
        report.absent[set_] = [f"row {i}" for i in unlabelled]
    return out, {"class_factors": classes, "class_dim": class_dim, "n_classes": class_dim,
                 "labels": [str(layout.y(s, "class", class_dim, ds)) for s in sets],
                 "n_fit_items": int(stacked.shape[0])}

def factors_command(layout, ds, params):
    """The ``tartarus factors`` command line that remakes the factors of a factor params dict."""
    method = params.get("method", "als")
    args = ["factors", ds, "--method", method, "--dim", params.get("dim")]
    if params.get("seed"):
        args += ["--seed", params["seed"]]
    given = dict(params.get("params") or {})
    if given.pop("targets_all_items", False):
        args.append("--all-items")
    if "num_threads" in given:  # params files from before n_jobs: 0 was every core
        threads = given.pop("num_threads")
        given["n_jobs"] = threads if isinstance(threads, int) and threads > 0 else -1
    if "use_gpu" in given:  # params files from before device: None was auto
        given.setdefault("device", {True: "gpu", False: "cpu"}.get(given.pop("use_gpu"), "auto"))
    if given.get("device", "auto") != "auto":
        args += ["--device", given.pop("device")]
    given.pop("device", None)
    defaults = _PARAMS[method]().get_config() if method in _PARAMS else {}
    if params.get("fact") not in (None, method):
        given["fact"] = params["fact"]
    for key, value in given.items():
        if key in defaults and value == defaults[key]:
            continue
        args += ["--param", f"{key}={value!r}"]  # layout.cli quotes it for the shell
    return layout.cli(*args)


def check_factors_current(layout, ds, fact, dim):
    """Refuse factors ``(fact, dim)`` of ``ds`` made from an interactions import since replaced.

    Nothing to check (no factor params, targets that are not factors, no recorded import): returns.
    Stale: DataMismatch naming the factor params file and the command that remakes the factors.
    """
    path = layout.factor_params(fact, dim, ds)
    params = read_factor_params(path) if path.exists() else None
    if not params or params.get("interactions_import") is None:
        return
    current = current_import_id(layout, ds)
    if current is not None and current != params["interactions_import"]:
        raise DataMismatch(f"the {fact} {dim} factors of {ds} ({path}) were made from an earlier interactions "
                           f"import than {layout.interactions_matrix(ds)}: they are stale; remake them: "
                           f"{factors_command(layout, ds, params)}")

