"""The one tokenizer of every text feature (tf-idf, word2vec sequences).

``tokenize(text)`` turns raw text into lowercase word tokens, the same way for every language
written with letters and spaces:

1. a ``bytes`` argument is decoded as UTF-8; a byte-order mark (U+FEFF) is removed wherever it is;
2. the text is put in Unicode NFC form, so that "pico" + U+0301 and "picó" are the same word;
3. it is case-folded (``str.casefold``: "Canción" -> "canción", "Straße" -> "strasse"), then NFC
   again (case folding may leave a decomposed form);
4. every character that is not a letter, a digit or a combining mark is a separator: spaces of every
   kind (CR, LF, CRLF, tab, NO-BREAK SPACE U+00A0, NARROW NO-BREAK SPACE U+202F, ...), punctuation,
   symbols, emoji, and the underscore. Invisible format characters (soft hyphen, zero-width joiners,
   direction marks) are dropped without splitting the word; ZERO WIDTH SPACE U+200B separates;
5. apostrophes (``'``, ``’``, ``‘``, ``ʼ``, ``´``, `````, ``＇``) are written ``'`` and kept *inside* a
   word ("don't", "pa'l", "rock'n'roll" stay whole); at the start or end of a word, or doubled,
   they are quotation marks and separate;
6. pure punctuation never becomes a token; numbers are tokens ("24"; "3.5" gives "3" and "5"), and
   so are mixed words ("mp3", "00s").

Accented letters stay in their word ("corazón", "canción", "tradição"); hyphenated words split
("drum-machine" -> "drum", "machine"). ``TOKENIZER_VERSION`` changes whenever the output of
``tokenize`` for some text changes; the feature stages record it in their params files.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["tokenize", "TOKENIZER_VERSION"]

TOKENIZER_VERSION = 1

APOSTROPHES = "'\u2019\u2018\u02bc\u00b4\u0060\uff07"
_SEPARATING_FORMAT_CHARS = {"\u200b"}  # ZERO WIDTH SPACE separates words; other Cf are dropped

_WORD = re.compile(r"[^\s']+(?:'[^\s']+)*")


class _CharMap(dict):
    """``str.translate`` table filled on demand: letters, digits and marks kept, apostrophes
    unified, format characters dropped, everything else a space. Each character's class is
    computed once per process."""

    def __missing__(self, code):
        ch = chr(code)
        cat = unicodedata.category(ch)
        if ch in APOSTROPHES:
            value = "'"
        elif cat[0] in "LNM":
            value = ch
        elif cat == "Cf" and ch not in _SEPARATING_FORMAT_CHARS:
            value = None  # soft hyphen, zero-width joiner, BOM, direction marks: invisible inside words
        else:
            value = " "
        self[code] = value
        return value


_CHARS = _CharMap()


def tokenize(text):
    """Word tokens of ``text`` (``str``, or UTF-8 ``bytes``): a list of lowercase NFC strings.

    See the module docstring for the rules. ``tokenize("¡Mi CORAZÓN, pa'l sur!\\r\\n")`` gives
    ``['mi', 'corazón', "pa'l", 'sur']``. No token contains whitespace, a BOM or punctuation other
    than an inner apostrophe.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    text = unicodedata.normalize("NFC", text)
    text = unicodedata.normalize("NFC", text.casefold())
    text = text.translate(_CHARS)
    tokens = _WORD.findall(text)
    # a combining mark cannot start a word: one that follows a separator is dropped
    return [t if t[0].isalnum() else _from_first_alnum(t) for t in tokens
            if t[0].isalnum() or any(c.isalnum() for c in t)]


def _from_first_alnum(token):
    """``token`` without its leading non-alphanumeric characters (stray marks, apostrophes)."""
    i = 0
    while not token[i].isalnum():
        i += 1
    return token[i:]
