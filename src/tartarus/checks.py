"""Checks of arguments at the library's boundary, one definition each.

Every function takes the argument's ``name`` (as the caller's user knows it: a parameter, a
``--flag`` or a ``section.key``), returns the value normalised (a Python ``int`` / ``float``) and
raises one :class:`~tartarus.errors.ConfigError` saying what was expected and what came.
Booleans are never numbers here: ``True`` is not the integer 1 a user meant.
"""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name, value, minimum=1, maximum=None):
    """``value`` as an int in ``[minimum, maximum]`` (``maximum`` None: no upper bound).

    The default ``minimum=1`` asks for a positive integer; ``minimum=0`` for a non-negative one
    (a seed, a count that may be zero).
    """
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        span = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(f"{name} must be an integer {span}, got {value!r}")
    return int(value)


def check_float(name, value, allow_zero=False, maximum=None):
    """``value`` as a finite float > 0 (``>= 0`` with ``allow_zero``), and ``<= maximum`` if given."""
    ok = _is_real(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0) \
        and (maximum is None or value <= maximum)
    if not ok:
        what = "a non-negative" if allow_zero else "a positive"
        bound = f" <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name} must be {what} finite number{bound}, got {value!r}")
    return float(value)


def check_fraction(name, value, open_low=False, open_high=False):
    """``value`` as a float in [0, 1] (each end open on request)."""
    ok = _is_real(value) and math.isfinite(value) and (value > 0 if open_low else value >= 0) \
        and (value < 1 if open_high else value <= 1)
    if not ok:
        span = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise ConfigError(f"{name} must be a number in {span}, got {value!r}")
    return float(value)


def check_n_jobs(name, value):
    """``value`` as joblib's ``n_jobs``: a positive count, or -1 (every core), -2 (all but one) ...

    0 means nothing to joblib and is refused.
    """
    if not _is_int(value) or value == 0:
        raise ConfigError(f"{name} must be a non-zero integer (a worker count; -1 = every core, "
                          f"-2 = all but one), got {value!r}")
    return int(value)


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``; else a ConfigError listing them."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
