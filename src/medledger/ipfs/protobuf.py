"""The two protobuf messages of a UnixFS file: dag-pb ``PBNode``/``PBLink`` and UnixFS ``Data``.

Hand-written on purpose: both schemas are tiny and frozen, and the encoding must match Kubo's
byte for byte, which a generated-protobuf dependency (runtime + code generator) would not give us
for less than these few functions. The canonical dag-pb form (go-codec-dagpb, used by Kubo's
merkledag) writes every ``Links`` entry (field 2) BEFORE ``Data`` (field 1), and writes each
link's ``Name`` even when it is empty (``12 00``); a generic protobuf serializer orders fields by
number and would produce different bytes, hence a different CID. UnixFS ``Data`` (go-unixfs,
gogo-protobuf) is written in field order: Type(1), Data(2), filesize(3), blocksizes(4, one
unpacked varint each), with ``Data`` omitted when absent (the empty file and internal nodes).

Decoding is tolerant of field order but strict about wire types and lengths, and raises
:class:`~medledger.errors.DagFormatError` naming the block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger.errors import DagFormatError, InvalidCid
from medledger.ipfs._varint import decode_varint, encode_varint
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

BytesLike = bytes | bytearray | memoryview

# UnixFS Data.Type values (unixfs.proto)
UNIXFS_RAW = 0
UNIXFS_DIRECTORY = 1
UNIXFS_FILE = 2
UNIXFS_TYPE_NAMES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "HAMT"}

_VARINT = 0
_LEN = 2


@dataclass(frozen=True, slots=True)
class PBLink:
    """A dag-pb link: the child's CID, a name (empty in files) and the child's total DAG size."""

    cid: Cid
    name: str
    tsize: int


@dataclass(frozen=True, slots=True)
class PBNode:
    """A decoded dag-pb node; ``data`` is a view into the block (no copy)."""

    links: tuple[PBLink, ...]
    data: memoryview | None


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """A decoded UnixFS ``Data`` message (only the fields a file uses)."""

    kind: int
    data: memoryview | None
    filesize: int | None
    blocksizes: tuple[int, ...]


def _key(field: int, wire: int) -> bytes:
    return encode_varint(field << 3 | wire)


_LINKS_KEY = _key(2, _LEN)
_DATA_KEY = _key(1, _LEN)
_HASH_KEY = _key(1, _LEN)
_NAME_KEY = _key(2, _LEN)
_TSIZE_KEY = _key(3, _VARINT)
_TYPE_KEY = _key(1, _VARINT)
_FS_DATA_KEY = _key(2, _LEN)
_FILESIZE_KEY = _key(3, _VARINT)
_BLOCKSIZE_KEY = _key(4, _VARINT)


def encode_unixfs(
    kind: int, data: BytesLike | None, filesize: int, blocksizes: Sequence[int] = ()
) -> list[BytesLike]:
    """Encode a UnixFS ``Data`` message as a list of parts (``data`` is kept by reference)."""
    parts: list[BytesLike] = [_TYPE_KEY, encode_varint(kind)]
    if data is not None:
        parts += [_FS_DATA_KEY, encode_varint(len(data)), data]
    parts += [_FILESIZE_KEY, encode_varint(filesize)]
    for size in blocksizes:
        parts += [_BLOCKSIZE_KEY, encode_varint(size)]
    return parts


def encode_pbnode(links: Sequence[PBLink], data_parts: Sequence[BytesLike] | None) -> bytes:
    """Encode a dag-pb node in canonical form: all links, then the data (given as parts)."""
    parts: list[BytesLike] = []
    for link in links:
        hash_bytes = link.cid.to_bytes()
        name = link.name.encode("utf-8")
        body = b"".join(
            (
                _HASH_KEY,
                encode_varint(len(hash_bytes)),
                hash_bytes,
                _NAME_KEY,
                encode_varint(len(name)),
                name,
                _TSIZE_KEY,
                encode_varint(link.tsize),
            )
        )
        parts += [_LINKS_KEY, encode_varint(len(body)), body]
    if data_parts is not None:
        parts += [_DATA_KEY, encode_varint(sum(len(p) for p in data_parts)), *data_parts]
    return b"".join(parts)


def _fields(buf: memoryview, cid: Cid, what: str) -> Iterator[tuple[int, int | memoryview]]:
    """Yield ``(field number, value)`` for each field of a protobuf message."""
    pos = 0
    try:
        while pos < len(buf):
            key, pos = decode_varint(buf, pos)
            field, wire = key >> 3, key & 7
            if wire == _VARINT:
                value, pos = decode_varint(buf, pos)
                yield field, value
            elif wire == _LEN:
                length, pos = decode_varint(buf, pos)
                if pos + length > len(buf):
                    raise ValueError(f"field {field} runs past the end")
                yield field, buf[pos : pos + length]
                pos += length
            else:
                raise ValueError(f"field {field} has unsupported wire type {wire}")
    except ValueError as exc:
        raise DagFormatError(str(cid), f"malformed {what}: {exc}") from None


def _expect_bytes(value: int | memoryview, cid: Cid, what: str) -> memoryview:
    if not isinstance(value, memoryview):
        raise DagFormatError(str(cid), f"{what} should be length-delimited")
    return value


def _expect_int(value: int | memoryview, cid: Cid, what: str) -> int:
    if isinstance(value, memoryview):
        raise DagFormatError(str(cid), f"{what} should be a varint")
    return value


def decode_pbnode(block: bytes, cid: Cid) -> PBNode:
    """Decode the dag-pb block named ``cid`` (already verified against it)."""
    links: list[PBLink] = []
    data: memoryview | None = None
    for field, value in _fields(memoryview(block), cid, "dag-pb node"):
        if field == 2:
            links.append(_decode_link(_expect_bytes(value, cid, "PBNode.Links"), cid))
        elif field == 1:
            data = _expect_bytes(value, cid, "PBNode.Data")
        else:
            raise DagFormatError(str(cid), f"dag-pb node has unknown field {field}")
    return PBNode(tuple(links), data)


def _decode_link(buf: memoryview, cid: Cid) -> PBLink:
    target: Cid | None = None
    name = ""
    tsize = 0
    for field, value in _fields(buf, cid, "dag-pb link"):
        if field == 1:
            try:
                target = Cid.from_bytes(_expect_bytes(value, cid, "PBLink.Hash"))
            except InvalidCid as exc:
                raise DagFormatError(str(cid), f"a link holds an unusable CID: {exc}") from None
        elif field == 2:
            try:
                name = bytes(_expect_bytes(value, cid, "PBLink.Name")).decode("utf-8")
            except UnicodeDecodeError:
                raise DagFormatError(str(cid), "a link name is not UTF-8") from None
        elif field == 3:
            tsize = _expect_int(value, cid, "PBLink.Tsize")
        else:
            raise DagFormatError(str(cid), f"dag-pb link has unknown field {field}")
    if target is None:
        raise DagFormatError(str(cid), "a link has no Hash")
    return PBLink(target, name, tsize)


def _blocksizes(value: int | memoryview, cid: Cid) -> list[int]:
    """One blocksize (Kubo writes them unpacked) or a packed run of them (accepted on read)."""
    if isinstance(value, int):
        return [value]
    sizes = []
    pos = 0
    try:
        while pos < len(value):
            size, pos = decode_varint(value, pos)
            sizes.append(size)
    except ValueError as exc:
        raise DagFormatError(str(cid), f"malformed packed blocksizes: {exc}") from None
    return sizes


def decode_unixfs(buf: memoryview, cid: Cid) -> UnixFSData:
    """Decode the UnixFS ``Data`` message carried in the ``Data`` field of block ``cid``."""
    kind: int | None = None
    data: memoryview | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for field, value in _fields(buf, cid, "UnixFS Data"):
        if field == 1:
            kind = _expect_int(value, cid, "UnixFS Type")
        elif field == 2:
            data = _expect_bytes(value, cid, "UnixFS Data")
        elif field == 3:
            filesize = _expect_int(value, cid, "UnixFS filesize")
        elif field == 4:
            blocksizes += _blocksizes(value, cid)
        # other fields (hashType, fanout, mode, mtime) do not change a file's bytes: ignored
    if kind is None:
        raise DagFormatError(str(cid), "UnixFS Data has no Type")
    return UnixFSData(kind, data, filesize, tuple(blocksizes))
