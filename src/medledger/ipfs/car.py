"""CAR v1 files (Content Addressable aRchives): export a DAG, import one, verifying every block.

Layout (https://ipld.io/specs/transport/car/carv1/): ``varint(len(header)) header`` where the
header is DAG-CBOR ``{"roots": [CID, ...], "version": 1}`` with each CID as CBOR tag 42 over
``0x00 + binary CID``; then one section per block, ``varint(len(cid) + len(data)) cid data``.
Blocks are written depth-first, each once, in the order ``ipfs dag export`` uses. The header is
encoded with ``cbor2`` (DAG-CBOR's rules for this two-key map are what canonical CBOR gives).
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cbor2

from medledger.errors import CarFormatError, InvalidCid, MedLedgerError, StoreError
from medledger.ipfs._varint import decode_varint, encode_varint
from medledger.ipfs.blockstore import BlockStore, iter_dag, verify_block
from medledger.ipfs.cid import Cid

CID_TAG = 42
MAX_HEADER_SIZE = 1 << 20
MAX_SECTION_SIZE = 4 << 20  # Kubo refuses blocks over 1 MiB by default; ours are ~256 KiB

CarBlocks = Iterator[tuple[Cid, bytes]]


def encode_header(roots: list[Cid]) -> bytes:
    """The DAG-CBOR CARv1 header naming ``roots``."""
    tagged = [cbor2.CBORTag(CID_TAG, b"\x00" + root.to_bytes()) for root in roots]
    return cbor2.dumps({"roots": tagged, "version": 1}, canonical=True)


def export_car(store: BlockStore, root: Cid, out_path: Path) -> int:
    """Write the DAG under ``root`` to ``out_path`` as a CARv1 file; return the block count.

    The file appears only when complete (written to a temporary name, then renamed).
    """
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    header = encode_header([root])
    count = 0
    try:
        with open(tmp, "wb") as out:
            out.write(encode_varint(len(header)) + header)
            for cid, block in iter_dag(store.get_block, root):
                cid_bytes = cid.to_bytes()
                out.write(encode_varint(len(cid_bytes) + len(block)) + cid_bytes)
                out.write(block)
                count += 1
        os.replace(tmp, out_path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, MedLedgerError):
            raise StoreError(f"cannot write CAR file {out_path}: {exc.strerror}") from exc
        raise
    return count


@contextlib.contextmanager
def open_car(path: Path) -> Iterator[tuple[list[Cid], CarBlocks]]:
    """Open a CARv1 file: give its roots and an iterator of its blocks, each verified.

    Raises CarFormatError for a malformed file and BlockCorrupted for a block that does not
    hash to the CID beside it.
    """
    path = Path(path)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
    except OSError as exc:
        raise StoreError(f"cannot read CAR file {path}: {exc.strerror}") from exc
    with stream:
        roots = _read_header(stream, path)
        yield roots, _iter_sections(stream, path)


def import_car(store: BlockStore, path: Path, pin_roots: bool = True) -> list[Cid]:
    """Store every block of the CAR file at ``path`` (each verified), pin its roots, return them.

    One ``bulk()`` call: a store that can commits the blocks and pins once, or not at all."""
    with store.bulk(), open_car(path) as (roots, blocks):
        for cid, block in blocks:
            store.put_block(cid, block)
        if pin_roots:
            for root in roots:
                store.pin(root)
    return roots


def verify_car(path: Path) -> list[Cid]:
    """Check a CAR file completely without storing it; return its roots."""
    with open_car(path) as (roots, blocks):
        for _ in blocks:
            pass
    return roots


def _read_varint(stream: BinaryIO, path: Path, what: str) -> int | None:
    """Read one varint from ``stream``; None at a clean end of file."""
    raw = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            if raw:
                raise CarFormatError(f"{path}: file ends inside the length of {what}")
            return None
        raw += byte
        if not byte[0] & 0x80 or len(raw) >= 10:
            break
    try:
        value, _ = decode_varint(bytes(raw))
    except ValueError as exc:
        raise CarFormatError(f"{path}: bad length of {what}: {exc}") from None
    return value


def _read_exactly(stream: BinaryIO, size: int, path: Path, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CarFormatError(f"{path}: file ends inside {what} ({len(data)} of {size} bytes)")
    return data


def _read_header(stream: BinaryIO, path: Path) -> list[Cid]:
    size = _read_varint(stream, path, "the header")
    if size is None:
        raise CarFormatError(f"{path}: empty file, not a CAR")
    if not 0 < size <= MAX_HEADER_SIZE:
        raise CarFormatError(f"{path}: header length {size} is not plausible")
    raw = _read_exactly(stream, size, path, "the header")
    decoder = cbor2.CBORDecoder(io.BytesIO(raw))
    try:
        header = decoder.decode()
    except (cbor2.CBORError, ValueError, RecursionError) as exc:
        raise CarFormatError(f"{path}: header is not valid CBOR: {exc}") from None
    if decoder.fp.tell() != size:
        raise CarFormatError(f"{path}: unexpected bytes after the header")
    if not isinstance(header, dict) or set(header) != {"roots", "version"}:
        raise CarFormatError(f"{path}: header is not a CARv1 {{roots, version}} map")
    if header["version"] != 1:
        raise CarFormatError(f"{path}: CAR version {header['version']!r} (only v1 is supported)")
    if not isinstance(header["roots"], list):
        raise CarFormatError(f"{path}: header roots is not a list")
    return [_decode_root(item, path) for item in header["roots"]]


def _decode_root(item: object, path: Path) -> Cid:
    if not (
        isinstance(item, cbor2.CBORTag)
        and item.tag == CID_TAG
        and isinstance(item.value, bytes)
        and item.value[:1] == b"\x00"
    ):
        raise CarFormatError(f"{path}: a header root is not a CID (CBOR tag 42)")
    try:
        return Cid.from_bytes(item.value[1:])
    except InvalidCid as exc:
        raise CarFormatError(f"{path}: a header root is unusable: {exc}") from None


def _iter_sections(stream: BinaryIO, path: Path) -> CarBlocks:
    index = 0
    while (size := _read_varint(stream, path, f"section {index}")) is not None:
        if not 0 < size <= MAX_SECTION_SIZE:
            raise CarFormatError(f"{path}: section {index} has implausible length {size}")
        section = _read_exactly(stream, size, path, f"section {index}")
        try:
            cid, start = Cid.read_from(section, 0)
        except InvalidCid as exc:
            raise CarFormatError(f"{path}: section {index} has an unusable CID: {exc}") from None
        block = section[start:]
        verify_block(cid, block, f"CAR file {path}")
        yield cid, block
        index += 1
