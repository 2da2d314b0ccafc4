"""One helper thread for the GIL-free half of sealing or opening a large body.

Sealing 10 MB spends as long hashing (sha2-256 of every block, the HMAC commitment of the
plaintext) as encrypting and storing together, and hashlib releases the GIL while it hashes,
so a large body's hashing runs on a second thread, in the order it was handed over, while this
one encrypts and writes blocks. Small bodies do it all here: a thread costs more than their
hashes. The thread ends with the ``with`` block, so a fork (sealing's worker pool) never
copies one.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HELPER_FROM = 1 << 20
"""Bodies at least this large (bytes) get a helper thread."""

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Inline(Executor):
    """Runs each task at once, in the caller's thread (for small bodies)."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn`` now; its result (or exception) is in the returned future."""
        done: Future[_T] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            done.set_exception(exc)
        return done


@contextlib.contextmanager
def helper(size: int) -> Iterator[Executor]:
    """One worker thread for a body of ``size`` bytes (tasks run in order), or :class:`Inline`
    for a small one. On leaving, every task handed over has run (after an error, the ones not
    started are dropped) and the thread has ended."""
    if size < HELPER_FROM:
        yield Inline()
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="medledger-hash")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
