"""A dataset that shares another's items: the same audio, index and splits, other spectrograms.

A dataset entry with ``items_from = "DUMMY"`` (e.g. ``DUMMY_musicnn``: musicnn's log-mel input of the
dummy audio) names the dataset whose index and split files it reuses. Every file a data root keeps
per dataset name under ``index/`` and ``splits/`` (``layout.py``: the audio and text indexes, tags,
interactions, ``items_index_{set}``, ``y_{set}_{fact}_{dim}``, genre labels, held-out matrices, user
factors and the ``params_*`` records) is copied under the entry's own name by :func:`share_items`,
which ``tartarus spectrograms`` and ``tartarus patches`` call first. Everything downstream (training,
prediction, evaluation, the queries) then finds the derived dataset's files by its name, as for any
other dataset: no module needs to know that it was derived.

Copies are refreshed whenever the source's bytes change (``tartarus dummy-data --overwrite``, new
factors): run ``tartarus patches NAME`` again after making new targets for the source. A file that
only the derived dataset has (factors made for it by ``tartarus factors NAME``) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import fileio
from ..errors import ConfigError, MissingInput
from ..layout import SETS, DataLayout


@dataclass
class ShareReport:
    """What :func:`share_items` did: files ``copied`` (new or changed), ``unchanged`` ones."""
    source: str
    dataset: str
    copied: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)

    def summary(self):
        return (f"{self.dataset} shares the items of {self.source}: {len(self.copied)} file(s) copied, "
                f"{len(self.unchanged)} already up to date")


def source_files(layout, source):
    """The index and split files of dataset ``source``, the items index files last.

    A file belongs to ``source`` when its name ends with ``_{source}`` before the extension (the
    layout's naming: every per-dataset file ends with the dataset's name).
    """
    out = []
    for folder in (layout.index_dir, layout.splits_dir):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            stem, dot, ext = path.name.partition(".")
            if path.is_file() and stem.endswith(f"_{source}") and ".tmp" not in path.name:
                out.append(path)
    # the items index files last: their presence marks a complete dataset (as the generators write them)
    return sorted(out, key=lambda p: p.name.startswith("items_index_"))


def share_items(layout, entry):
    """Copy the index and split files of ``entry.items_from`` under ``entry.name`` (see the module).

    layout : DataLayout or a data root; entry : the derived dataset's DatasetEntry.
    Returns a :class:`ShareReport` (nothing is done, and None returned, when ``items_from`` is "").
    MissingInput, naming the source's items index and the command that makes it, when the source
    has no split yet; ConfigError when an entry names itself.
    """
    source = str(entry.items_from or "").strip()
    if not source:
        return None
    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    if source == entry.name:
        raise ConfigError(f"dataset {entry.name!r}: items_from names the dataset itself; name the dataset whose "
                          f"index and splits it shares (e.g. \"DUMMY\"), or leave items_from out")
    first = layout.items_index(SETS[0], source)
    if not first.exists() and not layout.audio_index(source).exists():
        from ..splits import split_command
        hint = layout.cli("dummy-data") if source == "DUMMY" else split_command(layout, source)
        raise MissingInput(first, hint, what=f"items index of {source}, which {entry.name} shares")
    report = ShareReport(source, entry.name)
    cut = len(source)
    for path in source_files(layout, source):
        stem, _, ext = path.name.partition(".")
        target = path.with_name(f"{stem[:-cut]}{entry.name}.{ext}")
        data = path.read_bytes()
        if target.is_file() and target.read_bytes() == data:
            report.unchanged.append(target)
            continue
        with fileio.atomic_path(target) as tmp:
            Path(tmp).write_bytes(data)
        report.copied.append(target)
    return report
