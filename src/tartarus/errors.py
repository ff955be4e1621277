"""One exception type per kind of failure; the CLI turns each into one clear line."""


class TartarusError(Exception):
    """Base class of every error the library raises on purpose."""


class MissingInput(TartarusError, FileNotFoundError):
    """A file the stage needs is absent; the message names it and the command that makes it."""

    def __init__(self, path, command=None, what=None):
        self.path = path
        self.command = command
        msg = f"missing {what or 'input'}: {path}"
        if command:
            msg += f" (make it with: {command})"
        super().__init__(msg)

    def __str__(self):
        return self.args[0]


class ConfigError(TartarusError, ValueError):
    """An experiment or dataset entry is malformed: the message names the entry and the key."""


class DataMismatch(TartarusError, ValueError):
    """Two inputs that must line up do not (row counts, ids, shapes)."""


class AudioError(TartarusError):
    """One audio file could not be decoded; preprocessing skips it and reports it."""
