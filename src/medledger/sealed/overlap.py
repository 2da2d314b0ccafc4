"""One helper thread for the GIL-free half of sealing a large body (its hashing).

Sealing 10 MB spends as long hashing (sha2-256 of every block, the HMAC commitment of the
plaintext) as encrypting and storing together, and hashlib releases the GIL while it hashes,
so a large body's hashing runs on a second thread, in the order it was handed over, while this
one encrypts and writes blocks. The thread ends with the ``with`` block, so a fork (sealing's
worker pool) never copies one.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

HELPER_FROM = 1 << 20
"""Bodies at least this large (bytes) are sealed as a stream with a helper thread; smaller ones
are sealed in one piece (``envelope.seal``), where the copies cost less than a thread."""


@contextlib.contextmanager
def helper() -> Iterator[Executor]:
    """One worker thread (tasks run in the order given). On leaving, every task handed over
    has run (after an error, the ones not started are dropped) and the thread has ended."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="medledger-hash")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
