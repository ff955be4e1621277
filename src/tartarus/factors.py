"""Interactions, the cold-start protocol, and latent factors (ALS, PMI + SVD) as regression targets.

The stage, in data-flow order (every file name comes from ``tartarus.layout``):

1. ``import_interactions(path, layout, ds)`` reads ``(user, item, count)`` triplets from a TSV/CSV
   file (Last.fm, Taste Profile, ... by choosing columns), sums duplicates, filters rare users and
   items, and writes the users x items CSR matrix ``layout.interactions_matrix(ds)`` with its row
   and column ids (``layout.interaction_users(ds)``, ``layout.interaction_items(ds)``).
   ``load_interactions(layout, ds)`` reads them back.
2. ``cold_start_split(layout, ds, matrix, users, items)`` assigns items to train/val/test (the
   existing ``items_index_{set}`` files, or a seeded random split) and writes the held-out
   interactions ``layout.eval_matrix(set, ds)`` (items x users) for val and test. Val and test
   items are *cold*: none of their interactions is ever factorised (unless asked for with
   ``targets_all_items``, see 3.).
3. ``factorize(layout, ds, method, dim)`` factorises the TRAIN items' interactions (ALS with
   ``implicit``, or positive PMI + truncated SVD) and writes the item factors ``layout.y("train",
   method, dim, ds)`` (rows in ``items_index_train`` order), the user factors and a params JSON.

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

import csv
import gzip
import hashlib
import io
import math
import shlex
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import fileio
from .errors import ConfigError, DataMismatch, MissingInput
from .layout import SETS, check_split_fractions

__all__ = [
    "InteractionReport", "import_interactions", "load_interactions", "import_id", "check_factors_current",
    "stale_factors",
    "ColdStartSplit", "cold_start_split",
    "FactorReport", "factorize", "als_factors", "pmi_factors", "cooccurrence", "ppmi", "svd_factors",
    "METHODS", "ALS_DEFAULTS", "PMI_DEFAULTS",
]

SHOWN = 5  # ids named in a message
SHOWN_BAD = 10  # bad lines kept in an import report
# largest share of bad rows an import accepts by default: a wrong column or separator makes most
# rows bad, a clean dump (Taste Profile) has none; a higher share needs --max-bad-rows
MAX_BAD_ROWS = 0.01
METHODS = ("als", "pmi")
PMI_SOURCES = ("cooccurrence", "class")
COUNT_TRANSFORMS = ("raw", "log", "binary")
ALS_DEFAULTS = {"regularization": 0.01, "iterations": 15, "alpha": 1.0, "counts": "raw", "num_threads": 0,
                "use_gpu": None}
PMI_DEFAULTS = {"pmi_source": "cooccurrence", "n_iter": 7, "n_oversamples": 10, "class_dim": None}
COMMON_DEFAULTS = {"targets_all_items": False, "fact": None}
_SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _few(items):
    items = list(items)
    text = ", ".join(str(i) for i in items[:SHOWN])
    return text + (f" ... ({len(items)} in all)" if len(items) > SHOWN else "")


def _import_command(layout, ds):
    return layout.cli("interactions", "import", "FILE", "--dataset", ds)


def _positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(name, value, allow_zero=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)


# ===================================================================================== import
@dataclass
class InteractionReport:
    """What ``import_interactions`` read, dropped and wrote.

    ``bad_lines``: the first few ``(line number, reason)`` of the rows that could not be read
    (1-based physical line numbers of the source file); ``bad_reasons``: counts by reason.
    """
    source: Path
    dataset: str
    sep: str = "\t"
    header: bool = False
    columns: dict = field(default_factory=dict)  # role -> column position
    n_records: int = 0  # non-blank data lines
    n_bad: int = 0
    bad_lines: list = field(default_factory=list)
    bad_reasons: dict = field(default_factory=dict)
    n_zero: int = 0  # rows with count 0: read, not an interaction
    n_duplicates: int = 0  # rows summed into an earlier (user, item) pair
    n_users_read: int = 0
    n_items_read: int = 0
    min_user: int = 1
    min_item: int = 1
    filter_rounds: int = 0
    n_users: int = 0
    n_items: int = 0
    n_interactions: int = 0  # non-zero (user, item) pairs kept
    total_count: float = 0.0
    files: dict = field(default_factory=dict)
    elapsed: float = 0.0
    import_id: str = ""  # fingerprint of the matrix and its ids; factors made from it record it
    stale: list = field(default_factory=list)  # factor params files made from a replaced import

    @property
    def dropped_users(self):
        return self.n_users_read - self.n_users

    @property
    def dropped_items(self):
        return self.n_items_read - self.n_items

    def summary(self):
        text = (f"{self.dataset}: {self.n_interactions} interactions of {self.n_users} users x {self.n_items} items "
                f"(total count {self.total_count:g}) from {self.source} ({self.n_records} rows")
        if self.n_duplicates:
            text += f", {self.n_duplicates} duplicates summed"
        if self.n_zero:
            text += f", {self.n_zero} zero counts skipped"
        text += ")"
        if self.dropped_users or self.dropped_items:
            text += (f"; min_user={self.min_user}, min_item={self.min_item} dropped {self.dropped_users} users and "
                     f"{self.dropped_items} items in {self.filter_rounds} rounds")
        if self.n_bad:
            shown = ", ".join(f"line {n} ({why})" for n, why in self.bad_lines[:SHOWN])
            text += f"; {self.n_bad} bad rows skipped: {shown}" + (" ..." if self.n_bad > SHOWN else "")
        text += f" [{self.elapsed:.1f} s]"
        if self.stale:
            text += (f"\nreplaced the previous import: the factors {_few(Path(p).name for p in self.stale)} were "
                     f"made from it and are stale (runs and evaluations on them are refused until remade)")
        return text


def _open_text(path):
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace", newline="")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


def _detect_sep(path, sep):
    """The field separator: ``sep`` as given (or a name: tab, comma...), else by extension, else sniffed."""
    if sep is not None:
        sep = _SEPARATORS.get(sep, sep)
        if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"":
            raise ConfigError(f"sep must be one character (or tab, comma, semicolon, pipe), got {sep!r}")
        return sep
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")):
        return "\t"
    if name.endswith(".csv"):
        return ","
    sample = []
    with _open_text(path) as f:
        for line in f:
            if line.strip():
                sample.append(line)
            if len(sample) >= 20:
                break
    for candidate in ("\t", ",", ";", "|"):  # the first one present on every sampled line
        if sample and all(candidate in line for line in sample):
            return candidate
    raise ConfigError(f"could not tell the field separator of {path} (tried tab, comma, semicolon, pipe): "
                      f"pass sep=")


def _records(f, sep):
    """``(line number, fields)`` of each line; a line the csv module cannot parse gives ``fields=None``."""
    if sep == "\t":  # no quoting in TSV: names may hold quotes (Last.fm artist names do)
        for n, line in enumerate(f, 1):
            yield n, line.rstrip("\r\n").split("\t")
        return
    reader = csv.reader(f, delimiter=sep)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        yield reader.line_num, row


def _is_number(text):
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _resolve_column(role, spec, names, path):
    if spec is None:
        return None
    if isinstance(spec, bool):
        raise ConfigError(f"{role}: a column position (0-based) or a header name, got {spec!r}")
    if isinstance(spec, (int, np.integer)):
        if spec < 0:
            raise ConfigError(f"{role} must be a 0-based column position, got {spec}")
        return int(spec)
    if isinstance(spec, str):
        if names is None:
            raise ConfigError(f"{role}={spec!r} names a column but {path} is read without a header: "
                              f"give a 0-based position or header=True")
        cleaned = [n.strip() for n in names]
        for candidates in (cleaned, [n.casefold() for n in cleaned]):
            key = spec.strip() if candidates is cleaned else spec.strip().casefold()
            if key in candidates:
                return candidates.index(key)
        raise ConfigError(f"{role}={spec!r}: no such column in the header of {path} (columns: {', '.join(cleaned)})")
    raise ConfigError(f"{role}: a column position (0-based) or a header name, got {spec!r}")


def _filter_min(binary, min_user, min_item):
    """Masks of the users and items kept when users need ``min_user`` items and items ``min_item`` users.

    Dropping users can push items under their minimum and the other way round, so both rules are
    applied in turn until neither removes anything. Returns ``(keep_users, keep_items, rounds)``,
    ``rounds`` counting the passes that removed something.
    """
    keep_u = np.ones(binary.shape[0], dtype=bool)
    keep_i = np.ones(binary.shape[1], dtype=bool)
    binary_t = binary.T.tocsr()
    rounds = 0
    while True:
        user_deg = binary @ keep_i.astype(np.int64)
        new_u = keep_u & (user_deg >= min_user)
        item_deg = binary_t @ new_u.astype(np.int64)
        new_i = keep_i & (item_deg >= min_item)
        if np.array_equal(new_u, keep_u) and np.array_equal(new_i, keep_i):
            return keep_u, keep_i, rounds
        keep_u, keep_i = new_u, new_i
        rounds += 1


def _sorted_ids(index):
    """``(sorted ids, rank)`` of an ``{id: first-seen position}`` dict: ``rank[position]`` = sorted position."""
    ids = list(index)  # in first-seen order, so position k holds the id with value k
    order = sorted(range(len(ids)), key=ids.__getitem__)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(ids), dtype=np.int64)
    return [ids[k] for k in order], rank


def import_interactions(path, layout, ds, user_col=0, item_col=1, count_col=2, sep=None, header="auto",
                        min_user=1, min_item=1, overwrite=False, max_bad_rows=MAX_BAD_ROWS):
    """Import ``(user, item, count)`` triplets into ``ds``'s interactions matrix; return an InteractionReport.

    path: a delimited text file (``.gz`` is read compressed), UTF-8.
    user_col, item_col, count_col: 0-based column positions or header names. ``count_col=None``
        counts each row as one play. Last.fm 360K (``user<TAB>artist-mbid<TAB>artist-name<TAB>plays``):
        ``item_col=1, count_col=3`` (or ``item_col=2`` to key by name); Taste Profile
        (``user<TAB>song<TAB>count``): the defaults.
    sep: one character; None means tab for ``.tsv``/``.tab``, comma for ``.csv`` (quoted fields
        allowed), otherwise the first of tab, comma, semicolon, pipe found on every sampled line.
    header: True, False or "auto": a header when a column is given by name, or when the first
        line's count field is not a number (with no count column, "auto" means no header).
    min_user, min_item: the least number of distinct items a user must have, and of distinct users
        an item must have; applied in turn until stable (see ``_filter_min``).
    overwrite: an existing import of ``ds`` (its matrix) is a ConfigError unless True. Replacing it
        leaves the factors, held-out matrices and splits made from it in place but stale: each
        factor params file records the ``import_id`` it came from, and ``check_factors_current``
        (called by ``run`` and ``evaluate``) refuses one whose import was replaced.
    max_bad_rows: the largest fraction of bad rows (below) accepted, in [0, 1], default
        ``MAX_BAD_ROWS`` (1 %); above it the import is a DataMismatch and nothing is written.

    Rows are summed per (user, item). A row with too few fields, an empty id, or a count that is
    not a finite non-negative number is skipped and counted (``report.bad_lines`` holds the first
    few line numbers); a zero count is skipped as no interaction. Users and items are sorted by id.

    Written (atomically): ``layout.interaction_users(ds)`` and ``layout.interaction_items(ds)``
    (one id a line), ``layout.interactions_params(ds)`` (JSON report), then
    ``layout.interactions_matrix(ds)``: CSR float32 ``(n_users, n_items)`` of summed counts.
    Nothing left after reading and filtering is a DataMismatch naming the file and the filters.
    """
    start = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise MissingInput(path, what="interactions file")
    if isinstance(max_bad_rows, bool) or not isinstance(max_bad_rows, (int, float)) or not 0 <= max_bad_rows <= 1:
        raise ConfigError(f"max_bad_rows must be a fraction in [0, 1], got {max_bad_rows!r}")
    old_id = None
    if layout.interactions_matrix(ds).exists():
        if not overwrite:
            again = layout.cli("interactions", "import", path, "--dataset", ds, "--overwrite")
            raise ConfigError(f"{ds} already has an interactions import ({layout.interactions_matrix(ds)}); "
                              f"importing again replaces it and makes its factors stale: pass overwrite=True "
                              f"({again})")
        old_id = _current_import_id(layout, ds)
    min_user = _positive_int("min_user", min_user)
    min_item = _positive_int("min_item", min_item)
    if header not in (True, False, "auto"):
        raise ConfigError(f"header must be True, False or 'auto', got {header!r}")
    sep = _detect_sep(path, sep)
    named = any(isinstance(c, str) for c in (user_col, item_col, count_col))
    if named and header is False:
        raise ConfigError(f"columns given by name ({user_col!r}, {item_col!r}, {count_col!r}) need header=True")
    if user_col is None or item_col is None:
        raise ConfigError("user_col and item_col are required")
    report = InteractionReport(source=path, dataset=ds, sep=sep, min_user=min_user, min_item=min_item)
    bad_reasons = Counter()

    def bad(line_no, reason):
        report.n_bad += 1
        bad_reasons[reason] += 1
        if len(report.bad_lines) < SHOWN_BAD:
            report.bad_lines.append((line_no, reason))

    users, items = {}, {}
    rows, cols, vals = array("q"), array("q"), array("d")
    with _open_text(path) as f:
        records = _records(f, sep)
        first = None
        for line_no, fields in records:
            if fields is None or any(x.strip() for x in fields):
                first = (line_no, fields)
                break
        if first is None:
            raise DataMismatch(f"{path} holds no rows")
        names = None
        if header is True or named:
            names = first[1] or []
        elif header == "auto" and count_col is not None and first[1] is not None:
            pos = int(count_col)
            if len(first[1]) > pos and not _is_number(first[1][pos]):
                names = first[1]
        report.header = names is not None
        ucol = _resolve_column("user_col", user_col, names, path)
        icol = _resolve_column("item_col", item_col, names, path)
        ccol = _resolve_column("count_col", count_col, names, path)
        if len({ucol, icol} | ({ccol} if ccol is not None else set())) < (2 if ccol is None else 3):
            raise ConfigError(f"user_col, item_col and count_col must be different columns, got "
                              f"{ucol}, {icol}, {ccol}")
        report.columns = {"user": ucol, "item": icol, "count": ccol}
        need = max(c for c in (ucol, icol, ccol) if c is not None) + 1

        def chain():
            if names is None:
                yield first
            yield from records

        for line_no, fields in chain():
            if fields is None:
                report.n_records += 1
                bad(line_no, "unparseable line")
                continue
            if not any(x.strip() for x in fields):
                continue  # blank line
            report.n_records += 1
            if len(fields) < need:
                bad(line_no, f"{len(fields)} fields, need {need}")
                continue
            u, it = fields[ucol].strip(), fields[icol].strip()
            if not u or not it:
                bad(line_no, "empty id")
                continue
            if ccol is None:
                c = 1.0
            else:
                try:
                    c = float(fields[ccol])
                except ValueError:
                    bad(line_no, "count not a number")
                    continue
                if not math.isfinite(c) or c < 0:
                    bad(line_no, "negative or non-finite count")
                    continue
                if c == 0:
                    report.n_zero += 1
                    continue
            rows.append(users.setdefault(u, len(users)))
            cols.append(items.setdefault(it, len(items)))
            vals.append(c)
    report.bad_reasons = dict(bad_reasons)

    filters = f"min_user={min_user}, min_item={min_item}"
    if not vals:
        raise DataMismatch(f"no interactions read from {path} ({report.n_records} rows, {report.n_bad} bad, "
                           f"{report.n_zero} zero counts; columns user={ucol}, item={icol}, count={ccol}, "
                           f"sep={sep!r}; filters {filters})")
    if report.n_records and report.n_bad / report.n_records > max_bad_rows:
        shown = ", ".join(f"line {n} ({why})" for n, why in report.bad_lines[:SHOWN])
        raise DataMismatch(f"{path}: {report.n_bad} of {report.n_records} rows are bad "
                           f"({100 * report.n_bad / report.n_records:.1f} %, more than max_bad_rows = "
                           f"{100 * max_bad_rows:g} %): {shown}; check the columns (user={ucol}, item={icol}, "
                           f"count={ccol}) and sep={sep!r}, or raise --max-bad-rows; nothing was written")
    # users and items sorted by id, whatever the order of the file
    user_ids, user_rank = _sorted_ids(users)
    item_ids, item_rank = _sorted_ids(items)
    r = user_rank[np.frombuffer(rows, dtype=np.int64)]
    c = item_rank[np.frombuffer(cols, dtype=np.int64)]
    matrix = sp.coo_matrix((np.frombuffer(vals, dtype=np.float64), (r, c)),
                           shape=(len(user_ids), len(item_ids))).tocsr()  # sums duplicates
    matrix.sum_duplicates()
    report.n_duplicates = len(vals) - matrix.nnz
    report.n_users_read, report.n_items_read = matrix.shape

    binary = matrix.copy()
    binary.data = np.ones_like(binary.data)
    keep_u, keep_i, report.filter_rounds = _filter_min(binary, min_user, min_item)
    matrix = matrix[keep_u][:, keep_i].tocsr()
    if matrix.nnz == 0:
        raise DataMismatch(f"no interactions left from {path} after the filters {filters}: "
                           f"{report.n_users_read} users and {report.n_items_read} items read, none has enough "
                           f"(lower min_user / min_item)")
    user_ids = [u for u, k in zip(user_ids, keep_u) if k]
    item_ids = [i for i, k in zip(item_ids, keep_i) if k]
    report.n_users, report.n_items = matrix.shape
    report.n_interactions = int(matrix.nnz)
    report.total_count = float(matrix.data.sum())
    matrix = matrix.astype(np.float32)

    report.import_id = import_id(matrix, user_ids, item_ids)
    report.files = {"users": layout.interaction_users(ds), "items": layout.interaction_items(ds),
                    "params": layout.interactions_params(ds), "matrix": layout.interactions_matrix(ds)}
    if old_id != report.import_id:
        report.stale = stale_factors(layout, ds, report.import_id)
    fileio.write_lines(report.files["users"], user_ids)
    fileio.write_lines(report.files["items"], item_ids)
    report.elapsed = time.perf_counter() - start
    fileio.write_json(report.files["params"], {
        "stage": "interactions", "dataset": ds, "source": str(path), "sep": sep, "header": report.header,
        "columns": report.columns, "min_user": min_user, "min_item": min_item,
        "n_records": report.n_records, "n_bad": report.n_bad, "bad_lines": report.bad_lines,
        "bad_reasons": report.bad_reasons, "n_zero": report.n_zero, "n_duplicates": report.n_duplicates,
        "n_users_read": report.n_users_read, "n_items_read": report.n_items_read,
        "filter_rounds": report.filter_rounds, "n_users": report.n_users, "n_items": report.n_items,
        "n_interactions": report.n_interactions, "total_count": report.total_count,
        "matrix": "users x items, CSR float32, summed counts", "max_bad_rows": max_bad_rows,
        "import_id": report.import_id,
    })
    fileio.save_sparse(report.files["matrix"], matrix)  # last: its presence marks a complete import
    return report


def import_id(matrix, user_ids, item_ids):
    """Fingerprint of an import: sha256 (hex) of the CSR matrix's shape, arrays and its row and column ids.

    The same file imported with the same settings gives the same id, so re-importing it leaves
    its factors current; any other content gives another id.
    """
    m = sp.csr_matrix(matrix, dtype=np.float32)
    h = hashlib.sha256(repr(m.shape).encode())
    for a in (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data):
        h.update(np.ascontiguousarray(a).tobytes())
    for ids in (user_ids, item_ids):
        h.update("\n".join(ids).encode("utf-8") + b"\0")
    return h.hexdigest()


def _current_import_id(layout, ds):
    """The ``import_id`` of ``ds``'s interactions import, None without one (or from before ids)."""
    path = layout.interactions_params(ds)
    return fileio.read_json(path).get("import_id") if path.exists() else None


