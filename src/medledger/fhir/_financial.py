"""FHIR R4 ``ClaimResponse`` and ``ExplanationOfBenefit`` built from a claim's chain state.

The decision lives on chain; these resources say it in FHIR for the provider's and insurer's
systems. Patient, provider and insurer references are copied from the submitted ``Claim``
(which only its parties can decrypt), never taken from the chain, which knows addresses only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
CLAIM_ID_SYSTEM = "urn:medledger:claim"


@dataclass(frozen=True)
class Decision:
    """What the chain says about a claim, in the terms FHIR needs."""

    identifier: str  # eip155:<chain>/<ClaimsManager>/<claim id>
    state: str  # the ClaimState label
    billed: Decimal
    paid: Decimal
    deductible: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    currency: str
    reason: str | None = None
    automatic: bool = False


def _money(value: Decimal, currency: str) -> dict[str, Any]:
    return {"value": float(value), "currency": currency}


def _adjudication(decision: Decision) -> list[dict[str, Any]]:
    def line(code: str, value: Decimal) -> dict[str, Any]:
        return {
            "category": {"coding": [{"system": ADJUDICATION, "code": code}]},
            "amount": _money(value, decision.currency),
        }

    return [
        line("submitted", decision.billed),
        line("deductible", decision.deductible),
        line("benefit", decision.paid),
    ]


def _outcome(state: str) -> str:
    if state in ("submitted", "info-requested", "disputed"):
        return "queued"
    if state == "denied":
        return "error"
    if state == "partially-approved":
        return "partial"
    return "complete"


def _disposition(decision: Decision) -> str:
    texts = {
        "submitted": "Claim received; awaiting review by the insurer.",
        "info-requested": "More information requested"
        + (f" ({decision.reason})" if decision.reason else "")
        + ".",
        "approved": "Claim approved in full"
        + (" and settled automatically on chain." if decision.automatic else "."),
        "partially-approved": "Claim approved in part.",
        "denied": "Claim denied" + (f" ({decision.reason})" if decision.reason else "") + ".",
        "disputed": "Decision disputed; awaiting the resolver.",
        "resolved": "Dispute resolved.",
    }
    return texts.get(decision.state, decision.state)


def _from_claim(claim: dict[str, Any]) -> dict[str, Any]:
    common: dict[str, Any] = {
        "status": "active",
        "type": claim.get("type")
        or {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": claim.get("use", "claim"),
        "patient": claim.get("patient") or {"display": "the insured patient"},
    }
    return common


def claim_response(claim_body: bytes, decision: Decision) -> bytes:
    """The ``ClaimResponse`` for a claim in its current state."""
    claim = json.loads(claim_body)
    created = (decision.decided_at or decision.submitted_at).isoformat()
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": CLAIM_ID_SYSTEM, "value": decision.identifier}],
        **_from_claim(claim),
        "created": created,
        "insurer": claim.get("insurer") or {"display": "the policy's insurer"},
        "outcome": _outcome(decision.state),
        "disposition": _disposition(decision),
    }
    if claim.get("id"):
        resource["request"] = {"reference": f"Claim/{claim['id']}"}
    if decision.state not in ("submitted", "info-requested"):
        resource["total"] = _adjudication(decision)
    if decision.paid > 0:
        resource["payment"] = {
            "type": {"coding": [{"system": PAYMENT_TYPE, "code": "complete"}]},
            "amount": _money(decision.paid, decision.currency),
        }
    if decision.reason and decision.state in ("denied", "info-requested", "disputed"):
        resource["processNote"] = [{"number": 1, "type": "display", "text": decision.reason}]
    return json.dumps(resource, indent=2).encode()


def explanation_of_benefit(claim_body: bytes, decision: Decision) -> bytes:
    """The ``ExplanationOfBenefit`` of a paid claim (raise ``ValueError`` before payment)."""
    if decision.paid <= 0:
        raise ValueError("an ExplanationOfBenefit is issued once something was paid")
    claim = json.loads(claim_body)
    insurance = claim.get("insurance") or [
        {"sequence": 1, "focal": True, "coverage": {"display": "MedLedger policy"}}
    ]
    resource: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "identifier": [{"system": CLAIM_ID_SYSTEM, "value": decision.identifier}],
        **_from_claim(claim),
        "created": (decision.decided_at or decision.submitted_at).isoformat(),
        "insurer": claim.get("insurer") or {"display": "the policy's insurer"},
        "provider": claim.get("provider") or {"display": "the submitting provider"},
        "outcome": _outcome(decision.state),
        "disposition": _disposition(decision),
        "insurance": [
            {
                "focal": bool(i.get("focal", True)),
                "coverage": i.get("coverage") or {"display": "policy"},
            }
            for i in insurance
        ],
        "total": _adjudication(decision),
        "payment": {
            "type": {"coding": [{"system": PAYMENT_TYPE, "code": "complete"}]},
            "amount": _money(decision.paid, decision.currency),
        },
    }
    if claim.get("id"):
        resource["claim"] = {"reference": f"Claim/{claim['id']}"}
    if claim.get("billablePeriod"):
        resource["billablePeriod"] = claim["billablePeriod"]
    return json.dumps(resource, indent=2).encode()
