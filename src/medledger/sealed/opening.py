"""Opening a sealed document: find the reader's secret, decrypt, check the commitment."""

from __future__ import annotations

from medledger.crypto import envelope
from medledger.errors import IntegrityError


def secret_of(sealed: bytes, private_key: bytes) -> envelope.BodySecret:
    """The secret wrapped for ``private_key`` in a sealed document's header
    (``NoKeyForReader`` when there is none)."""
    return envelope.secret_for(sealed, private_key)


def open_one(
    sealed: bytes,
    aad: bytes,
    commitment: bytes | None,
    secret: envelope.BodySecret | None = None,
    private_key: bytes | None = None,
    what: str = "document",
) -> bytes:
    """Decrypt a sealed document in its context and check it against its commitment.

    The secret is ``secret`` (delivered in a key envelope) or the one wrapped in the header
    for ``private_key``. A wrong key, another context or an altered ciphertext raises
    ``DecryptionFailed``; a plaintext that does not match ``commitment`` raises
    ``IntegrityError`` naming ``what``. ``commitment`` is None only for a document no
    commitment was published for (a key envelope: the chain holds the digest of its sealed
    bytes, which AES-GCM authenticates)."""
    if secret is None:
        if private_key is None:
            raise ValueError("open_one needs a secret or a private key")
        secret = envelope.secret_for(sealed, private_key)
    plaintext = envelope.open_sealed(sealed, aad, secret)
    if commitment is not None and envelope.commitment(secret.salt, plaintext) != commitment:
        raise IntegrityError(f"{what}: decrypted body does not match its commitment")
    return plaintext