def _factor_params(path):
    """A factor params JSON (``stage: factors``) as a dict, None for another stage's params."""
    params = fileio.read_json(path)
    return params if isinstance(params, dict) and params.get("stage") == "factors" else None


def stale_factors(layout, ds, current=None):
    """Factor params files of ``ds`` made from another interactions import than ``current``.

    current: an ``import_id``; None means the present import's. Factors from before import ids
    were recorded (or from class labels, which use no interactions) are never called stale.
    """
    current = current if current is not None else _current_import_id(layout, ds)
    if current is None:
        return []
    out = []
    pattern = layout.factor_params("*", "*", ds)
    for path in sorted(pattern.parent.glob(pattern.name)):
        try:
            params = _factor_params(path)
        except ValueError:  # an unreadable params file is refused where it is used (check_factors_current)
            continue
        if params and params.get("dataset") == ds and params.get("interactions_import") not in (None, current):
            out.append(path)
    return out


def factors_command(layout, ds, params):
    """The ``tartarus factors`` command line that remakes the factors of a factor params dict."""
    method = params.get("method", "als")
    args = ["factors", ds, "--method", method, "--dim", params.get("dim")]
    if params.get("seed"):
        args += ["--seed", params["seed"]]
    given = dict(params.get("params") or {})
    if given.pop("targets_all_items", False):
        args.append("--all-items")
    defaults = ALS_DEFAULTS if method == "als" else PMI_DEFAULTS
    if params.get("fact") not in (None, method):
        given["fact"] = params["fact"]
    for key, value in given.items():
        if key in defaults and value == defaults[key]:
            continue
        args += ["--param", shlex.quote(f"{key}={value!r}")]
    return layout.cli(*args)


