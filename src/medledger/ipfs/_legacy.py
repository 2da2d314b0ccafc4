"""Migrating a store written by the file-per-block code (MedLedger before issue #15).

That layout kept every block as a file under ``blocks/`` (the same paths large blocks use now),
one empty file per pin under ``pins/`` and, for each ``bulk()`` call, a ``pins/<random>.pinset``
file with one CID a line. Migration runs when the store is opened and ``pins/`` exists:

1. one write transaction copies every pin and every small block file into the database (bytes
   as they are: a block altered on disk stays altered, and is reported on read) and records
   ``meta.legacy_imported``;
2. after the commit, the small block files and the pin files are removed, ``pins/`` last.

A crash before the commit leaves the old layout whole (the next open starts again); a crash
after it leaves ``meta.legacy_imported`` set, so the next open only finishes step 2. Large
block files are already where the new layout keeps them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from medledger.errors import StoreError
from medledger.ipfs._blockfiles import LARGE, iter_block_files
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from pathlib import Path

    from medledger.ipfs.local import LocalBlockStore

PIN_SET_SUFFIX = ".pinset"
_DONE = "legacy_imported"


def needs_migration(root: Path) -> bool:
    """True when ``root`` still holds the old layout's ``pins/`` folder."""
    return (root / "pins").is_dir()


def migrate(store: LocalBlockStore) -> None:
    """Bring the old layout under ``store.root`` into the database (idempotent, crash-safe)."""
    pins_dir = store.root / "pins"
    small = [
        (multihash, path)
        for multihash, path in iter_block_files(store.blocks_dir)
        if path.stat().st_size < LARGE
    ]
    with store._writing() as conn:
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (_DONE,)).fetchone() is None:
            pins = _read_pins(pins_dir)
            conn.executemany(
                "INSERT OR IGNORE INTO pins VALUES (?)", [(c.to_bytes(),) for c in pins]
            )
            conn.executemany(
                "INSERT OR IGNORE INTO blocks VALUES (?, ?)",
                ((multihash, path.read_bytes()) for multihash, path in small),
            )
            conn.execute("INSERT INTO meta VALUES (?, '1')", (_DONE,))
        imported = {bytes(row[0]) for row in conn.execute("SELECT multihash FROM blocks")}
    for multihash, path in small:
        if multihash in imported:
            path.unlink(missing_ok=True)
    for path in pins_dir.iterdir():
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        pins_dir.rmdir()


def _read_pins(pins_dir: Path) -> set[Cid]:
    pins: set[Cid] = set()
    for path in pins_dir.iterdir():
        if path.name.startswith("."):
            continue  # a pin or pin set the old code was still writing: it never existed
        try:
            if path.name.endswith(PIN_SET_SUFFIX):
                pins |= {Cid.parse(line) for line in path.read_text().split()}
            else:
                pins.add(Cid.parse(path.name))
        except (OSError, ValueError) as exc:  # InvalidCid is a ValueError
            raise StoreError(
                f"{path} is damaged: not a pin ({exc}); the store was left as it was"
            ) from exc
    return pins
