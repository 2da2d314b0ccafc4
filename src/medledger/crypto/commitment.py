"""The salted commitment to a plaintext, ``HMAC-SHA256(salt, plaintext)``, beside other work.

Sealing or opening a large body spends as long on this HMAC as on everything else together, and
hashlib releases the GIL while it hashes, so :class:`Commitment` computes it on a second thread
while the caller encrypts or decrypts: the pieces are fed in order, the digest is ready when the
last one is. Small bodies are hashed in the caller's thread (a thread costs more than their
HMAC). No thread outlives the ``with`` block, so a fork (sealing's worker pool) never copies one.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

    from medledger.ipfs.protobuf import BytesLike

THREAD_FROM = 1 << 20
"""Bodies at least this large (bytes) are hashed on a second thread."""


class Commitment:
    """``HMAC-SHA256(salt, pieces...)``, on a second thread when ``size >= THREAD_FROM``.

    Use it as a context manager; a piece must not change once fed.
    """

    def __init__(self, salt: bytes, size: int) -> None:
        self._mac = hmac.new(salt, digestmod=hashlib.sha256)
        self._pieces: queue.SimpleQueue[BytesLike | None] | None = None
        self._thread: threading.Thread | None = None
        if size >= THREAD_FROM:
            self._pieces = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._run, name="commitment", daemon=True)

    def __enter__(self) -> Commitment:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._join()

    def feed(self, piece: BytesLike) -> None:
        """Add the next piece of the plaintext."""
        if self._pieces is None:
            self._mac.update(piece)
        else:
            self._pieces.put(piece)

    def digest(self) -> bytes:
        """The commitment to every piece fed (waits for the second thread)."""
        self._join()
        return self._mac.digest()

    def _run(self) -> None:
        assert self._pieces is not None
        while (piece := self._pieces.get()) is not None:
            self._mac.update(piece)

    def _join(self) -> None:
        if self._thread is not None and self._pieces is not None:
            if self._thread.is_alive():
                self._pieces.put(None)
                self._thread.join()
            self._pieces = None