def check_factors_current(layout, ds, fact, dim):
    """Refuse factors ``(fact, dim)`` of ``ds`` made from an interactions import since replaced.

    Nothing to check (no factor params, targets that are not factors, no recorded import): returns.
    Stale: DataMismatch naming the factor params file and the command that remakes the factors.
    """
    path = layout.factor_params(fact, dim, ds)
    params = _factor_params(path) if path.exists() else None
    if not params or params.get("interactions_import") is None:
        return
    current = _current_import_id(layout, ds)
    if current is not None and current != params["interactions_import"]:
        raise DataMismatch(f"the {fact} {dim} factors of {ds} ({path}) were made from an earlier interactions "
                           f"import than {layout.interactions_matrix(ds)}: they are stale; remake them: "
                           f"{factors_command(layout, ds, params)}")


def load_interactions(layout, ds, auto_import=True):
    """``(matrix, user_ids, item_ids)`` of ``ds``: CSR float32 ``(n_users, n_items)`` and the id lists.

    When the matrix was never imported but the dataset ships ``layout.interactions(ds)``
    (``user<TAB>item<TAB>count``, as the dummy dataset does) and ``auto_import``, it is imported
    first with the default columns and no filter. Otherwise MissingInput names the import command.
    """
    path = layout.interactions_matrix(ds)
    if not path.exists():
        source = layout.interactions(ds)
        if auto_import and source.exists():
            import_interactions(source, layout, ds)
        else:
            raise MissingInput(path, _import_command(layout, ds), what=f"interactions matrix of {ds}")
    matrix = fileio.load_sparse(path).astype(np.float32)
    users = fileio.read_lines(layout.require(layout.interaction_users(ds), _import_command(layout, ds)))
    items = fileio.read_lines(layout.require(layout.interaction_items(ds), _import_command(layout, ds)))
    if matrix.shape != (len(users), len(items)):
        raise DataMismatch(f"{path} has shape {matrix.shape} but {layout.interaction_users(ds)} lists {len(users)} "
                           f"users and {layout.interaction_items(ds)} {len(items)} items: import again "
                           f"({_import_command(layout, ds)})")
    return matrix, users, items


