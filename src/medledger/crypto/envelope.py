"""Envelope encryption of record bodies.

Each body gets its own random 256-bit key and is encrypted with AES-256-GCM (``cryptography``),
with the record's identity (chain, registry, patient, issuer, category, previous version) bound
as associated data, so a ciphertext moved under another record does not open. The body key and
the commitment salt are wrapped for each reader with ECIES on secp256k1 (``eciespy``, over
``coincurve``), to the reader's public key as published in the ProviderRegistry, so any
Ethereum account can be a reader.

A sealed body is one self-contained object, stored in IPFS as-is::

    b"MLB1" | u32 header length | header (JSON) | 12-byte nonce | ciphertext | 16-byte tag

The header lists the wrapped keys of the first readers (the patient and the issuer): public
keys only, which are on chain anyway. Readers added later get their wrapped key in a separate
envelope (key delivery), so the body's CID never changes.

Key wrapping is eciespy's ECIES (its defaults: an uncompressed ephemeral key, HKDF-SHA256 over
``ephemeral point || shared point``, AES-256-GCM with a 16-byte nonce), written out here over
``coincurve`` and ``cryptography``, byte for byte what ``ecies.encrypt`` makes and
``ecies.decrypt`` opens (the tests check both directions against eciespy). Two reasons: eciespy
builds its AES and HKDF objects through pycryptodome's Python layer, about 590 us a wrap here
against about 170 us for the same operations below; and its API cannot reuse a key
encapsulation. A :class:`Wrapper` encapsulates once per recipient and wraps every body secret
of one anchoring call under that recipient's derived key (the KEM/DEM split of hybrid
encryption, as HPKE's multi-message contexts do): each wrap is still an ordinary ECIES
ciphertext with its own random nonce, and everything wrapped under one derived key is for that
recipient alone, so nothing is shared that the recipient could not open anyway.

Large bodies are sealed as a stream (:class:`SealedStream`): the caller hands it the buffers the
sealed bytes belong in (the store's blocks) and it writes the header, encrypts the plaintext
straight into them and appends the tag, so a 10 MB body is never copied whole. It is the same
AES-256-GCM (the streaming encryptor gives the one-shot API's ciphertext and tag), so the bytes
are those :func:`seal` returns for the same key, nonce and header.

The integrity commitment anchored on chain is ``HMAC-SHA256(salt, plaintext)``: it proves a
decrypted body is the one anchored, while the random salt stops anyone guessing a short
plaintext from the commitment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medledger.errors import CryptoError, DecryptionFailed, NoKeyForReader

if TYPE_CHECKING:
    from collections.abc import Callable

MAGIC = b"MLB1"
KEY_BYTES = 32
SALT_BYTES = 32
NONCE_BYTES = 12
_HEADER_LENGTH = struct.Struct(">I")
_ECIES_POINT = 65  # uncompressed secp256k1 point, eciespy's default for the ephemeral key
_ECIES_NONCE = 16  # eciespy's default AES-GCM nonce length
_ECIES_TAG = 16
_AES_TAG = 16


@dataclass(frozen=True)
class BodySecret:
    """What a reader needs to open and check one body: its key and its commitment salt."""

    key: bytes
    salt: bytes

    def pack(self) -> bytes:
        """Return ``key || salt`` (the plaintext that ECIES wraps)."""
        return self.key + self.salt

    @classmethod
    def unpack(cls, data: bytes) -> BodySecret:
        """Split ``key || salt``."""
        if len(data) != KEY_BYTES + SALT_BYTES:
            raise CryptoError("a wrapped body secret has the wrong length")
        return cls(key=data[:KEY_BYTES], salt=data[KEY_BYTES:])

    @classmethod
    def generate(cls) -> BodySecret:
        """Return a fresh random key and salt."""
        return cls(key=os.urandom(KEY_BYTES), salt=os.urandom(SALT_BYTES))


def public_key(private_key: bytes) -> bytes:
    """Return the compressed (33-byte) secp256k1 public key of a private key."""
    return bytes(coincurve.PrivateKey(private_key).public_key.format(compressed=True))


def check_public_key(key: bytes) -> bytes:
    """Return ``key`` if it is a valid compressed secp256k1 point, else raise ``CryptoError``."""
    if len(key) != 33:
        raise CryptoError(f"a public key must be 33 bytes (compressed), not {len(key)}")
    try:
        coincurve.PublicKey(key)
    except ValueError:
        raise CryptoError(f"0x{key.hex()} is not a point on secp256k1") from None
    return key


def commitment(salt: bytes, plaintext: bytes) -> bytes:
    """Return the salted commitment to a plaintext, ``HMAC-SHA256(salt, plaintext)``."""
    return commitment_mac(salt, plaintext).digest()


def commitment_mac(salt: bytes, plaintext: bytes = b"") -> hmac.HMAC:
    """The commitment as a running MAC, for a plaintext fed piece by piece (``update``)."""
    return hmac.new(salt, plaintext, hashlib.sha256)


def _derive(ephemeral_point: bytes, shared_point: bytes) -> AESGCM:
    """eciespy's key derivation: HKDF-SHA256 (empty salt and info) of both uncompressed points."""
    key = HKDF(hashes.SHA256(), 32, salt=b"", info=b"").derive(ephemeral_point + shared_point)
    return AESGCM(key)


