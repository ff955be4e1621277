"""One exception type per kind of failure; the CLI turns each into one clear line."""

import errno


class TartarusError(Exception):
    """Base class of every error the library raises on purpose."""


class MissingInput(TartarusError, FileNotFoundError):
    """A file the stage needs is absent; the message names it and the command that makes it.

    ``command`` is a ``tartarus ...`` line (``DataLayout.cli``; tests/test_hints.py parses each)
    shown as "make it with: ...", or, when no command makes the file, a sentence saying what to
    do instead, shown as it is (never passed off as a command).
    """

    def __init__(self, path, command=None, what=None):
        self.path = path
        self.command = command
        msg = f"missing {what or 'input'}: {path}"
        if command:
            is_command = str(command).startswith("tartarus ")
            msg += f" (make it with: {command})" if is_command else f" ({command})"
        super().__init__(msg)
        self._what = what

    def __reduce__(self):  # rebuilt from its own arguments (e.g. raised on a Dask worker, read here)
        return type(self), (self.path, self.command, self._what)

    def __str__(self):
        return self.args[0]


class ClusterError(TartarusError):
    """The Dask cluster lost a task (its workers died running it too often, e.g. out of memory);
    what finished is kept, and a rerun resumes."""


class ConfigError(TartarusError, ValueError):
    """An experiment or dataset entry is malformed: the message names the entry and the key."""


class DataMismatch(TartarusError, ValueError):
    """Two inputs that must line up do not (row counts, ids, shapes)."""


class AudioError(TartarusError):
    """One audio file could not be decoded; preprocessing skips it and reports it."""


class OutputError(TartarusError):
    """An output could not be written: the disk is full, over quota, read-only or not writable.

    Nothing is wrong with the inputs, so no input is blamed: the command stops at once, what it
    finished is kept, and a rerun after freeing space (or fixing permissions) completes. ``code``
    is the ``errno`` (``ENOSPC``, ``EDQUOT``, ``EROFS``, ``EACCES``, ...); ``hint`` is added to the
    message (e.g. the command that resumes). Arguments are plain, so the error crosses process
    boundaries (joblib workers) intact.
    """

    def __init__(self, path, code, hint=None):
        super().__init__(str(path), int(code), hint)

    @property
    def path(self):
        return self.args[0]

    @property
    def code(self):
        return self.args[1]

    @property
    def hint(self):
        return self.args[2]

    def with_hint(self, hint):
        return OutputError(self.path, self.code, hint)

    def __str__(self):
        what = {errno.ENOSPC: "no space left on device writing", errno.EDQUOT: "disk quota exceeded writing",
                errno.EROFS: "read-only file system: cannot write", errno.EFBIG: "file too large writing"}
        msg = f"{what.get(self.code, 'permission denied writing')} {self.path}"
        hint = self.hint
        if hint is None and self.code in (errno.ENOSPC, errno.EDQUOT):
            hint = "free some space and rerun: finished outputs are kept"
        return f"{msg} ({hint})" if hint else msg
