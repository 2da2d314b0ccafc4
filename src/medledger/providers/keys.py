"""Encryption keys in the ProviderRegistry: the proof of possession, publishing and rotating.

A participant's key is the compressed public key of its own account; the proof that it holds
the key is the account's EIP-712 signature of ``EncryptionKey(account, key)`` in the
registry's domain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.crypto import eip712, envelope
from medledger.errors import PreconditionFailed
from medledger.providers.participants import Role, participant, registry

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt

KEY_FIELDS = (("account", "address"), ("key", "bytes"))


def key_proof(chain: Chain, account: Signer, owner: str | None = None) -> tuple[bytes, bytes]:
    """The account's own encryption key and its proof of possession (its signature of
    ``EncryptionKey(owner, key)`` in the registry's EIP-712 domain; ``owner`` is the account
    itself, or the patient it controls after a recovery)."""
    key = envelope.public_key(account.key)
    document = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, registry(chain).address, "EncryptionKey",
        KEY_FIELDS, {"account": owner or account.address, "key": key},
    )  # fmt: skip
    return key, eip712.sign(account.key, document)


def publish_key(chain: Chain, account: Signer) -> Receipt:
    """Publish (or rotate to) the account's own encryption key; a patient's controller (its
    new address after a recovery) publishes it as the patient's key."""
    from medledger.providers.recovery import patient_of

    role = participant(chain, account.address).role
    patient = patient_of(chain, account.address) if role in (Role.NONE, Role.PATIENT) else None
    if role is Role.NONE and patient is None:
        raise PreconditionFailed(f"{account.address} has no role in the registry")
    if role is Role.PATIENT and patient is None:
        raise PreconditionFailed(
            f"{account.address} no longer controls its patient record (recovered or frozen)"
        )
    key, proof = key_proof(chain, account, patient)
    return chain.transact(
        "publishing the encryption key",
        account,
        registry(chain).functions.publishEncryptionKey(key, proof),
    )
