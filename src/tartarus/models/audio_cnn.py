"""Architecture 1: the seed's audio CNN over spectrogram patches.

Blocks of Conv2D -> activation -> max-pool -> dropout (2 to 5 blocks: a block whose
``n_filters_i`` is 0 is left out), flatten, an optional hidden dense layer, then the output dense
layer and its activation; a linear head is followed by L2 normalisation, as in the seed.

Layer indices (inputs and input scaling not counted) keep the seed's meaning: with two blocks
and no hidden dense layer, index 8 is the flattened features and index 9 the output dense layer
before its activation, so ``-l 9`` gives the pre-softmax output.
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import L2Normalize, Standardize


def model_name(arch_id):
    """Models are named after their architecture, so a loaded model knows its layer numbering."""
    return f"tartarus_arch_{arch_id}"


def single_input(input_shapes, arch_id):
    from ..errors import ConfigError
    if len(input_shapes) != 1:
        raise ConfigError(f"cnn.architecture {arch_id} takes one input, got {len(input_shapes)}")
    return tuple(input_shapes[0])


def conv_block(x, i, filters, kernel, pool, activation, dropout, batch_norm=False):
    """One Conv2D -> [BN] -> activation -> max-pool -> dropout block; layer names end with ``_{i}``."""
    x = layers.Conv2D(filters, tuple(kernel), padding="valid", kernel_initializer="glorot_uniform",
                      name=f"conv_{i}")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
    x = layers.Activation(activation, name=f"act_{i}")(x)
    pool = (min(pool[0], x.shape[1]), min(pool[1], x.shape[2]))
    x = layers.MaxPooling2D(pool, name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def output_head(x, n_out, final_activation):
    """Output dense layer named ``logits``, its activation ``output``; L2-normalised if linear."""
    x = layers.Dense(n_out, name="logits")(x)
    x = layers.Activation(final_activation, name="output")(x)
    if final_activation == "linear":
        x = L2Normalize(name="l2_normalize")(x)
    return x


def build_audio_cnn(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
    """Build architecture 1.

    cnn : CnnSection; input_shapes : [(frames, bins, 1)]; n_out : output size;
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    input_shape = single_input(input_shapes, "1")
    bins = input_shape[1]
    inputs = keras.Input(shape=tuple(input_shape), name="patches")
    x = Standardize(*input_stats, name="standardize")(inputs)
    for i in range(1, 6):
        filters = getattr(cnn, f"n_filters_{i}")
        if not filters:
            continue
        kernel = list(getattr(cnn, f"n_kernel_{i}"))
        if i == 1:  # the seed's (4, 96) kernel spans all bins; keep that meaning for other bin counts
            kernel[1] = min(kernel[1], bins)
        kernel = (min(kernel[0], x.shape[1]), min(kernel[1], x.shape[2]))
        x = conv_block(x, i, filters, kernel, getattr(cnn, f"n_pool_{i}"), cnn.activation,
                       cnn.dropout_factor, cnn.batch_norm)
    x = layers.Flatten(name="flat")(x)
    if cnn.n_dense:
        x = layers.Dense(cnn.n_dense, activation=cnn.activation, name="dense_1")(x)
        x = layers.Dropout(cnn.dropout_factor, name="dropout_dense_1")(x)
    outputs = output_head(x, n_out, cnn.final_activation)
    return keras.Model(inputs, outputs, name=model_name("1"))
