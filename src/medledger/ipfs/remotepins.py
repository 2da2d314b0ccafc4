"""Remote pins: the configured stores, plus pinning services asked to pin every root pinned there.

How a pinning service fits. It keeps a copy and serves it to the IPFS network, but it takes no
blocks from us and serves none back over its API: it fetches the DAG itself, from the peers a
pin request names in ``origins``. So it is not one more store in a :class:`ReplicatedStore`
(it could neither take a block nor serve a read); it wraps the configured store instead:

- a remote pin is asked for only once the DAG is on every configured store and pinned there
  (the write and the local pin succeeded), with the Kubo nodes' swarm addresses as ``origins``
  (which is why a pinning service needs a Kubo node: the embedded store is not on the network);
- inside ``bulk()`` (sealing many records) the roots are gathered and asked for when it ends,
  before anything goes on chain, so a refused token stops a write before gas is spent;
- the Kubo nodes then connect to the service's ``delegates`` (the spec's provider hints), so
  the transfer starts at once rather than after a DHT search;
- a CID MedLedger already asked a service for is not asked again (a re-run sends nothing
  twice); a ``failed`` request is replaced (``POST /pins/{requestid}``);
- with ``wait`` > 0 the status is polled until ``pinned`` or ``failed``, for up to ``wait``
  seconds: ``failed`` raises RemotePinFailed (the write stops before the chain), while a pin
  still ``queued`` or ``pinning`` after the wait is a notice, and ``medledger ipfs remote-pins``
  lists it (and ``--retry`` asks again for failed ones) later;
- ``unpin`` (erasure, orphan collection) also removes the service's pin requests for that CID;
- reads, ``has``, ``pins`` and ``gc`` are the wrapped store's.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from medledger.errors import Notice, RemotePinFailed, StoreError
from medledger.ipfs.pinning import UNFINISHED, PinningService, PinStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid
    from medledger.ipfs.protobuf import BytesLike

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
"""The first pause between status checks; each later pause doubles, up to ``POLL_MAX``."""
POLL_MAX = 2.0

_LOOPBACK = ("/ip4/127.", "/ip6/::1/")


@dataclass(frozen=True)
class RemoteService:
    """A pinning service and how long a write waits for its pins to reach ``pinned``."""

    service: PinningService
    wait: float = 0.0


class RemotePinnedStore:
    """A BlockStore whose pinned roots are also pinned by remote pinning services."""

    def __init__(
        self,
        inner: BlockStore,
        services: Sequence[RemoteService],
        origins: Callable[[], list[str]] = list,
        poll: float = POLL_SECONDS,
        connect: Callable[[str], None] | None = None,
    ) -> None:
        self.inner = inner
        self.services = list(services)
        self.poll = poll
        self._find_origins = origins
        self._connect = connect
        self._connected: set[str] = set()
        self._origins: list[str] | None = None
        self._depth = 0
        self._deferred: list[Cid] = []

    @property
    def name(self) -> str:
        """The wrapped store's name and the services'."""
        return f"{self.inner.name} + " + ", ".join(r.service.name for r in self.services)

    # --- what changes: pins -------------------------------------------------------------------

    def pin(self, cid: Cid) -> None:
        """Pin on the wrapped store, then ask every service to pin it."""
        self.inner.pin(cid)
        self._pinned([cid])

    def unpin(self, cid: Cid) -> None:
        """Unpin on the wrapped store and remove the services' pin requests for ``cid``."""
        self.inner.unpin(cid)
        for remote in self.services:
            for status in remote.service.find([cid]):
                remote.service.remove(status.requestid)

    def add_bytes(self, data: bytes, pin: bool = True) -> Cid:
        """Add to the wrapped store; a pinned root is pinned remotely too."""
        return self._added(self.inner.add_bytes(data, pin), pin)

    def add_file(self, path: Path, pin: bool = True) -> Cid:
        """Add a file to the wrapped store; a pinned root is pinned remotely too."""
        return self._added(self.inner.add_file(path, pin), pin)

    def add_chunks(self, chunks: Iterable[BytesLike], pin: bool = True) -> Cid:
        """Add chunks to the wrapped store; a pinned root is pinned remotely too."""
        return self._added(self.inner.add_chunks(chunks, pin), pin)

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """The wrapped store's bulk context; remote pins are asked for when it ends well."""
        self._depth += 1
        try:
            with self.inner.bulk():
                yield
        except BaseException:
            if self._depth == 1:
                self._deferred.clear()  # nothing of a failed write is asked for remotely
            raise
        finally:
            self._depth -= 1
        if self._depth == 0 and self._deferred:
            roots, self._deferred = self._deferred, []
            self.request(roots)

    # --- the remote side ----------------------------------------------------------------------

    def request(self, roots: Sequence[Cid]) -> None:
        """Ask every service to pin ``roots`` (once each), then wait as configured."""
        roots = list(dict.fromkeys(roots))
        for remote in self.services:
            existing = {p.cid.to_v1(): p for p in remote.service.find(roots)}
            asked: list[PinStatus] = []
            for cid in roots:
                earlier = existing.get(cid.to_v1())
                if earlier is None:
                    asked.append(remote.service.add(cid, self.origins(), name=str(cid)))
                elif earlier.status == "failed":
                    asked.append(remote.service.replace(earlier.requestid, cid, self.origins()))
                else:
                    asked.append(earlier)
                self._dial(asked[-1].delegates)
            if remote.wait > 0:
                self._wait(remote, asked)

    def unfinished(self) -> dict[str, list[PinStatus]]:
        """Per service, MedLedger's pin requests not ``pinned`` (queued, pinning or failed)."""
        return {
            r.service.name: r.service.find(statuses=(*UNFINISHED, "failed")) for r in self.services
        }

    def retry_failed(self) -> int:
        """Ask again for every failed pin request; return how many were asked for."""
        count = 0
        for remote in self.services:
            for status in remote.service.find(statuses=("failed",)):
                remote.service.replace(status.requestid, status.cid, self.origins())
                count += 1
        return count

    def origins(self) -> list[str]:
        """The multiaddrs a service may fetch our DAGs from (the Kubo nodes', loopback ones left
        out, at most the spec's 20), found once."""
        if self._origins is None:
            try:
                found = [a for a in self._find_origins() if not a.startswith(_LOOPBACK)]
                self._origins = list(dict.fromkeys(found))[:20]
            except StoreError as exc:  # the service can still find the data through the DHT
                log.warning("no origins for remote pins: %s", exc)
                self._origins = []
        return self._origins

    def _dial(self, delegates: Sequence[str]) -> None:
        """Connect the Kubo nodes to a service's delegates, once each (the spec's provider
        hints); best effort: without it the service still finds the data through the DHT."""
        if self._connect is None:
            return
        for delegate in delegates:
            if delegate in self._connected:
                continue
            self._connected.add(delegate)
            try:
                self._connect(delegate)
            except (StoreError, ConnectionError) as exc:
                log.warning("could not connect to pinning delegate %s: %s", delegate, exc)

    def _wait(self, remote: RemoteService, asked: list[PinStatus]) -> None:
        current = {p.requestid: p for p in asked}
        deadline = time.monotonic() + remote.wait
        pause = self.poll
        while True:
            failed = [p for p in current.values() if p.status == "failed"]
            if failed:
                raise RemotePinFailed(remote.service.name, str(failed[0].cid), failed[0].details)
            unfinished = [p.cid for p in current.values() if p.status in UNFINISHED]
            if not unfinished or time.monotonic() >= deadline:
                break
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, POLL_MAX)
            for status in remote.service.find(unfinished):
                if status.requestid in current:
                    current[status.requestid] = status
        if unfinished:
            warnings.warn(
                Notice(
                    f"{len(unfinished)} pin(s) on {remote.service.name} still queued after "
                    f"{remote.wait:g} s: `medledger ipfs remote-pins` lists them"
                ),
                stacklevel=2,
            )

    def _added(self, root: Cid, pin: bool) -> Cid:
        if pin:
            self._pinned([root])
        return root

    def _pinned(self, roots: list[Cid]) -> None:
        if self._depth:
            self._deferred.extend(roots)
        else:
            self.request(roots)

    # --- what stays the wrapped store's -------------------------------------------------------

    def put_block(self, cid: Cid, data: BytesLike) -> None:
        """Store a block in the wrapped store."""
        self.inner.put_block(cid, data)

    def get_block(self, cid: Cid) -> bytes:
        """Read a block from the wrapped store (a service serves no blocks to us)."""
        return self.inner.get_block(cid)

    def has(self, cid: Cid) -> bool:
        """True when the wrapped store holds the block."""
        return self.inner.has(cid)

    def delete_block(self, cid: Cid) -> None:
        """Remove a block from the wrapped store."""
        self.inner.delete_block(cid)

    def cat(self, cid: Cid) -> bytes:
        """The file ``cid`` from the wrapped store, verified."""
        return self.inner.cat(cid)

    def iter_cat(self, cid: Cid) -> Iterator[memoryview]:
        """The file ``cid`` piece by piece from the wrapped store, verified."""
        return self.inner.iter_cat(cid)

    def pins(self) -> frozenset[Cid]:
        """The wrapped store's pins (remote ones: :meth:`unfinished` and the services)."""
        return self.inner.pins()

    def gc(self) -> int:
        """Collect garbage in the wrapped store."""
        return self.inner.gc()
