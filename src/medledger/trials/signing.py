"""What a participant signs: consent and withdrawal requests (EIP-712), the signed documents
that carry them, the protocol hash a consent names, and recovering a signer's key.

Nothing here reads the chain: a request is signed and checked against a chain id and a
TrialRegistry address, exactly as the contract's ``consentDigest`` and ``withdrawalDigest``
derive them (``crypto.eip712``, domain "MedLedger TrialRegistry", version "1").
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import coincurve
from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from medledger.accounts import sign_typed_data
from medledger.addresses import parse_address
from medledger.chain.events import moment
from medledger.crypto import eip712
from medledger.errors import ConfigurationError, CryptoError, PreconditionFailed
from medledger.trials.model import (
    CONTRACT,
    ZERO,
    ZERO_ADDRESS,
    ConsentPurpose,
    ProtocolVersion,
)

if TYPE_CHECKING:
    from medledger.accounts import Signer

CONSENT_KIND = "medledger/trial-consent"
WITHDRAWAL_KIND = "medledger/trial-withdrawal"
CONSENT_FIELDS = (
    ("studyId", "uint64"),
    ("version", "uint32"),
    ("protocolHash", "bytes32"),
    ("site", "address"),
    ("participant", "address"),
    ("purpose", "uint8"),
    ("readers", "uint8"),
    ("delegate", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""``ConsentRequest``'s fields in the order of the contract's ``CONSENT_TYPEHASH``."""
