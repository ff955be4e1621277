"""Reading a dataset's texts, split by split.

A data root holds, for a dataset ``ds`` (see ``tartarus.layout``):

- ``splits/items_index_{set}_{ds}.tsv``: the split's item ids, one a line;
- ``index/index_text_{ds}.tsv``: ``id<TAB>file``, ``file`` relative to ``text/``;
- ``text/<file>``: the item's text, UTF-8 (a byte-order mark is tolerated; any line ends).

``read_texts`` returns the split's ids in items-index order with their decoded texts; it checks
that every item of the split has a text and says which do not.
"""

from __future__ import annotations

from pathlib import Path

from .. import fileio
from ..errors import ConfigError, DataMismatch, MissingInput
from ..layout import SETS

__all__ = ["read_texts", "read_text_index", "read_text_file", "check_sets", "FeatureFiles"]

SHOWN = 5  # ids and paths named in an error message


def _few(items):
    items = list(items)
    text = ", ".join(str(i) for i in items[:SHOWN])
    return text + (f" ... ({len(items)} in all)" if len(items) > SHOWN else "")


def read_text_index(layout, ds):
    """``{item id: path of its text file}`` from ``index/index_text_{ds}.tsv``.

    Raises MissingInput naming the index when it is absent, DataMismatch for a row without a file
    column or an id listed twice with different files.
    """
    path = layout.require(layout.text_index(ds), what=f"text index of {ds}")
    files = {}
    for i, row in enumerate(fileio.read_tsv(path, ncols=2), 1):
        item, name = row[0].strip(), row[1].strip()
        if not name:
            raise DataMismatch(f"{path}: line {i} has an empty file name for item {item!r}")
        target = layout.text_dir / name
        if files.setdefault(item, target) != target:
            raise DataMismatch(f"{path}: item {item!r} is listed with two files: {files[item]} and {target}")
    return files


def read_text_file(path):
    """The text of one file, decoded as UTF-8 with a leading byte-order mark removed.

    Line ends are left as they are (the tokenizer treats CR, LF and CRLF alike). Raises
    MissingInput when the file is absent, DataMismatch naming the file and the byte offset when it
    is not valid UTF-8.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MissingInput(path, what="text file") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataMismatch(f"{path}: not valid UTF-8 at byte {exc.start} ({exc.reason})") from None


def read_texts(layout, ds, set_):
    """``(item_ids, texts)`` of split ``set_`` of dataset ``ds``: two lists of equal length.

    ``item_ids`` are the lines of ``layout.items_index(set_, ds)`` in their order; ``texts[i]`` is the
    decoded text of ``item_ids[i]`` (see ``read_text_file``). Errors:

    - the items index or the text index absent: MissingInput naming the path;
    - items of the split with no row in the text index: DataMismatch naming the first few ids and
      the index file;
    - text files listed but absent: MissingInput naming the first few ids and their paths.
    """
    ids_path = layout.require(layout.items_index(set_, ds), what=f"items index of {ds} {set_}")
    item_ids = fileio.read_items_index(ids_path)
    files = read_text_index(layout, ds)
    unlisted = [i for i in item_ids if i not in files]
    if unlisted:
        raise DataMismatch(f"{len(unlisted)} item(s) of {ds} {set_} have no text in {layout.text_index(ds)}: "
                           f"{_few(unlisted)}")
    absent = [i for i in item_ids if not files[i].is_file()]
    if absent:
        exc = MissingInput(_few(str(files[i]) for i in absent),
                           what=f"text file(s) of {len(absent)} item(s) of {ds} {set_} ({_few(absent)})")
        exc.paths = [files[i] for i in absent]
        raise exc
    return item_ids, [read_text_file(files[i]) for i in item_ids]


def check_sets(sets):
    """``sets`` as a tuple of split names, each one of ``layout.SETS`` (ConfigError otherwise)."""
    sets = (sets,) if isinstance(sets, str) else tuple(sets)
    bad = [s for s in sets if s not in SETS]
    if bad or not sets:
        raise ConfigError(f"sets must be among {', '.join(SETS)}, got {list(sets)!r}")
    return tuple(dict.fromkeys(sets))


class FeatureFiles(dict):
    """``{set: path of its X (or y) file}`` written by a text stage, with what came with them.

    ``index[set]``: the ids file of the rows; ``shapes[set]``: the array's shape; ``vocabulary``,
    ``params``, ``embedding``: the stage's other files (``None`` where it writes none).
    """

    def __init__(self, dataset, suffix):
        super().__init__()
        self.dataset = dataset
        self.suffix = suffix
        self.index = {}
        self.shapes = {}
        self.vocabulary = None
        self.params = None
        self.embedding = None

    def summary(self):
        parts = [f"{s}: {' x '.join(str(n) for n in self.shapes[s])} -> {p.name}" for s, p in self.items()]
        extra = [p.name for p in (self.embedding, self.vocabulary, self.params) if p is not None]
        return f"{self.dataset} {self.suffix}: " + "; ".join(parts) + (f" (+ {', '.join(extra)})" if extra else "")
