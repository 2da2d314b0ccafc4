"""The gateway's ``CapabilityStatement`` (``GET /metadata``): exactly what it supports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from medledger import __version__
from medledger.gateway.queries import MAX_COUNT

_SEARCH = [
    {"name": "patient", "type": "reference",
     "documentation": "the patient's MedLedger account: 0x... or Patient/0x... (required)"},
    {"name": "_lastUpdated", "type": "date", "documentation": "when the version was anchored"},
    {"name": "category", "type": "token"},
    {"name": "code", "type": "token"},
    {"name": "_id", "type": "token"},
    {"name": "_count", "type": "number", "documentation": f"1 to {MAX_COUNT}, default 100"},
]  # fmt: skip


def capability_statement(
    base: str, record_types: list[str], others: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """What the gateway at ``base`` supports: ``record_types`` are served as records (read,
    version read, history, search, create); ``others`` maps further resource types to their
    own ``CapabilityStatement.rest.resource`` entries."""
    resources = [
        {
            "type": kind,
            "interaction": [{"code": c} for c in
                            ("read", "vread", "update", "history-instance", "search-type",
                             "create")],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": False,
            "searchParam": _SEARCH,
            **({"operation": [{"name": "everything", "definition":
                               "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]}
               if kind == "Patient" else {}),
        }
        for kind in record_types
        if kind not in others
    ]  # fmt: skip
    resources += [{"type": kind, **entry} for kind, entry in sorted(others.items())]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "MedLedger", "version": __version__},
        "implementation": {"description": "MedLedger FHIR gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": False,
                "description": (
                    "Sign in with Ethereum (EIP-4361): POST /auth/challenge {address, scope}, "
                    "sign the message (personal_sign), POST /auth/token {message, signature}; "
                    "send Authorization: Bearer <access_token>. SMART scopes, cut down to the "
                    "caller's grants on chain."
                ),
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "Bulk Data: a grantee's NDJSON of what its live grants cover",
            }],
        }],
    }  # fmt: skip
