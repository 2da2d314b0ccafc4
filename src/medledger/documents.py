"""JSON documents on disk: one reader and one writer for every command that takes or writes one.

Reading refuses what another parser might read differently (duplicate keys), and every problem
is a one-line ``ConfigurationError`` naming the file, never a traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medledger.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def canonical(value: object) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8 unescaped): the one byte form every hash
    or commitment over a JSON value is taken of (outcome hashes, sameness keys, identity
    links). Changing it changes those hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_object(text: str | bytes, where: str) -> dict[str, Any]:
    """Parse a JSON object (duplicate keys refused); ``where`` names it in errors."""
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise ConfigurationError(where, "is not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigurationError(where, f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigurationError(where, "is not a JSON object")
    return data


def read_object(path: Path) -> dict[str, Any]:
    """Read a JSON object from a file, with one-line errors for every way it can be wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot be read ({exc.strerror})") from None
    return parse_object(raw, str(path))


def write(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, with a one-line error when the file cannot be written."""
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise ConfigurationError(str(path), f"cannot be written ({exc.strerror})") from None


def to_data(value: Any) -> Any:
    """A model as JSON-ready data: the one way the package turns its models into JSON.

    Dataclasses become objects of their fields (a field whose name starts with ``_`` is left
    out), ``bytes`` become ``0x`` hex, datetimes ISO 8601, ``Decimal`` a string (exact),
    labelled enums their command-line label and other enums their lower-case name, CIDs their
    text form, tuples and sets lists; what JSON holds already stays as it is.
    """
    from dataclasses import fields, is_dataclass
    from datetime import datetime
    from decimal import Decimal
    from enum import Enum

    from medledger.ipfs.cid import Cid
    from medledger.labels import Labelled

    if isinstance(value, Labelled):  # before int: labelled enums are IntEnums
        return value.label
    if isinstance(value, Enum):
        return value.name.lower()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Cid):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in fields(value) if f.name[0] != "_"}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_data(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")