# ================================================================================ cold start
@dataclass
class ColdStartSplit:
    """Items assigned to train/val/test, and each split's interactions.

    ``ids[set]``: the split's item ids (items_index order); ``user_items[set]``: CSR float32
    ``(n_users, len(ids[set]))``, columns aligned with ``ids[set]`` (an item absent from the
    interactions has an empty column); ``present[set]``: bool ``(len(ids[set]),)``, item has
    interactions; ``active_users``: bool ``(n_users,)``, user has >= 1 train interaction (the
    evaluated users); ``n_unassigned``: items with interactions in no split.
    """
    dataset: str
    user_ids: list
    ids: dict
    user_items: dict
    present: dict
    active_users: np.ndarray
    n_unassigned: int = 0
    random: bool = False
    files: dict = field(default_factory=dict)

    @property
    def train_matrix(self):
        """Users x train items CSR (the only interactions a cold-start factorisation sees)."""
        return self.user_items["train"]

    def absent(self, set_):
        """Ids of the split's items with no interaction."""
        return [i for i, p in zip(self.ids[set_], self.present[set_]) if not p]

    @property
    def n_users_dropped(self):
        """Users with no train interaction: no trained factor, not evaluated."""
        return int((~self.active_users).sum())

    def n_evaluated(self, set_):
        """Evaluated users with at least one interaction with an item of ``set_``."""
        has = np.diff(self.user_items[set_].indptr) > 0
        return int((has & self.active_users).sum())

    def n_lost(self, set_):
        """Users with interactions in ``set_`` who are dropped for having none in train."""
        has = np.diff(self.user_items[set_].indptr) > 0
        return int((has & ~self.active_users).sum())

    def summary(self):
        parts = []
        for set_ in SETS:
            absent = self.absent(set_)
            part = f"{set_} {len(self.ids[set_])} items ({self.user_items[set_].nnz} interactions"
            part += f", {len(absent)} without interactions: {_few(absent)})" if absent else ")"
            parts.append(part)
        text = f"{self.dataset} cold-start split{' (random)' if self.random else ''}: " + "; ".join(parts)
        text += (f"; {len(self.user_ids) - self.n_users_dropped} of {len(self.user_ids)} users evaluated "
                 f"({self.n_evaluated('test')} with test interactions)")
        if self.n_users_dropped:
            text += (f"; {self.n_users_dropped} users have no train interaction and are dropped "
                     f"({self.n_lost('test')} of them had test interactions)")
        if self.n_unassigned:
            text += f"; {self.n_unassigned} items with interactions are in no split (not used)"
        return text


