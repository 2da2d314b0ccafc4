"""Policies as FHIR R4 ``Coverage``, and the policy a ``Claim``'s coverage reference names.

A policy is served as ``Coverage/<policy id>`` with the identifier ``urn:medledger:policy |
eip155:<chain>/<ClaimsManager>/<policy id>``; its beneficiary is ``Patient/<address>`` and its
payor the insurer (``urn:medledger:institution``). What the chain knows of the terms goes in:
the period, the deductible and the coinsurance (``costToBeneficiary``), the annual limit and
the automatic settlement limit (extensions). What the policy has paid so far, the deductible
met and the pool are left out: they tell how much care the patient had, which a Coverage need
not say. The covered codes, currency and plan name are in the sealed terms, not on chain; the
currency is given when the caller knows it.

The status is ``active``, or ``cancelled`` once the insurer took the pool back (the policy can
pay nothing more); a policy whose term is over stays ``active`` with its ``period`` in the
past, as FHIR's status is about the resource, not the cover.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from medledger import fhir
from medledger.chain import events
from medledger.claims.contract import CONTRACT, manager
from medledger.claims.policy import Policy, get_policy, policies
from medledger.errors import FhirStructureError, PolicyNotFound

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

    from medledger.chain import Chain

POLICY_SYSTEM = "urn:medledger:policy"
ANNUAL_LIMIT_URL = "urn:medledger:fhir:annual-limit"
AUTO_SETTLE_LIMIT_URL = "urn:medledger:fhir:auto-settle-limit"
COPAY_TYPE = "http://terminology.hl7.org/CodeSystem/coverage-copay-type"
_COVERAGE_REFERENCE = re.compile(r"^(?:\S*/)?Coverage/([0-9]{1,20})$")
_POLICY_VALUE = re.compile(r"^(?:eip155:(\d+)/(0x[0-9a-fA-F]{40})/)?([0-9]{1,20})$")


def policy_identifier(chain: Chain, policy_id: int) -> dict[str, str]:
    """The identifier a policy's ``Coverage`` carries."""
    value = f"eip155:{chain.chain_id}/{manager(chain).address}/{policy_id}"
    return {"system": POLICY_SYSTEM, "value": value}


def _money(amount: Decimal, currency: str | None) -> dict[str, Any]:
    return {"value": float(amount)} | ({"currency": currency} if currency else {})


def coverage_resource(chain: Chain, policy: Policy, currency: str | None = None) -> dict[str, Any]:
    """A policy as an R4 ``Coverage`` (see the module for what is in it)."""
    reclaimed = events.logs(chain, CONTRACT, "PoolReclaimed", {"policyId": policy.id})
    coinsurance = (1 - policy.coverage) * 100
    auto_settle = _money(policy.auto_settle_limit, currency)
    return {
        "resourceType": "Coverage",
        "id": str(policy.id),
        "extension": [
            {"url": ANNUAL_LIMIT_URL, "valueMoney": _money(policy.annual_limit, currency)},
            {"url": AUTO_SETTLE_LIMIT_URL, "valueMoney": auto_settle},
        ],
        "identifier": [policy_identifier(chain, policy.id)],
        "status": "cancelled" if reclaimed else "active",
        "beneficiary": {"reference": f"Patient/{policy.patient}"},
        "period": {"start": policy.valid_from.isoformat(), "end": policy.valid_until.isoformat()},
        "payor": [fhir.institution_reference(policy.insurer, "Organization")],
        "costToBeneficiary": [
            {
                "type": {"coding": [{"system": COPAY_TYPE, "code": "deductible"}]},
                "valueMoney": _money(policy.deductible, currency),
            },
            {
                "type": {"coding": [{"system": COPAY_TYPE, "code": "copaypct"}]},
                "valueQuantity": {
                    "value": float(coinsurance),
                    "unit": "%",
                    "system": "http://unitsofmeasure.org",
                    "code": "%",
                },
            },
        ],
    }


def coverages(
    chain: Chain, patient: str | None = None, insurer: str | None = None
) -> list[dict[str, Any]]:
    """Every policy (or a patient's, or an insurer's) as a ``Coverage``, oldest first."""
    return [coverage_resource(chain, p) for p in policies(chain, patient, insurer)]


def policy_of(chain: Chain, coverage: Mapping[str, Any], where: str) -> Policy:
    """The policy a ``Coverage`` reference names: ``Coverage/<policy id>`` or the identifier
    ``urn:medledger:policy`` (of this chain's ClaimsManager). ``where`` names the element."""
    reference = coverage.get("reference")
    identifier = coverage.get("identifier")
    policy_id = None
    if isinstance(reference, str) and (match := _COVERAGE_REFERENCE.match(reference.strip())):
        policy_id = int(match[1])
    elif isinstance(identifier, dict) and identifier.get("system") == POLICY_SYSTEM:
        found = _POLICY_VALUE.match(str(identifier.get("value", "")).strip())
        if found and found[1] is not None:
            ours = policy_identifier(chain, int(found[3]))["value"]
            if f"eip155:{found[1]}/{found[2].lower()}/{found[3]}" != ours.lower():
                raise FhirStructureError(
                    "Claim", f"{where}: policy {identifier['value']} is not of this chain ({ours})"
                )
        policy_id = int(found[3]) if found else None
    if policy_id is None:
        raise FhirStructureError(
            "Claim",
            f"{where} does not name a MedLedger policy: give Coverage/<policy id> or the "
            f"identifier {POLICY_SYSTEM}",
        )
    try:
        return get_policy(chain, policy_id)
    except PolicyNotFound as exc:
        raise FhirStructureError("Claim", f"{where} Coverage/{policy_id}: {exc}") from None
