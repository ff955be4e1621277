"""Tartarus's custom Keras layers registered by ``import tartarus``, without importing Keras.

A saved ``model.keras`` names its custom layers (``tartarus>Standardize``, ``tartarus>L2Normalize``),
and Keras finds them only once ``tartarus.models.layers`` has run its
``register_keras_serializable``. So that ``import tartarus, keras;
keras.saving.load_model("models/model_1/model.keras")`` works without importing ``tartarus.models``,
``import tartarus`` calls :func:`register_custom_layers`: it imports the layers now if Keras is
already loaded, and otherwise right after the first ``import keras`` completes (a finder on
``sys.meta_path`` that acts on the name ``keras`` only and removes itself once done).

Keras (and its backend) is not imported by ``import tartarus`` itself: the command line keeps its
quiet start (``tartarus.quiet``), and commands that never build a model never load TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

from .import_hook import AroundImport

LAYERS_MODULE = "tartarus.models.layers"


def register_custom_layers():
    """Have the custom layers registered with Keras: now if Keras is loaded, else when it loads."""
    if "keras" in sys.modules:
        importlib.import_module(LAYERS_MODULE)
        return
    _AfterKeras().install()


class _AfterKeras(AroundImport):
    """Imports the custom layers right after ``import keras`` completes."""

    name = "keras"

    def around(self, load, module):
        load()
        # keras is whole now (in sys.modules): the layers module can import it
        importlib.import_module(LAYERS_MODULE)