def _random_split(item_ids, fractions, seed):
    fr = check_split_fractions(fractions)
    n = len(item_ids)
    n_test = int(round(fr[2] * n))
    n_val = int(round(fr[1] * n))
    if n - n_test - n_val < 1:
        raise ConfigError(f"fractions {tuple(fractions)} leave no train item out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {s: [item_ids[i] for i in np.sort(parts[s])] for s in SETS}


def cold_start_split(layout, ds, matrix, user_ids, item_ids, sets_from_files=True, fractions=(0.8, 0.1, 0.1),
                     seed=0, overwrite=False):
    """Split items into train/val/test and write the held-out matrices; return a ColdStartSplit.

    matrix: CSR ``(n_users, n_items)``; user_ids, item_ids: its row and column ids (as from
    ``load_interactions``).
    sets_from_files: use the existing ``layout.items_index(set, ds)`` files (items of a split that
        have no interactions are reported, not fatal; an item in two splits is a DataMismatch).
        Otherwise a seeded random split of ``item_ids`` by ``fractions`` (train, val, test) is
        written to those files (sorted ids); existing files are replaced only with ``overwrite``,
        since audio and text inputs of the dataset are aligned to them.

    Written: ``layout.eval_matrix(set, ds)`` for val and test, CSR float32 ``(len(ids[set]),
    n_users)``: items x users, rows in items_index order, columns in ``user_ids`` order, the
    columns of users without any train interaction left empty (they are not evaluated).
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    user_ids, item_ids = list(user_ids), list(item_ids)
    if matrix.shape != (len(user_ids), len(item_ids)):
        raise DataMismatch(f"interactions matrix has shape {matrix.shape} but {len(user_ids)} user ids and "
                           f"{len(item_ids)} item ids were given")
    column = {item: j for j, item in enumerate(item_ids)}
    if len(column) != len(item_ids):
        raise DataMismatch(f"the interactions' item ids of {ds} are not unique")
    files = {}
    if sets_from_files:
        ids = {}
        for set_ in SETS:
            path = layout.require(layout.items_index(set_, ds),
                                  layout.cli("factors", "split", "--dataset", ds, "--random"),
                                  what=f"items index of {ds} {set_}")
            ids[set_] = fileio.read_items_index(path)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = set(ids[a]) & set(ids[b])
            if both:
                raise DataMismatch(f"{len(both)} item(s) of {ds} are in both {a} and {b}: {_few(sorted(both))}")
    else:
        existing = [layout.items_index(s, ds) for s in SETS if layout.items_index(s, ds).exists()]
        if existing and not overwrite:
            raise ConfigError(f"{ds} already has item splits ({_few(p.name for p in existing)}); use them "
                              f"(sets_from_files=True) or replace them with overwrite=True")
        ids = _random_split(item_ids, fractions, seed)
        for set_ in SETS:
            files[f"items_index_{set_}"] = layout.items_index(set_, ds)
            fileio.write_lines(layout.items_index(set_, ds), ids[set_])

    csc = matrix.tocsc()
    user_items, present = {}, {}
    assigned = set()
    for set_ in SETS:
        idx = np.array([column.get(i, -1) for i in ids[set_]], dtype=np.int64)
        present[set_] = idx >= 0
        assigned.update(idx[idx >= 0].tolist())
        where = np.flatnonzero(present[set_])
        sub = csc[:, idx[where]]
        # place the present items' columns at their positions in the split (absent: empty columns)
        place = sp.csr_matrix((np.ones(len(where), np.float32), (np.arange(len(where)), where)),
                              shape=(len(where), len(idx)))
        user_items[set_] = sp.csr_matrix(sub @ place, dtype=np.float32)
    active = np.diff(user_items["train"].indptr) > 0
    split = ColdStartSplit(dataset=ds, user_ids=user_ids, ids=ids, user_items=user_items, present=present,
                           active_users=active, n_unassigned=len(item_ids) - len(assigned),
                           random=not sets_from_files, files=files)
    keep = sp.diags(active.astype(np.float32))
    for set_ in ("val", "test"):
        held = sp.csr_matrix((keep @ user_items[set_]).T, dtype=np.float32)
        held.eliminate_zeros()
        files[f"matrix_{set_}"] = layout.eval_matrix(set_, ds)
        fileio.save_sparse(files[f"matrix_{set_}"], held)
    return split


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


def als_factors(user_items, dim, seed=0, regularization=0.01, iterations=15, alpha=1.0, num_threads=0,
                use_gpu=None):
    """Implicit-feedback ALS (``implicit``) of a users x items CSR matrix of confidences.

    Returns ``(user_factors, item_factors)``, float32 ``(n_users, dim)`` and ``(n_items, dim)``.
    The observed entries' confidence is ``alpha * value``. Factors start from ``seed``; the CPU
    solver updates each row independently and BLAS runs on one thread, so the result does not
    depend on ``num_threads`` (0: all cores). ``use_gpu``: None means ``implicit.gpu.HAS_CUDA``.
    """
    import implicit.als
    import implicit.gpu
    from threadpoolctl import threadpool_limits

    dim = _positive_int("dim", dim)
    iterations = _positive_int("iterations", iterations)
    num_threads = _positive_int("num_threads", num_threads, minimum=0)
    regularization = _positive_float("regularization", regularization, allow_zero=True)
    alpha = _positive_float("alpha", alpha)
    if use_gpu is None:
        use_gpu = bool(implicit.gpu.HAS_CUDA)
    if use_gpu and not implicit.gpu.HAS_CUDA:
        raise ConfigError("use_gpu=True but this implicit build has no CUDA support")
    user_items = sp.csr_matrix(user_items, dtype=np.float32)
    with threadpool_limits(1, "blas"):
        model = implicit.als.AlternatingLeastSquares(
            factors=dim, regularization=regularization, alpha=alpha, iterations=iterations,
            random_state=int(seed), use_gpu=bool(use_gpu), num_threads=num_threads)
        model.fit(user_items, show_progress=False)
    if use_gpu:
        model = model.to_cpu()
    users = np.ascontiguousarray(model.user_factors[:, :dim], dtype=np.float32)
    items = np.ascontiguousarray(model.item_factors[:, :dim], dtype=np.float32)
    return users, items


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

    dim = _positive_int("dim", dim)
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


def _check_params(method, params):
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    defaults = {**COMMON_DEFAULTS, **(ALS_DEFAULTS if method == "als" else PMI_DEFAULTS)}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown {method} parameter(s) {', '.join(unknown)} (known: {', '.join(defaults)})")
    out = {**defaults, **params}
    if method == "pmi" and out["pmi_source"] not in PMI_SOURCES:
        raise ConfigError(f"pmi_source must be one of {', '.join(PMI_SOURCES)}, got {out['pmi_source']!r}")
    if method == "als" and out["counts"] not in COUNT_TRANSFORMS:
        raise ConfigError(f"counts must be one of {', '.join(COUNT_TRANSFORMS)}, got {out['counts']!r}")
    if out["fact"] is not None and (not isinstance(out["fact"], str) or not out["fact"].isidentifier()):
        raise ConfigError(f"fact must be a name of letters, digits and underscores, got {out['fact']!r}")
    # numeric parameters are checked here, before anything is read or written
    for name, minimum in (("iterations", 1), ("num_threads", 0), ("n_iter", 0), ("n_oversamples", 0)):
        if name in out:
            _positive_int(name, out[name], minimum)
    for name, allow_zero in (("regularization", True), ("alpha", False)):
        if name in out:
            _positive_float(name, out[name], allow_zero)
    if out.get("class_dim") is not None:
        _positive_int("class_dim", out["class_dim"])
    return out


def _fit_columns(split, sets):
    """Users x (present items of ``sets``, in set order) and, per set, the item positions fitted."""
    blocks, where = [], {}
    for set_ in sets:
        where[set_] = np.flatnonzero(split.present[set_])
        blocks.append(split.user_items[set_][:, where[set_]])
    return sp.csr_matrix(sp.hstack(blocks), dtype=np.float32), where


def factorize(layout, ds, method="als", dim=200, seed=0, split=None, **params):
    """Compute latent factors of ``ds`` and write them as targets; return a FactorReport.

    method: ``"als"`` (implicit ALS; params ``regularization``, ``iterations``, ``alpha``,
        ``counts`` = raw | log (log1p) | binary, ``num_threads``, ``use_gpu``; see ALS_DEFAULTS) or
        ``"pmi"`` (params ``pmi_source`` = cooccurrence | class, ``n_iter``, ``n_oversamples``,
        ``class_dim``; see PMI_DEFAULTS).
    dim: number of factors; seed: initialisation / SVD seed (same seed, same factors).
    split: a ColdStartSplit; None loads the interactions (``load_interactions``) and splits them
        by the existing items_index files (``cold_start_split``), writing matrix_val/matrix_test.
    targets_all_items: factorise the items of all three splits instead of train only, and write
        ``y`` for val and test as well (the seed's protocol; user factors then saw test items).
    fact: the name in the files, default ``method`` (e.g. ``"pmiclass"`` to keep both PMI sources).

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
    p = _check_params(method, params)
    dim = _positive_int("dim", dim)
    seed = _positive_int("seed", seed, minimum=0)
    fact = p["fact"] or method
    sets = SETS if p["targets_all_items"] else ("train",)
    report = FactorReport(dataset=ds, method=method, fact=fact, dim=dim, params=p,
                          trained_on="items of all splits (train, val, test)" if p["targets_all_items"]
                          else "train items")
    extra = {}
    if method == "pmi" and p["pmi_source"] == "class":
        item_factors, extra = _pmi_class(layout, ds, dim, seed, p, sets, report)
        user_factors = None
    else:
        if split is None:
            matrix, users, items = load_interactions(layout, ds)
            split = cold_start_split(layout, ds, matrix, users, items)
        report.split = split
        fit, where = _fit_columns(split, sets)
        fit_users = np.diff(fit.indptr) > 0  # users with an interaction among the fitted items
        fit = fit[fit_users]
        if fit.nnz == 0:
            raise DataMismatch(f"no interactions with the {' / '.join(sets)} items of {ds} to factorise")
        if method == "als":
            uf, itf = als_factors(_transform_counts(fit, p["counts"]), dim, seed, p["regularization"],
                                  p["iterations"], p["alpha"], p["num_threads"], p["use_gpu"])
        else:
            uf, itf = pmi_factors(fit, dim, seed, p["n_iter"], p["n_oversamples"])
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
                 "interactions_import": _current_import_id(layout, ds), "n_fit_users": int(fit.shape[0]),
                 "n_fit_items": int(fit.shape[1]), "n_fit_interactions": int(fit.nnz),
                 "n_users": report.n_users, "n_users_without_train_interactions": report.n_users_dropped,
                 "n_users_evaluated_test": split.n_evaluated("test"),
                 "n_test_users_lost": split.n_lost("test"),
                 "absent_items": {s: len(a) for s, a in report.absent.items()},
                 "random_split": split.random,
                 "user_factors": "fitted" if method == "als" else "mean of the factors of the user's fitted items",
                 "user_factors_saw_test_items": bool(p["targets_all_items"])}

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
        "params": {k: v for k, v in p.items() if k not in ("fact",)}, "trained_on": report.trained_on,
        **extra, "dtype": "float32", "shapes": {k: list(v) for k, v in report.shapes.items()}, **versions,
    })
    return report


