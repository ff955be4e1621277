"""The same tiny train -> save -> load -> predict chain on every Keras backend that is installed.

TensorFlow is always installed; JAX and PyTorch (``pip install torch==2.13.0``) run when present.
Each backend needs a fresh process, since Keras fixes its backend at import.
"""

import numpy as np
import pytest

from tartarus.models import load_model
from tests.conftest import run_on_backend

SCRIPT = r"""
import json, sys
import numpy as np
import keras
from tests.conftest import write_tiny_dataset, TINY_EXPERIMENTS
from pathlib import Path
from tartarus.config import Registry
from tartarus.pipeline import run_experiment as run  # train -> predict -> evaluate
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
# two different inputs in the data's range: the outputs, compared in the test with the same file
# loaded on TensorFlow (a .keras file must not depend on the backend that wrote it)
batch = np.random.default_rng(0).normal(-40, 6, size=(2, 21, 16, 1)).astype(np.float32)
out = np.asarray(model.predict_on_batch(batch), dtype=np.float64)
print(json.dumps({"backend": keras.backend.backend(), "shape": list(x.shape), "finite": bool(np.isfinite(x).all()),
                  "distinct_items": len(np.unique(x.round(6), axis=0)), "epochs": res.epochs,
                  "model_file": str(lay.model_file(res.model_id)), "batch": batch.tolist(), "out": out.tolist()}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(tmp_path, backend):
    report = run_on_backend(backend, SCRIPT, tmp_path, timeout=400)[-1]
    assert (report["backend"], report["shape"], report["finite"], report["epochs"]) == (backend, [3, 3], True, 2)
    assert report["distinct_items"] == 3  # the three test items got three different predictions
    out = np.asarray(report["out"])
    assert out.shape == (2, 3) and not np.allclose(out[0], out[1])
    # the model file written on `backend` gives the same outputs on TensorFlow (this process)
    model = load_model(report["model_file"])
    again = np.asarray(model.predict_on_batch(np.asarray(report["batch"], np.float32)))
    np.testing.assert_allclose(again, out, atol=1e-5)
