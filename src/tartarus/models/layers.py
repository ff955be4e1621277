"""Custom layers, registered so that saved models load in Keras safe mode (no Lambda layers)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tartarus")
class L2Normalize(keras.layers.Layer):
    """Scale each row to unit L2 norm along ``axis`` (the seed's ``Lambda(K.l2_normalize)``)."""

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x):
        norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=self.axis, keepdims=True), self.epsilon))
        return x / norm

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tartarus")
class Standardize(keras.layers.Layer):
    """``(x - mean) / std`` with constants measured on the training set.

    It sits right after the input, so a saved model carries its own input scaling; it is not
    counted by layer indices (see ``models.indexable_layers``).
    """

    def __init__(self, mean=0.0, std=1.0, **kwargs):
        super().__init__(**kwargs)
        self.mean = float(mean)
        self.std = float(std) if std else 1.0

    def call(self, x):
        return (x - self.mean) / self.std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}
