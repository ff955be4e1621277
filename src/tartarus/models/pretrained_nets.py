"""The published musicnn taggers and their VGG baselines (Pons and Serra 2019) as Keras 3 graphs.

These are the exact networks of the ``musicnn`` 0.1.0 release, so that its trained weights
(:mod:`tartarus.pretrained` converts them) give the same taggrams; architecture 61
(:mod:`.taggers`) is our trainable re-design of musicnn and differs from it (no biases, batch norm
before the activation, a Standardize input). Everything here is standard Keras layers, so a model
runs on TensorFlow, JAX and PyTorch and reloads in safe mode.

Input ``patches``: ``(batch, 187, 96)`` float32, musicnn's log-mel (:func:`tartarus.pretrained.log_mel`):
187 frames of 16 ms (3 s at 16 kHz, hop 256) by 96 mel bands. Output ``taggram``: ``(batch, 50)``
sigmoid tag probabilities. Batch norm keeps TensorFlow 1's defaults (epsilon 1e-3), which is also
Keras'; every convolution has a bias and a ReLU *before* its batch norm, as in the release.

**musicnn** (``MTT_musicnn``, ``MSD_musicnn``): a batch norm of the input, then

- a front end of five branches, each conv -> ReLU -> batch norm -> max over the frequency axis:
  two timbral ones (204 filters, 7 frames by 38 and by 67 bands, i.e. 40 % and 70 % of 96; the time
  axis zero-padded by 3 on each side) and three temporal ones (51 filters, 128, 64 and 32 frames by 1
  band, "same" padding in time as TensorFlow pads it: the extra frame of an even kernel goes after);
  ``timbral`` (b, 187, 408) and ``temporal`` (b, 187, 153) are their concatenations;
- a mid end of three 1-D convolutions over time (64 filters of 7 frames over all channels, ReLU,
  batch norm), the second and third with residual connections: ``cnn1``, ``cnn2``, ``cnn3``
  (b, 187, 64); the front end and the three outputs are concatenated: (b, 187, 753);
- a back end: the maximum and the mean over time (``max_pool``, ``mean_pool``: (b, 753)), interleaved
  per channel as the release flattens its (753, 2) pair (max, mean, max, mean, ...), batch norm,
  dropout 0.5, Dense(200) with ReLU and batch norm (``penultimate``), dropout 0.5, Dense(50)
  (``logits``) and the sigmoid (``taggram``).

**VGG** (``MTT_vgg``, ``MSD_vgg``): a batch norm of the input, then five blocks of 3x3 conv (128
filters, "same") -> ReLU -> batch norm -> max-pool (4x1 with stride 2x2, then 2x2 three times, then
4x4; "valid") and dropout 0.25 between blocks: ``pool1`` (b, 92, 48, 128), ``pool2`` (b, 46, 24, 128),
``pool3`` (b, 23, 12, 128), ``pool4`` (b, 11, 6, 128), ``pool5`` flattened (b, 256); dropout 0.5,
Dense(50) (``logits``) and the sigmoid (``taggram``).

:data:`CHECKPOINT_NAMES` maps each layer to the variable scope the release's TensorFlow 1 graph
gave it (``conv2d_N`` and ``batch_normalization_N`` count up in the order the layers were created).
"""

from __future__ import annotations

import keras
from keras import layers

N_FRAMES = 187  # 3 s at 16 kHz with hop 256 (librosa.time_to_frames(3, ...) + 1)
N_MELS = 96
N_TAGS = 50

TIMBRAL = (("timbral_74", 38), ("timbral_77", 67))  # (name, bands): int(0.4 * 96), int(0.7 * 96)
TEMPORAL = (("temporal_128", 128), ("temporal_64", 64), ("temporal_32", 32))  # (name, frames)
TIMBRAL_FILTERS = 204  # int(1.6 * 128)
TEMPORAL_FILTERS = 51  # int(1.6 * 32)
MID_FILTERS = 64
MID_WIDTH = 7
DENSE_UNITS = 200
VGG_FILTERS = 128
VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

MUSICNN_LAYERS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate",
                  "logits", "taggram")
VGG_LAYERS = ("pool1", "pool2", "pool3", "pool4", "pool5", "logits", "taggram")


def _conv_relu_bn(x, name, filters, kernel, padding="valid"):
    """Conv2D with bias and ReLU, then batch norm (``name``, ``name_bn``), as the release's blocks."""
    x = layers.Conv2D(filters, kernel, padding=padding, activation="relu", name=name)(x)
    return layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)


def _frequency_max(x, name):
    """Max over all remaining bands: (b, t, f, c) -> (b, t, c)."""
    frames, bands, channels = x.shape[1:]
    x = layers.MaxPooling2D((1, bands), name=f"{name}_pool")(x)
    return layers.Reshape((frames, channels), name=f"{name}_frames")(x)


def _dropout(rate, name, dropout):
    """The release's dropout, or (``dropout=False``) an Identity of the same name."""
    return layers.Dropout(rate, name=name) if dropout else layers.Identity(name=name)


def _input_bn(x, n_frames):
    x = layers.Reshape((n_frames, N_MELS, 1), name="patches_2d")(x)
    return layers.BatchNormalization(epsilon=1e-3, name="input_bn")(x)


def _tag_head(x):
    logits = layers.Dense(N_TAGS, name="logits")(x)
    return layers.Activation("sigmoid", name="taggram")(logits)


