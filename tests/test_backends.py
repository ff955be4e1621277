"""The same tiny train -> save -> load -> predict chain on every Keras backend that is installed.

TensorFlow is always installed; JAX and PyTorch (``pip install torch==2.13.0``) run when present.
Each backend needs a fresh process, since Keras fixes its backend at import.
"""

import pytest

from tests.conftest import run_on_backend

SCRIPT = r"""
import json, sys
import numpy as np
import keras
from tests.conftest import write_tiny_dataset, TINY_EXPERIMENTS
from pathlib import Path
from tartarus.config import Registry
from tartarus.train import run
from tartarus.predict import predict
from tartarus.models import load_model
from tartarus.fileio import load_npy

root = Path(sys.argv[1])
lay = write_tiny_dataset(root / "data")
(root / "exp").mkdir()
(root / "exp" / "tiny.toml").write_text(TINY_EXPERIMENTS)
exp = Registry(root / "exp").experiment("tiny", ["training.n_epochs=2"])
res = run(exp, (), lay, verbose=0, evaluate=False)
predict(lay, res.model_id, ["test"], layer=9)
x = load_npy(lay.x("test", "model_1-pred_9", "TINY"))
model = load_model(lay.model_file(res.model_id))
batch = np.zeros((2, 21, 16, 1), np.float32)
again = load_model(lay.model_file(res.model_id))
same = bool(np.allclose(np.asarray(model.predict_on_batch(batch)), np.asarray(again.predict_on_batch(batch))))
print(json.dumps({"backend": keras.backend.backend(), "shape": list(x.shape), "finite": bool(np.isfinite(x).all()),
                  "reload_same": same, "epochs": res.epochs}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(tmp_path, backend):
    report = run_on_backend(backend, SCRIPT, tmp_path, timeout=400)[-1]
    assert report == {"backend": backend, "shape": [3, 3], "finite": True, "reload_same": True, "epochs": 2}
