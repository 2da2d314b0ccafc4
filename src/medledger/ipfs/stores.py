"""Opening the block store the settings ask for: embedded, Kubo nodes, or both replicated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.ipfs.local import LocalBlockStore

if TYPE_CHECKING:
    from medledger.config import Settings
    from medledger.ipfs.blockstore import BlockStore


def open_store(settings: Settings) -> BlockStore:
    """Return the configured store: the embedded one by default, replicated to Kubo nodes."""
    stores: list[BlockStore] = []
    if settings.embedded_store:
        stores.append(LocalBlockStore(settings.ipfs_dir))
    if settings.kubo_urls:
        from medledger.ipfs.kubo import KuboStore

        stores.extend(KuboStore(url) for url in settings.kubo_urls)
    if len(stores) == 1:
        return stores[0]
    from medledger.ipfs.replicated import ReplicatedStore

    # Every configured store must take each write: a record is anchored only once its body is
    # everywhere the settings say, so a Kubo node that is down stops the anchoring (clearly)
    # instead of leaving a record whose body lives on one disk.
    return ReplicatedStore(stores)
