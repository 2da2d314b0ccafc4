"""Values and derivations for the TrialRegistry tests, written from ``ITrialRegistry``'s NatSpec
and independently of ``medledger`` (so that the package can later be checked against them).

* EIP-712: the two request types, typed messages built with ``eth_account`` and their digests;
* ids: ``dataIdOf`` and the batch id; a batch is a positional ``IndexedMerkle`` tree of its
  bodies' ids (built by ``support.indexed_tree``, as for RecordRegistry batches), whose depth
  for a declared count is :func:`tree_depth`;
* enums and reader bits as small Python types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak
from hexbytes import HexBytes

from ..support import digest

HOUR = 3600
DAY = 24 * HOUR
ZERO32 = HexBytes(bytes(32))
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

DOMAIN_NAME = "MedLedger TrialRegistry"
DOMAIN_VERSION = "1"

READER_SPONSOR = 1
"""Reader bit 0: the study's sponsor may read."""
READER_MONITORS = 2
"""Reader bit 1: the study's monitors may read."""
READERS_ALL = READER_SPONSOR | READER_MONITORS


class ConsentPurpose(IntEnum):
    """``ITrialRegistry.ConsentPurpose``."""

    NONE = 0
    TRIAL_ONLY = 1
    TRIAL_AND_FUTURE_RESEARCH = 2


CONSENT_FIELDS = [
    {"name": "studyId", "type": "uint64"},
    {"name": "version", "type": "uint32"},
    {"name": "protocolHash", "type": "bytes32"},
    {"name": "site", "type": "address"},
    {"name": "participant", "type": "address"},
    {"name": "purpose", "type": "uint8"},
    {"name": "readers", "type": "uint8"},
    {"name": "delegate", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
WITHDRAWAL_FIELDS = [
    {"name": "studyId", "type": "uint64"},
    {"name": "participant", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def hash_protocol(protocol_digest: bytes, primary: bytes, secondary: bytes) -> HexBytes:
    """``keccak256(abi.encode(protocolDigest, primaryOutcomes, secondaryOutcomes))``: what
    ``protocolHashOf`` documents and a ``ConsentRequest.protocolHash`` carries (the
    ``encrypted`` flag is not part of it)."""
    return HexBytes(
        keccak(encode(["bytes32", "bytes32", "bytes32"], [protocol_digest, primary, secondary]))
    )


def protocol_hash(registry: Any, study_id: int, version: int) -> HexBytes:
    """The ``protocolHash`` a consent to ``version`` carries, computed here from
    ``getProtocolVersion`` (independently of ``protocolHashOf``) with :func:`hash_protocol`.
    Zero for a version that does not exist (a consent to it is refused before the hash
    matters)."""
    try:
        protocol = registry.getProtocolVersion(study_id, version).protocol
    except Exception:  # an unknown study or version: the contract refuses such a consent first
        return ZERO32
    return hash_protocol(
        protocol.protocolDigest, protocol.primaryOutcomes, protocol.secondaryOutcomes
    )


def _type_string(name: str, fields: list[dict[str, str]]) -> str:
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


CONSENT_TYPE = _type_string("ConsentRequest", CONSENT_FIELDS)
WITHDRAWAL_TYPE = _type_string("WithdrawalRequest", WITHDRAWAL_FIELDS)


def typed_message(
    chain_id: int, registry: str, primary: str, message: dict[str, Any]
) -> SignableMessage:
    """The EIP-712 signable message of a ``ConsentRequest`` or ``WithdrawalRequest``."""
    fields = CONSENT_FIELDS if primary == "ConsentRequest" else WITHDRAWAL_FIELDS
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: fields,
            },
            "primaryType": primary,
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": registry,
            },
            "message": message,
        }
    )


def signable_digest(signable: SignableMessage) -> HexBytes:
    """The 32 bytes that are signed: ``keccak256(0x19 || version || domain || struct)``."""
    return HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


# ---------------------------------------------------------------------------- ids

DATA_ID_TYPES = [
    "uint256",
    "address",
    "uint64",
    "address",
    "bytes32",
    "uint32",
    "bytes32",
    "bytes32",
]
BATCH_ID_TYPES = ["uint256", "address", "uint64", "address", "bytes32", "bytes32"]


def data_id(
    chain_id: int,
    registry: str,
    study_id: int,
    participant: str,
    visit: bytes,
    version: int,
    cid_digest: bytes,
    commitment: bytes,
) -> HexBytes:
    """``keccak256(abi.encode(chainid, registry, studyId, participant, visit, version, cid,
    commitment))``, as ``dataIdOf`` documents it."""
    values = [chain_id, registry, study_id, participant, visit, version, cid_digest, commitment]
    return HexBytes(keccak(encode(DATA_ID_TYPES, values)))


def batch_id(
    chain_id: int, registry: str, study_id: int, participant: str, visit: bytes, root: bytes
) -> HexBytes:
    """``keccak256(abi.encode(chainid, registry, studyId, participant, visit, root))``."""
    values = [chain_id, registry, study_id, participant, visit, root]
    return HexBytes(keccak(encode(BATCH_ID_TYPES, values)))


def tree_depth(count: int) -> int:
    """The depth of the ``IndexedMerkle`` tree of ``count`` leaves, ceil(log2(count)): the
    length every proof of a batch declaring ``count`` bodies must have."""
    return max(count - 1, 0).bit_length()


# ---------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """``ITrialRegistry.Protocol``, from readable labels."""

    protocol_digest: HexBytes
    encrypted: bool
    primary_outcomes: HexBytes
    secondary_outcomes: HexBytes

    @classmethod
    def of(cls, label: str, *, encrypted: bool = False, secondary: bool = True) -> Protocol:
        return cls(
            digest(f"protocol-{label}"),
            encrypted,
            digest(f"primary-{label}"),
            digest(f"secondary-{label}") if secondary else ZERO32,
        )

    @property
    def args(self) -> tuple[HexBytes, bool, HexBytes, HexBytes]:
        """The struct as the contract takes it (a tuple in field order)."""
        return (
            self.protocol_digest,
            self.encrypted,
            self.primary_outcomes,
            self.secondary_outcomes,
        )

    @property
    def hash(self) -> HexBytes:
        """Its :func:`hash_protocol`, the ``protocolHash`` a consent to it carries."""
        return hash_protocol(self.protocol_digest, self.primary_outcomes, self.secondary_outcomes)

    def as_dict(self) -> dict[str, Any]:
        """The struct as a view returns it (field names of the ABI)."""
        return {
            "protocolDigest": self.protocol_digest,
            "encrypted": self.encrypted,
            "primaryOutcomes": self.primary_outcomes,
            "secondaryOutcomes": self.secondary_outcomes,
        }


def as_dict(struct: Any) -> dict[str, Any]:
    """A struct returned by Ape as a plain dict, nested structs included, bytes as HexBytes."""
    items = struct._asdict().items() if hasattr(struct, "_asdict") else struct.items()
    out: dict[str, Any] = {}
    for key, value in items:
        if hasattr(value, "_asdict") or (hasattr(value, "items") and not isinstance(value, dict)):
            out[key] = as_dict(value)
        elif isinstance(value, bytes):
            out[key] = HexBytes(value)
        else:
            out[key] = value
    return out
