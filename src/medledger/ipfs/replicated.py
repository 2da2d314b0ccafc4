"""Replication over several block stores (say the embedded store and one or more Kubo nodes).

Writes go to every store and succeed when at least ``min_copies`` stores took them; a store that
fails during an import is left out for the rest of it, so one dead node costs its timeout once,
not once per block. Reads ask the stores in order and return the first valid copy: a store that
is down, lacks the block or serves altered bytes is skipped, and an altered copy is overwritten
with the valid one when a later store has it (a best-effort repair). When no store can serve a
valid copy the error names what each store said. A store found unreachable is asked last for
the next ``DOWN_PAUSE`` seconds, so reading a many-block file does not wait for its timeout on
every block.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, TypeVar

from medledger.errors import (
    BlockCorrupted,
    BlockNotFound,
    ConfigurationError,
    NodeUnavailable,
    ReplicationError,
    StoreError,
)
from medledger.ipfs.blockstore import BlockStore, BlockStoreBase
from medledger.ipfs.unixfs import import_chunks

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from medledger.ipfs.cid import Cid
    from medledger.ipfs.protobuf import BytesLike

log = logging.getLogger(__name__)

StoreFailure = (StoreError, NodeUnavailable)
"""What a store raises when it cannot do something (NodeUnavailable is a ConnectionError)."""

T = TypeVar("T")

DOWN_PAUSE = 30.0


class ReplicatedStore(BlockStoreBase):
    """One BlockStore made of several: every write to each store, reads from the first valid."""

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Every store's bulk context at once."""
        with contextlib.ExitStack() as stack:
            for store in self.stores:
                stack.enter_context(store.bulk())
            yield

    def __init__(self, stores: Sequence[BlockStore], min_copies: int | None = None) -> None:
        if not stores:
            raise ConfigurationError("IPFS stores", "a replicated store needs at least one store")
        self.stores = list(stores)
        self.min_copies = len(self.stores) if min_copies is None else min_copies
        if not 1 <= self.min_copies <= len(self.stores):
            raise ConfigurationError(
                "min_copies", f"must be between 1 and {len(self.stores)}, got {self.min_copies}"
            )
        self._down_until: dict[int, float] = {}  # store index -> when to ask it first again
        super().__init__("replicated store (" + ", ".join(s.name for s in self.stores) + ")")

    # --- helpers ------------------------------------------------------------------------------

    def _on_each(self, action: str, operation: Callable[[BlockStore], T], required: int) -> list[T]:
        """Run ``operation`` on every store; ReplicationError if fewer than ``required`` succeed."""
        results: list[T] = []
        failures: dict[str, Exception] = {}
        for store in self.stores:
            try:
                results.append(operation(store))
            except StoreFailure as exc:
                failures[store.name] = exc
        if len(results) < required:
            raise ReplicationError(
                f"{action} succeeded on {len(results)} store(s), {required} needed", failures
            )
        for name, problem in failures.items():
            log.warning("%s failed on %s: %s", action, name, problem)
        return results

    # --- blocks -------------------------------------------------------------------------------

    def _write_block(self, cid: Cid, data: BytesLike) -> None:
        self._on_each(f"writing block {cid}", lambda s: s.put_block(cid, data), self.min_copies)

    def get_block(self, cid: Cid) -> bytes:
        """The first valid copy, store by store; altered copies are repaired from it."""
        failures: dict[str, Exception] = {}
        altered: list[BlockStore] = []
        now = time.monotonic()
        order = sorted(range(len(self.stores)), key=lambda i: self._down_until.get(i, 0) > now)
        for index in order:
            store = self.stores[index]
            try:
                data = store.get_block(cid)
            except StoreFailure as exc:
                failures[store.name] = exc
                if isinstance(exc, NodeUnavailable):
                    self._down_until[index] = time.monotonic() + DOWN_PAUSE
                if isinstance(exc, BlockCorrupted):
                    log.warning("%s", exc)
                    altered.append(store)
                continue
            self._down_until.pop(index, None)
            self._repair(altered, cid, data)
            return data
        if all(isinstance(exc, BlockNotFound) for exc in failures.values()):
            raise BlockNotFound(str(cid))
        raise ReplicationError(f"no store could serve a valid copy of block {cid}", failures)

    @staticmethod
    def _repair(stores: list[BlockStore], cid: Cid, data: bytes) -> None:
        for store in stores:
            try:
                store.put_block(cid, data)
            except StoreFailure as exc:
                log.warning("could not repair block %s in %s: %s", cid, store.name, exc)

    def has(self, cid: Cid) -> bool:
        """True when any store holds the block; ReplicationError if none answers."""
        return any(self._on_each(f"looking for block {cid}", lambda s: s.has(cid), 1))

    def delete_block(self, cid: Cid) -> None:
        """Remove the block from every store; ReplicationError if any store fails."""
        self._on_each(f"deleting block {cid}", lambda s: s.delete_block(cid), len(self.stores))

    # --- files and pins -----------------------------------------------------------------------

    def _import(self, chunks: Iterable[BytesLike], pin: bool) -> Cid:
        live = list(self.stores)
        failures: dict[str, Exception] = {}

        def drop(store: BlockStore, exc: Exception) -> None:
            failures[store.name] = exc
            live.remove(store)
            if len(live) < self.min_copies:
                raise ReplicationError(
                    f"adding a file reached {len(live)} stores, {self.min_copies} needed", failures
                )

        def write(cid: Cid, data: BytesLike) -> None:
            for store in list(live):
                try:
                    store.put_block(cid, data)
                except StoreFailure as exc:
                    drop(store, exc)

        root = import_chunks(chunks, write)
        if pin:
            for store in list(live):
                try:
                    store.pin(root)
                except StoreFailure as exc:
                    drop(store, exc)
        for name, problem in failures.items():
            log.warning("adding %s skipped %s: %s", root, name, problem)
        return root

    def pin(self, cid: Cid) -> None:
        """Pin on every store; ReplicationError if fewer than ``min_copies`` succeed."""
        self._on_each(f"pinning {cid}", lambda s: s.pin(cid), self.min_copies)

    def unpin(self, cid: Cid) -> None:
        """Unpin on every store; ReplicationError if fewer than ``min_copies`` succeed."""
        self._on_each(f"unpinning {cid}", lambda s: s.unpin(cid), self.min_copies)

    def pins(self) -> frozenset[Cid]:
        """Roots pinned in any store that answers."""
        return frozenset().union(*self._on_each("listing pins", lambda s: s.pins(), 1))

    def gc(self) -> int:
        """Collect garbage in every store; return the total removed."""
        return sum(self._on_each("collecting garbage", lambda s: s.gc(), self.min_copies))