def _encapsulate(recipient: bytes) -> tuple[bytes, AESGCM]:
    """A fresh ephemeral key agreed with ``recipient``: (ephemeral point, derived cipher)."""
    peer = coincurve.PublicKey(check_public_key(recipient))
    ephemeral = coincurve.PrivateKey()
    point = ephemeral.public_key.format(compressed=False)
    shared = peer.multiply(ephemeral.secret).format(compressed=False)
    return point, _derive(point, shared)


def _ecies_seal(point: bytes, cipher: AESGCM, plaintext: bytes) -> bytes:
    """``point || nonce || tag || ciphertext``, eciespy's layout."""
    nonce = os.urandom(_ECIES_NONCE)
    sealed = cipher.encrypt(nonce, plaintext, None)
    return point + nonce + sealed[-_ECIES_TAG:] + sealed[:-_ECIES_TAG]


class Wrapper:
    """Wraps body secrets with one key encapsulation per recipient (see the module notes).

    Use one per anchoring call, never across patients' sessions: it holds derived keys.
    """

    def __init__(self) -> None:
        self._ciphers: dict[bytes, tuple[bytes, AESGCM]] = {}

    def wrap(self, secret: BodySecret, recipient: bytes) -> bytes:
        """Wrap ``secret`` for ``recipient`` (an eciespy-compatible ciphertext)."""
        found = self._ciphers.get(recipient)
        if found is None:
            found = self._ciphers[recipient] = _encapsulate(recipient)
        return _ecies_seal(*found, secret.pack())


def wrap(secret: BodySecret, recipient: bytes) -> bytes:
    """Wrap a body secret for a recipient's public key (ECIES, secp256k1, fresh ephemeral key)."""
    return _ecies_seal(*_encapsulate(recipient), secret.pack())


def unwrap(wrapped: bytes, private_key: bytes) -> BodySecret:
    """Unwrap a body secret with a private key; a wrong key raises ``DecryptionFailed``."""
    point = wrapped[:_ECIES_POINT]
    nonce = wrapped[_ECIES_POINT : _ECIES_POINT + _ECIES_NONCE]
    tag = wrapped[_ECIES_POINT + _ECIES_NONCE : _ECIES_POINT + _ECIES_NONCE + _ECIES_TAG]
    body = wrapped[_ECIES_POINT + _ECIES_NONCE + _ECIES_TAG :]
    try:
        shared = coincurve.PublicKey(point).multiply(private_key).format(compressed=False)
        return BodySecret.unpack(_derive(point, shared).decrypt(nonce, body + tag, None))
    except (ValueError, InvalidTag):  # not a point, a bad key, or not wrapped for this key
        raise DecryptionFailed("this key does not open the wrapped record key") from None


def seal(
    plaintext: bytes,
    aad: bytes,
    recipients: list[bytes],
    secret: BodySecret,
    wrapper: Wrapper | None = None,
) -> bytes:
    """Encrypt a body and wrap its secret for each recipient; return the sealed object.

    Pass one ``wrapper`` to seal many bodies for the same recipients cheaply.
    """
    prefix = _prefix(header(recipients, secret, wrapper), os.urandom(NONCE_BYTES))
    nonce = prefix[-NONCE_BYTES:]
    return b"".join((prefix, AESGCM(secret.key).encrypt(nonce, plaintext, aad)))


