"""A quiet start: ``tartarus run dummy_audio`` writes none of TensorFlow's start-up lines to stderr.

The real command line runs in a subprocess (TensorFlow logs from C++ while it loads, so only a fresh
process shows what a user sees), on one dummy data root shared by the module's tests, one epoch a run.
``TARTARUS_VERBOSE=1`` brings the lines back, which shows the check can fail; a GPU asked for
(``CUDA_VISIBLE_DEVICES=0``) and not found is one line (tartarus.quiet.gpu_note).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tartarus.quiet import filter_log, gpu_note

REPO = Path(__file__).resolve().parents[1]

# lines of TensorFlow's, XLA's and absl's start-up: the glog prefix (severity, MMDD, time, thread) and
# the messages that come without it (absl's preamble, the CPU notice's second line)
START_UP = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda drivers|cuInit|cudart|cpu_feature_guard|"
                      r"To enable the following instructions|rebuild TensorFlow|TF-TRT|TensorRT|\bXLA\b|"
                      r"StreamExecutor|Unable to register cu(DNN|FFT|BLAS)|computation placer|"
                      r"This TensorFlow binary is optimized")
# our own lines start so; the GPU note may quote TensorFlow's reason
OURS = "tartarus: "


def start_up_lines(stderr):
    """The lines of ``stderr`` that are TensorFlow's (XLA's, absl's) start-up log, not tartarus's own."""
    return [line for line in stderr.splitlines() if START_UP.search(line) and not line.startswith(OURS)]


def tartarus(*argv, env=None):
    """Run the ``tartarus`` console script (``python -m tartarus.cli`` where there is none) in a fresh
    process, with none of the user's choices about logging or GPUs in its environment, plus ``env``."""
    script = Path(sys.executable).with_name("tartarus")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tartarus.cli"]
    base = {k: v for k, v in os.environ.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "TARTARUS_VERBOSE", "CUDA_VISIBLE_DEVICES", "TARTARUS_DATA")}
    out = subprocess.run([*command, *map(str, argv)], capture_output=True, text=True, cwd=REPO, timeout=600,
                         env={**base, "KERAS_BACKEND": "tensorflow", **(env or {})})
    assert out.returncode == 0, f"tartarus {' '.join(map(str, argv))} failed:\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def dummy_root(tmp_path_factory):
    """A data root with the dummy dataset's patches, ready for ``tartarus run dummy_audio``."""
    root = tmp_path_factory.mktemp("quiet") / "data"
    for argv in (["dummy-data"], ["spectrograms", "DUMMY"], ["patches", "DUMMY"]):
        tartarus(*argv, "--data-dir", root)
    return root


def run_dummy_audio(root, *extra, env=None):
    return tartarus("run", "dummy_audio", "--data-dir", root, "--experiments", REPO / "experiments",
                    "--set", "training.n_epochs=1", *extra, env=env)


def test_run_starts_quietly(dummy_root):
    out = run_dummy_audio(dummy_root)
    assert start_up_lines(out.stderr) == [], out.stderr
    # nor anything else: no Python warning from Keras or absl, only tartarus's own lines if any
    assert [line for line in out.stderr.splitlines() if line.strip() and not line.startswith(OURS)] == [], out.stderr
    assert "MAP@500" in out.stdout, out.stdout  # it did train and evaluate
    # and wrote the model's report page, which `make run` leaves as data/models/model_1/report.html
    model_id, page = re.search(r"^(model_\d+): report -> (.+)$", out.stdout, re.M).groups()
    assert Path(page) == dummy_root / "models" / model_id / "report.html" and Path(page).stat().st_size > 50_000


def test_run_report_renders_in_chromium(dummy_root, tmp_path):
    from tests.browser import check_page, chromium_or_skip
    chromium_or_skip()
    pages = sorted((dummy_root / "models").glob("model_*/report.html"))
    if not pages:  # run on its own, without test_run_starts_quietly before it
        run_dummy_audio(dummy_root)
        pages = sorted((dummy_root / "models").glob("model_*/report.html"))
    shots = Path(os.environ.get("TARTARUS_SCREENSHOTS") or tmp_path)
    check = check_page(pages[0], shots / "run_dummy_audio_report.png")
    assert check.console_errors == [] and check.broken_images == [] and check.n_images == 4


def test_verbose_shows_the_start_up(dummy_root):
    # the same command with TARTARUS_VERBOSE=1 shows TensorFlow's start-up: the check above can fail
    out = run_dummy_audio(dummy_root, "--no-report", env={"TARTARUS_VERBOSE": "1"})
    shown = start_up_lines(out.stderr)
    assert shown, f"TensorFlow printed no start-up line even verbose; stderr:\n{out.stderr}"
    # and the quiet start's filter drops each of these real lines
    assert start_up_lines(filter_log(out.stderr)) == [], filter_log(out.stderr)


def _has_gpu():
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def test_missing_gpu_is_one_line(dummy_root):
    out = run_dummy_audio(dummy_root, "--no-report", env={"CUDA_VISIBLE_DEVICES": "0"})
    assert start_up_lines(out.stderr) == [], out.stderr
    about_gpu = [line for line in out.stderr.splitlines() if re.search(r"GPU|CUDA|cuda", line)]
    if _has_gpu():  # TensorFlow found it (or the note says it did not): nothing else
        assert len(about_gpu) <= 1, out.stderr
    else:
        assert len(about_gpu) == 1, out.stderr
        assert about_gpu[0].startswith("tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES=0) but TensorFlow "
                                       "found none"), about_gpu
        assert about_gpu[0].endswith("; running on the CPU"), about_gpu


PROBE = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796279196.193818   31776 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1796279198.590720   31776 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def test_gpu_note():
    assert gpu_note("0", PROBE) == ("tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES=0) but TensorFlow found none "
                                    "(Could not find cuda drivers on your machine); running on the CPU")
    # the first probe line gives the reason
    assert gpu_note("1,2", PROBE.split("\n", 2)[2]) == (
        "tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES=1,2) but TensorFlow found none (failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)); running on the CPU")
    assert gpu_note("0") == ("tartarus: a GPU was requested (CUDA_VISIBLE_DEVICES=0) but TensorFlow found none; "
                             "running on the CPU")
    # and the probe's own lines never pass the quiet filter
    assert filter_log(PROBE) == ""
