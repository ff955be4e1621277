"""Pretrained taggers: musicnn and its VGG baselines (Pons and Serra 2019) with the released weights.

The weights come from the ``musicnn`` 0.1.0 package (ISC licence), installed without its obsolete
dependencies by ``make pretrained`` (``pip install --no-deps musicnn==0.1.0``); only its checkpoint
files are read, never its code. The first :func:`load_pretrained` of a model converts its TensorFlow
checkpoint once into a Keras weights file under the cache folder (``$TARTARUS_CACHE``, else
``~/.cache/tartarus``), named after the checkpoint's digest; later loads read that file, on any
Keras backend. Nothing is downloaded.

The input is musicnn's own (:func:`log_mel`): audio decoded to mono at 16 kHz, the mel power
spectrogram (n_fft 512, hop 256, 96 bands, librosa's Slaney filterbank, centred frames), cast to
float16 and compressed as ``log10(10000 x + 1)`` in float32 (numpy 1's promotion of
``10000 * float16``, which the release ran under), cut into non-overlapping 3 s patches of 187 frames.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError, ConfigError, MissingInput

PRETRAINED_NAMES = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
SR = 16000  # Hz
N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = 187  # 3 s patches
PACKAGE = "musicnn"
INSTALL_HINT = "install the weights with: make pretrained (pip install --no-deps musicnn==0.1.0)"
CACHE_ENV = "TARTARUS_CACHE"

MTT_LABELS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral")
MSD_LABELS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House",
    "happy")


@dataclass(frozen=True)
class PretrainedSpec:
    """One released model: its family, training data, tags, published test scores and layers.

    ``roc_auc`` / ``pr_auc``: the test-set scores the release records beside each checkpoint
    (its ``experiment.result`` files), rounded; not measured here.
    """
    name: str
    family: str  # "musicnn" or "vgg"
    trained_on: str  # "MTT" (MagnaTagATune) or "MSD" (Million Song Dataset)
    labels: tuple
    roc_auc: float
    pr_auc: float

    @property
    def layers(self):
        """Names of the layers that can be extracted (the release's feature names, plus logits and taggram)."""
        from .models.pretrained_nets import MUSICNN_LAYERS, VGG_LAYERS
        return MUSICNN_LAYERS if self.family == "musicnn" else VGG_LAYERS

    @property
    def default_layer(self):
        """The embedding layer used when none is named: ``penultimate`` (musicnn), ``pool5`` (VGG)."""
        return "penultimate" if self.family == "musicnn" else "pool5"


PRETRAINED = {
    "MTT_musicnn": PretrainedSpec("MTT_musicnn", "musicnn", "MTT", MTT_LABELS, 0.9067, 0.3831),
    "MSD_musicnn": PretrainedSpec("MSD_musicnn", "musicnn", "MSD", MSD_LABELS, 0.8802, 0.2891),
    "MTT_vgg": PretrainedSpec("MTT_vgg", "vgg", "MTT", MTT_LABELS, 0.9030, 0.3823),
    "MSD_vgg": PretrainedSpec("MSD_vgg", "vgg", "MSD", MSD_LABELS, 0.8768, 0.2819),
}


def get_spec(name):
    """The :class:`PretrainedSpec` of ``name``; ConfigError listing the names otherwise."""
    try:
        return PRETRAINED[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown pretrained model {name!r}: expected one of {', '.join(PRETRAINED_NAMES)}") from None


# ------------------------------------------------------------------------------ weights
def package_dir():
    """The installed ``musicnn`` package's folder (found without importing it: its code needs TF 1)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingInput(f"the {PACKAGE} package (pretrained weights)", INSTALL_HINT)
    return Path(list(spec.submodule_search_locations)[0])


def weights_installed():
    """True when the ``musicnn`` package with its four checkpoints is installed."""
    try:
        folder = package_dir()
    except MissingInput:
        return False
    return all((folder / name / ".index").is_file() for name in PRETRAINED_NAMES)


def checkpoint_prefix(name):
    """The TensorFlow checkpoint prefix of ``name`` in the package (its files are ``{prefix}.index``...)."""
    get_spec(name)
    folder = package_dir() / name
    if not (folder / ".index").is_file():
        raise MissingInput(folder / ".index", f"the {PACKAGE} package has no checkpoint for {name}; {INSTALL_HINT}")
    return str(folder) + os.sep  # the release saved with an empty file name inside the folder


def default_cache_dir():
    """Where converted weights go: ``$TARTARUS_CACHE``, else ``~/.cache/tartarus``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tartarus")


def _checkpoint_digest(prefix):
    digest = hashlib.sha256()
    for suffix in (".index", ".data-00000-of-00001"):
        with open(prefix + suffix, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def weights_file(name, cache_dir=None):
    """The converted Keras weights of ``name``: ``{cache}/pretrained/{name}-{digest}.weights.h5``.

    Converts the checkpoint when that file is absent (written atomically; TensorFlow reads the
    checkpoint, whatever the Keras backend).
    """
    prefix = checkpoint_prefix(name)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / "pretrained" / f"{name}-{_checkpoint_digest(prefix)}.weights.h5"
    if not path.is_file():
        _convert(name, prefix, path)
    return path


def read_checkpoint(prefix):
    """{variable name: array} of a TensorFlow checkpoint, optimizer slots left out."""
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    names = reader.get_variable_to_shape_map()
    return {n: reader.get_tensor(n) for n in names
            if "Adam" not in n and not n.startswith(("beta1_power", "beta2_power"))}


def _layer_weights(layer, scope, variables):
    """The checkpoint arrays of one Keras layer, in the layer's own weight order."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        keys = ("gamma", "beta", "moving_mean", "moving_variance")
    else:
        keys = ("kernel", "bias")
    arrays = []
    for key, target in zip(keys, layer.get_weights()):
        value = variables.pop(f"{scope}/{key}")
        if kind == "Conv1D":  # the release's mid end: Conv2D kernels (w, channels, 1, filters)
            value = value.reshape(target.shape)
        if value.shape != target.shape:
            raise ConfigError(f"checkpoint variable {scope}/{key}: shape {value.shape}, layer {layer.name} "
                              f"expects {target.shape}")
        arrays.append(value)
    return arrays


def _convert(name, prefix, path):
    from . import fileio
    from .models.pretrained_nets import CHECKPOINT_NAMES

    spec = get_spec(name)
    model = build_net(spec)
    variables = read_checkpoint(prefix)
    for layer_name, scope in CHECKPOINT_NAMES[spec.family].items():
        layer = model.get_layer(layer_name)
        layer.set_weights(_layer_weights(layer, scope, variables))
    if variables:  # every variable of the release must have found its layer
        raise ConfigError(f"{prefix}: checkpoint variables without a layer: {sorted(variables)}")
    with fileio.atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def build_net(spec):
    """The untrained Keras graph of ``spec`` (models.pretrained_nets)."""
    from .models.pretrained_nets import build_musicnn_net, build_vgg_net

    return build_musicnn_net(spec.name) if spec.family == "musicnn" else build_vgg_net(spec.name)


def load_pretrained(name, cache_dir=None):
    """The released model ``name`` as a keras.Model with its trained weights.

    Input ``patches`` (batch, 187, 96) float32 from :func:`log_mel`; output ``taggram`` (batch, 50).
    The layers named in ``get_spec(name).layers`` can be extracted (:func:`feature_model`).
    """
    spec = get_spec(name)
    path = weights_file(name, cache_dir)
    model = build_net(spec)
    model.load_weights(path)
    return model


def feature_model(model, layers):
    """A keras.Model over ``model``'s input with one output per layer name in ``layers`` (a list, in order)."""
    import keras

    layers = [layers] if isinstance(layers, str) else list(layers)
    known = [layer.name for layer in model.layers]
    for name in layers:
        if name not in known:
            raise ConfigError(f"model {model.name!r} has no layer {name!r}")
    return keras.Model(model.inputs, [model.get_layer(n).output for n in layers], name=f"{model.name}_features")


# ------------------------------------------------------------------------------ input
@functools.lru_cache(maxsize=1)
def _mel_entry():
    """musicnn's spectrogram settings as a dataset entry (audio.features caches the plan it makes)."""
    from .config.schema import DatasetEntry

    return DatasetEntry(name="musicnn", spectrogram_type="mel", resample_sr=SR, n_fft=N_FFT, hop=HOP, n_mels=N_MELS,
                        log=True, log_scale="musicnn")


def log_mel(y):
    """musicnn's input of mono float32 audio ``y`` at 16 kHz: (frames, 96) float32, frames = 1 + len(y) // 256."""
    from .audio.features import compute, get_plan

    return compute(y, get_plan(_mel_entry()))


def cut_patches(spec, n_frames=N_FRAMES, step=None):
    """Patches ``(n, n_frames, bins)`` of a ``(frames, bins)`` spectrogram, ``step`` frames apart (default
    ``n_frames``: no overlap); the frames after the last whole patch are left out, as musicnn does."""
    step = n_frames if step is None else int(step)
    if step < 1:
        raise ValueError(f"patch step must be >= 1 frame, got {step}")
    starts = np.arange(0, spec.shape[0] - n_frames + 1, step)
    if starts.size == 0:
        return np.zeros((0, n_frames, spec.shape[1]), np.float32)
    index = starts[:, None] + np.arange(n_frames)[None, :]
    return np.ascontiguousarray(spec[index], dtype=np.float32)


def file_patches(path, step=None):
    """Non-overlapping (or ``step``-frame apart) 3 s patches of an audio file: (n, 187, 96) float32.

    AudioError naming ``path`` when it cannot be decoded or is shorter than one patch (3 s).
    """
    from .audio.decode import load_audio

    spec = log_mel(load_audio(path, SR))
    patches = cut_patches(spec, N_FRAMES, step)
    if patches.shape[0] == 0:
        raise AudioError(f"{path}: {spec.shape[0]} frames ({spec.shape[0] * HOP / SR:.2f} s), shorter than one "
                         f"{N_FRAMES}-frame patch (3 s)")
    return patches
