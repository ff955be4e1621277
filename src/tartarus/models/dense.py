"""Dense models over one vector input: architectures 3 and 6.

Both take one input of shape ``(n_features,)``: tf-idf rows (densified per batch by the feeder),
precomputed embeddings (``X_*_model_N-pred_L_*``) or any other vector features. Like the seed's
functional models, they count their input layer in ``-l`` indices (``index_counts_inputs``).

**Architecture 3** (the seed's text VSM model) -- input dropout, up to two hidden dense layers,
each followed by dropout, then the shared head::

    0 input_1                         the vectors
    1 dropout_input                   Dropout(dropout_factor)
    2 dense_1                         Dense(n_dense, relu)       when n_dense > 0
    3 dropout_1                       Dropout(dropout_factor)    when n_dense > 0
    4 dense_2                         Dense(n_dense_2, relu)     when n_dense_2 > 0
    5 dropout_2                       Dropout(dropout_factor)    when n_dense_2 > 0
    6 logits                          Dense(n_out)
    7 output                          Activation(final_activation)
    8 l2_normalize                    when final_activation is linear

With both hidden layers (e.g. ``n_dense = 256, n_dense_2 = 128``), ``-l 5`` is the last hidden
representation (the relu output of ``dense_2``; dropout is the identity at prediction), as in the
seed. In general the last hidden representation is index ``2 * h + 1`` for ``h`` hidden layers
(``-l 3`` with one), and the names ``dense_1``/``dense_2`` always work.

**Architecture 6** -- parallel dense branches of different widths over the same input::

    0 input_1
    1 dropout_input                   Dropout(dropout_factor)
    2 .. b+1  branch_1 .. branch_b    Dense(branch_dims[i], relu), b = len(branch_dims)
    b+2 concat                        when b > 1
    then dropout_branches, logits, output[, l2_normalize]

With a single entry in ``branch_dims`` it is the seed's plain one-hidden-layer MLP on features.
"""

from __future__ import annotations

import keras
from keras import layers

from ..errors import ConfigError
from .audio_cnn import model_name, output_head


def check_n_inputs(input_shapes, arch_id, n):
    """Raise ConfigError unless there are exactly ``n`` input shapes."""
    if len(input_shapes) != n:
        raise ConfigError(f"cnn.architecture {arch_id} takes {n} input{'s' if n != 1 else ''}, "
                          f"got {len(input_shapes)}")


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


def build_dense(cnn, input_shapes, n_out, **_):
    """Build architecture 3: dropout on the input, up to two hidden relu layers, the head."""
    (inputs,) = vector_inputs(input_shapes, "3", 1)
    x = layers.Dropout(cnn.dropout_factor, name="dropout_input")(inputs)
    for i, units in enumerate((cnn.n_dense, cnn.n_dense_2), 1):
        if units and units > 0:
            x = layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
            x = layers.Dropout(cnn.dropout_factor, name=f"dropout_{i}")(x)
    outputs = output_head(x, n_out, cnn.final_activation)
    return keras.Model(inputs, outputs, name=model_name("3"))


def build_branches(cnn, input_shapes, n_out, **_):
    """Build architecture 6: parallel Dense(relu) branches of widths ``branch_dims``, concatenated."""
    (inputs,) = vector_inputs(input_shapes, "6", 1)
    dims = tuple(cnn.branch_dims)
    if not dims or any(d <= 0 for d in dims):
        raise ConfigError(f"cnn.branch_dims: expected one or more positive widths, got {list(dims)}")
    x = layers.Dropout(cnn.dropout_factor, name="dropout_input")(inputs)
    branches = [layers.Dense(d, activation="relu", name=f"branch_{i}")(x) for i, d in enumerate(dims, 1)]
    x = layers.Concatenate(name="concat")(branches) if len(branches) > 1 else branches[0]
    x = layers.Dropout(cnn.dropout_factor, name="dropout_branches")(x)
    outputs = output_head(x, n_out, cnn.final_activation)
    return keras.Model(inputs, outputs, name=model_name("6"))
