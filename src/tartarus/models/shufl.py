"""Architecture 51: the shufl audio CNN, in the style of Dieleman and Schrauwen (2014).

The input patch ``(frames, bins, 1)`` (e.g. 599 x 128 x 1 log-mel for MagnaTagATune) is scaled by a
``Standardize`` layer with the training set's statistics, then its channel axis is dropped: the
mel bins become the channels of one-dimensional convolutions over time. Then:

- conv blocks ``i = 1 .. 5``, present when ``n_filters_i > 0``: Conv1D(``n_filters_i``, filter
  length ``n_kernel_i[0]``, valid padding) spanning all bins, [BatchNormalization when
  ``batch_norm``], activation (``activation``, relu), and MaxPooling1D over time of
  ``n_pool_i[0]`` when that is > 1. The second elements of ``n_kernel_i`` / ``n_pool_i`` are
  ignored (there is no frequency axis); filter lengths and pools are clipped to the sequence left;
- global mean and global max pooling over time, concatenated (``pooled``);
- two Dense layers (``activation``, relu) of ``n_dense`` and ``n_dense_2`` units (2048 when 0), each followed by
  Dropout(``dropout_factor``);
- the shared head: ``logits``, ``output`` (``final_activation``) and, for a linear head, L2
  normalisation, as used for cosine regression to doc2vec tag vectors.

The ``shufl`` experiment sets the paper's sizes: filter length 4 everywhere, 256 / 256 / 512 / 512
filters, pooling 4 / 2 / 2 after the first three blocks (``n_pool_4 = [1, 1]``: none after the
last), 2048 / 2048 dense units. CnnSection's own defaults are architecture 1's (256 / 512 filters,
two blocks), so state the four blocks when using architecture 51 elsewhere.

Deliberate differences from the original shufl code: there is no softmax hidden layer, and there is
no log compression inside the model, since tartarus spectrograms are already in dB (``log = true``).

Layer indices (``predict -l``; the input and the Standardize layer are not counted), with four
blocks, pools after the first three and ``batch_norm = false``::

    0 frames                 Reshape (frames, bins, 1) -> (frames, bins)
    1 conv_1   2 act_1   3 pool_1
    4 conv_2   5 act_2   6 pool_2
    7 conv_3   8 act_3   9 pool_3
    10 conv_4  11 act_4
    12 global_mean           (batch, n_filters_4)
    13 global_max            (batch, n_filters_4)
    14 pooled                (batch, 2 * n_filters_4): the clip-level audio features
    15 dense_1   16 dropout_dense_1
    17 dense_2   18 dropout_dense_2   the last hidden representation (relu, 2048-d)
    19 logits    20 output   21 l2_normalize (linear head only)

Indices shift with ``batch_norm`` (``bn_i`` after each ``conv_i``) or other block settings; the
names (``-l pooled``, ``-l dense_2``) always work.
"""

from __future__ import annotations

import keras
from keras import layers

from ..errors import ConfigError
from .audio_cnn import model_name, output_head, single_input
from .layers import Standardize

ARCH_ID = "51"
DEFAULT_DENSE = 2048


def patch_input_shape(input_shapes):
    """The single ``(frames, bins, 1)`` input shape, checked."""
    shape = single_input(input_shapes, ARCH_ID)
    if len(shape) != 3 or shape[2] != 1:
        raise ConfigError(f"cnn.architecture {ARCH_ID} takes (frames, bins, 1) patches, got shape {shape}")
    return shape


def conv1d_block(x, i, filters, length, pool, activation, batch_norm=False):
    """Conv1D -> [BN] -> activation -> [max-pool over time]; (batch, t, c) -> (batch, t', filters)."""
    x = layers.Conv1D(filters, min(length, x.shape[1]), padding="valid", kernel_initializer="glorot_uniform",
                      name=f"conv_{i}")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
    x = layers.Activation(activation, name=f"act_{i}")(x)
    pool = min(pool, x.shape[1])
    if pool > 1:
        x = layers.MaxPooling1D(pool, name=f"pool_{i}")(x)
    return x


def global_pooling(x):
    """Mean and max over time, concatenated: (batch, t, c) -> (batch, 2c), layer ``pooled``."""
    mean = layers.GlobalAveragePooling1D(name="global_mean")(x)
    peak = layers.GlobalMaxPooling1D(name="global_max")(x)
    return layers.Concatenate(name="pooled")([mean, peak])


def dense_block(x, i, units, activation, dropout):
    """Dense(units, activation) named ``dense_{i}``, then its dropout ``dropout_dense_{i}``."""
    x = layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_dense_{i}")(x)


def build_shufl_cnn(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
    """Build architecture 51.

    cnn : CnnSection; input_shapes : [(frames, bins, 1)]; n_out : output size (e.g. 40 doc2vec dims);
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    frames, bins, _ = patch_input_shape(input_shapes)
    inputs = keras.Input(shape=(frames, bins, 1), name="patches")
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = layers.Reshape((frames, bins), name="frames")(x)
    blocks = [i for i in range(1, 6) if getattr(cnn, f"n_filters_{i}") > 0]
    if not blocks:
        raise ConfigError(f"cnn.architecture {ARCH_ID}: no convolution (every cnn.n_filters_i is 0)")
    for i in blocks:
        x = conv1d_block(x, i, getattr(cnn, f"n_filters_{i}"), getattr(cnn, f"n_kernel_{i}")[0],
                         getattr(cnn, f"n_pool_{i}")[0], cnn.activation, cnn.batch_norm)
    x = global_pooling(x)
    for i, units in enumerate((cnn.n_dense, cnn.n_dense_2), 1):
        x = dense_block(x, i, units or DEFAULT_DENSE, cnn.activation, cnn.dropout_factor)
    outputs = output_head(x, n_out, cnn.final_activation)
    return keras.Model(inputs, outputs, name=model_name(ARCH_ID))
