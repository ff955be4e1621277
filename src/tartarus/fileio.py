"""Atomic writes and the plain file formats (TSV, JSON, npy, sparse npz).

Every output goes to a temporary name in the destination folder and is renamed into place, so an
interrupted run never leaves a half-written file under a name that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import DataMismatch, MissingInput


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the destination's own suffix, since some writers (np.save, savefig)
    choose the format by extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name ends with the real suffix: np.save, savefig and model.save choose by it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + (suffix if suffix is not None else path.suffix),
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_json(path, command=None):
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    return json.loads(path.read_text(encoding="utf-8"))


def save_npy(path, array):
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)


def load_npy(path, command=None, mmap=False):
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def save_sparse(path, matrix):
    with atomic_path(path, suffix=".npz") as tmp:
        sp.save_npz(tmp, sp.csr_matrix(matrix))


def load_sparse(path, command=None):
    """Read a CSR matrix saved by scipy, or in the seed's ``data/indices/indptr/shape`` layout."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    with np.load(path, allow_pickle=False) as f:
        keys = set(f.files)
        if {"data", "indices", "indptr", "shape"} <= keys:
            fmt = str(f["format"]) if "format" in keys else "csr"
            cls = sp.csc_matrix if fmt.startswith("csc") else sp.csr_matrix
            return sp.csr_matrix(cls((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"])))
    return sp.csr_matrix(sp.load_npz(path))


def read_lines(path, command=None):
    """Non-empty lines of a UTF-8 text file (a BOM and any line ending accepted)."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    text = path.read_text(encoding="utf-8-sig")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_tsv(path, command=None, ncols=None):
    """Rows of a tab-separated file as lists of strings; ``ncols`` checks the width of each row."""
    rows = [line.split("\t") for line in read_lines(path, command)]
    if ncols is not None:
        for i, row in enumerate(rows, 1):
            if len(row) < ncols:
                raise DataMismatch(f"{path}: line {i} has {len(row)} columns, expected {ncols}: {row!r}")
    return rows


def write_lines(path, lines):
    write_text(path, "".join(f"{line}\n" for line in lines))


def write_tsv(path, rows):
    write_lines(path, ("\t".join(str(c) for c in row) for row in rows))


def append_tsv_row(path, header, row):
    """Append one row to a TSV table, writing the header first if the file is new.

    Appends of one short line are atomic enough on POSIX (O_APPEND); the table is an index, the
    source of truth lives in each model folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = "\t".join(str(c) for c in row) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write("\t".join(header) + "\n")
        f.write(line)
