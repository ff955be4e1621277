"""What the architecture families share: model naming, input checks, kernel initialisation, the
seed's convolution block and hidden dense layers, the output head, and the embedding size.

Every function builds ``keras.layers`` on Keras tensors or checks shapes; none reads a config
section as a whole: each takes the values it uses as named parameters.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..errors import ConfigError
from .layers import L2Normalize

# cnn.init: "glorot_uniform" (Keras' default) or "uniform", the seed's init="uniform" (Keras 1's
# and 2's RandomUniform): U(-0.05, 0.05) for the kernels the seed initialised that way; biases
# start at 0 either way
SEED_UNIFORM_LIMIT = 0.05


def model_name(arch_id):
    """Models are named after their architecture, so a loaded model knows its layer numbering."""
    return f"tartarus_arch_{arch_id}"


def kernel_init(init):
    """The kernel initialiser that ``cnn.init`` names: a fresh Keras initializer per call."""
    if init == "uniform":
        return keras.initializers.RandomUniform(-SEED_UNIFORM_LIMIT, SEED_UNIFORM_LIMIT)
    if init == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    raise ConfigError(f"cnn.init: expected 'glorot_uniform' or 'uniform', got {init!r}")


# ----------------------------------------------------------------------------- input checks
def single_input(input_shapes, arch_id):
    """The one input shape of a single-input architecture; ConfigError naming the count otherwise."""
    if len(input_shapes) != 1:
        raise ConfigError(f"cnn.architecture {arch_id} takes one input, got {len(input_shapes)}")
    return tuple(input_shapes[0])


def check_n_inputs(input_shapes, arch_id, n):
    """Raise ConfigError unless there are exactly ``n`` input shapes."""
    if len(input_shapes) != n:
        raise ConfigError(f"cnn.architecture {arch_id} takes {n} input{'s' if n != 1 else ''}, "
                          f"got {len(input_shapes)}")


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


def patch_input(shape, arch_id, name="patches"):
    """A ``(frames, bins, 1)`` input named ``name``, after checking the shape (``check_patch_shape``)."""
    return keras.Input(shape=check_patch_shape(shape, arch_id, which=f"input {name!r}"), name=name)


def vector_inputs(input_shapes, arch_id, n):
    """``n`` named vector inputs ``input_1 .. input_n``, after checking count and rank."""
    check_n_inputs(input_shapes, arch_id, n)
    inputs = []
    for i, shape in enumerate(input_shapes, 1):
        if len(shape) != 1:
            raise ConfigError(f"cnn.architecture {arch_id}: input {i} must be vectors (one axis), "
                              f"got shape {tuple(shape)}")
        inputs.append(keras.Input(shape=tuple(shape), name=f"input_{i}"))
    return inputs


def sequence_length(input_shapes, arch_id, configured):
    """The word-id sequence length of a single-input text model: the input's, or ``configured``
    (``cnn.sequence_length``) when the input leaves it open (None)."""
    check_n_inputs(input_shapes, arch_id, 1)
    shape = tuple(input_shapes[0])
    if len(shape) != 1:
        raise ConfigError(f"cnn.architecture {arch_id}: input must be word-id sequences (one axis), got shape {shape}")
    return shape[0] if shape[0] is not None else configured


def embedding_size(embedding, embedding_dim, vocab_size, arch_id):
    """(vocab, dim) of the Embedding layer: the word2vec matrix's, or ``vocab_size`` x ``embedding_dim``.

    embedding : None or a (vocab, dim) array, whose dim must be ``embedding_dim`` (cnn.embedding_dim).
    """
    if embedding is not None:
        embedding = np.asarray(embedding)
        if embedding.ndim != 2:
            raise ConfigError(f"embedding matrix must be 2-D (vocab, dim), got shape {embedding.shape}")
        if embedding.shape[1] != embedding_dim:
            raise ConfigError(f"embedding matrix has dim {embedding.shape[1]} but cnn.embedding_dim is "
                              f"{embedding_dim}")
        return embedding.shape[0], embedding.shape[1]
    if not vocab_size or vocab_size <= 0:
        raise ConfigError(f"cnn.vocab_size: must be > 0 when no embedding matrix is given "
                          f"(cnn.architecture {arch_id}, random embedding)")
    return vocab_size, embedding_dim


# ------------------------------------------------------------------------------ layer groups
def clip_to(size, x):
    """A ``(frames, bins)`` kernel or pool no larger than the feature map ``x`` (batch, t, f, c)."""
    return (max(1, min(int(size[0]), x.shape[1])), max(1, min(int(size[1]), x.shape[2])))


def conv_block(x, i, filters, kernel, pool, activation, dropout, batch_norm=False, init="glorot_uniform"):
    """One Conv2D(valid) -> [BN] -> activation -> max-pool -> dropout block; layer names end with ``_{i}``.

    (batch, t, f, c) -> (batch, t', f', filters); ``pool`` is clipped to the map left after the
    convolution; ``init`` is a Keras initializer or its name.
    """
    x = layers.Conv2D(filters, tuple(kernel), padding="valid", kernel_initializer=init, name=f"conv_{i}")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
    x = layers.Activation(activation, name=f"act_{i}")(x)
    pool = (min(pool[0], x.shape[1]), min(pool[1], x.shape[2]))
    x = layers.MaxPooling2D(pool, name=f"pool_{i}")(x)
    return layers.Dropout(dropout, name=f"dropout_{i}")(x)


def seed_hidden_dense(x, hidden_units, activation, dropout, init):
    """Hidden layers of the seed's Sequential models: ``fc_i`` (Dense), ``dense_i`` (activation),
    ``dropout_dense_i``, for each ``(i, units)`` of ``hidden_units`` (``config.hidden_units()``).

    ``dense_i`` is the activated hidden representation; ``init`` is ``cnn.init``.
    """
    for i, units in hidden_units:
        x = layers.Dense(units, kernel_initializer=kernel_init(init), name=f"fc_{i}")(x)
        x = layers.Activation(activation, name=f"dense_{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout_dense_{i}")(x)
    return x


def output_head(x, n_out, final_activation, kernel_initializer="glorot_uniform"):
    """Output dense layer named ``logits``, its activation ``output``; L2-normalised if linear."""
    x = layers.Dense(n_out, kernel_initializer=kernel_initializer, name="logits")(x)
    x = layers.Activation(final_activation, name="output")(x)
    if final_activation == "linear":
        x = L2Normalize(name="l2_normalize")(x)
    return x
