"""Fusion of several vector inputs (e.g. audio and text embeddings): architectures 31 to 34.

Inputs are named ``input_1 .. input_n`` in the order of the experiment's inputs. Like the seed's
functional models (``get_model_31`` .. ``_34``) they count their input layers in ``-l`` indices,
and the seed's output Dense held its activation, so ``logits`` has no index (``-l logits`` works by
name). Keras lists a multi-input model's layers by depth (the seed's Keras did the same), so the
branches interleave (all inputs first, then every branch's first layer, ...). The names work too:
``-l concat`` (or ``dense_1``).

**Architecture 31** -- two inputs, each BatchNormalization -> dropout -> Dense(n_dense, relu) ->
dropout, concatenated, head::

    0 input_1, 1 input_2, 2 bn_1, 3 bn_2, 4 dropout_input_1, 5 dropout_input_2, 6 dense_1, 7 dense_2,
    8 dropout_1, 9 dropout_2, 10 concat, 11 output[, 12 l2_normalize]

(without ``dense_i``/``dropout_i`` when n_dense is 0).

**Architectures 32, 33, 34** -- 2, 3, 4 inputs, each L2-normalised, concatenated, dropout, optional
Dense(n_dense, relu), head::

    0 .. n-1 input_1 .. input_n, n .. 2n-1 l2_input_1 .. l2_input_n, 2n concat, 2n+1 dropout_concat,
    [2n+2 dense_1], output[, l2_normalize]

L2 normalisation makes the output blind to the scale of each input row.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from ..config.families import FusionConfig
from .blocks import kernel_init, model_name, output_head, vector_inputs
from .layers import L2Normalize

L2_FUSION_INPUTS = {"32": 2, "33": 3, "34": 4}


def build_bn_fusion(config: FusionConfig, input_shapes, n_out):
    """Build architecture 31: two batch-normalised dense branches, concatenated.

    config : FusionConfig; input_shapes : [(n_1,), (n_2,)]; n_out : output size.
    """
    inputs = vector_inputs(input_shapes, "31", 2)
    branches = []
    for i, inp in enumerate(inputs, 1):
        x = layers.BatchNormalization(name=f"bn_{i}")(inp)
        x = layers.Dropout(config.dropout_factor, name=f"dropout_input_{i}")(x)
        if config.n_dense > 0:
            x = layers.Dense(config.n_dense, activation="relu", kernel_initializer=kernel_init(config.init),
                             name=f"dense_{i}")(x)
            x = layers.Dropout(config.dropout_factor, name=f"dropout_{i}")(x)
        branches.append(x)
    x = layers.Concatenate(name="concat")(branches)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name("31"))


def build_l2_fusion(config: FusionConfig, input_shapes, n_out):
    """Build architectures 32/33/34 (``config.architecture``): L2-normalised inputs concatenated,
    optional hidden layer, head.

    config : FusionConfig; input_shapes : one (n_i,) per input, 2, 3 or 4 of them; n_out : output size.
    """
    arch_id = str(config.architecture)
    if arch_id not in L2_FUSION_INPUTS:
        raise ValueError(f"no L2 fusion architecture {arch_id!r}")
    inputs = vector_inputs(input_shapes, arch_id, L2_FUSION_INPUTS[arch_id])
    normed = [L2Normalize(name=f"l2_input_{i}")(inp) for i, inp in enumerate(inputs, 1)]
    x = layers.Concatenate(name="concat")(normed)
    x = layers.Dropout(config.dropout_factor, name="dropout_concat")(x)
    if config.n_dense > 0:
        x = layers.Dense(config.n_dense, activation="relu", kernel_initializer=kernel_init(config.init),
                         name="dense_1")(x)
    outputs = output_head(x, n_out, config.final_activation, kernel_init(config.init))
    return keras.Model(inputs, outputs, name=model_name(arch_id))


def l2_fusion_builder(arch_id):
    """The builder of architecture ``arch_id`` (32, 33 or 34), for the ARCHITECTURES table: it
    builds ``arch_id`` whatever ``config.architecture`` says."""
    arch_id = str(arch_id)
    if arch_id not in L2_FUSION_INPUTS:
        raise ValueError(f"no L2 fusion architecture {arch_id!r}")

    def builder(config, input_shapes, n_out):
        return build_l2_fusion(dataclasses.replace(config, architecture=arch_id), input_shapes, n_out)

    builder.__name__ = f"build_l2_fusion_{arch_id}"
    builder.__doc__ = f"Build architecture {arch_id}: {L2_FUSION_INPUTS[arch_id]} L2-normalised vector inputs."
    return builder
