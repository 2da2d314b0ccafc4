"""Protocol documents: the FHIR R4 ``ResearchStudy`` a study registers, the outcome hashes of
its objectives, and storing it public or sealed (:mod:`medledger.sealed`) for the sponsor and
the planned sites.

Outcome definitions are the document's ``objective`` entries: those whose ``type`` has the
code ``primary`` (R4 ``research-study-objective-type``) hash to ``primaryOutcomes``, the
others to ``secondaryOutcomes``: keccak256 of the canonical JSON (sorted keys, no spaces) of
the list, in document order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from medledger import fhir, providers, sealed
from medledger.documents import canonical
from medledger.errors import FhirStructureError, NoKeyForReader, PreconditionFailed
from medledger.trials.model import ZERO
from medledger.trials.reading import protocol_version, trial_registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid

OBJECTIVE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"


def _is_primary(objective: Mapping[str, Any]) -> bool:
    concept = objective.get("type") or {}
    codings = concept.get("coding") or [] if isinstance(concept, Mapping) else []
    return any(
        isinstance(c, Mapping)
        and c.get("code") == "primary"
        and c.get("system") in (None, OBJECTIVE_TYPE_SYSTEM)
        for c in codings
    )


def outcomes_of(research_study: Mapping[str, Any], source: str = "protocol") -> tuple[bytes, bytes]:
    """The ``(primaryOutcomes, secondaryOutcomes)`` hashes of a ResearchStudy's objectives.

    Each is keccak256 of the canonical JSON of the objectives of its kind, in document order;
    with no secondary objective the second is zero. No primary objective is an error.
    """
    objectives = research_study.get("objective") or []
    if not isinstance(objectives, list):
        raise FhirStructureError(source, "ResearchStudy.objective is not a list")
    primary = [o for o in objectives if isinstance(o, Mapping) and _is_primary(o)]
    secondary = [o for o in objectives if isinstance(o, Mapping) and not _is_primary(o)]
    if not primary:
        raise FhirStructureError(
            source,
            "the ResearchStudy defines no primary objective (an objective whose type has the "
            f"code 'primary' of {OBJECTIVE_TYPE_SYSTEM}): the primary outcome must be fixed "
            "before anyone enrols",
        )
    return keccak(canonical(primary)), keccak(canonical(secondary)) if secondary else ZERO


def parse_protocol(body: bytes, source: str = "protocol") -> dict[str, Any]:
    """Read a protocol document: a FHIR R4 ``ResearchStudy`` resource (anything else refused)."""
    ingest = fhir.load(body, source)
    if ingest.kind != "resource" or fhir.resource_type_of(body) != "ResearchStudy":
        raise FhirStructureError(source, "is not a FHIR ResearchStudy resource")
    document: dict[str, Any] = json.loads(body)
    return document


def protocol_context(chain_id: int, registry_address: str) -> bytes:
    """The associated data a sealed protocol of this TrialRegistry is bound to."""
    return f"medledger/trial-protocol:{chain_id}:{registry_address}".encode()


def store_protocol(
    chain: Chain, store: BlockStore, body: bytes, encrypt: bool, readers: Sequence[str]
) -> Cid:
    """Store a protocol document: public, or sealed for ``readers`` (each must have published
    an encryption key)."""
    if not encrypt:
        return store.add_bytes(body, pin=True)
    keys = []
    for reader in readers:
        key = providers.participant(chain, reader).encryption_key
        if key is None:
            raise PreconditionFailed(
                f"{reader} has published no encryption key, so the protocol cannot be sealed "
                "for it (or register the study with a public protocol)"
            )
        keys.append(key)
    aad = protocol_context(chain.chain_id, trial_registry(chain).address)
    return sealed.seal_one(store, sealed.Document(body, aad, tuple(keys))).cid


def open_protocol(stored: bytes, aad: bytes, private_key: bytes) -> bytes:
    """Decrypt a sealed protocol (``NoKeyForReader`` when it was not sealed for the key).

    A protocol has no anchored commitment (its outcome hashes are anchored, and the audit
    checks them): AES-GCM alone authenticates the plaintext.
    """
    return sealed.open_one(stored, aad, None, private_key=private_key, what="protocol")


def read_protocol(
    chain: Chain,
    store: BlockStore,
    study_id: int,
    version: int | None = None,
    reader: Signer | None = None,
) -> bytes:
    """The protocol document of a version (default: the one in force), decrypted if sealed."""
    chosen = protocol_version(chain, study_id, version)
    stored = store.cat(chosen.protocol)
    if not chosen.encrypted:
        return stored
    if reader is None:
        raise PreconditionFailed(
            f"version {chosen.version} of study {study_id}'s protocol is encrypted: read it with "
            "the sponsor's or a site's account"
        )
    aad = protocol_context(chain.chain_id, trial_registry(chain).address)
    try:
        return open_protocol(stored, aad, reader.key)
    except NoKeyForReader:
        raise PreconditionFailed(
            f"{reader.address} holds no key to version {chosen.version} of the protocol (only "
            "the sponsor and the sites it was sealed for do)"
        ) from None
