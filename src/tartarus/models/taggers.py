"""Today's strongest spectrogram taggers: musicnn (architecture 61) and the short-chunk ResNet (62).

Both read one patch ``(frames, bins, 1)`` of a log-mel (dB) spectrogram, scale it with a
``Standardize`` layer fed by the training set's statistics (``input_stats``), and end with the shared
head (``logits``, ``output`` with ``final_activation`` and, for a linear head, L2 normalisation).
Batch normalisation is part of both designs and is always on (``cnn.batch_norm`` is not read), with
momentum 0.9 (see the choices under architecture 62).
Every layer has a stable name; ``predict -l NAME`` is the safe way to extract one, since the
indices of the branched model 61 follow Keras' ordering by depth.

**Architecture 61, musicnn** (Pons and Serra 2019, "musicnn: pre-trained convolutional neural
networks for music audio tagging"; Pons et al. 2018, "End-to-end learning for music audio tagging
at scale"):

- a musically motivated front end of parallel branches over the standardised patch, each followed
  by batch normalisation, ReLU and a max-pool over the whole remaining frequency axis, which leaves
  one ``(frames, filters)`` sequence per branch (the time axis keeps its length):

  - timbral: ``n_filters_1`` vertical filters ``n_kernel_1[0]`` frames wide (7 in musicnn),
    spanning 40 % (``timbral_1``) and 70 % (``timbral_2``) of the bins; zero-padded in time;
  - temporal: ``n_filters_2`` horizontal filters one bin high, of ``n_kernel_2[0]``, half and a
    quarter of that many frames (``temporal_1..3``; musicnn's 128 / 64 / 32 frames at hop 256
    and 16 kHz, about 2 / 1 / 0.5 s, are 43 / 22 / 11 frames at our hop 1024 and 22050 Hz; the
    default config has 32 / 16 / 8); all lengths are clipped to the patch's frames;

  concatenated as ``front_end``: ``(frames, 2 n_filters_1 + 3 n_filters_2)``;
- a mid end of three 1-D convolutions over time (``n_filters_3`` filters of length
  ``n_kernel_3[0]``, 7 in musicnn, same padding, batch norm, ReLU), the second and third with
  residual connections (``mid_2_res``, ``mid_3_res``), densely connected: ``mid_end`` is the
  concatenation of ``front_end`` and the three mid-end outputs;
- a back end: temporal mean and max pooling concatenated (``pooled``), batch norm, dropout
  (``dropout_factor``), Dense(``n_dense``) ``dense_1``, batch norm, ReLU (``act_dense_1``, the tag
  embedding) and dropout; then the head.

A part whose filter count is 0 is left out (no timbral or no temporal branch; no mid end);
``n_dense = 0`` leaves out the dense back end (``pooled`` goes, after batch norm and dropout, to the
head), as 0 means no hidden layer in every architecture; musicnn's own size is 200. Sizes: the
published musicnn models have about 200 timbral and 50 temporal filters per shape, a 64-filter
mid end and 200 dense units (the large MSD model 512 and 500); the default config here is
CPU-sized: 16 / 8 / 32 filters, 64 dense units. Layer indices
(``predict -l``; the input and the Standardize layer are not counted) with every part present, for
any patch shape::

    0 timbral_pad   1 timbral_1   2 timbral_2   3 temporal_1   4 temporal_2   5 temporal_3
    6 timbral_1_bn   7 timbral_2_bn   8 temporal_1_bn   9 temporal_2_bn   10 temporal_3_bn
    11 timbral_1_act   12 timbral_2_act   13 temporal_1_act   14 temporal_2_act   15 temporal_3_act
    16 timbral_1_pool  17 timbral_2_pool  18 temporal_1_pool  19 temporal_2_pool  20 temporal_3_pool
    21 timbral_1_frames  22 timbral_2_frames  23 temporal_1_frames  24 temporal_2_frames
    25 temporal_3_frames  26 front_end            (batch, frames, 2 n_filters_1 + 3 n_filters_2)
    27 mid_1  28 mid_1_bn  29 mid_1_act  30 mid_2  31 mid_2_bn  32 mid_2_act  33 mid_2_res
    34 mid_3  35 mid_3_bn  36 mid_3_act  37 mid_3_res
    38 mid_end                                    (batch, frames, front_end + 3 n_filters_3)
    39 global_mean  40 global_max  41 pooled      (batch, 2 x mid_end channels)
    42 pooled_bn  43 pooled_dropout  44 dense_1  45 bn_dense_1
    46 act_dense_1                                (batch, n_dense): the tag embedding
    47 dropout_dense_1  48 logits  49 output

**Architecture 62, short-chunk ResNet** (Won, Ferraro, Bogdanov and Serra 2020, "Evaluation of
CNN-based automatic music tagging models"; "Short-chunk CNN + Res", the strongest MagnaTagATune
tagger of that study: ROC-AUC 0.913 and PR-AUC 0.461 on MagnaTagATune, the source's numbers, not
measured here; it reads 3.69 s chunks of 128-bin mel spectrograms, with 128 base channels):

- seven residual blocks ``res_1 .. res_7``: 3x3 conv, batch norm, ReLU, 3x3 conv, batch norm, plus
  the block's input (through a 1x1 conv and batch norm, ``res_i_proj``, when the width changes),
  ReLU (``res_i_act``), then a 2x2 max-pool ``pool_i`` (clipped to 1 along an axis of length 1,
  so that short or narrow patches build); widths ``n_filters_1`` x (1, 1, 2, 2, 2, 2, 4);
- global max pooling over the remaining time and frequency (``pooled``);
- Dense(``n_dense``; the paper's 512 is 4 x its 128 base channels) ``dense_1``, batch norm, ReLU
  (``act_dense_1``, the embedding), dropout (``dropout_factor``, 0.5 in the paper); then the head.
  ``n_dense = 0`` leaves this dense layer out (``pooled`` goes to the head).

Choices of ours: the shortcut projection is a 1x1 convolution (standard ResNet practice), and batch
norm's moving statistics use momentum 0.9 (PyTorch's default, that of the study's code) rather than
Keras' 0.99, which lags behind the weights over the few hundred steps of a small dataset and made
validation scores meaningless for the first dozens of epochs on the dummy data.

The default config is CPU-sized (``n_filters_1 = 16``: widths 16 .. 64, 64 dense units). Layer
indices, for any patch shape (blocks 1, 3 and 7 change the width and have the projection)::

    0 res_1_conv_a  1 res_1_bn_a  2 res_1_act_a  3 res_1_conv_b  4 res_1_proj  5 res_1_bn_b
    6 res_1_proj_bn  7 res_1_add  8 res_1_act  9 pool_1
    10 res_2_conv_a  11 res_2_bn_a  12 res_2_act_a  13 res_2_conv_b  14 res_2_bn_b  15 res_2_add
    16 res_2_act  17 pool_2
    18 .. 27 block 3 (as block 1)   28 .. 35 block 4   36 .. 43 block 5   44 .. 51 block 6 (as block 2)
    52 .. 61 block 7 (as block 1; 61 pool_7)
    62 pooled                                     (batch, 4 n_filters_1)
    63 dense_1  64 bn_dense_1  65 act_dense_1     (batch, n_dense): the embedding
    66 dropout_dense_1  67 logits  68 output

(tests/test_taggers.py checks these tables against the built models.)
"""