def musicnn_graph(x, n_frames=N_FRAMES, dropout=True):
    """The release's musicnn layers (module docstring) applied to ``x`` (b, n_frames, 96): the taggram tensor.

    Every layer keeps the release's name, so a model over ``x`` and any named layer's output (a
    cut for transfer) gets the weights by name. ``dropout=False`` puts Identity layers in place of
    the dropout (a frozen front end computes the same features in training and inference).
    """
    x = _input_bn(x, n_frames)
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="timbral_pad")(x)
    timbral = [_frequency_max(_conv_relu_bn(padded, n, TIMBRAL_FILTERS, (7, bands)), n) for n, bands in TIMBRAL]
    temporal = []
    for n, length in TEMPORAL:
        # TensorFlow's "same": (length - 1) // 2 frames before, the rest after (explicit, so every
        # backend pads an even kernel alike)
        y = layers.ZeroPadding2D((((length - 1) // 2, length // 2), (0, 0)), name=f"{n}_pad")(x)
        temporal.append(_frequency_max(_conv_relu_bn(y, n, TEMPORAL_FILTERS, (length, 1)), n))
    timbral = layers.Concatenate(name="timbral")(timbral)
    temporal = layers.Concatenate(name="temporal")(temporal)
    front = layers.Concatenate(name="front_end")([timbral, temporal])  # (b, t, 561)

    mids, y = [], front
    for k in (1, 2, 3):
        z = layers.ZeroPadding1D(MID_WIDTH // 2, name=f"mid_{k}_pad")(y)
        z = layers.Conv1D(MID_FILTERS, MID_WIDTH, activation="relu", name=f"mid_{k}")(z)
        z = layers.BatchNormalization(epsilon=1e-3, name="cnn1" if k == 1 else f"mid_{k}_bn")(z)
        if k > 1:
            z = layers.Add(name=f"cnn{k}")([z, y])
        mids.append(z)
        y = z
    mid = layers.Concatenate(name="mid_end")([front] + mids)  # (b, t, 753)

    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(mid)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(mid)
    channels = mid.shape[-1]
    pairs = layers.Concatenate(name="pooled_pairs")([layers.Reshape((channels, 1), name="max_pool_col")(max_pool),
                                                     layers.Reshape((channels, 1), name="mean_pool_col")(mean_pool)])
    x = layers.Flatten(name="pooled")(pairs)  # max, mean, max, mean, ... as the release's flatten
    x = layers.BatchNormalization(epsilon=1e-3, name="pooled_bn")(x)
    x = _dropout(0.5, "pooled_dropout", dropout)(x)
    x = layers.Dense(DENSE_UNITS, activation="relu", name="dense")(x)
    x = layers.BatchNormalization(epsilon=1e-3, name="penultimate")(x)
    x = _dropout(0.5, "penultimate_dropout", dropout)(x)
    return _tag_head(x)


def vgg_graph(x, dropout=True):
    """The release's VGG layers (module docstring) applied to ``x`` (b, 187, 96): the taggram tensor
    (names and ``dropout`` as :func:`musicnn_graph`)."""
    x = _input_bn(x, N_FRAMES)
    for k, (pool, strides) in enumerate(VGG_POOLS, 1):
        if k > 1:
            x = _dropout(0.25, f"pool{k - 1}_dropout", dropout)(x)
        x = _conv_relu_bn(x, f"conv{k}", VGG_FILTERS, (3, 3), padding="same")
        x = layers.MaxPooling2D(pool, strides=strides, name=f"pool{k}" if k < 5 else "pool5_2d")(x)
    x = layers.Flatten(name="pool5")(x)
    x = _dropout(0.5, "pool5_dropout", dropout)(x)
    return _tag_head(x)


GRAPHS = {"musicnn": musicnn_graph, "vgg": vgg_graph}
"""family -> the function applying its layers to a (b, 187, 96) tensor."""


def build_musicnn_net(name="musicnn", n_frames=N_FRAMES):
    """The release's musicnn: ``patches`` (b, n_frames, 96) -> ``taggram`` (b, 50).

    ``n_frames`` : patch length in frames (187 = 3 s, what the models were trained on; musicnn
    accepts other lengths, the VGG does not).
    """
    inputs = keras.Input(shape=(n_frames, N_MELS), name="patches")
    return keras.Model(inputs, musicnn_graph(inputs, n_frames), name=name)


def build_vgg_net(name="vgg"):
    """The release's VGG baseline: ``patches`` (b, 187, 96) -> ``taggram`` (b, 50)."""
    inputs = keras.Input(shape=(N_FRAMES, N_MELS), name="patches")
    return keras.Model(inputs, vgg_graph(inputs), name=name)


def _musicnn_checkpoint_names():
    bn = ["input_bn"] + [f"{n}_bn" for n, _ in TIMBRAL + TEMPORAL] + ["cnn1", "mid_2_bn", "mid_3_bn",
                                                                     "pooled_bn", "penultimate"]
    conv = [n for n, _ in TIMBRAL + TEMPORAL] + ["mid_1", "mid_2", "mid_3"]
    names = {layer: "batch_normalization" + (f"_{i}" if i else "") for i, layer in enumerate(bn)}
    names.update({layer: "conv2d" + (f"_{i}" if i else "") for i, layer in enumerate(conv)})
    names.update({"dense": "dense", "logits": "dense_1"})
    return names


def _vgg_checkpoint_names():
    names = {"input_bn": "batch_normalization"}
    for k in range(1, 6):
        names[f"conv{k}"] = f"{k}CNN"
        names[f"conv{k}_bn"] = f"batch_normalization_{k}"
    names["logits"] = "dense"
    return names


CHECKPOINT_NAMES = {"musicnn": _musicnn_checkpoint_names(), "vgg": _vgg_checkpoint_names()}
"""family -> {Keras layer name: the release's TensorFlow variable scope}."""
