"""Identity links: a trial participant shows that a study address and their record address are
both theirs with one statement signed by both keys (EIP-191 ``personal_sign``). Anyone checks it
offline with :func:`verify_link`; nothing of it goes on chain (a site that attests the study
account publishes only a salted commitment to it: :mod:`~medledger.identity.pseudonyms`)."""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError
from hexbytes import HexBytes

from medledger import documents
from medledger.addresses import parse_address
from medledger.chain import deployments
from medledger.errors import ConfigurationError
from medledger.signers import ExternalSigner

if TYPE_CHECKING:
    from collections.abc import Mapping

    from medledger.accounts import Signer
    from medledger.chain import Chain

LINK_KIND = "medledger/trial-identity-link"
#: The contract a link names (links are made for its studies).
TRIAL_REGISTRY = "TrialRegistry"


def _link_statement(chain_id: int, registry_address: str, study_id: int, participant: str,
                    record_address: str) -> str:  # fmt: skip
    return (
        f"MedLedger identity link: in study {study_id} of TrialRegistry {registry_address} on "
        f"chain {chain_id}, participant {participant} and record address {record_address} "
        "belong to the same person."
    )


def link_proof(
    chain: Chain, study_id: int, participant: Signer, record_account: Signer
) -> dict[str, Any]:
    """A statement that the study address and the record address are one person's, signed
    (EIP-191 ``personal_sign``) with both keys. Nothing goes on chain: the participant hands it
    to whoever should know."""
    if participant.address == record_account.address:
        raise ConfigurationError("--record-account", "is the participant's own study account")
    if any(isinstance(a, ExternalSigner) for a in (participant, record_account)):
        raise ConfigurationError(
            "--account", "a link proof is signed with local keys, not through an external signer"
        )
    registry_address = deployments.contract(chain, TRIAL_REGISTRY).address
    text = _link_statement(
        chain.chain_id, registry_address, study_id, participant.address, record_account.address
    )
    message = encode_defunct(text=text)
    return {
        "kind": LINK_KIND,
        "statement": text,
        "chain_id": chain.chain_id,
        "trial_registry": registry_address,
        "study": study_id,
        "participant": participant.address,
        "record_address": record_account.address,
        "participant_signature": "0x"
        + bytes(Account.sign_message(message, participant.key).signature).hex(),
        "record_signature": "0x"
        + bytes(Account.sign_message(message, record_account.key).signature).hex(),
    }


def verify_link(document: Mapping[str, Any]) -> bool:
    """True when both signatures are over the statement, by the two addresses it names."""
    try:
        participant = parse_address(str(document["participant"]))
        record_address = parse_address(str(document["record_address"]))
        text = _link_statement(
            int(document["chain_id"]),
            parse_address(str(document["trial_registry"])),
            int(document["study"]),
            participant,
            record_address,
        )
        if document.get("kind") != LINK_KIND or document.get("statement") != text:
            return False
        message = encode_defunct(text=text)
        first = Account.recover_message(
            message, signature=HexBytes(document["participant_signature"])
        )
        second = Account.recover_message(message, signature=HexBytes(document["record_signature"]))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error, ValidationError,
            BadSignature):  # fmt: skip
        return False
    return bool(first == participant and second == record_address and first != second)


def canonical_link(document: Mapping[str, Any]) -> bytes:
    """The link's canonical JSON (:func:`medledger.documents.canonical`): what a site's
    attestation of the study account commits to."""
    return documents.canonical(dict(document))
