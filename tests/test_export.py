"""tartarus export: a trained or pretrained model as a TensorFlow SavedModel or an ONNX file, loaded back
outside Keras and compared with it on the same inputs (issue 14, item 5)."""

import importlib.util
import json
import os

import h5py
import keras
import numpy as np
import pytest

from tartarus import export as ex
from tartarus.cli import build_parser, main
from tartarus.config import Registry
from tartarus.errors import ConfigError, MissingInput
from tartarus.pretrained import weights_installed
from tests.conftest import REPO, TINY_EXPERIMENTS, cli_error_line, run_on_backend, write_tiny_dataset

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx, onnx or onnxruntime not installed: make onnx")
needs_weights = pytest.mark.skipif(not weights_installed(), reason="musicnn weights not installed: make pretrained")
ATOL = 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(layout, model id, test patches (6, 21, 16, 1)) of a tiny audio model trained for one epoch."""
    from tartarus.pipeline import run_experiment
    root = tmp_path_factory.mktemp("export")
    layout = write_tiny_dataset(root / "data")
    (root / "tiny.toml").write_text(TINY_EXPERIMENTS)
    experiment = Registry(root).experiment("tiny", ["training.n_epochs=1"])
    result = run_experiment(experiment, (), layout, verbose=0, evaluate=False)
    with h5py.File(layout.patches("test", "TINY", 2, 1), "r") as f:
        patches = f["features"][:]
    return layout, result.model_id, patches


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """The converted pretrained weights, once for the module."""
    return tmp_path_factory.mktemp("cache")


def _keras_outputs(layout, model_id, x, layer=None):
    from tartarus.models import layer_model, load_model
    model = load_model(layout.model_file(model_id))
    if layer is not None:
        model = layer_model(model, layer)
    return np.asarray(model.predict_on_batch(x))


def _savedmodel_outputs(path, feeds):
    import tensorflow as tf
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()}


def _onnx_outputs(path, feeds):
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def _siblings(path):
    """Everything beside ``path`` in its folder other than ``path`` itself (temporaries left behind)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


# ------------------------------------------------------------------------------ trained models
def test_trained_model_savedmodel_gives_keras_outputs(trained, capsys):
    layout, model_id, patches = trained
    assert main(["export", model_id, "--data-dir", str(layout.root)]) == 0
    path = layout.model_dir(model_id) / "export" / "savedmodel"
    assert layout.model_export(model_id, "savedmodel") == path and (path / "saved_model.pb").is_file()
    out = capsys.readouterr().out
    assert f"{model_id}: TensorFlow SavedModel -> {path}" in out
    # the signature printed: the input as the model names it, batch axis free; the output after its layer
    inputs = [line.split()[1:] for line in out.splitlines() if line.strip().startswith("input ")]
    outputs = [line.split()[1:] for line in out.splitlines() if line.strip().startswith("output ")]
    assert len(inputs) == 1 and inputs[0][1:] == ["float32", "(batch,", "21,", "16,", "1)"]
    assert len(outputs) == 1 and outputs[0][1:] == ["float32", "(batch,", "3)"]
    name_in, name_out = inputs[0][0].rstrip(":"), outputs[0][0].rstrip(":")
    got = _savedmodel_outputs(path, {name_in: patches})
    assert list(got) == [name_out]
    expected = _keras_outputs(layout, model_id, patches)
    assert expected.shape == (6, 3)
    np.testing.assert_allclose(got[name_out], expected, atol=ATOL, rtol=0)
    assert np.allclose(got[name_out].sum(axis=1), 1, atol=1e-5)  # the softmax is in the export
    assert _siblings(path) == []  # no temporary folder left beside it


@needs_onnx
def test_trained_model_onnx_gives_keras_outputs(trained, capsys):
    layout, model_id, patches = trained
    assert main(["export", model_id, "--format", "onnx", "--data-dir", str(layout.root)]) == 0
    path = layout.model_export(model_id, "onnx")
    assert path.name == "model.onnx" and path.is_file()
    assert "checked with onnxruntime" in capsys.readouterr().out
    signature_in, signature_out = ex._onnx_signature(path)
    assert [t.shape for t in signature_in] == [(None, 21, 16, 1)] and [t.shape for t in signature_out] == [(None, 3)]
    got = _onnx_outputs(path, {signature_in[0].name: patches})
    np.testing.assert_allclose(got[signature_out[0].name], _keras_outputs(layout, model_id, patches), atol=ATOL, rtol=0)


def test_trained_model_exported_up_to_a_layer(trained, tmp_path):
    layout, model_id, patches = trained
    from tartarus.models import load_model, resolve_layer
    layer = resolve_layer(load_model(layout.model_file(model_id)), -2)  # the seed's numbering: the last hidden
    result = ex.export(model_id, "savedmodel", out=tmp_path / "emb", layout=layout, layer="-2")
    assert [t.name for t in result.outputs] == [layer.name] and result.max_abs_diff <= ATOL
    got = _savedmodel_outputs(result.path, {result.inputs[0].name: patches})[layer.name]
    np.testing.assert_allclose(got, _keras_outputs(layout, model_id, patches, layer=layer.name), atol=ATOL, rtol=0)
    assert layout.model_export(model_id, "onnx", layer.name).name == f"model-{layer.name}.onnx"


