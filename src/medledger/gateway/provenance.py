"""A record version's ``Provenance``, built from the chain: who anchored it, when, under which
``medledger://`` URI, in which transaction (``GET /Provenance/{record id}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medledger.records import Record

ACCOUNT_SYSTEM = "urn:medledger:account"
TRANSACTION_SYSTEM = "urn:medledger:transaction"
URI_SYSTEM = "urn:ietf:rfc:3986"


def provenance(
    record: Record, resource_type: str, logical_id: str, version: int
) -> dict[str, Any]:
    """The ``Provenance`` of a record version: who anchored it, when, under which URI, in
    which transaction (its id is the version's record id)."""
    return {
        "resourceType": "Provenance",
        "id": record.id.hex(),
        "target": [{"reference": f"{resource_type}/{logical_id}/_history/{version}"}],
        "recorded": instant(record),
        "activity": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": "CREATE" if record.previous is None else "UPDATE",
            }]
        },
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author",
            }]},
            "who": {"type": "Organization",
                    "identifier": {"system": ACCOUNT_SYSTEM, "value": record.issuer}},
        }],
        "entity": [
            {"role": "source", "what": {"identifier": {
                "system": URI_SYSTEM, "value": record.uri}, "display": "the MedLedger record"}},
            {"role": "source", "what": {"identifier": {
                "system": TRANSACTION_SYSTEM,
                "value": f"eip155:{record.chain_id}:{record.transaction_hash}"},
                "display": f"anchored in block {record.block}"}},
        ],
    }  # fmt: skip


def instant(record: Record) -> str:
    """When ``record`` was anchored, as a FHIR instant."""
    return record.anchored_at.isoformat().replace("+00:00", "Z")
