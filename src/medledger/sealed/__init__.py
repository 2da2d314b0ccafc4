"""Sealed documents: the one way a body is encrypted, stored and opened again.

A document (a record body, trial data, a protocol, a policy's terms, a key envelope's
contents) is sealed under a fresh AES-256-GCM key with its context as associated data, the key
wrapped for each reader (ECIES, :mod:`medledger.crypto.envelope`), and stored in the block
store; :func:`seal_many` does many in worker processes. :func:`open_one` decrypts with the
reader's key (or a delivered secret) and checks the plaintext against its commitment.
"""

from medledger.sealed.opening import open_one, secret_of
from medledger.sealed.sealing import (
    Document,
    Sealed,
    seal_many,
    seal_one,
    worker_count,
)

__all__ = ["Document", "Sealed", "open_one", "seal_many", "seal_one", "secret_of", "worker_count"]
