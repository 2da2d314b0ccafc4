"""Sameness keys: a private, stable name for "this body, for this purpose, from this writer".

Anchoring the same FHIR body twice would make two records (sealing draws a fresh key each time),
so the writers (records, trial data) ask first whether they wrote this body before. The question
is asked with a *sameness key*: an HMAC-SHA256, under a secret derived from the writer's private
key (HKDF-SHA256, so the key itself is never used twice), of the context the caller gives and
the body in canonical JSON (a re-indented copy of the same resource is the same body). Only the
writer can compute it, and it stays in the writer's home (the outbox), so it tells nobody else
anything. ``hmac`` and ``cryptography``'s HKDF do the work; nothing here is hand-rolled crypto.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medledger import documents

if TYPE_CHECKING:
    from collections.abc import Container, Sequence

_INFO = b"medledger/anchor-once/v1"


def writer_secret(private_key: bytes) -> bytes:
    """The writer's sameness secret (HKDF-SHA256 of its private key)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(private_key)


def sameness_key(secret: bytes, context: bytes, body: bytes) -> bytes:
    """The key of ``body`` written in ``context`` (chain, contract, subject... as the caller
    packs them)."""
    message = context + hashlib.sha256(canonical(body)).digest()
    return hmac.new(secret, message, hashlib.sha256).digest()


def canonical(body: bytes) -> bytes:
    """JSON with sorted keys and no spaces; a body that is not JSON stays as it is."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return documents.canonical(data)


def to_write(keys: Sequence[bytes], written: Container[bytes]) -> tuple[list[int], tuple[int, ...]]:
    """Which positions of ``keys`` to write: the first of each key not ``written`` already; and
    the positions that write nothing (written before, or a repeat within ``keys``)."""
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    todo = [i for i, key in enumerate(keys) if key not in written and first[key] == i]
    chosen = set(todo)
    return todo, tuple(i for i in range(len(keys)) if i not in chosen)