def test_an_existing_export_is_replaced_only_when_asked(trained, tmp_path, capsys):
    layout, model_id, _ = trained
    out = tmp_path / "sm"
    first = ex.export(model_id, out=out, layout=layout)
    stamp = (out / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"exists; add --overwrite"):
        ex.export(model_id, out=out, layout=layout)
    assert (out / "saved_model.pb").stat().st_mtime_ns == stamp
    again = ex.export(model_id, out=out, layout=layout, overwrite=True)
    assert again.outputs == first.outputs and _siblings(out) == []
    # --overwrite never replaces what is not an export of that format
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    assert main(["export", model_id, "--out", str(mine), "--overwrite", "--data-dir", str(layout.root)]) == 2
    assert "is not a SavedModel folder" in cli_error_line(capsys)
    assert (mine / "keep.txt").read_text() == "mine"


def test_a_failed_export_leaves_nothing(trained, tmp_path, monkeypatch):
    layout, model_id, _ = trained

    def fail(self, filepath, format="tf_saved_model", **kwargs):
        os.makedirs(filepath, exist_ok=True)
        open(os.path.join(filepath, "saved_model.pb"), "wb").close()  # half written, then Keras fails
        raise ValueError("the converter gave up\nwith a long trace")

    monkeypatch.setattr(keras.Model, "export", fail)
    out = tmp_path / "sub" / "sm"
    with pytest.raises(ConfigError, match=rf"Keras could not export {model_id} as TensorFlow SavedModel on the "
                                          rf"tensorflow backend: the converter gave up$"):
        ex.export(model_id, out=out, layout=layout)
    assert not out.exists() and _siblings(out) == []


# ------------------------------------------------------------------------------ pretrained taggers
@needs_weights
@pytest.mark.parametrize("fmt", ["savedmodel", pytest.param("onnx", marks=needs_onnx)])
def test_pretrained_musicnn_export_gives_the_taggram(fmt, cache_dir, tmp_path, monkeypatch, capsys):
    from tartarus.pretrained import load_pretrained
    monkeypatch.chdir(tmp_path)  # the default destination of a pretrained export: ./NAME.FORMAT
    assert main(["export", "MTT_musicnn", "--format", fmt, "--cache-dir", str(cache_dir)]) == 0
    path = tmp_path / f"MTT_musicnn.{fmt}"
    out = capsys.readouterr().out
    assert f"MTT_musicnn: {ex.FORMAT_TITLES[fmt]} -> MTT_musicnn.{fmt}" in out
    assert "input  patches: float32 (batch, 187, 96)" in out and "output taggram: float32 (batch, 50)" in out
    # a real song's log-mel (musicnn's own input, kept in the reference file): two 3 s patches
    with np.load(REPO / "tests" / "data" / "musicnn_reference.npz", allow_pickle=False) as ref:
        mel = ref["input/a_vacilar"].astype(np.float32)
    patches = np.stack([mel[:187], mel[187:374]])
    expected = np.asarray(load_pretrained("MTT_musicnn", cache_dir).predict_on_batch(patches))
    got = (_savedmodel_outputs if fmt == "savedmodel" else _onnx_outputs)(path, {"patches": patches})
    assert list(got) == ["taggram"]
    np.testing.assert_allclose(got["taggram"], expected, atol=ATOL, rtol=0)
    assert _siblings(path) == []


@needs_weights
def test_pretrained_layer_export_and_unknown_layer(cache_dir, tmp_path):
    result = ex.export("MTT_vgg", "savedmodel", out=tmp_path / "vgg", layer="pool5", cache_dir=cache_dir)
    assert [(t.name, t.shape) for t in result.outputs] == [("pool5", (None, 256))] and result.max_abs_diff <= ATOL
    assert ex.default_path("MTT_vgg", "onnx", layer="pool5").name == "MTT_vgg-pool5.onnx"
    with pytest.raises(ConfigError, match=r"MTT_vgg has no layer 'penultimate' to export; its layers: .*pool5"):
        ex.export("MTT_vgg", out=tmp_path / "x", layer="penultimate", cache_dir=cache_dir)
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------ other backends
BACKEND_SCRIPT = """
import json, sys
from tartarus import export as ex
from tartarus.errors import ConfigError
from tartarus.layout import DataLayout
root, model_id, fmt, out, refused = sys.argv[1:]
r = ex.export(model_id, fmt, out=out, layout=DataLayout(root))
try:
    ex.export(model_id, refused, out=out + ".refused", layout=DataLayout(root))
    said = None
except ConfigError as exc:
    said = str(exc)
print(json.dumps({"backend": r.backend, "diff": r.max_abs_diff, "outputs": [t.name for t in r.outputs], "said": said}))
"""


