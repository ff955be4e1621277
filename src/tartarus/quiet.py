"""A quiet start for the command line: TensorFlow's hardware-probing chatter kept off the terminal.

TensorFlow 2.2x logs from C++ while its shared libraries load, before it reads
``TF_CPP_MIN_LOG_LEVEL``: "All log messages before absl::InitializeLog() ...", the oneDNN notice,
"Could not find cuda drivers on your machine", the CPU-instructions notice, and on a machine with CUDA
libraries but no GPU "failed call to cuInit". None of it is about the user's experiment. The CLI
(never a library import: a library must not change process-wide state) calls :func:`configure_cli`,
where every setting of the command line's process is made, before anything imports Keras;
with :func:`quiet_backend`, the first ``import tensorflow`` then runs with file descriptor 2 sent
to a temporary file, and what it wrote comes back filtered (:func:`filter_log`). Nothing else is
captured, and no device is hidden (``CUDA_VISIBLE_DEVICES`` is left as the user set it).

What stays: every line that is not TensorFlow's C++ log (Python warnings, say), and of those lines
the ones at or above ``TF_CPP_MIN_LOG_LEVEL`` (default 2: errors), except the GPU probe's (cuda
drivers, cuInit: errors on any machine without a GPU). A user who asked for a GPU, by setting
``CUDA_VISIBLE_DEVICES`` to anything but empty or -1, and got none is told so in one line
(:func:`gpu_note`) instead of the probe's three. ``--verbose``, ``TARTARUS_VERBOSE=1`` or an explicit
``TF_CPP_MIN_LOG_LEVEL`` of 0 or 1 turn the filter off: everything, as TensorFlow wrote it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile

from .import_hook import AroundImport

VERBOSE_ENV = "TARTARUS_VERBOSE"
# a glog/absl line: severity, MMDD, time, thread, file:line]
_LOG_LINE = re.compile(r"^(?P<sev>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<where>[^\]\s]+)\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# second lines of multi-line log messages (cpu_feature_guard's): they go with their first line
_CONTINUATIONS = ("To enable the following instructions",)
# what TensorFlow says while looking for CUDA: news only to someone who asked for a GPU
_PROBE = re.compile(r"cuda drivers|cuInit|cudart|cuda_platform|cuda_driver|cuda_diagnostics|Unable to register cu|"
                    r"TF-TRT|TensorRT|kernel driver does not appear to be running|CUDA_ERROR|GPU will not be used",
                    re.IGNORECASE)


def verbose_requested(flag=False):
    """Whether the user asked to see everything: ``--verbose`` (``flag``) or ``TARTARUS_VERBOSE`` set
    (to anything but empty or 0)."""
    return bool(flag) or os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


def gpu_requested():
    """Whether the user asked for a GPU: ``CUDA_VISIBLE_DEVICES`` set to a device list."""
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    return devices is not None and devices.strip() not in ("", "-1")


def gpu_note(devices, probe_text=""):
    """The one line for a user who asked for a GPU (``CUDA_VISIBLE_DEVICES=devices``) that TensorFlow
    did not find, with the reason the probe gave (its first line's message) where there is one:

    ``tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES=0) but TensorFlow found none
    (Could not find cuda drivers on your machine); running on the CPU``
    """
    reason = ""
    for line in probe_text.splitlines():
        match = _LOG_LINE.match(line)
        if match and _PROBE.search(line):
            message = line[match.end():].strip()
            # TensorFlow's own "GPU will not be used" repeats what the note says
            message = re.split(r",? ?GPU will not be used", message)[0].strip().rstrip(".")
            reason = f" ({message})" if message else ""
            break
    return (f"tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES={devices}) but TensorFlow found none"
            f"{reason}; running on the CPU")


def filter_log(text, min_level=2, keep_probe=False):
    """The part of TensorFlow's start-up output on stderr that a user should see.

    text : what was written to file descriptor 2 while TensorFlow loaded.
    min_level : lowest severity kept of TensorFlow's C++ log lines (0 info, 1 warning, 2 error,
        3 fatal: ``TF_CPP_MIN_LOG_LEVEL``'s scale).
    keep_probe : keep the GPU probe's lines (cuda drivers, cuInit) whatever their severity.
    Lines without the log prefix (Python warnings) are kept, but for the known second lines of log
    messages (the CPU notice's), which share their first line's fate. Returns the kept text.
    """
    kept, keep_log = [], True
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match:
            probe = _PROBE.search(line) is not None
            keep_log = keep_probe if probe else _SEVERITY[match.group("sev")] >= min_level
            keep = keep_log
        elif line.startswith(_ABSL_PREAMBLE):  # absl's note that logging is not set up yet
            keep = min_level <= 1
        else:  # not TensorFlow's log: kept, but for the known second line of a log message
            keep = keep_log if line.startswith(_CONTINUATIONS) else True
        if keep:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _stderr_filtered(min_level, notes):
    """Send file descriptor 2 to a temporary file for the block; write back what :func:`filter_log`
    keeps, then one line per function the block appended to ``notes`` (each called with the
    captured text, so a note can quote it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            kept = filter_log(text, min_level) + "".join(f"{note(text)}\n" for note in notes)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorFlow(AroundImport):
    """Has ``tensorflow`` loaded (and its devices probed) under :func:`_stderr_filtered`.

    gpu_devices : ``CUDA_VISIBLE_DEVICES`` when the user asked for a GPU, else None; a GPU asked
        for and not found is then one line (:func:`gpu_note`) in place of the probe's.
    """

    name = "tensorflow"

    def __init__(self, min_level, gpu_devices=None):
        super().__init__()
        self.min_level, self.gpu_devices = min_level, gpu_devices

    def around(self, load, module):
        notes = []
        with _stderr_filtered(self.min_level, notes):
            load()
            # the GPU probe (cuInit) may come after the import: have it now, while filtered; a
            # failure here is TensorFlow's to report when a device is used, not the import's
            gpus = None
            with contextlib.suppress(Exception):
                gpus = module.config.list_physical_devices("GPU")
            if self.gpu_devices is not None and gpus == []:
                notes.append(lambda text: gpu_note(self.gpu_devices, text))


def quiet_backend(verbose=False):
    """Keep TensorFlow's start-up chatter off stderr for the rest of this command (see the module text).

    For the CLI's entry point, before anything imports Keras or TensorFlow. Does nothing when the
    user asked to see everything (``verbose``, ``TARTARUS_VERBOSE``, ``TF_CPP_MIN_LOG_LEVEL`` 0 or 1)
    or TensorFlow is already loaded. Returns a function that undoes it (the finder removed,
    ``TF_CPP_MIN_LOG_LEVEL`` as it was), for callers of ``main`` within a longer-lived process.
    """
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    try:
        min_level = int(user_level) if user_level is not None else 2
    except ValueError:
        min_level = 2
    if verbose_requested(verbose) or min_level <= 1 or "tensorflow" in sys.modules:
        return lambda: None
    if user_level is None:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(min_level)  # TensorFlow's own later messages too
    gpu_devices = os.environ["CUDA_VISIBLE_DEVICES"].strip() if gpu_requested() else None
    finder = _QuietTensorFlow(min_level, gpu_devices).install()

    def undo():
        finder.remove()
        if user_level is None and os.environ.get("TF_CPP_MIN_LOG_LEVEL") == str(min_level):
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]

    return undo


def configure_cli(verbose=False):
    """Everything the command line sets for its process, in one place; returns a function undoing it.

    Made here only (``tartarus.cli.main`` calls it before anything imports Keras), never on a
    library import: :func:`quiet_backend`, and, unless the user asked to see
    everything (``verbose``, ``TARTARUS_VERBOSE``), the ``tensorflow`` logger at ERROR, which keeps
    Keras' retracing warnings off the terminal. Importing tartarus as a library changes none of
    this. The undo (the logger's level as it was, then :func:`quiet_backend`'s) is for callers of
    ``main`` within a longer-lived process, such as the tests.
    """
    verbose = verbose_requested(verbose)
    undo_backend = quiet_backend(verbose)
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    if not verbose:
        tf_logger.setLevel(logging.ERROR)

    def undo():
        tf_logger.setLevel(level)
        undo_backend()

    return undo
