import subprocess
import sys

from tartarus.cli import main
from tests.conftest import REPO


def test_list_and_show(experiments_dir, capsys):
    assert main(["list", "--experiments", str(experiments_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "SUPER" in out
    assert main(["show", "tiny", "--experiments", str(experiments_dir), "--set", "training.n_epochs=2"]) == 0
    assert '"n_epochs": 2' in capsys.readouterr().out


def test_errors_are_one_line_and_exit_2(experiments_dir, tiny_layout, capsys):
    code = main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", str(tiny_layout.root),
                 "--set", "training.n_epoch=2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "unknown key 'n_epoch'" in err and "Traceback" not in err
    assert main(["predict", "model_9", "--data-dir", str(tiny_layout.root)]) == 2
    err = capsys.readouterr().err
    assert "models/model_9/model.keras" in err


def test_run_then_predict_through_the_cli(experiments_dir, tiny_layout, capsys):
    root = str(tiny_layout.root)
    assert main(["run", "tiny", "--experiments", str(experiments_dir), "--data-dir", root,
                 "--set", "training.n_epochs=1", "--no-eval"]) == 0
    assert main(["predict", "model_1", "-p", "-l", "9", "-s", "test", "-s", "val", "--data-dir", root]) == 0
    out = capsys.readouterr().out
    assert "X_test_model_1-pred_9_TINY.npy" in out and "X_val_model_1-pred_9_TINY.npy" in out
    assert main(["models", "--data-dir", root]) == 0
    assert "model_1\ttiny\tTINY" in capsys.readouterr().out


def test_seed_scripts_are_the_same_commands():
    for script in ("run_experiments.py", "predict.py", "audio_processing/create_spectrograms.py",
                   "audio_processing/create_patches.py"):
        out = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True,
                             cwd=REPO, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "--data-dir" in out.stdout
