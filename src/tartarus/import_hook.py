"""A finder that runs the first import of one top-level module through a hook of its own.

Both uses in tartarus must act when a heavy library loads, without loading it themselves: the
CLI's quiet start wraps ``import tensorflow`` (:mod:`tartarus.quiet`), and ``import tartarus``
registers the custom Keras layers right after ``import keras`` (:mod:`tartarus.keras_objects`).
A mere ``importlib.util.find_spec(name)`` (is it installed?) loads nothing and leaves the finder in
place; the import itself removes it, so each hook runs once.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys


class AroundImport(importlib.abc.MetaPathFinder):
    """Finds module ``name`` through the other finders and runs its loading through :meth:`around`.

    Subclasses set ``name`` and define ``around(load, module)``, which must call ``load()`` (the
    module's own execution) once.
    """

    name = None

    def __init__(self):
        self.searching = False

    def install(self):
        """Put this finder first on ``sys.meta_path`` (once); returns it."""
        if not any(type(f) is type(self) for f in sys.meta_path):
            sys.meta_path.insert(0, self)
        return self

    def remove(self):
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)

    def around(self, load, module):
        raise NotImplementedError

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _HookedLoader(spec.loader, self)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, inner, finder):
        self.inner, self.finder = inner, finder

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.finder.remove()  # once only

        def load():
            try:
                self.inner.exec_module(module)
            finally:  # the module keeps its real loader, as if no finder had been there
                module.__loader__ = self.inner
                if module.__spec__ is not None:
                    module.__spec__.loader = self.inner

        self.finder.around(load, module)