def header(recipients: list[bytes], secret: BodySecret, wrapper: Wrapper | None = None) -> bytes:
    """The sealed object's JSON header: ``secret`` wrapped for each recipient (once each)."""
    wrap_one = wrapper.wrap if wrapper is not None else wrap
    document = {
        "v": 1,
        "alg": "AES-256-GCM",
        "wrap": "ECIES-secp256k1",
        "readers": [
            {"pub": r.hex(), "key": base64.b64encode(wrap_one(secret, r)).decode()}
            for r in dict.fromkeys(recipients)
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _prefix(header_bytes: bytes, nonce: bytes) -> bytes:
    """Everything before the ciphertext: magic, header length, header, nonce."""
    return b"".join((MAGIC, _HEADER_LENGTH.pack(len(header_bytes)), header_bytes, nonce))


class SealedStream:
    """The sealed object of one plaintext, written piece by piece into the caller's buffers.

    ``write_into`` fills each buffer with the next bytes of ``prefix | ciphertext | tag``,
    encrypting the plaintext directly into it; the buffers together hold exactly what
    :func:`seal` returns for the same key, nonce and header. Write ``size`` bytes in all.
    ``consumed``, if given, receives each slice of the plaintext once it is encrypted (in
    order: a commitment can be computed as the body is sealed).
    """

    def __init__(
        self,
        plaintext: bytes,
        aad: bytes,
        key: bytes,
        nonce: bytes,
        header_bytes: bytes,
        consumed: Callable[[memoryview], object] | None = None,
    ) -> None:
        self._consumed = consumed
        self._prefix = _prefix(header_bytes, nonce)
        self._plain = memoryview(plaintext)
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        self._encryptor.authenticate_additional_data(aad)
        self._tag: bytes | None = None
        self._written = 0
        self.size = len(self._prefix) + len(self._plain) + _AES_TAG

    def write_into(self, out: memoryview) -> None:
        """Write the next ``len(out)`` bytes of the sealed object into ``out``."""
        start, end = self._written, self._written + len(out)
        if end > self.size:
            raise ValueError("the sealed object is shorter than the buffers given")
        head, body_end = len(self._prefix), len(self._prefix) + len(self._plain)
        at = 0
        if start < head:  # the magic, header and nonce
            n = min(end, head) - start
            out[:n] = self._prefix[start : start + n]
            at, start = n, start + n
        if start < body_end and start < end:  # ciphertext, encrypted in place
            n = min(end, body_end) - start
            piece = self._plain[start - head : start - head + n]
            self._encryptor.update_into(piece, out[at:])
            if self._consumed is not None:
                self._consumed(piece)
            at, start = at + n, start + n
        if start < end:  # the tag, once every byte is encrypted
            tag = self._finish()
            out[at:] = tag[start - body_end : end - body_end]
        self._written = end

    def _finish(self) -> bytes:
        if self._tag is None:
            self._encryptor.finalize()
            self._tag = self._encryptor.tag
        return self._tag


def readers(sealed: bytes) -> dict[bytes, bytes]:
    """Return the wrapped secrets in a sealed body's header, keyed by reader public key."""
    header, _ = _split(sealed)
    entries = header.get("readers")
    if not isinstance(entries, list):
        raise CryptoError("the sealed body's header lists no readers")
    try:
        return {bytes.fromhex(r["pub"]): base64.b64decode(r["key"]) for r in entries}
    except (KeyError, TypeError, ValueError):
        raise CryptoError("the sealed body's header is malformed") from None


def secret_for(sealed: bytes, private_key: bytes) -> BodySecret:
    """Find and unwrap the secret wrapped for ``private_key`` in a sealed body's header."""
    wrapped = readers(sealed).get(public_key(private_key))
    if wrapped is None:
        raise NoKeyForReader("this record's key was not wrapped for your account")
    return unwrap(wrapped, private_key)


def open_sealed(sealed: bytes, aad: bytes, secret: BodySecret) -> bytes:
    """Decrypt a sealed body; a wrong key, context or altered ciphertext raises."""
    _, offset = _split(sealed)
    nonce = sealed[offset : offset + NONCE_BYTES]
    try:
        return AESGCM(secret.key).decrypt(nonce, memoryview(sealed)[offset + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionFailed(
            "the body does not decrypt: wrong key, wrong record, or altered ciphertext"
        ) from None


def _split(sealed: bytes) -> tuple[dict[str, object], int]:
    if sealed[:4] != MAGIC or len(sealed) < 8:
        raise CryptoError("not a MedLedger sealed body (bad magic)")
    (length,) = _HEADER_LENGTH.unpack_from(sealed, 4)
    end = 8 + length
    if end + NONCE_BYTES + 16 > len(sealed):
        raise CryptoError("sealed body is truncated")
    try:
        header = json.loads(sealed[8:end])
    except ValueError:
        raise CryptoError("the sealed body's header is not JSON") from None
    if not isinstance(header, dict) or header.get("v") != 1:
        raise CryptoError("unsupported sealed body version")
    return header, end
