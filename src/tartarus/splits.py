"""Every split of items into train / val / test, and the cold-start split of interactions.

The primitives work on positions ``0 .. n-1`` and return index arrays, so the five places that
split items share one definition of each step:

- ``check_split_fractions``: ``(train, val, test)`` shares, checked and normalised;
- ``split_sizes``: how many items each split gets (val and test rounded, train the rest);
- ``cut``: an order of the items (a permutation) cut into test, then val, then train;
- ``random_split``: a seeded permutation cut by fractions (the cold-start item split);
- ``hold_out`` / ``sequential_split``: a validation share taken out of the train items
  (``training.val_split = "random"`` / ``"seed"``);
- ``balanced_split``: whole groups (a song's clips) assigned so that the item counts follow the
  fractions (the MagnaTagATune import).

The dummy data's per-class split (``datasets.dummy.plan_dummy``) draws its permutations from the
plan's one random stream and cuts them with ``split_sizes`` and ``cut``.

The cold-start protocol (``cold_start_split``) assigns the interactions to the item splits in
memory; ``write_held_out`` and ``write_item_splits`` are the explicit steps that write files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import fileio
from .errors import ConfigError, DataMismatch
from .layout import SETS

__all__ = ["check_split_fractions", "split_sizes", "cut", "random_split", "hold_out", "sequential_split",
           "balanced_split", "ColdStartSplit", "cold_start_split", "random_item_splits", "read_item_splits",
           "write_item_splits", "write_held_out", "split_command"]

SHOWN = 5  # ids named in a message
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def _few(items):
    items = list(items)
    text = ", ".join(str(i) for i in items[:SHOWN])
    return text + (f" ... ({len(items)} in all)" if len(items) > SHOWN else "")


# ================================================================================ primitives
def check_split_fractions(fractions):
    """``(train, val, test)`` shares as a float array ``(3,)`` summing to 1; ConfigError if not valid.

    Any non-negative numbers with train > 0 are accepted and normalised (``(8, 1, 1)`` is
    ``(0.8, 0.1, 0.1)``); a zero share leaves that split empty.
    """
    try:
        fr = np.array([float(x) for x in fractions], dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if fr.shape != (3,) or not np.all(np.isfinite(fr)) or np.any(fr < 0) or fr[0] <= 0:
        raise ConfigError(f"fractions must be three non-negative numbers (train, val, test) with train > 0, "
                          f"got {fractions!r}")
    return fr / fr.sum()


def split_sizes(n, fractions, at_least=0):
    """``(n_train, n_val, n_test)`` of ``n`` items: val and test get ``round(share * n)`` items (at
    least ``at_least`` each), train the rest; ConfigError when that leaves no train item."""
    fr = check_split_fractions(fractions)
    n_test = max(at_least, int(round(fr[2] * n)))
    n_val = max(at_least, int(round(fr[1] * n)))
    if n - n_test - n_val < 1:
        raise ConfigError(f"fractions {tuple(fractions)} leave no train item out of {n}")
    return n - n_val - n_test, n_val, n_test


def cut(order, n_val, n_test):
    """``{set: positions}`` of an ordering of the items: the first ``n_test`` are test, the next
    ``n_val`` val, the rest train (each in ``order``'s order; sort for index order)."""
    order = np.asarray(order)
    return {"train": order[n_test + n_val:], "val": order[n_test:n_test + n_val], "test": order[:n_test]}


def random_split(n, fractions=DEFAULT_FRACTIONS, seed=0):
    """``{set: positions}`` of ``n`` items, each sorted: a seeded permutation cut by ``fractions``."""
    _, n_val, n_test = split_sizes(n, fractions)
    parts = cut(np.random.default_rng(seed).permutation(n), n_val, n_test)
    return {s: np.sort(parts[s]) for s in SETS}


def hold_out(n, fraction, seed, name="fraction"):
    """``(train positions, val positions)``, each sorted: a random ``fraction`` of ``n`` items (at
    least one) held out, seeded. ``name`` is the setting's name in the error."""
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise ConfigError(f"{name}: holding out {fraction} of {n} train items leaves none to train on")
    parts = cut(np.random.default_rng(seed).permutation(n), n_val, 0)
    return np.sort(parts["train"]), np.sort(parts["val"])


def sequential_split(n, validation, test, names=("validation", "test")):
    """``(train positions, val positions)`` in index order, the seed's arithmetic.

    The first ``int((1 - validation - test) * n)`` items train, the next ``int(validation * n)``
    validate, the rest (the ``test`` share) is left out. ``names``: the two settings' names in
    the error.
    """
    n_train, n_val = int((1 - validation - test) * n), int(validation * n)
    if n_train < 1 or n_val < 1:
        raise ConfigError(f"{names[0]} = {validation}, {names[1]} = {test}: the sequential split of {n} train "
                          f"items gives {n_train} to train and {n_val} to validate; both need at least one")
    return np.arange(n_train), np.arange(n_train, n_train + n_val)


def balanced_split(sizes, fractions=DEFAULT_FRACTIONS, seed=0, what="groups"):
    """``{group: set}``: whole groups of items assigned so that the item counts follow ``fractions``.

    sizes: ``{group: number of items}``. Groups (sorted, then shuffled by ``seed``) go one by one
    to the split whose item count is lowest relative to its target (``fractions`` of all items;
    ties go to the earlier split), so every split with a non-zero fraction gets a group as soon as
    there are enough, and the fractions end within about one group of the targets.
    Deterministic for the same groups and seed. ``what`` names the groups in the error.
    """
    fr = check_split_fractions(fractions)
    groups = sorted(sizes)
    active = np.flatnonzero(fr > 0)
    if len(groups) < len(active):
        raise ConfigError(f"{len(groups)} {what} cannot fill {len(active)} splits (fractions {list(fractions)}); "
                          f"set the fraction of a split to 0 to leave it empty")
    order = np.random.default_rng(seed).permutation(len(groups))
    targets = fr * sum(sizes[g] for g in groups)
    filled = np.zeros(3)
    out = {}
    for i in order:
        group = groups[i]
        k = active[np.argmin(filled[active] / targets[active])]
        out[group] = SETS[k]
        filled[k] += sizes[group]
    return out


# ================================================================================ cold start
@dataclass
class ColdStartSplit:
    """Items assigned to train/val/test, and each split's interactions.

    ``ids[set]``: the split's item ids (items_index order); ``user_items[set]``: CSR float32
    ``(n_users, len(ids[set]))``, columns aligned with ``ids[set]`` (an item absent from the
    interactions has an empty column); ``present[set]``: bool ``(len(ids[set]),)``, item has
    interactions; ``active_users``: bool ``(n_users,)``, user has >= 1 train interaction (the
    evaluated users); ``n_unassigned``: items with interactions in no split; ``random``: the item
    split was drawn at random (``random_item_splits``) rather than read from the items_index files.
    """
    dataset: str
    user_ids: list
    ids: dict
    user_items: dict
    present: dict
    active_users: np.ndarray
    n_unassigned: int = 0
    random: bool = False
    files: dict = field(default_factory=dict)  # role -> path, filled by the write_* steps

    @property
    def train_matrix(self):
        """Users x train items CSR (the only interactions a cold-start factorisation sees)."""
        return self.user_items["train"]

    def absent(self, set_):
        """Ids of the split's items with no interaction."""
        return [i for i, p in zip(self.ids[set_], self.present[set_]) if not p]

    @property
    def n_users_dropped(self):
        """Users with no train interaction: no trained factor, not evaluated."""
        return int((~self.active_users).sum())

    def n_evaluated(self, set_):
        """Evaluated users with at least one interaction with an item of ``set_``."""
        has = np.diff(self.user_items[set_].indptr) > 0
        return int((has & self.active_users).sum())

    def n_lost(self, set_):
        """Users with interactions in ``set_`` who are dropped for having none in train."""
        has = np.diff(self.user_items[set_].indptr) > 0
        return int((has & ~self.active_users).sum())

    def held_out(self, set_):
        """The held-out interactions of ``set_``: CSR float32 ``(len(ids[set_]), n_users)``, items x
        users, the columns of users without any train interaction left empty (not evaluated)."""
        keep = sp.diags(self.active_users.astype(np.float32))
        held = sp.csr_matrix((keep @ self.user_items[set_]).T, dtype=np.float32)
        held.eliminate_zeros()
        return held

    def summary(self):
        parts = []
        for set_ in SETS:
            absent = self.absent(set_)
            part = f"{set_} {len(self.ids[set_])} items ({self.user_items[set_].nnz} interactions"
            part += f", {len(absent)} without interactions: {_few(absent)})" if absent else ")"
            parts.append(part)
        text = f"{self.dataset} cold-start split{' (random)' if self.random else ''}: " + "; ".join(parts)
        text += (f"; {len(self.user_ids) - self.n_users_dropped} of {len(self.user_ids)} users evaluated "
                 f"({self.n_evaluated('test')} with test interactions)")
        if self.n_users_dropped:
            text += (f"; {self.n_users_dropped} users have no train interaction and are dropped "
                     f"({self.n_lost('test')} of them had test interactions)")
        if self.n_unassigned:
            text += f"; {self.n_unassigned} items with interactions are in no split (not used)"
        return text


def split_command(layout, ds, *options):
    """The command line that writes a random item split of ``ds`` (its items_index files), with
    ``options`` (e.g. ``"--overwrite"``)."""
    return layout.cli("interactions", "split", "--dataset", ds, *options)


def read_item_splits(layout, ds):
    """``{set: item ids}`` from ``ds``'s items_index files; MissingInput names a missing one and the
    command that makes a split, DataMismatch an item in two splits. Writes nothing."""
    ids = {}
    for set_ in SETS:
        path = layout.require(layout.items_index(set_, ds), split_command(layout, ds),
                              what=f"items index of {ds} {set_}")
        ids[set_] = fileio.read_items_index(path)
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = set(ids[a]) & set(ids[b])
        if both:
            raise DataMismatch(f"{len(both)} item(s) of {ds} are in both {a} and {b}: {_few(sorted(both))}")
    return ids


def random_item_splits(item_ids, fractions=DEFAULT_FRACTIONS, seed=0):
    """``{set: item ids}``: a seeded random split of ``item_ids`` by ``fractions``, each sorted by
    position in ``item_ids`` (:func:`random_split`)."""
    item_ids = list(item_ids)
    return {s: [item_ids[i] for i in rows] for s, rows in random_split(len(item_ids), fractions, seed).items()}


def write_item_splits(layout, ds, ids, overwrite=False):
    """Write ``ids`` (``{set: item ids}``) as ``ds``'s items_index files; return ``{role: path}``.

    Existing files are replaced only with ``overwrite`` (ConfigError otherwise), since the audio
    and text inputs of the dataset are aligned to them.
    """
    existing = [layout.items_index(s, ds) for s in SETS if layout.items_index(s, ds).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{ds} already has item splits ({_few(p.name for p in existing)}); use them, or "
                          f"replace them with overwrite=True ({split_command(layout, ds, '--overwrite')})")
    files = {}
    for set_ in SETS:
        files[f"items_index_{set_}"] = layout.items_index(set_, ds)
        fileio.write_lines(files[f"items_index_{set_}"], ids[set_])
    return files


def cold_start_split(ds, matrix, user_ids, item_ids, ids, random=False):
    """Assign the interactions of ``matrix`` to the item splits ``ids``; return a ColdStartSplit.

    matrix: CSR ``(n_users, n_items)``; user_ids, item_ids: its row and column ids (as from
    ``interactions.load_interactions``). ids: ``{set: item ids}`` (``read_item_splits`` or
    ``random_item_splits``); items of a split that have no interactions are reported, not fatal.
    random: recorded in the split (the factor params say which kind of split was used).
    Computes in memory; ``write_held_out`` writes the held-out matrices.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    user_ids, item_ids = list(user_ids), list(item_ids)
    if matrix.shape != (len(user_ids), len(item_ids)):
        raise DataMismatch(f"interactions matrix has shape {matrix.shape} but {len(user_ids)} user ids and "
                           f"{len(item_ids)} item ids were given")
    column = {item: j for j, item in enumerate(item_ids)}
    if len(column) != len(item_ids):
        raise DataMismatch(f"the interactions' item ids of {ds} are not unique")
    csc = matrix.tocsc()
    user_items, present = {}, {}
    assigned = set()
    for set_ in SETS:
        idx = np.array([column.get(i, -1) for i in ids[set_]], dtype=np.int64)
        present[set_] = idx >= 0
        assigned.update(idx[idx >= 0].tolist())
        where = np.flatnonzero(present[set_])
        sub = csc[:, idx[where]]
        # place the present items' columns at their positions in the split (absent: empty columns)
        place = sp.csr_matrix((np.ones(len(where), np.float32), (np.arange(len(where)), where)),
                              shape=(len(where), len(idx)))
        user_items[set_] = sp.csr_matrix(sub @ place, dtype=np.float32)
    active = np.diff(user_items["train"].indptr) > 0
    return ColdStartSplit(dataset=ds, user_ids=user_ids, ids={s: list(ids[s]) for s in SETS},
                          user_items=user_items, present=present, active_users=active,
                          n_unassigned=len(item_ids) - len(assigned), random=bool(random))


def write_held_out(layout, split):
    """Write ``layout.eval_matrix(set, ds)`` for val and test (``ColdStartSplit.held_out``): CSR
    float32 items x users, rows in items_index order, columns in ``user_ids`` order. Records the
    paths in ``split.files`` and returns them."""
    for set_ in ("val", "test"):
        path = layout.eval_matrix(set_, split.dataset)
        fileio.save_sparse(path, split.held_out(set_))
        split.files[f"matrix_{set_}"] = path
    return {k: v for k, v in split.files.items() if k.startswith("matrix_")}