def _pmi_class(layout, ds, dim, seed, p, sets, report):
    class_dim = p["class_dim"]
    if class_dim is None:
        labels = layout.require(layout.genre_labels(ds), what=f"class names of {ds} (or give class_dim)")
        class_dim = len(fileio.read_lines(labels))
    class_dim = _positive_int("class_dim", class_dim)
    blocks = {}
    for set_ in sets:
        y = fileio.load_npy(layout.require(layout.y(set_, "class", class_dim, ds), what=f"{ds} {set_} class labels"))
        ids = fileio.read_items_index(layout.require(layout.items_index(set_, ds), what=f"items index of {ds} {set_}"))
        if y.ndim != 2 or y.shape != (len(ids), class_dim):
            raise DataMismatch(f"{layout.y(set_, 'class', class_dim, ds)} has shape {y.shape}, expected "
                               f"({len(ids)}, {class_dim}) for {layout.items_index(set_, ds)}")
        blocks[set_] = (np.asarray(y) > 0).astype(np.float64)
    stacked = np.vstack([blocks[s] for s in sets])
    items, classes, _ = svd_factors(ppmi(stacked), dim, seed, p["n_iter"], p["n_oversamples"])
    out, offset = {}, 0
    for set_ in sets:
        out[set_] = items[offset:offset + len(blocks[set_])]
        offset += len(blocks[set_])
        unlabelled = np.flatnonzero(blocks[set_].sum(axis=1) == 0)
        report.absent[set_] = [f"row {i}" for i in unlabelled]
    return out, {"class_factors": classes, "class_dim": class_dim, "n_classes": class_dim,
                 "labels": [str(layout.y(s, "class", class_dim, ds)) for s in sets],
                 "n_fit_items": int(stacked.shape[0])}