from __future__ import annotations

import keras
from keras import layers

from ..config.families import MusicnnConfig, ShortResConfig
from ..errors import ConfigError
from .blocks import check_patch_shape, model_name, output_head, single_input
from .layers import Standardize
from .shufl import global_pooling

MUSICNN_ID = "61"
SHORTRES_ID = "62"
TIMBRAL_SPANS = (0.4, 0.7)  # vertical filters' heights, as fractions of the bins (musicnn)
TEMPORAL_DIVISORS = (1, 2, 4)  # horizontal filters: n_kernel_2[0] frames, its half, its quarter
MID_LAYERS = 3
RES_WIDTHS = (1, 1, 2, 2, 2, 2, 4)  # multiples of n_filters_1, one per residual block
BN_MOMENTUM = 0.9  # batch norm's moving statistics: PyTorch's default (see the module docstring)


def patch_input(input_shapes, arch_id, input_stats):
    """The ``patches`` input and its Standardize layer: ``(frames, bins, 1)`` checked."""
    shape = check_patch_shape(single_input(input_shapes, arch_id), arch_id)
    inputs = keras.Input(shape=shape, name="patches")
    return inputs, Standardize(*input_stats, name="standardize")(inputs)


def conv_bn_act(x, name, filters, kernel, activation="relu", padding="same"):
    """Conv2D (no bias) -> BN -> activation, named ``name``, ``name_bn``, ``name_act``."""
    x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


# ------------------------------------------------------------------------------ 61: musicnn
def frequency_max(x, name):
    """Max over the whole frequency axis: (batch, t, f, c) -> (batch, t, c)."""
    frames, bins, channels = x.shape[1:]
    x = layers.MaxPooling2D((1, bins), name=f"{name}_pool")(x)
    return layers.Reshape((frames, channels), name=f"{name}_frames")(x)


