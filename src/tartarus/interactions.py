"""Interactions: import ``(user, item, count)`` triplets into a sparse matrix, and read it back.

``import_interactions(path, layout, ds)`` reads triplets from a TSV/CSV file (Last.fm, Taste
Profile, ... by choosing columns), sums duplicates, filters rare users and items, and writes the
users x items CSR matrix ``layout.interactions_matrix(ds)`` with its row and column ids
(``layout.interaction_users(ds)``, ``layout.interaction_items(ds)``) and how it was made
(``layout.interactions_params(ds)``, with an ``import_id`` fingerprint).

``load_interactions(layout, ds)`` reads them back and writes nothing: a dataset that ships its
triplets (``layout.interactions(ds)``, as the dummy dataset does) is imported by an explicit step,
``import_shipped_interactions``, which the command line and the pipeline call first.

Factors record the ``import_id`` they were made from; ``stale_factors`` lists those whose import
was replaced since (``tartarus.factors.check_factors_current`` refuses them).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import fileio
from .checks import check_fraction, check_int
from .errors import ConfigError, DataMismatch, MissingInput

__all__ = ["InteractionReport", "import_interactions", "import_shipped_interactions", "load_interactions",
           "import_id", "current_import_id", "read_factor_params", "stale_factors", "import_command", "MAX_BAD_ROWS"]

SHOWN = 5  # ids named in a message
SHOWN_BAD = 10  # bad lines kept in an import report
# largest share of bad rows an import accepts by default: a wrong column or separator makes most
# rows bad, a clean dump (Taste Profile) has none; a higher share needs --max-bad-rows
MAX_BAD_ROWS = 0.01
_SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _few(items):
    items = list(items)
    text = ", ".join(str(i) for i in items[:SHOWN])
    return text + (f" ... ({len(items)} in all)" if len(items) > SHOWN else "")


def import_command(layout, ds, *options):
    """The command line that imports ``ds``'s interactions (its shipped triplets file if there is
    one), with ``options`` (e.g. ``"--overwrite"``)."""
    source = layout.interactions(ds)
    return layout.cli("interactions", "import", source if source.exists() else "FILE", "--dataset", ds, *options)


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
    max_bad_rows = check_fraction("max_bad_rows", max_bad_rows)
    old_id = None
    if layout.interactions_matrix(ds).exists():
        if not overwrite:
            again = layout.cli("interactions", "import", path, "--dataset", ds, "--overwrite")
            raise ConfigError(f"{ds} already has an interactions import ({layout.interactions_matrix(ds)}); "
                              f"importing again replaces it and makes its factors stale: pass overwrite=True "
                              f"({again})")
        old_id = current_import_id(layout, ds)
    min_user = check_int("min_user", min_user)
    min_item = check_int("min_item", min_item)
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


def current_import_id(layout, ds):
    """The ``import_id`` of ``ds``'s interactions import, None without one (or from before ids)."""
    path = layout.interactions_params(ds)
    return fileio.read_json(path).get("import_id") if path.exists() else None


def read_factor_params(path):
    """A factor params JSON (``stage: factors``) as a dict, None for another stage's params."""
    params = fileio.read_json(path)
    return params if isinstance(params, dict) and params.get("stage") == "factors" else None


def stale_factors(layout, ds, current=None):
    """Factor params files of ``ds`` made from another interactions import than ``current``.

    current: an ``import_id``; None means the present import's. Factors from before import ids
    were recorded (or from class labels, which use no interactions) are never called stale.
    """
    current = current if current is not None else current_import_id(layout, ds)
    if current is None:
        return []
    out = []
    pattern = layout.factor_params("*", "*", ds)
    for path in sorted(pattern.parent.glob(pattern.name)):
        try:
            params = read_factor_params(path)
        except ValueError:  # an unreadable params file is refused where it is used (check_factors_current)
            continue
        if params and params.get("dataset") == ds and params.get("interactions_import") not in (None, current):
            out.append(path)
    return out


def load_interactions(layout, ds):
    """``(matrix, user_ids, item_ids)`` of ``ds``: CSR float32 ``(n_users, n_items)`` and the id lists.

    Reads only. Without an import MissingInput names the matrix and the command that makes it
    (for a dataset shipping ``layout.interactions(ds)``, that file's import; the command line and
    the pipeline run it first with ``import_shipped_interactions``).
    """
    path = layout.require(layout.interactions_matrix(ds), import_command(layout, ds),
                          what=f"interactions matrix of {ds}")
    matrix = fileio.load_sparse(path).astype(np.float32)
    users = fileio.read_lines(layout.require(layout.interaction_users(ds), import_command(layout, ds)))
    items = fileio.read_lines(layout.require(layout.interaction_items(ds), import_command(layout, ds)))
    if matrix.shape != (len(users), len(items)):
        raise DataMismatch(f"{path} has shape {matrix.shape} but {layout.interaction_users(ds)} lists {len(users)} "
                           f"users and {layout.interaction_items(ds)} {len(items)} items: import again "
                           f"({import_command(layout, ds, '--overwrite')})")
    return matrix, users, items


def import_shipped_interactions(layout, ds):
    """Import the triplets ``ds`` ships (``layout.interactions(ds)``) when it has no import yet.

    The first step of making factors from a dataset that comes with its interactions (the dummy
    dataset): the default columns (user, item, count) and no filter. Returns the
    InteractionReport, or None when there is nothing to do (already imported, or no such file).
    """
    source = layout.interactions(ds)
    if layout.interactions_matrix(ds).exists() or not source.exists():
        return None
    return import_interactions(source, layout, ds)
