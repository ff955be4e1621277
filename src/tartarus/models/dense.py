"""Dense models over one vector input: architectures 3 and 6.

Both take one input of shape ``(n_features,)``: tf-idf rows (densified per batch by the feeder),
precomputed embeddings (``X_*_model_N-pred_L_*``) or any other vector features. Like the seed's
functional models, they count their input layer in ``-l`` indices (``index_counts_inputs``), and the
seed's output Dense carried its activation, so ``logits`` has no index (``head_activation_inside``;
``-l logits`` still works by name). ``n_dense`` / ``n_dense_2`` = 0 means no such layer.

**Architecture 3** (the seed's ``get_model_3``, text VSM and feature MLP) -- input dropout, up to
two hidden dense layers, each followed by dropout, then the shared head::

    0 input_1                         the vectors
    1 dropout_input                   Dropout(dropout_factor)
    2 dense_1                         Dense(n_dense, relu)       when n_dense > 0
    3 dropout_1                       Dropout(dropout_factor)    when n_dense > 0
    4 dense_2                         Dense(n_dense_2, relu)     when n_dense_2 > 0
    5 dropout_2                       Dropout(dropout_factor)    when n_dense_2 > 0
    - logits                          Dense(n_out)               (no index: the seed's Dense held the activation)
    6 output                          Activation(final_activation)
    7 l2_normalize                    when final_activation is linear

With both hidden layers (e.g. ``n_dense = 256, n_dense_2 = 128``), ``-l 5`` is the last hidden
representation (the relu output of ``dense_2``; dropout is the identity at prediction), as in the
seed's README. In general the last hidden representation is index ``2 * h + 1`` for ``h`` hidden
layers (``-l 3`` with one), and the names ``dense_1``/``dense_2`` always work.

**Architecture 6** (the seed's ``get_model_6``, AcousticBrainz feature vectors) -- three parallel
Dense branches of ``n_dense`` units over the raw input (no input dropout), with relu, tanh and
sigmoid activations, concatenated, dropout; then an optional Dense(``n_dense_2``, relu) and dropout;
the head::

    0 input_1
    1 branch_relu    2 branch_tanh    3 branch_sigmoid    Dense(n_dense, ...)   when n_dense > 0
    4 concat         5 dropout_branches                                         when n_dense > 0
    6 dense_2        7 dropout_2                          Dense(n_dense_2, relu) when n_dense_2 > 0
    8 output         9 l2_normalize (linear head only)    (``logits`` not counted)

``n_dense = 0`` leaves the branches out (the seed's code then failed; here the input goes on to
``dense_2`` or the head).
"""

from __future__ import annotations

import keras
from keras import layers

from ..config.families import VectorMlpConfig
from .blocks import kernel_init, model_name, output_head, vector_inputs


def build_dense(config: VectorMlpConfig, input_shapes, n_out):
    """Build architecture 3: dropout on the input, up to two hidden relu layers, the head.

    config : VectorMlpConfig; input_shapes : [(n_features,)]; n_out : output size.
    """
    (inputs,) = vector_inputs(input_shapes, "3", 1)
    x = layers.Dropout(config.dropout_factor, name="dropout_input")(inputs)
    for i, units in config.hidden_units():
        x = layers.Dense(units, activation="relu", kernel_initializer=kernel_init(config.init), name=f"dense_{i}")(x)
        x = layers.Dropout(config.dropout_factor, name=f"dropout_{i}")(x)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("3"))


BRANCH_ACTIVATIONS = ("relu", "tanh", "sigmoid")  # architecture 6, as the seed's get_model_6


def build_branches(config: VectorMlpConfig, input_shapes, n_out):
    """Build architecture 6: Dense(n_dense) branches with relu, tanh and sigmoid, concatenated, dropout,
    an optional Dense(n_dense_2, relu) and dropout, the head; no dropout on the input.

    config : VectorMlpConfig; input_shapes : [(n_features,)]; n_out : output size.
    """
    (inputs,) = vector_inputs(input_shapes, "6", 1)
    x = inputs
    if config.n_dense > 0:
        branches = [layers.Dense(config.n_dense, activation=act, kernel_initializer=kernel_init(config.init),
                                 name=f"branch_{act}")(inputs) for act in BRANCH_ACTIVATIONS]
        x = layers.Concatenate(name="concat")(branches)
        x = layers.Dropout(config.dropout_factor, name="dropout_branches")(x)
    if config.n_dense_2 > 0:
        x = layers.Dense(config.n_dense_2, activation="relu", kernel_initializer=kernel_init(config.init),
                         name="dense_2")(x)
        x = layers.Dropout(config.dropout_factor, name="dropout_2")(x)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("6"))