def timbral_branches(x, filters, width, activation):
    """Vertical filters ``width`` frames wide spanning TIMBRAL_SPANS of the bins: [(batch, t, filters)]."""
    frames, bins = x.shape[1], x.shape[2]
    width = max(1, min(width, frames))
    x = layers.ZeroPadding2D((((width - 1) // 2, width // 2), (0, 0)), name="timbral_pad")(x)
    out = []
    for j, span in enumerate(TIMBRAL_SPANS, 1):
        height = max(1, min(bins, round(span * bins)))
        y = conv_bn_act(x, f"timbral_{j}", filters, (width, height), activation, padding="valid")
        out.append(frequency_max(y, f"timbral_{j}"))
    return out


def temporal_branches(x, filters, longest, activation):
    """Horizontal filters of ``longest`` / 1, 2, 4 frames, one bin high: [(batch, t, filters)]."""
    frames = x.shape[1]
    out = []
    for j, divisor in enumerate(TEMPORAL_DIVISORS, 1):
        length = max(1, min(longest // divisor, frames))
        y = conv_bn_act(x, f"temporal_{j}", filters, (length, 1), activation)
        out.append(frequency_max(y, f"temporal_{j}"))
    return out


def mid_end(x, filters, length, activation):
    """Three Conv1D -> BN -> act over time, residual from the second on, densely concatenated."""
    outputs = [x]
    for k in range(1, MID_LAYERS + 1):
        y = layers.Conv1D(filters, max(1, min(length, x.shape[1])), padding="same", use_bias=False,
                          name=f"mid_{k}")(x)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"mid_{k}_bn")(y)
        y = layers.Activation(activation, name=f"mid_{k}_act")(y)
        if k > 1:
            y = layers.Add(name=f"mid_{k}_res")([x, y])
        outputs.append(y)
        x = y
    return layers.Concatenate(name="mid_end")(outputs)


def dense_back_end(x, units, activation, dropout):
    """Dense (no bias) -> BN -> act (``act_dense_1``, the embedding) -> dropout."""
    x = layers.Dense(units, use_bias=False, name="dense_1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="bn_dense_1")(x)
    x = layers.Activation(activation, name="act_dense_1")(x)
    return layers.Dropout(dropout, name="dropout_dense_1")(x)


def build_musicnn(config: MusicnnConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 61 (musicnn).

    config : MusicnnConfig (n_filters_1/2/3, n_kernel_1/2/3[0], n_dense, dropout_factor, activation);
    input_shapes : [(frames, bins, 1)]; n_out : output size;
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    inputs, x = patch_input(input_shapes, MUSICNN_ID, input_stats)
    if config.n_filters_1 <= 0 and config.n_filters_2 <= 0:
        raise ConfigError(f"cnn.architecture {MUSICNN_ID}: no front end (cnn.n_filters_1 and n_filters_2 are 0)")
    branches = []
    if config.n_filters_1 > 0:
        branches += timbral_branches(x, config.n_filters_1, config.n_kernel_1[0], config.activation)
    if config.n_filters_2 > 0:
        branches += temporal_branches(x, config.n_filters_2, config.n_kernel_2[0], config.activation)
    x = layers.Concatenate(name="front_end")(branches)  # (batch, frames, channels)
    if config.n_filters_3 > 0:
        x = mid_end(x, config.n_filters_3, config.n_kernel_3[0], config.activation)
    x = global_pooling(x)  # global_mean, global_max -> pooled
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="pooled_bn")(x)
    x = layers.Dropout(config.dropout_factor, name="pooled_dropout")(x)
    if config.n_dense > 0:
        x = dense_back_end(x, config.n_dense, config.activation, config.dropout_factor)
    outputs = output_head(x, n_out, config.final_activation)
    return keras.Model(inputs, outputs, name=model_name(MUSICNN_ID))


# ------------------------------------------------------------------ 62: short-chunk ResNet
def residual_block(x, i, filters, activation):
    """3x3 conv-BN-act, 3x3 conv-BN, + shortcut (1x1 conv-BN when the width changes), act, 2x2 max-pool."""
    shortcut = x
    y = layers.Conv2D(filters, (3, 3), padding="same", use_bias=False, name=f"res_{i}_conv_a")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"res_{i}_bn_a")(y)
    y = layers.Activation(activation, name=f"res_{i}_act_a")(y)
    y = layers.Conv2D(filters, (3, 3), padding="same", use_bias=False, name=f"res_{i}_conv_b")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"res_{i}_bn_b")(y)
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, (1, 1), use_bias=False, name=f"res_{i}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"res_{i}_proj_bn")(shortcut)
    y = layers.Add(name=f"res_{i}_add")([y, shortcut])
    y = layers.Activation(activation, name=f"res_{i}_act")(y)
    pool = (min(2, y.shape[1]), min(2, y.shape[2]))
    return layers.MaxPooling2D(pool, name=f"pool_{i}")(y)


def build_short_chunk_resnet(config: ShortResConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 62 (short-chunk CNN with residual blocks).

    config : ShortResConfig (n_filters_1 = base width, n_dense, dropout_factor, activation);
    input_shapes : [(frames, bins, 1)]; n_out : output size;
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    inputs, x = patch_input(input_shapes, SHORTRES_ID, input_stats)
    if config.n_filters_1 <= 0:
        raise ConfigError(f"cnn.architecture {SHORTRES_ID}: cnn.n_filters_1 (the base width) must be > 0")
    for i, multiple in enumerate(RES_WIDTHS, 1):
        x = residual_block(x, i, multiple * config.n_filters_1, config.activation)
    x = layers.GlobalMaxPooling2D(name="pooled")(x)
    if config.n_dense > 0:
        x = dense_back_end(x, config.n_dense, config.activation, config.dropout_factor)
    outputs = output_head(x, n_out, config.final_activation)
    return keras.Model(inputs, outputs, name=model_name(SHORTRES_ID))
