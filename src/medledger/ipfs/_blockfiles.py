"""Large blocks as files, flatfs-like: ``blocks/<two hex digits>/<multihash in hex>``.

The embedded store keeps small blocks in its database and blocks of :data:`LARGE` bytes or more
here: a 256 KiB chunk of a big body costs about 0.25 ms as a file and 0.6-1.3 ms as a database
row (measured on this machine; SQLite's own advice puts the turn near 100 KB). Every write goes
to a temporary file beside its place and is renamed over it, so a reader never sees half a block.
Blocks are not fsynced (one fsync per 256 KiB block cost four times the import); a block lost in
a power cut is detected on read, as a missing or altered block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.errors import StoreError
from medledger.files import write_atomically

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from medledger.ipfs.cid import Cid
    from medledger.ipfs.protobuf import BytesLike

LARGE = 32 * 1024
"""Blocks of this size or more are files; smaller ones are rows of the store's database."""

_MULTIHASH_HEX = len("1220") + 64


def block_file(folder: Path, multihash: bytes) -> Path:
    """Where the block with this multihash lives under ``folder`` (the ``blocks`` folder)."""
    return folder / multihash[2:3].hex() / multihash.hex()


def make_shards(folder: Path) -> None:
    """Create ``folder`` and its 256 shard folders, once: a block written to a missing shard
    costs a failed open, a mkdir and a second open (a 10 MB body touches ~40 shards, and
    creating them as it goes made its import 40% slower)."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(256):
        (folder / f"{shard:02x}").mkdir(exist_ok=True)


def write_block_file(folder: Path, cid: Cid, data: BytesLike, store_name: str) -> None:
    """Write a block file whole or not at all; StoreError naming the store if the OS refuses."""
    path = block_file(folder, cid.multihash)
    try:
        try:
            write_atomically(path, data, sync=False)
        except FileNotFoundError:  # the first block of this shard: create its folder once
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data, sync=False)
    except OSError as exc:
        raise StoreError(f"{store_name} cannot write block {cid}: {exc.strerror}") from exc


def iter_block_files(folder: Path) -> Iterator[tuple[bytes, Path]]:
    """``(multihash, path)`` of every block file (temporary and foreign files are skipped)."""
    if not folder.is_dir():
        return
    for shard in folder.iterdir():
        if not shard.is_dir():
            continue
        for path in shard.iterdir():
            name = path.name
            if len(name) != _MULTIHASH_HEX or not name.startswith("1220"):
                continue
            try:
                yield bytes.fromhex(name), path
            except ValueError:
                continue
