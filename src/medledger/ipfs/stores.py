"""Opening the block store the settings ask for: embedded, Kubo nodes, or both replicated, and
remote pinning services on top (see :mod:`medledger.ipfs.remotepins` for how they fit)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from medledger.errors import ConfigurationError, Notice
from medledger.ipfs.local import LocalBlockStore

if TYPE_CHECKING:
    from medledger.config import Settings
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.kubo import KuboStore
    from medledger.ipfs.remotepins import RemotePinnedStore


def open_store(settings: Settings) -> BlockStore:
    """Return the configured store: the embedded one by default, replicated to Kubo nodes,
    with remote pins on the configured pinning services."""
    stores: list[BlockStore] = []
    if settings.embedded_store:
        stores.append(LocalBlockStore(settings.ipfs_dir))
    kubos = kubo_stores(settings)
    stores.extend(kubos)
    store: BlockStore
    if len(stores) == 1:
        store = stores[0]
    else:
        from medledger.ipfs.replicated import ReplicatedStore

        # Every configured store must take each write: a record is anchored only once its body
        # is everywhere the settings say, so a Kubo node that is down stops the anchoring
        # (clearly) instead of leaving a record whose body lives on one disk.
        store = ReplicatedStore(stores)
    if settings.pinning:
        return remote_pins(settings, store, kubos)
    return store


def kubo_stores(settings: Settings) -> list[KuboStore]:
    """The configured Kubo nodes, with the RPC secret when one is configured."""
    if not settings.kubo_urls:
        return []
    from medledger.ipfs.kubo import KuboStore

    secret = settings.kubo_auth.read() if settings.kubo_auth is not None else None
    for url in settings.kubo_urls:
        host = urlsplit(url).hostname or ""
        if secret and url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(
                Notice(f"the Kubo RPC secret goes to {url} unencrypted: use https:// there"),
                stacklevel=2,
            )
    return [KuboStore(url, auth=secret) for url in settings.kubo_urls]


def remote_pins(
    settings: Settings, store: BlockStore, kubos: list[KuboStore] | None = None
) -> RemotePinnedStore:
    """``store`` with the configured pinning services asking for its pins; the Kubo nodes are
    the origins the services fetch from."""
    from medledger.ipfs.pinning import PinningService
    from medledger.ipfs.remotepins import RemotePinnedStore, RemoteService

    kubos = kubo_stores(settings) if kubos is None else kubos
    if not kubos:
        raise ConfigurationError(
            "config.toml [[ipfs.pinning]]",
            "a pinning service fetches what it pins from an IPFS node: add a Kubo node to "
            "[ipfs] kubo (the embedded store is not on the network)",
        )
    services = [
        RemoteService(PinningService(p.name, p.endpoint, p.token.read()), p.wait)
        for p in settings.pinning
    ]

    def connect(delegate: str) -> None:
        for kubo in kubos:
            kubo.connect(delegate)

    return RemotePinnedStore(
        store, services, lambda: [a for k in kubos for a in k.addresses()], connect=connect
    )
