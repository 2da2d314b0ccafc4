"""Byte spans of the resources inside a Bundle's JSON text.

A record body must be the exact bytes of the resource as it appeared in the input, so that a
decrypted record gives back byte for byte the FHIR JSON that went in. Python's ``json`` module
parses but reports no positions, so this scanner is hand-written: it walks only the two levels
that matter (the Bundle object and each ``entry`` object) and hands every value it does not need
to look into to ``json.JSONDecoder.raw_decode``, whose C scanner returns where the value ends.

Offsets are byte offsets because the scanner reads a Latin-1 view of the bytes: Latin-1 maps each
byte to one code point, every JSON structural character is ASCII, and a UTF-8 multi-byte sequence
never contains an ASCII byte, so positions in the view are positions in the bytes. Strings read
through the view are garbled when not ASCII, which is harmless: the scanner compares only the
ASCII member names ``entry``, ``resource`` and ``resourceType``, and the values themselves come
from the real UTF-8 parse done before the scan.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # the four whitespace characters of RFC 8259
_DECODER = json.JSONDecoder()
_SCANSTRING = json.decoder.scanstring  # type: ignore[attr-defined]  # untyped, C-accelerated
BOM = b"\xef\xbb\xbf"


class DuplicateMember(ValueError):
    """An object at a level the scanner reads names the same member twice."""

    def __init__(self, name: str, entry_index: int | None) -> None:
        super().__init__(name)
        self.name = name
        self.entry_index = entry_index


def _skip(view: str, index: int) -> int:
    match = _WHITESPACE.match(view, index)
    assert match is not None  # the pattern also matches the empty string
    return match.end()


def _expect(view: str, index: int, char: str) -> None:
    if view[index : index + 1] != char:
        raise json.JSONDecodeError(f"Expecting {char!r}", view, index)


def _members(view: str, index: int) -> Iterator[tuple[str, int, int]]:
    """Yield ``(name, start, end)`` for each member of the object that starts at ``index``."""
    _expect(view, index, "{")
    index = _skip(view, index + 1)
    if view[index : index + 1] == "}":
        return
    while True:
        _expect(view, index, '"')
        name, index = _SCANSTRING(view, index + 1, True)
        index = _skip(view, index)
        _expect(view, index, ":")
        start = _skip(view, index + 1)
        end = _DECODER.raw_decode(view, start)[1]
        yield name, start, end
        index = _skip(view, end)
        if view[index : index + 1] == "}":
            return
        _expect(view, index, ",")
        index = _skip(view, index + 1)


def _elements(view: str, index: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` for each element of the array that starts at ``index``."""
    _expect(view, index, "[")
    index = _skip(view, index + 1)
    if view[index : index + 1] == "]":
        return
    while True:
        start = index
        end = _DECODER.raw_decode(view, start)[1]
        yield start, end
        index = _skip(view, end)
        if view[index : index + 1] == "]":
            return
        _expect(view, index, ",")
        index = _skip(view, index + 1)


def _member(view: str, index: int, wanted: str, entry_index: int | None) -> tuple[int, int] | None:
    """The span of member ``wanted`` of the object at ``index``; refuse it twice."""
    found = None
    for name, start, end in _members(view, index):
        if name == wanted:
            if found is not None:
                raise DuplicateMember(wanted, entry_index)
            found = (start, end)
    return found


def _start(data: bytes) -> tuple[str, int]:
    view = data.decode("latin-1")
    return view, _skip(view, len(BOM) if data.startswith(BOM) else 0)


def entry_resource_spans(data: bytes) -> list[tuple[int, int] | None]:
    """The byte span of ``entry[i].resource`` for each entry of the Bundle in ``data``.

    ``data`` must already have parsed as a JSON object with an ``entry`` array; an entry without
    ``resource`` gives ``None``. Raises :class:`DuplicateMember` if the Bundle names ``entry``
    twice or an entry names ``resource`` twice, where ``json`` would silently keep the last.
    """
    view, index = _start(data)
    entries = _member(view, index, "entry", None)
    if entries is None:
        return []
    return [
        _member(view, start, "resource", position) if view[start] == "{" else None
        for position, (start, _end) in enumerate(_elements(view, entries[0]))
    ]


def top_level_string(data: bytes, name: str) -> str | None:
    """The string value of member ``name`` of the JSON object in ``data``, read lazily.

    Stops at the first member called ``name``, so the rest of the document is not checked;
    returns ``None`` if the member is absent or not a string. Raises ``ValueError`` if the text
    up to that member is not a JSON object. ``name`` and the value are decoded as UTF-8.
    """
    view, index = _start(data)
    for member, start, end in _members(view, index):
        if member == name:
            value = json.loads(data[start:end])
            return value if isinstance(value, str) else None
    return None
