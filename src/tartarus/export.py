"""Exporting a model for serving without tartarus: a TensorFlow SavedModel or an ONNX file.

The model is a trained one (``model_N``: its ``model.keras``, loaded in safe mode) or a pretrained
tagger (:data:`tartarus.pretrained.PRETRAINED_NAMES`), whole or cut at one of its layers (an
embedding). Keras 3 writes the export (``model.export``); what it can write depends on the backend
Keras runs on, and the ``.keras`` file and the pretrained weights are the same on every backend, so
a format one backend cannot write is a ConfigError naming the backend that can:

==========  ==========================  ==========================================  =======================
format      tensorflow                  jax                                         torch
==========  ==========================  ==========================================  =======================
savedmodel  yes                         yes (jax2tf; TensorFlow is a dependency)    no (Keras needs torch_xla)
onnx        tf2onnx + onnx              jax2onnx (not in ``[onnx]``: it brings      onnx (torch.onnx)
            (``pip install '.[onnx]'``) flax and more); else use tensorflow
==========  ==========================  ==========================================  =======================

Both exports take a float32 batch of any size (the batch axis is left free) and run the model in
inference mode. Their tensors are named after the model's: the inputs keep their Keras names
(``patches`` for the pretrained taggers), and the outputs are named after the layers that make them
(``taggram``; the layer's name when a layer is exported). A SavedModel's ``serving_default``
signature returns a dict of them; its ``serve`` function returns the bare tensor (a list for several
outputs), as Keras writes it. An ONNX file's outputs get the same names (an Identity node each, as
tf2onnx and torch.onnx number them), and its batch axis is called ``batch``.

After writing, the export is loaded back and run on a small random batch next to Keras
(:attr:`ExportResult.max_abs_diff`): for ONNX only where ``onnxruntime`` is installed.
Writes are atomic: the export is made under a temporary name beside the destination and renamed
into place only when complete; an existing export is replaced only with ``overwrite``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, TartarusError
from .fileio import atomic_path, file_mode, make_dirs, writing

FORMATS = ("savedmodel", "onnx")
FORMAT_TITLES = {"savedmodel": "TensorFlow SavedModel", "onnx": "ONNX"}
# what each Keras backend needs to write each format (modules that must import); None: it cannot
_NEEDS = {
    ("savedmodel", "tensorflow"): ("tensorflow",),
    ("savedmodel", "jax"): ("tensorflow",),
    ("savedmodel", "torch"): None,  # Keras exports torch through torch_xla's StableHLO: not supported here
    ("onnx", "tensorflow"): ("tf2onnx", "onnx"),
    ("onnx", "jax"): ("jax2onnx",),
    ("onnx", "torch"): ("onnx",),
}
ONNX_INSTALL = "install them with make onnx (pip install tf2onnx onnx onnxruntime: the onnx extra)"
CHECK_BATCH = 2  # rows of the random batch the export is checked on
FREE_DIM = 8  # the length given to a free axis other than the batch (a sequence's) in that check


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of an export: its ``name``, ``dtype`` (numpy name) and ``shape``
    (None for a free axis, the batch first)."""
    name: str
    dtype: str
    shape: tuple

    def __str__(self):
        dims = ", ".join("batch" if d is None and i == 0 else ("?" if d is None else str(d))
                         for i, d in enumerate(self.shape))
        return f"{self.name}: {self.dtype} ({dims})"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote.

    path : the SavedModel folder or the ONNX file.
    inputs, outputs : the export's signature as read back from it (:class:`TensorInfo` each).
    max_abs_diff : largest absolute difference between the export's outputs and Keras' on a random
        batch of :data:`CHECK_BATCH` rows; None when not checked (``check_note`` says why).
    """
    source: str
    fmt: str
    path: Path
    backend: str
    inputs: tuple
    outputs: tuple
    max_abs_diff: float | None
    check_note: str


# --------------------------------------------------------------------------------- checks
def check_format(fmt):
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not known; choose one of: {', '.join(FORMATS)}")
    return fmt


def check_backend(fmt, backend=None):
    """Raise ConfigError unless Keras ``backend`` (default: the current one) can write ``fmt`` here;
    the message names the backend (and packages) that can."""
    check_format(fmt)
    if backend is None:
        import keras
        backend = keras.backend.backend()
    other = "KERAS_BACKEND=tensorflow" if backend != "tensorflow" else "KERAS_BACKEND=jax"
    needs = _NEEDS.get((fmt, backend), None)
    if needs is None:
        why = {("savedmodel", "torch"): "Keras exports a SavedModel from torch only through torch_xla, "
                                        "which tartarus does not support"}.get((fmt, backend), "Keras cannot do it")
        raise ConfigError(f"cannot export as {FORMAT_TITLES[fmt]} on the {backend} Keras backend ({why}); the "
                          f"model is the same on every backend: rerun with {other}")
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        if fmt == "onnx" and backend == "jax":
            raise ConfigError(f"ONNX export on the jax Keras backend needs jax2onnx, which is not installed (it brings "
                              f"flax and more, so tartarus does not install it): rerun with KERAS_BACKEND=tensorflow, "
                              f"which exports the same model through tf2onnx (make onnx installs it and onnx)")
        raise ConfigError(f"{FORMAT_TITLES[fmt]} export on the {backend} Keras backend needs "
                          f"{' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
                          + (ONNX_INSTALL if fmt == "onnx" else "pip install tensorflow"))
    return backend


def is_pretrained(source):
    from .pretrained import PRETRAINED_NAMES
    return source in PRETRAINED_NAMES


def _check_source(source):
    from .pretrained import PRETRAINED_NAMES
    from .store import MODEL_ID
    if source in PRETRAINED_NAMES or MODEL_ID.match(str(source)):
        return source
    near = [n for n in PRETRAINED_NAMES if n.lower() == str(source).lower()]
    hint = f" (did you mean {near[0]}?)" if near else ""
    raise ConfigError(f"cannot export {source!r}: expected a trained model id (model_N, see tartarus models) or a "
                      f"pretrained model ({', '.join(PRETRAINED_NAMES)}){hint}")


def default_path(source, fmt, layout=None, layer=None):
    """Where :func:`export` writes by default.

    A trained model's export goes into its folder (``layout.model_export``:
    ``models/model_N/export/savedmodel`` or ``.../model.onnx``); a pretrained model's into the
    current directory as ``NAME.savedmodel`` or ``NAME.onnx`` (an export is a deliverable to hand
    on, not a cache). With ``layer``, ``-LAYER`` is added before the suffix (``savedmodel-penultimate``).
    """
    check_format(fmt)
    if is_pretrained(source):
        stem = source if layer is None else f"{source}-{layer}"
        return Path(f"{stem}.{fmt}")
    from .layout import DataLayout
    layout = layout if layout is not None else DataLayout()
    return layout.model_export(source, fmt, layer)


# --------------------------------------------------------------------------------- models
def load_source(source, layout=None, layer=None, cache_dir=None):
    """``(keras model, layer name or None)`` to export for ``source`` (a model id or a pretrained name).

    A trained model is loaded in safe mode from ``model.keras`` (MissingInput naming how to train
    or resume it); a pretrained one with :func:`tartarus.pretrained.load_pretrained` (MissingInput
    naming ``make pretrained`` without the weights). ``layer`` (a name, or for a trained model also
    the seed's index) cuts the model there; the name of the layer is returned.
    """
    _check_source(source)
    if is_pretrained(source):
        from .pretrained import feature_model, get_spec, load_pretrained
        spec = get_spec(source)
        if layer is not None and layer not in spec.layers:  # before the weights are loaded
            raise ConfigError(f"{source} has no layer {layer!r} to export; its layers: {', '.join(spec.layers)}")
        model = load_pretrained(source, cache_dir)
        return (model, None) if layer is None else (feature_model(model, [layer]), layer)
    from .layout import DataLayout
    from .models import layer_model, load_model, resolve_layer
    from .store import require_model
    layout = layout if layout is not None else DataLayout()
    require_model(layout, source)
    model = load_model(layout.model_file(source))
    if layer is None:
        return model, None
    name = resolve_layer(model, layer).name
    return layer_model(model, layer), name


def _output_names(model):
    """One distinct name per output of ``model``: the layer that makes it (``taggram``)."""
    names = []
    for i, tensor in enumerate(model.outputs):
        history = getattr(tensor, "_keras_history", None)
        name = history.operation.name if history is not None else f"output_{i}"
        names.append(name if name not in names else f"{name}_{i}")
    return names


def _serving_model(model, outputs_as_dict):
    """``model`` over the same layers with a bare input (one) or list (several) and its outputs
    as a dict by name (SavedModel: named signature outputs) or as a tensor / list (ONNX)."""
    import keras
    inputs = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
    names = _output_names(model)
    if outputs_as_dict:
        outputs = dict(zip(names, model.outputs))
    else:
        outputs = model.outputs[0] if len(model.outputs) == 1 else list(model.outputs)
    return keras.Model(inputs, outputs, name=model.name), names


def _check_inputs(model, seed=0):
    """``{input name: random array}``: :data:`CHECK_BATCH` rows, float inputs normal, integer ones
    (token ids) zero, a free non-batch axis :data:`FREE_DIM` long."""
    rng = np.random.default_rng(seed)
    out = {}
    for tensor in model.inputs:
        shape = tuple(CHECK_BATCH if i == 0 else (FREE_DIM if d is None else int(d))
                      for i, d in enumerate(tensor.shape))
        dtype = np.dtype(str(tensor.dtype))
        out[tensor.name] = (rng.normal(size=shape).astype(dtype) if np.issubdtype(dtype, np.floating)
                            else np.zeros(shape, dtype))
    return out


# ------------------------------------------------------------------------------- writers
def _dir_mode():
    mode = file_mode()
    return mode | ((mode & 0o444) >> 2)  # a folder's x bit wherever a plain file gets r


def _check_destination(path, fmt, overwrite):
    """Refuse an existing ``path`` unless ``overwrite`` and it is an export of ``fmt`` (never
    replace a folder or file that is something else)."""
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise ConfigError(f"{path} exists; add --overwrite to replace it (or choose another --out)")
    if fmt == "savedmodel" and not (path.is_dir() and (path / "saved_model.pb").is_file()):
        raise ConfigError(f"{path} exists and is not a SavedModel folder (no saved_model.pb): not replacing it")
    if fmt == "onnx" and not path.is_file():
        raise ConfigError(f"{path} exists and is not a file: not replacing it with an ONNX file")


def _write_folder(path, write):
    """Run ``write(tmp)`` into a new temporary folder beside ``path``, then rename it onto ``path``
    (an old export there is moved aside first and removed after)."""
    make_dirs(path.parent)
    with writing(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        with writing(path):
            write(tmp)
            os.chmod(tmp, _dir_mode())
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".old",
                                            dir=path.parent))
                os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except OSError:
                if old is not None:  # put the old export back: never leave nothing
                    os.replace(old / path.name, path)
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _name_onnx_outputs(path, names):
    """Give the ONNX file's outputs ``names`` (an Identity node each) and its free first axes the
    name ``batch``; checked with onnx's checker."""
    import onnx
    model = onnx.load(str(path))
    graph = model.graph
    taken = {n for node in graph.node for n in (*node.input, *node.output)} | {t.name for t in graph.initializer}
    taken |= {v.name for v in graph.input}
    for value, name in zip(graph.output, names):
        if value.name == name or name in taken:
            continue
        graph.node.append(onnx.helper.make_node("Identity", [value.name], [name], name=f"{name}_output"))
        value.name = name
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@contextlib.contextmanager
def _converter_noise_off():
    """Keep the converters' warnings about themselves off the console for the block: Keras' tf2onnx
    shim's FutureWarning (numpy 2), torch.jit's tracer warnings (about Keras' own code paths, not the
    user's model). The filters are restored after (no process-wide change)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"keras\.")
        torch = sys.modules.get("torch")
        if torch is not None:
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _savedmodel_signature(path):
    import tensorflow as tf
    with _converter_noise_off():
        loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]

    def info(spec, key):
        return TensorInfo(key, spec.dtype.name, tuple(spec.shape.as_list()))

    inputs = tuple(info(s, k) for k, s in signature.structured_input_signature[1].items())
    outputs = tuple(info(s, k) for k, s in signature.structured_outputs.items())
    return loaded, inputs, outputs


def _onnx_signature(path):
    import onnx
    graph = onnx.load(str(path), load_external_data=False).graph

    def info(value):
        kind = value.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type)).name
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim)
        return TensorInfo(value.name, dtype, shape)

    initializers = {t.name for t in graph.initializer}
    return (tuple(info(v) for v in graph.input if v.name not in initializers),
            tuple(info(v) for v in graph.output))


def _keras_outputs(serving, names, feed):
    import keras
    args = [feed[t.name] for t in serving.inputs]
    got = serving(args[0] if len(args) == 1 else args, training=False)
    if isinstance(got, dict):
        got = [got[n] for n in names]
    elif not isinstance(got, (list, tuple)):
        got = [got]
    return {n: np.asarray(keras.ops.convert_to_numpy(g)) for n, g in zip(names, got)}


def _largest_difference(expected, got):
    return max(float(np.max(np.abs(np.asarray(got[n], np.float64) - np.asarray(e, np.float64)), initial=0.0))
               for n, e in expected.items())


def _write(serving, path, fmt, names):
    if fmt == "savedmodel":
        _write_folder(path, lambda tmp: serving.export(str(tmp), format="tf_saved_model", verbose=False))
    else:
        with atomic_path(path) as tmp:
            serving.export(str(tmp), format="onnx", verbose=False)
            _name_onnx_outputs(tmp, names)


def export_model(model, path, fmt="savedmodel", overwrite=False, check=True, source=None):
    """Write keras ``model`` to ``path`` as ``fmt`` (see :data:`FORMATS`) and read it back.

    Returns an :class:`ExportResult`. ConfigError when the current Keras backend cannot write
    ``fmt`` (:func:`check_backend`), when ``path`` exists (unless ``overwrite`` and it is an export
    of ``fmt``), or when Keras fails on this model (the message names the model and Keras' reason).
    """
    import keras
    backend = check_backend(fmt)
    path = Path(path)
    _check_destination(path, fmt, overwrite)
    source = source or model.name
    serving, names = _serving_model(model, outputs_as_dict=(fmt == "savedmodel"))
    # Keras exports only a model that has been called (ONNX); the call is also the reference of the check
    feed = _check_inputs(serving)
    expected = _keras_outputs(serving, names, feed)
    try:
        with _converter_noise_off():
            _write(serving, path, fmt, names)
    except TartarusError:
        raise
    except (ImportError, ValueError, TypeError, NotImplementedError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"Keras could not export {source} as {FORMAT_TITLES[fmt]} on the {backend} backend: "
                          f"{first[:300]}") from exc
    diff, note = None, "not checked"
    if fmt == "savedmodel":
        loaded, inputs, outputs = _savedmodel_signature(path)
        order = [t.name for t in serving.inputs]  # the signature's dict has its own order: the model's instead
        inputs = tuple(sorted(inputs, key=lambda t: order.index(t.name) if t.name in order else len(order)))
        if check:
            import tensorflow as tf
            got = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in feed.items()})
            diff = _largest_difference(expected, {k: v.numpy() for k, v in got.items()})
            note = f"checked with TensorFlow {tf.__version__} on {CHECK_BATCH} random inputs"
    else:
        inputs, outputs = _onnx_signature(path)
        if check and importlib.util.find_spec("onnxruntime") is None:
            note = "not checked: onnxruntime is not installed"
        elif check:
            import onnxruntime
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
            diff = _largest_difference(expected, dict(zip(names, got)))  # in the model's order
            note = f"checked with onnxruntime {onnxruntime.__version__} on {CHECK_BATCH} random inputs"
    return ExportResult(source=source, fmt=fmt, path=path, backend=keras.backend.backend(), inputs=inputs,
                        outputs=outputs, max_abs_diff=diff, check_note=note)


def export(source, fmt="savedmodel", out=None, layout=None, layer=None, overwrite=False, cache_dir=None, check=True):
    """Export trained model ``source`` (``model_N`` of ``layout``) or pretrained model ``source``
    (``MTT_musicnn`` ...), whole or up to ``layer``, as ``fmt`` to ``out`` (default:
    :func:`default_path`). Returns the :class:`ExportResult`; see :func:`export_model`.

    The format and backend are checked before any model is loaded, so a combination that cannot
    work fails at once.
    """
    check_backend(fmt)
    _check_source(source)
    path = Path(out) if out is not None else None
    model, layer_name = load_source(source, layout, layer, cache_dir)
    if path is None:
        path = default_path(source, fmt, layout, layer_name)
    label = source if layer_name is None else f"{source} (up to layer {layer_name})"
    return export_model(model, path, fmt, overwrite=overwrite, check=check, source=label)