@pytest.mark.parametrize("backend, fmt, refused, reason", [
    ("jax", "savedmodel", "onnx", "needs jax2onnx"),
    ("torch", "onnx", "savedmodel", "torch_xla"),
])
def test_other_backends_write_what_they_can_and_name_the_backend_for_the_rest(trained, tmp_path, backend, fmt,
                                                                                refused, reason):
    layout, model_id, patches = trained
    if fmt == "onnx" and not HAS_ONNX:
        pytest.skip("tf2onnx, onnx or onnxruntime not installed: make onnx")
    if refused == "onnx" and importlib.util.find_spec("jax2onnx") is not None:
        pytest.skip("jax2onnx is installed here: the jax backend can write ONNX")
    out = tmp_path / f"by_{backend}.{fmt}"
    (line,) = run_on_backend(backend, BACKEND_SCRIPT, layout.root, model_id, fmt, out, refused)
    assert line["backend"] == backend and line["diff"] <= ATOL
    assert reason in line["said"] and "KERAS_BACKEND=tensorflow" in line["said"]
    # what the other backend wrote gives TensorFlow Keras' numbers on the real patches
    if fmt == "onnx":
        got = _onnx_outputs(out, {ex._onnx_signature(out)[0][0].name: patches})
    else:
        got = _savedmodel_outputs(out, {ex._savedmodel_signature(out)[1][0].name: patches})
    np.testing.assert_allclose(got[line["outputs"][0]], _keras_outputs(layout, model_id, patches), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------ errors
def test_bad_model_ids_and_formats_are_named(trained, tmp_path, capsys):
    layout, _, _ = trained
    with pytest.raises(ConfigError, match=r"cannot export 'musicnn': expected a trained model id \(model_N, "
                                          r"see tartarus models\) or a pretrained model \(MTT_musicnn, MSD_musicnn"):
        ex.export("musicnn", layout=layout)
    with pytest.raises(ConfigError, match=r"did you mean MTT_musicnn\?"):
        ex.export("mtt_musicnn", layout=layout)
    with pytest.raises(MissingInput, match=r"model_99.*model\.keras"):
        ex.export("model_99", layout=layout, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match=r"export format 'tflite' is not known; choose one of: savedmodel, onnx"):
        ex.export("model_1", "tflite", layout=layout)
    with pytest.raises(ConfigError, match=r"format 'tflite' is not known"):
        layout.model_export("model_1", "tflite")
    assert main(["export", "nope", "--data-dir", str(layout.root)]) == 2
    assert "cannot export 'nope'" in cli_error_line(capsys)
    with pytest.raises(SystemExit):
        main(["export", "model_1", "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    # the parser's choices are the library's
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["export"]
    assert next(a for a in sub._actions if a.dest == "format").choices == ex.FORMATS


def test_backend_checks_name_the_backend_and_packages_that_can(monkeypatch):
    assert ex.check_backend("savedmodel", "tensorflow") == "tensorflow"
    assert ex.check_backend("savedmodel", "jax") == "jax"
    with pytest.raises(ConfigError, match=r"cannot export as TensorFlow SavedModel on the torch Keras backend "
                                          r"\(.*torch_xla.*\).*rerun with KERAS_BACKEND=tensorflow"):
        ex.check_backend("savedmodel", "torch")
    with pytest.raises(ConfigError, match=r"on the numpy Keras backend.*rerun with KERAS_BACKEND=tensorflow"):
        ex.check_backend("onnx", "numpy")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("tf2onnx", "jax2onnx")
                        else real(name, *a))
    with pytest.raises(ConfigError, match=r"ONNX export on the tensorflow Keras backend needs tf2onnx, which is not "
                                          r"installed: install them with make onnx"):
        ex.check_backend("onnx", "tensorflow")
    with pytest.raises(ConfigError, match=r"needs jax2onnx.*rerun with KERAS_BACKEND=tensorflow"):
        ex.check_backend("onnx", "jax")


def test_onnx_outputs_are_named_and_the_batch_axis_is_free(tmp_path):
    """The renaming itself, on a model of two outputs (tf2onnx numbers them ``Identity:0`` ...)."""
    if not HAS_ONNX:
        pytest.skip("tf2onnx, onnx or onnxruntime not installed: make onnx")
    inp = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")(inp)
    model = keras.Model(inp, [hidden, keras.layers.Dense(2, activation="sigmoid", name="scores")(hidden)])
    result = ex.export_model(model, tmp_path / "two.onnx", "onnx")
    assert [(t.name, t.shape) for t in result.outputs] == [("hidden", (None, 3)), ("scores", (None, 2))]
    assert [(t.name, t.shape) for t in result.inputs] == [("x", (None, 4))] and result.max_abs_diff <= ATOL
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    got = _onnx_outputs(result.path, {"x": x})
    expected = model.predict_on_batch(x)
    np.testing.assert_allclose(got["hidden"], expected[0], atol=ATOL, rtol=0)
    np.testing.assert_allclose(got["scores"], expected[1], atol=ATOL, rtol=0)
    assert json.dumps(str(result.inputs[0])) == '"x: float32 (batch, 4)"'
