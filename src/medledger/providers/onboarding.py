"""Gasless onboarding: a patient with no ETH signs their registration off chain (EIP-712) and a
verified institution, or one of its practitioners, relays it and pays the gas.

The patient's signed document carries the request the contract's ``RegistrationRequest``
names (the patient, their encryption key, their next nonce, a deadline), the key's proof of
possession and the patient's signature. Before sending, the relayer checks everything the
contract would refuse: the network, the deadline, that it acts for a verified institution,
that the patient has no role, the nonce, the signature and the key's proof (a file changed
after signing fails one of the last two).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import coincurve
from hexbytes import HexBytes

from medledger.accounts import sign_typed_data
from medledger.addresses import checksum, parse_address
from medledger.crypto import eip712
from medledger.deadlines import require_unexpired
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.keccak import keccak
from medledger.providers.keys import KEY_FIELDS, key_proof
from medledger.providers.participants import (
    Participant,
    participant,
    registry,
    require_no_role,
    verified_institution_of,
)

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain

REGISTRATION_FIELDS = (
    ("patient", "address"),
    ("key", "bytes"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""``RegistrationRequest``'s fields in the order of the contract's ``REGISTRATION_TYPEHASH``."""
SIGNED_REGISTRATION_KIND = "medledger/signed-registration"
_TAMPERED = "the file was changed after the patient signed it; the patient must sign again"


@dataclass(frozen=True)
class Registration:
    """A patient's registration as signed (the contract's ``RegistrationRequest``)."""

    patient: str
    key: bytes
    nonce: int
    deadline: int

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (also the ``request`` of a signed registration document)."""
        return {
            "patient": self.patient,
            "key": "0x" + self.key.hex(),
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """The contract's struct argument."""
        return (self.patient, self.key, self.nonce, self.deadline)

    @classmethod
    def from_message(cls, data: object) -> Registration:
        """Read a request from a document; ``ValueError`` (or ``KeyError``, ``TypeError``) when
        it is malformed."""
        if not isinstance(data, Mapping):
            raise TypeError("request")
        numbers = (data["nonce"], data["deadline"])
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
            raise ValueError("nonce and deadline are whole numbers")
        return cls(
            patient=parse_address(str(data["patient"])),
            key=bytes(HexBytes(str(data["key"]))),
            nonce=int(data["nonce"]),
            deadline=int(data["deadline"]),
        )


def sign_registration(
    chain: Chain, patient: Signer, valid_for: timedelta = timedelta(days=7)
) -> dict[str, Any]:
    """The patient signs their registration for an institution to relay; sends nothing, so
    the patient needs no ETH (only a connection to read their nonce and the chain's time)."""
    require_no_role(chain, patient.address)
    contract = registry(chain)
    key, proof = key_proof(chain, patient)
    request = Registration(
        patient=patient.address,
        key=key,
        nonce=int(chain.call("reading the nonce", contract.functions.nonces(patient.address))),
        deadline=int((chain.now() + valid_for).timestamp()),
    )
    typed = _typed_data(chain.chain_id, contract.address, request)
    return {
        "kind": SIGNED_REGISTRATION_KIND,
        "chain_id": chain.chain_id,
        "provider_registry": contract.address,
        "request": request.message(),
        "key_proof": "0x" + proof.hex(),
        "signature": "0x" + sign_typed_data(patient, typed).hex(),
    }


def submit_signed_registration(
    chain: Chain, relayer: Signer, document: Mapping[str, Any]
) -> Participant:
    """Relay a patient's signed registration (the relayer acts for a verified institution
    and pays the gas); return the new patient's entry."""
    contract = registry(chain)
    request, proof, signature = _read(document, chain.chain_id, contract.address)
    require_unexpired(chain, request.deadline, "registration")
    if verified_institution_of(chain, relayer.address) is None:
        raise PreconditionFailed(
            f"{relayer.address} does not act for a verified institution: only a verified "
            "institution or its practitioner relays a patient's registration"
        )
    require_no_role(chain, request.patient)
    expected = int(chain.call("reading the nonce", contract.functions.nonces(request.patient)))
    if request.nonce != expected:
        raise PreconditionFailed(
            f"the registration uses nonce {request.nonce} of {request.patient}, whose next "
            f"nonce is {expected}: it was superseded or cancelled; the patient must sign again"
        )
    signer = eip712.signer_of(_typed_data(chain.chain_id, contract.address, request), signature)
    if signer != request.patient:
        raise PreconditionFailed(
            f"the registration was not signed by {request.patient} (it recovers to "
            f"{signer or 'nobody'}): {_TAMPERED}"
        )
    _check_key_proof(chain.chain_id, contract.address, request, proof)
    chain.transact(
        "relaying the patient's registration",
        relayer,
        contract.functions.registerPatientWithSignature(request.args(), proof, signature),
    )
    return participant(chain, request.patient)


def _typed_data(chain_id: int, address: str, request: Registration) -> dict[str, Any]:
    return eip712.typed_data(
        "ProviderRegistry", chain_id, address, "RegistrationRequest", REGISTRATION_FIELDS,
        {**request.message(), "key": request.key},
    )  # fmt: skip


def _read(
    document: Mapping[str, Any], chain_id: int, address: str
) -> tuple[Registration, bytes, bytes]:
    """The request, key proof and signature of a signed registration, refused when the file
    is not one or was signed for another chain or registry."""
    try:
        if document.get("kind") != SIGNED_REGISTRATION_KIND:
            raise KeyError("kind")
        request = Registration.from_message(document["request"])
        proof = bytes(HexBytes(str(document["key_proof"])))
        signature = bytes(HexBytes(str(document["signature"])))
        signed_chain = document["chain_id"]
        signed_registry = parse_address(str(document["provider_registry"]))
        if isinstance(signed_chain, bool) or not isinstance(signed_chain, int):
            raise TypeError("chain_id")
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        raise ConfigurationError(
            "signature file", "is not a MedLedger signed patient registration"
        ) from None
    if signed_chain != chain_id or signed_registry != address:
        raise PreconditionFailed(
            f"the registration was signed for chain {signed_chain} and ProviderRegistry "
            f"{signed_registry}, not this network (chain {chain_id}, ProviderRegistry "
            f"{address}): the patient must sign it for this network"
        )
    return request, proof, signature


def _check_key_proof(chain_id: int, address: str, request: Registration, proof: bytes) -> None:
    """Refuse what the contract's key check refuses: a key that is not a compressed point on
    secp256k1, or a proof not signed by that key for the patient's account."""
    try:
        if len(request.key) != 33:
            raise ValueError(request.key)
        point = coincurve.PublicKey(request.key).format(compressed=False)
    except ValueError:
        raise PreconditionFailed(
            f"the encryption key in the registration is not a compressed secp256k1 key: {_TAMPERED}"
        ) from None
    holder = checksum(keccak(point[1:])[-20:])
    typed = eip712.typed_data(
        "ProviderRegistry", chain_id, address, "EncryptionKey", KEY_FIELDS,
        {"account": request.patient, "key": request.key},
    )  # fmt: skip
    if eip712.signer_of(typed, proof) != holder:
        raise PreconditionFailed(
            f"the key proof does not show that {request.patient} holds the encryption key: "
            f"{_TAMPERED}"
        )
