"""IPFS storage for MedLedger: CIDs, UnixFS import identical to ``ipfs add``, block stores, CAR.

The usual entry points::

    store = LocalBlockStore(home / "ipfs")          # embedded, no daemon
    store = KuboStore("http://127.0.0.1:5001")      # a Kubo node's RPC API
    store = ReplicatedStore([local, kubo], min_copies=1)
    store = RemotePinnedStore(store, [RemoteService(PinningService(name, url, token))],
                              kubo.addresses)       # and pinned by pinning services

    cid = store.add_bytes(body)                     # same CID as `ipfs add -Q`
    body = store.cat(cid)                           # every block verified
    export_car(store, cid, Path("record.car"))
    roots = import_car(other_store, Path("record.car"))

``hash_bytes(body)`` gives the CID without storing anything (``ipfs add -n``), and
``Cid.from_digest_v0(digest)`` rebuilds a CID from the 32 bytes the chain stores.
``stores.open_store(settings)`` builds the store the configuration asks for; ``pinning`` and
``remotepins`` are imported from their modules.
"""

from medledger.ipfs.blockstore import BlockStore, BlockStoreBase
from medledger.ipfs.car import export_car, import_car, verify_car
from medledger.ipfs.cid import DAG_PB, RAW, Cid
from medledger.ipfs.kubo import DEFAULT_API_URL, KuboStore
from medledger.ipfs.local import LocalBlockStore
from medledger.ipfs.replicated import ReplicatedStore
from medledger.ipfs.unixfs import CHUNK_SIZE, MAX_LINKS, hash_bytes

__all__ = [
    "CHUNK_SIZE",
    "DAG_PB",
    "DEFAULT_API_URL",
    "MAX_LINKS",
    "RAW",
    "BlockStore",
    "BlockStoreBase",
    "Cid",
    "KuboStore",
    "LocalBlockStore",
    "ReplicatedStore",
    "export_car",
    "hash_bytes",
    "import_car",
    "verify_car",
]
