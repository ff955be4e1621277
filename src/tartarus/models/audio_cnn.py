"""Architecture 1: the seed's audio CNN over spectrogram patches.

Blocks of Conv2D -> activation -> max-pool -> dropout (2 to 5 blocks: a block whose
``n_filters_i`` is 0 is left out), flatten, up to two hidden dense layers, then the output dense
layer and its activation; a linear head is followed by L2 normalisation, as in the seed.

Hidden layers: ``n_dense`` > 0 adds ``fc_1`` (Dense), ``dense_1`` (its activation) and
``dropout_dense_1``, and ``n_dense_2`` > 0 a second such layer (``fc_2``, ``dense_2``,
``dropout_dense_2``); 0 means no layer. The seed's ``n_dense`` = N built two N-unit layers: set
``n_dense = n_dense_2 = N`` for that.

Layer indices (inputs and input scaling not counted) keep the seed's meaning (its Sequential model
listed Dense and Activation as two layers): with two blocks and no hidden dense layer, index 8 is
the flattened features and index 9 the output dense layer before its activation, so ``-l 9``
gives the pre-softmax output.
"""

from __future__ import annotations

import keras
from keras import layers

from ..errors import ConfigError
from .layers import L2Normalize, Standardize

# cnn.init: "glorot_uniform" (Keras' default) or "uniform", the seed's init="uniform" (Keras 1's
# and 2's RandomUniform): U(-0.05, 0.05) for the kernels the seed initialised that way; biases
# start at 0 either way
SEED_UNIFORM_LIMIT = 0.05


def kernel_init(cnn):
    """The kernel initialiser that ``cnn.init`` names: a fresh Keras initializer per call."""
    init = getattr(cnn, "init", "glorot_uniform")
    if init == "uniform":
        return keras.initializers.RandomUniform(-SEED_UNIFORM_LIMIT, SEED_UNIFORM_LIMIT)
    if init == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    raise ConfigError(f"cnn.init: expected 'glorot_uniform' or 'uniform', got {init!r}")


def check_patch_shape(shape, arch_id, which="input"):
    """Raise ConfigError unless ``shape`` (no batch axis) is channels-last ``(frames, bins, 1)``.

    The message names what was expected and what came; a channels-first ``(1, frames, bins)``
    shape (the seed's patch files) and a shape without the channel axis are named as such.
    """
    shape = tuple(shape)
    if len(shape) == 3 and shape[2] == 1:
        return shape
    if len(shape) == 3 and shape[0] == 1:
        why = "channels first (1, frames, bins), as in the seed's patch files; move the channel axis last"
    elif len(shape) == 2:
        why = "(frames, bins) without the channel axis"
    else:
        why = f"rank {len(shape)}" + (f" with {shape[-1]} channels" if len(shape) == 3 else "")
    raise ConfigError(f"cnn.architecture {arch_id} takes (frames, bins, 1) patches (channels last) as its "
                      f"{which}, got shape {shape}: {why}")


def model_name(arch_id):
    """Models are named after their architecture, so a loaded model knows its layer numbering."""
    return f"tartarus_arch_{arch_id}"


def single_input(input_shapes, arch_id):
    if len(input_shapes) != 1:
        raise ConfigError(f"cnn.architecture {arch_id} takes one input, got {len(input_shapes)}")
    return tuple(input_shapes[0])


def conv_block(x, i, filters, kernel, pool, activation, dropout, batch_norm=False, init="glorot_uniform"):
    """One Conv2D -> [BN] -> activation -> max-pool -> dropout block; layer names end with ``_{i}``."""
    x = layers.Conv2D(filters, tuple(kernel), padding="valid", kernel_initializer=init, name=f"conv_{i}")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
    x = layers.Activation(activation, name=f"act_{i}")(x)
    pool = (min(pool[0], x.shape[1]), min(pool[1], x.shape[2]))
    x = layers.MaxPooling2D(pool, name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def seed_hidden_dense(x, cnn):
    """Hidden layers of the seed's Sequential models: ``fc_i`` (Dense), ``dense_i`` (activation),
    ``dropout_dense_i``, for ``i`` = 1 (``n_dense``) and 2 (``n_dense_2``) when > 0.

    ``dense_i`` is the activated hidden representation.
    """
    for i, units in enumerate((cnn.n_dense, cnn.n_dense_2), 1):
        if units and units > 0:
            x = layers.Dense(units, kernel_initializer=kernel_init(cnn), name=f"fc_{i}")(x)
            x = layers.Activation(cnn.activation, name=f"dense_{i}")(x)
            x = layers.Dropout(cnn.dropout_factor, name=f"dropout_dense_{i}")(x)
    return x


def output_head(x, n_out, final_activation, kernel_initializer="glorot_uniform"):
    """Output dense layer named ``logits``, its activation ``output``; L2-normalised if linear."""
    x = layers.Dense(n_out, kernel_initializer=kernel_initializer, name="logits")(x)
    x = layers.Activation(final_activation, name="output")(x)
    if final_activation == "linear":
        x = L2Normalize(name="l2_normalize")(x)
    return x


def build_audio_cnn(cnn, input_shapes, n_out, input_stats=(0.0, 1.0), **_):
    """Build architecture 1.

    cnn : CnnSection; input_shapes : [(frames, bins, 1)]; n_out : output size;
    input_stats : (mean, std) of the training patches, baked into a Standardize layer.
    """
    input_shape = check_patch_shape(single_input(input_shapes, "1"), "1")
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
                       cnn.dropout_factor, cnn.batch_norm, init=kernel_init(cnn))
    x = layers.Flatten(name="flat")(x)
    x = seed_hidden_dense(x, cnn)
    outputs = output_head(x, n_out, cnn.final_activation, kernel_init(cnn))
    return keras.Model(inputs, outputs, name=model_name("1"))
