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


def key_proof(chain: Chain, account: Signer) -> tuple[bytes, bytes]:
    """The account's own encryption key and its proof of possession (its signature of
    ``EncryptionKey(account, key)`` in the registry's EIP-712 domain)."""
    key = envelope.public_key(account.key)
    document = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, registry(chain).address, "EncryptionKey",
        KEY_FIELDS, {"account": account.address, "key": key},
    )  # fmt: skip
    return key, eip712.sign(account.key, document)


def publish_key(chain: Chain, account: Signer) -> Receipt:
    """Publish (or rotate to) the account's own encryption key."""
    if participant(chain, account.address).role is Role.NONE:
        raise PreconditionFailed(f"{account.address} has no role in the registry")
    key, proof = key_proof(chain, account)
    return chain.transact(
        "publishing the encryption key",
        account,
        registry(chain).functions.publishEncryptionKey(key, proof),
    )
