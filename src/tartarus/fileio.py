"""Atomic writes and the plain file formats (TSV, JSON, npy, sparse npz).

Every output goes to a temporary name in the destination folder and is renamed into place, so an
interrupted run never leaves a half-written file under a name that looks complete; it gets the
umask's mode, a full disk is reported as such (:class:`OutputError`), and a killed run's temporary
files are removed by the next run that writes into the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import DataMismatch, MissingInput, OutputError, TartarusError


# errno of a failed write that is the output side's fault, not the inputs'
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
_FULL_BYTES = 1 << 20  # a write that failed with less free space than this failed for want of space
_STALE_SECONDS = 24 * 3600  # a temporary file untouched this long is no live writer's
_HOST = f"{zlib.crc32(socket.gethostname().encode('utf-8')):08x}"
# .{destination name}.{host}-{pid}.{random}.tmp{suffix}: the writer is named, so that a later run can
# tell a killed writer's leftover from a live one's; .{name}.{random}.tmp{suffix} was the older form
_TEMP_TAIL = r"(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp(?:\..*)?$"
_TEMP = re.compile(r"^\.(?P<name>.+?)\." + _TEMP_TAIL)
_TEMP_OF = re.compile(_TEMP_TAIL)


def file_mode():
    """The mode a plain ``open(path, "w")`` gives a new file: ``0o666`` less the process umask."""
    try:  # reading it leaves the umask alone (os.umask can only read by setting)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _stale(path, match):
    """True when the temporary file ``path`` is provably no live writer's: its writer ran on this
    host and is gone, or nobody touched it for a day."""
    if match.group("pid") is not None and match.group("host") == _HOST and not _pid_alive(int(match.group("pid"))):
        return True
    try:
        return time.time() - path.stat().st_mtime > _STALE_SECONDS
    except OSError:
        return False


def remove_stale_temps(folder, name=None, depth=0):
    """Remove the temporary files that killed writers left in ``folder`` (and ``depth`` levels below).

    Only :func:`atomic_path` temporaries are touched (``.NAME.HOST-PID.XXXXXXXX.tmp.EXT``), only those
    of destination ``name`` when given, and only stale ones (see :func:`_stale`): a concurrent run's
    files in progress are left alone. Returns the paths removed.
    """
    folder, removed = Path(folder), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if depth > 0 and entry.is_dir(follow_symlinks=False):
            removed += remove_stale_temps(entry.path, name, depth - 1)
            continue
        if name is None:
            match = _TEMP.match(entry.name)
        else:  # the destination's own name, matched exactly
            lead = f".{name}."
            match = _TEMP_OF.match(entry.name, len(lead)) if entry.name.startswith(lead) else None
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _stale(path, match):
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:  # another run cleaned it first
                pass
    return removed


_swept = set()


def _sweep_once(folder):
    """Remove the stale temporaries of ``folder`` at this process's first write there: one scan per
    folder and process, not one per file (a spectrograms folder holds tens of thousands)."""
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        remove_stale_temps(folder)


def _nearly_full(folder):
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    free = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may write into the reserved blocks
    return free * st.f_frsize < _FULL_BYTES or (st.f_files > 0 and st.f_favail == 0)


def output_error(exc, path, *own):
    """The :class:`OutputError` that ``exc``, raised while writing ``path``, stands for; None if another.

    An OSError whose errno is in :data:`OUTPUT_ERRNOS` counts, except a permission or read-only error
    about some other file than ``path``, its folder or ``own`` (an input read on the way). Libraries
    that lose the errno (h5py's RuntimeError, libsndfile's "System error.") are recognised by the
    errno or text in their message, or else by the destination's file system being full.
    """
    if isinstance(exc, OutputError):
        return exc
    path = Path(path)
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if code is not None:
        filename = getattr(exc, "filename", None)
        mine = {str(p) for p in (path, path.parent, *own)}
        if code in OUTPUT_ERRNOS and (code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or filename is None
                                      or str(filename) in mine):
            return OutputError(path, code)
        return None  # another errno (ENOENT ...), or a permission error about an input
    text = str(exc)
    found = re.search(r"errno\s*=\s*(\d+)", text)
    if found and int(found.group(1)) in OUTPUT_ERRNOS:
        return OutputError(path, int(found.group(1)))
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        if os.strerror(code) in text:
            return OutputError(path, code)
    if _nearly_full(path.parent if path.parent.exists() else path.parent.parent):
        return OutputError(path, errno.ENOSPC)
    return None


def _release_hdf5(tmp):
    """Give back the space of a failed output ``tmp`` that HDF5 still holds open.

    A writer that fails on a full disk (Keras' ``save_weights``) leaves its HDF5 file open, and
    whoever closes it later (the garbage collector, or HDF5 at exit) flushes its pending metadata:
    on a disk still full, that flush fails at exit and crashes the interpreter (a segmentation
    fault). Truncating the file frees the space the flush needs; the file is unlinked anyway.
    (Closing it here by force would leave the writer's h5py objects holding stale ids.)
    """
    h5py = sys.modules.get("h5py")
    if h5py is None:
        return
    try:
        held = any(os.fsdecode(fid.name) == str(tmp) for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE))
    except (OSError, RuntimeError, ValueError):  # h5py's errors: an id closed meanwhile; the caller raises
        return  # the write's own error (naming the file) in any case
    if held:
        try:
            os.truncate(tmp, 0)
        except OSError:
            pass


def reserve_space(path, nbytes):
    """Check that ``nbytes`` can be written beside ``path`` by reserving them, and give them back.

    For writers that must not meet a full disk midway: HDF5 (Keras' ``save_weights``) cannot close a
    file whose flush failed, which later crashes the interpreter. Raises :class:`OutputError`
    (ENOSPC, naming ``path``) when the space is not there; a file system without ``fallocate``
    passes unchecked.
    """
    path = Path(path)
    make_dirs(path.parent)
    fd, spare = _temp_file(path, ".tmp.reserve")
    try:
        os.posix_fallocate(fd, 0, max(1, int(nbytes)))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OutputError(path, exc.errno) from None
        # EOPNOTSUPP and the like: no way to check here
    finally:
        os.close(fd)
        os.unlink(spare)


def make_dirs(folder):
    """``mkdir -p``, with the umask's mode like any mkdir, and a full or read-only disk named."""
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def writing(path):
    """Turn an OSError of the block that is the output side's (see :func:`output_error`) into an
    :class:`OutputError` naming ``path``; any other error passes unchanged."""
    try:
        yield
    except OSError as exc:
        err = output_error(exc, path)
        if err is None:
            raise
        raise err from None


def _temp_file(path, suffix):
    """``(fd, name)`` of a new temporary file beside ``path``, named after it and this process."""
    with writing(path):
        return tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=suffix, dir=path.parent)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the destination's own suffix, since some writers (np.save, savefig)
    choose the format by extension. The file gets the mode a plain ``open()`` would give (the
    umask's), not mkstemp's 0600. A full disk, quota, read-only or permission failure of the write
    becomes one :class:`OutputError` naming ``path``. The temporary name holds this process's id;
    at a process's first write into a folder, the stale temporaries killed runs left there are
    removed (:func:`remove_stale_temps`).
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    make_dirs(path.parent)
    _sweep_once(path.parent)
    # the temporary name ends with the real suffix: np.save, savefig and model.save choose by it
    fd, tmp = _temp_file(path, ".tmp" + suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except TartarusError:
        raise
    except Exception as exc:  # before the temporary file goes: its space tells a full disk
        err = output_error(exc, path, tmp)
        if err is None:
            raise
        _release_hdf5(tmp)
        raise err from exc
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


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


def unreadable(path, what, exc):
    """The DataMismatch for a file that exists but cannot be read as ``what`` (e.g. "a .npy array").

    One line naming ``path``, what it should hold and why it does not: not UTF-8 (where), not valid
    JSON (where), pickled objects (never loaded: ``allow_pickle=False``), truncated, or the reader's
    own first line.
    """
    if isinstance(exc, UnicodeDecodeError):
        reason = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    elif isinstance(exc, json.JSONDecodeError):
        reason = f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    elif "pickle" in str(exc) or "Object arrays" in str(exc):
        reason = "it holds pickled Python objects, which tartarus never loads (allow_pickle=False)"
    elif isinstance(exc, EOFError) or "EOF" in str(exc) or "not fully written" in str(exc) \
            or "greater than file size" in str(exc):
        reason = "it is empty or truncated"
    else:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return DataMismatch(f"{path}: cannot read it as {what}: {reason}; remake or replace the file")


@contextlib.contextmanager
def reading(path, what):
    """Turn a failure to read or decode the existing file ``path`` into :func:`unreadable`'s error.

    Errors the block raises on purpose (TartarusError) pass unchanged.
    """
    try:
        yield
    except TartarusError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise unreadable(path, what, exc) from None


def read_json(path, command=None):
    """The JSON document in ``path``; MissingInput naming ``command`` if absent, DataMismatch if unreadable."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    with reading(path, "JSON"):
        return json.loads(path.read_text(encoding="utf-8"))


def save_npy(path, array):
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)


def load_npy(path, command=None, mmap=False, finite=False):
    """The array in ``path`` (never unpickled); MissingInput naming ``command`` if absent, DataMismatch
    naming the file if it is pickled, truncated or not a .npy file.

    finite : also refuse NaN or infinite values (targets, factors), naming the file and the first row.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    with reading(path, "a .npy array"):
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    if finite and np.issubdtype(array.dtype, np.inexact):
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0][0]) if array.ndim else 0
            raise DataMismatch(f"{path} contains NaN or infinite values ({int(bad.sum())} of {array.size}, "
                               f"the first in row {row})")
    return array


def save_sparse(path, matrix):
    with atomic_path(path, suffix=".npz") as tmp:
        sp.save_npz(tmp, sp.csr_matrix(matrix))


def load_sparse(path, command=None):
    """Read a CSR matrix saved by scipy, or in the seed's ``data/indices/indptr/shape`` layout."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(path, command)
    with reading(path, "a sparse matrix (.npz)"):
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
    with reading(path, "UTF-8 text"):
        text = path.read_text(encoding="utf-8-sig")
    return [line.strip() for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def open_hdf5(path, what="an HDF5 file"):
    """``h5py.File(path, "r")``, with an empty, truncated or corrupt file (or one without the
    datasets the block reads) reported as one DataMismatch naming ``path`` (see :func:`reading`).

    A virtual dataset at the top of the file (a patches file written on a Dask cluster, over its
    shards) whose source file is gone is a MissingInput naming that file: HDF5 itself would read
    its rows as the fill value, without an error.
    """
    import h5py  # not at import: most commands never read HDF5
    with reading(path, what):
        with h5py.File(path, "r") as f:
            for name, node in f.items():
                if isinstance(node, h5py.Dataset) and node.is_virtual:
                    gone = missing_virtual_sources(node, path)
                    if gone:
                        raise MissingInput(gone[0], f"the dataset {name!r} of {path} reads it; write {path} "
                                                    f"again (its shards are written with it)",
                                           what=f"source of a virtual dataset ({len(gone)} missing)")
            yield f


def missing_virtual_sources(dataset, path):
    """The source files of the virtual h5py ``dataset`` (in the file ``path``) that cannot be found.

    Relative source names are looked up as HDF5 does: under ``$HDF5_VDS_PREFIX`` if set, then
    beside ``path``, then in the working folder. [] for a dataset that is not virtual.
    """
    if not dataset.is_virtual:
        return []
    names = sorted({source.file_name for source in dataset.virtual_sources()})
    folder = str(Path(path).parent)
    prefixes = [p.replace("${ORIGIN}", folder) for p in os.environ.get("HDF5_VDS_PREFIX", "").split(os.pathsep) if p]
    gone = []
    for name in names:
        if name == ".":  # the file itself
            continue
        real = name.replace("%%", "%")
        places = [real] if os.path.isabs(real) else [os.path.join(p, real) for p in prefixes] + [
            os.path.join(folder, real), real]
        if not any(os.path.isfile(place) for place in places):
            gone.append(real)
    return gone


def read_items_index(path, command=None):
    """Item ids of an items index (``layout.items_index``), one a line, each listed once.

    Returns the ids in file order (blank lines skipped, as ``read_lines``). Every reader of an
    items index goes through here, so a duplicate id is refused before anything is computed or
    allocated: DataMismatch naming the file, the first duplicate id and its line numbers.
    Absent file: MissingInput naming ``command``.
    """
    ids = read_lines(path, command)
    if len(set(ids)) == len(ids):
        return ids
    seen = set()
    first = next(i for i in ids if i in seen or seen.add(i))
    # line numbers of the raw file (read_lines skipped blank lines); it decoded once, it decodes again
    lines = [n for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1)
             if line.strip() == first]
    n_dup = len(ids) - len(set(ids))
    raise DataMismatch(f"{path}: item id {first!r} is listed more than once (lines "
                       f"{', '.join(map(str, lines))}); an items index lists each item once "
                       f"({n_dup} repeated line(s) in all)")


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
    make_dirs(path.parent)
    line = "\t".join(str(c) for c in row) + "\n"
    with writing(path), open(path, "a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write("\t".join(header) + "\n")
        f.write(line)