WITHDRAWAL_FIELDS = (
    ("studyId", "uint64"),
    ("participant", "address"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
"""``WithdrawalRequest``'s fields in the order of the contract's ``WITHDRAWAL_TYPEHASH``."""


def _deadline_time(deadline: int) -> datetime:
    try:
        return moment(deadline)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)


def _bytes32(value: object) -> bytes | None:
    """32 bytes given as bytes (a decoded transaction) or as ``0x`` and 64 hex digits (a
    document); ``None`` for anything else."""
    if isinstance(value, bytes):
        return bytes(value) if len(value) == 32 else None
    if not isinstance(value, str) or len(value) != 66 or value[:2] != "0x":
        return None
    try:
        decoded = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return decoded if len(decoded) == 32 else None  # fromhex skips spaces


@dataclass(frozen=True)
class ConsentRequest:
    """A participant's consent as signed (the contract's ``ConsentRequest``).

    ``deadline`` stays the integer that was signed (seconds since the epoch), so a document
    read back signs to the same digest; :attr:`deadline_at` is its time.
    """

    study_id: int
    version: int
    protocol_hash: bytes
    site: str
    participant: str
    purpose: ConsentPurpose
    readers: int
    delegate: str | None
    nonce: int
    deadline: int

    @property
    def deadline_at(self) -> datetime:
        """When the signature stops being accepted."""
        return _deadline_time(self.deadline)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (also the ``request`` of a consent document)."""
        return {
            "studyId": self.study_id,
            "version": self.version,
            "protocolHash": "0x" + self.protocol_hash.hex(),
            "site": self.site,
            "participant": self.participant,
            "purpose": int(self.purpose),
            "readers": self.readers,
            "delegate": self.delegate or ZERO_ADDRESS,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """The contract's struct argument."""
        message = self.message()
        return tuple(message[name] for name, _type in CONSENT_FIELDS)

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> ConsentRequest:
        """Read a request (from a document or a decoded transaction); refuse malformed ones."""
        if "protocolHash" not in data:
            raise ConfigurationError(
                "consent",
                "names no protocolHash (the protocol and outcomes it was signed for): the "
                "participant must sign again",
            )
        protocol = _bytes32(data["protocolHash"])
        if protocol is None:
            raise ConfigurationError("consent", "protocolHash is not 32 bytes in 0x hex")
        try:
            delegate = parse_address(str(data["delegate"]))
            return cls(
                study_id=int(data["studyId"]),
                version=int(data["version"]),
                protocol_hash=protocol,
                site=parse_address(str(data["site"])),
                participant=parse_address(str(data["participant"])),
                purpose=ConsentPurpose(int(data["purpose"])),
                readers=int(data["readers"]),
                delegate=None if int(delegate, 16) == 0 else delegate,
                nonce=int(data["nonce"]),
                deadline=int(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError("consent", "is not a well-formed consent request") from None


@dataclass(frozen=True)
class WithdrawalRequest:
    """A participant's withdrawal as signed (the contract's ``WithdrawalRequest``)."""

    study_id: int
    participant: str
    nonce: int
    deadline: int

    @property
    def deadline_at(self) -> datetime:
        """When the signature stops being accepted."""
        return _deadline_time(self.deadline)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (also the ``request`` of a withdrawal document)."""
        return {
            "studyId": self.study_id,
            "participant": self.participant,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def args(self) -> tuple[Any, ...]:
        """The contract's struct argument."""
        message = self.message()
        return tuple(message[name] for name, _type in WITHDRAWAL_FIELDS)

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> WithdrawalRequest:
        """Read a request from a document; refuse malformed ones."""
        try:
            return cls(
                study_id=int(data["studyId"]),
                participant=parse_address(str(data["participant"])),
                nonce=int(data["nonce"]),
                deadline=int(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(
                "withdrawal", "is not a well-formed withdrawal request"
            ) from None


def typed_data(
    chain_id: int, registry_address: str, request: ConsentRequest | WithdrawalRequest
) -> dict[str, Any]:
    """The EIP-712 typed data of a request (domain "MedLedger TrialRegistry", version "1")."""
    fields: Sequence[tuple[str, str]]
    if isinstance(request, ConsentRequest):
        primary, fields = "ConsentRequest", CONSENT_FIELDS
    else:
        primary, fields = "WithdrawalRequest", WITHDRAWAL_FIELDS
    return eip712.typed_data(
        CONTRACT, chain_id, to_checksum_address(registry_address), primary, fields,
        request.message(),
    )  # fmt: skip


def request_digest(
    chain_id: int, registry_address: str, request: ConsentRequest | WithdrawalRequest
) -> bytes:
    """The EIP-712 digest the participant signs (``consentDigest`` / ``withdrawalDigest``):
    eth-account's encoding of :func:`typed_data`, hashed with its ``0x19`` prefix, which is
    what a signature over it recovers from."""
    signable = encode_typed_data(full_message=typed_data(chain_id, registry_address, request))
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """The signer's compressed secp256k1 public key, recovered from a 65-byte signature."""
    if len(signature) != 65:
        raise CryptoError(f"a signature is 65 bytes, not {len(signature)}")
    v = signature[64]
    recovery = v - 27 if v >= 27 else v
    if recovery not in (0, 1):
        raise CryptoError(f"signature has an invalid recovery byte {v}")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([recovery]), digest, hasher=None
        )
    except ValueError:
        raise CryptoError("the signature recovers to no public key") from None
    return bytes(key.format(compressed=True))


def address_of_key(public_key: bytes) -> str:
    """The Ethereum address of a (compressed or uncompressed) secp256k1 public key."""
    uncompressed = coincurve.PublicKey(public_key).format(compressed=False)
    return to_checksum_address(keccak(uncompressed[1:])[-20:])


def signer_of(
    chain_id: int, registry_address: str, request: ConsentRequest | WithdrawalRequest,
    signature: bytes,
) -> str:  # fmt: skip
    """The address a request's signature recovers to (``"nobody"`` when it recovers to none)."""
    digest = request_digest(chain_id, registry_address, request)
    try:
        return address_of_key(recover_public_key(digest, signature))
    except CryptoError:
        return "nobody"


def protocol_hash(version: ProtocolVersion) -> bytes:
    """What a consent to ``version`` carries (``TrialRegistry.protocolHashOf``): keccak256 of
    the ABI encoding of its protocol digest and its primary and secondary outcome hashes as
    they stand (a participant's signature covers the outcomes they were shown)."""
    secondary = version.secondary_outcomes or ZERO
    fields = [version.protocol.digest, version.primary_outcomes, secondary]
    return keccak(abi_encode(["bytes32", "bytes32", "bytes32"], fields))


def signed_document(
    chain_id: int,
    registry_address: str,
    signer: Signer,
    request: ConsentRequest | WithdrawalRequest,
) -> dict[str, Any]:
    """The document a participant hands over: the request and their EIP-712 signature."""
    kind = CONSENT_KIND if isinstance(request, ConsentRequest) else WITHDRAWAL_KIND
    document = typed_data(chain_id, registry_address, request)
    return {
        "kind": kind,
        "chain_id": chain_id,
        "trial_registry": registry_address,
        "request": request.message(),
        "signature": "0x" + sign_typed_data(signer, document).hex(),
    }


def read_document(
    document: Mapping[str, Any], kind: str, chain_id: int, registry_address: str
) -> tuple[Mapping[str, Any], bytes]:
    """The raw request and the signature of a signed document of ``kind``, refused when it is
    not one or was signed for another chain or TrialRegistry."""
    try:
        if document.get("kind") != kind:
            raise KeyError("kind")
        request = document["request"]
        signature = bytes(HexBytes(document["signature"]))
        if not isinstance(request, Mapping):
            raise TypeError("request")
        signed_chain = int(document["chain_id"])
        signed_registry = parse_address(str(document["trial_registry"]))
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        raise ConfigurationError("signed file", f"is not a MedLedger {kind} document") from None
    if signed_chain != chain_id or signed_registry != registry_address:
        raise PreconditionFailed(
            f"the signed document is for chain {signed_chain} and TrialRegistry "
            f"{signed_registry}, not this one"
        )
    return request, signature


def read_signed_request(
    document: Mapping[str, Any], chain_id: int, registry_address: str
) -> ConsentRequest | WithdrawalRequest:
    """The request of a signed consent or withdrawal document, whichever it is."""
    if document.get("kind") == CONSENT_KIND:
        raw, _signature = read_document(document, CONSENT_KIND, chain_id, registry_address)
        return ConsentRequest.from_message(raw)
    if document.get("kind") == WITHDRAWAL_KIND:
        raw, _signature = read_document(document, WITHDRAWAL_KIND, chain_id, registry_address)
        return WithdrawalRequest.from_message(raw)
    raise ConfigurationError("signed file", "is not a MedLedger trial consent or withdrawal")
