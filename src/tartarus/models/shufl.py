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
- Dense layers of ``n_dense`` and ``n_dense_2`` units, each followed by Dropout(``dropout_factor``);
  0 leaves that layer out (architecture 51's defaults: 2048 and 2048). Their activations are
  ``dense_activations`` (one a layer), or ``activation`` (relu) for all when that is empty. With
  ``dropout_before_dense`` each dropout is on the input of its dense layer instead, and one more,
  ``dropout_head``, on the input of ``logits`` (shufl's code: dropout before every dense layer);
- the shared head: ``logits``, ``output`` (``final_activation``) and, for a linear head, L2
  normalisation, as used for cosine regression to doc2vec tag vectors.

The ``shufl`` experiment: filter length 4 everywhere, 256 / 256 / 512 / 512 filters, pooling
4 / 2 / 2 after the first three blocks (``n_pool_4 = [1, 1]``: none after the last), two relu
2048-unit layers, a linear L2-normalised head on log-mel input. ``shufl_seed`` is shufl's own code:
256 / 256 / 256 / 512 filters, ``dense_activations = ["softmax", "relu"]`` (its first hidden layer
has a softmax activation), ``dropout_before_dense``, a 40-d ELU output, on linear-power mel.

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

from ..config.families import ShuflConfig
from ..config.schema import ACTIVATIONS
from ..errors import ConfigError
from .blocks import check_patch_shape, model_name, output_head, single_input
from .layers import Standardize

ARCH_ID = "51"


def patch_input_shape(input_shapes):
    """The single ``(frames, bins, 1)`` input shape, checked."""
    return check_patch_shape(single_input(input_shapes, ARCH_ID), ARCH_ID)


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


def dense_block(x, i, units, activation, dropout, before=False):
    """Dense(units, activation) named ``dense_{i}`` and its dropout ``dropout_dense_{i}``, after it, or
    on its input when ``before`` (Lasagne's ``DenseLayer(dropout(x))``, as shufl's code)."""
    if before:
        x = layers.Dropout(dropout, name=f"dropout_dense_{i}")(x)
        return layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
    x = layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_dense_{i}")(x)


def dense_activations(config, n_layers):
    """The activation of each of ``n_layers`` dense layers: ``cnn.dense_activations``, or
    ``cnn.activation`` for all when it is empty (ConfigError on a wrong length or name)."""
    names = tuple(config.dense_activations) or (config.activation,) * n_layers
    if len(names) != n_layers:
        raise ConfigError(f"cnn.dense_activations: architecture {ARCH_ID} has {n_layers} dense layer(s) "
                          f"(n_dense, n_dense_2 > 0), got {len(names)} activation(s) {list(names)}")
    bad = [a for a in names if a not in ACTIVATIONS]
    if bad:
        raise ConfigError(f"cnn.dense_activations: {bad[0]!r} is not one of {', '.join(ACTIVATIONS)}")
    return names


def build_shufl_cnn(config: ShuflConfig, input_shapes, n_out, input_stats=(0.0, 1.0)):
    """Build architecture 51.

    config : ShuflConfig; input_shapes : [(frames, bins, 1)]; n_out : output size (e.g. 40 doc2vec dims);
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    frames, bins, _ = patch_input_shape(input_shapes)
    inputs = keras.Input(shape=(frames, bins, 1), name="patches")
    x = Standardize(*input_stats, name="standardize")(inputs)
    x = layers.Reshape((frames, bins), name="frames")(x)
    blocks = config.conv_blocks()
    if not blocks:
        raise ConfigError(f"cnn.architecture {ARCH_ID}: no convolution (every cnn.n_filters_i is 0)")
    for block in blocks:  # one-dimensional: the frames of each kernel and pool
        x = conv1d_block(x, block.index, block.filters, block.kernel[0], block.pool[0], config.activation,
                         config.batch_norm)
    x = global_pooling(x)
    dense = config.hidden_units()
    for (i, units), activation in zip(dense, dense_activations(config, len(dense))):
        x = dense_block(x, i, units, activation, config.dropout_factor, config.dropout_before_dense)
    if config.dropout_before_dense:  # shufl's output layer has its dropout on its input too
        x = layers.Dropout(config.dropout_factor, name="dropout_head")(x)
    outputs = output_head(x, n_out, config.final_activation)
    return keras.Model(inputs, outputs, name=model_name(ARCH_ID))
