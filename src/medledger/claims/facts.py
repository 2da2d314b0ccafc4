"""What a FHIR ``Claim`` says that the chain needs (total, currency, procedure codes, service
period, identifier) and the salted keys it takes under a policy's terms.

The service period is ``Claim.billablePeriod`` (a missing bound is the other one) or, without
it, the earliest start and the latest end of the items' ``servicedDate`` (start and end both)
and ``servicedPeriod``, compared as the canonical strings below. Each bound is canonical: a
FHIR date (``2024``, ``2024-03``, ``2024-03-05``) as written; a dateTime as UTC
``YYYY-MM-DDTHH:MM:SSZ`` (fractions of a second dropped, no offset read as UTC). A Claim with
no service period is refused. The identifier is ``Claim.identifier[0]`` (system ``""`` when
absent), or none when the Claim has no identifier (or the first has no value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from medledger import fhir
from medledger.claims.amounts import claim_amount
from medledger.claims.terms import Code, Terms
from medledger.errors import FhirStructureError

_FHIR_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")


@dataclass(frozen=True)
class ClaimFacts:
    """What a FHIR ``Claim`` says that the chain needs: total, currency, procedure codes, the
    service period (canonical bounds) and the business identifier."""

    total: Decimal
    currency: str
    codes: tuple[Code, ...]
    patient_reference: str | None
    service: tuple[str, str] = ("", "")
    identifier: tuple[str, str] | None = None


@dataclass(frozen=True)
class ClaimKeys:
    """What a submission carries about the claim's content, all salted with the terms' salt:
    the distinct code hashes in ascending order with their proofs in the same order (``[]``
    for a code the policy does not cover), the service key and the identifier key."""

    code_hashes: tuple[bytes, ...]
    proofs: tuple[tuple[bytes, ...], ...]
    service_key: bytes
    identifier_key: bytes


def claim_keys(facts: ClaimFacts, terms: Terms) -> ClaimKeys:
    """The keys of a claim under a policy's terms (the insurer recomputes them the same way)."""
    by_hash = {c.hashed(terms.salt): c for c in facts.codes}
    ordered = sorted(by_hash)
    return ClaimKeys(
        code_hashes=tuple(ordered),
        proofs=tuple(tuple(terms.proof(by_hash[h])) for h in ordered),
        service_key=terms.service_key(*facts.service),
        identifier_key=terms.identifier_key(facts.identifier),
    )


def canonical_time(value: object, where: str, source: str = "claim") -> str:
    """A FHIR date as written, or a dateTime as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (see the module)."""
    text = value.strip() if isinstance(value, str) else ""
    if _FHIR_DATE.match(text):
        return text
    try:
        if "T" not in text:
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FhirStructureError(
            source, f"{where} {value!r} is not a FHIR date or dateTime"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _service_period(resource: dict[str, Any], source: str) -> tuple[str, str]:
    billable = resource.get("billablePeriod")
    billable = billable if isinstance(billable, dict) else {}
    first, last = billable.get("start"), billable.get("end")
    if first or last:
        return (
            canonical_time(first or last, "billablePeriod.start", source),
            canonical_time(last or first, "billablePeriod.end", source),
        )
    starts: list[str] = []
    ends: list[str] = []
    for n, item in enumerate(resource.get("item") or []):
        if not isinstance(item, dict):
            continue
        if item.get("servicedDate"):
            day = canonical_time(item["servicedDate"], f"item[{n}].servicedDate", source)
            starts.append(day)
            ends.append(day)
        period = item.get("servicedPeriod")
        period = period if isinstance(period, dict) else {}
        first, last = period.get("start"), period.get("end")
        if first or last:
            starts.append(canonical_time(first or last, f"item[{n}].servicedPeriod", source))
            ends.append(canonical_time(last or first, f"item[{n}].servicedPeriod", source))
    if not starts:
        raise FhirStructureError(
            source,
            "the Claim has no service period (billablePeriod, or servicedDate or servicedPeriod "
            "on an item): without one the same care could be claimed twice",
        )
    return min(starts), max(ends)


def _identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    found = resource.get("identifier")
    first = (found[0] if found else None) if isinstance(found, list) else found
    if not isinstance(first, dict) or not str(first.get("value") or "").strip():
        return None
    return str(first.get("system") or ""), str(first["value"])


def claim_facts(body: bytes, source: str = "claim") -> ClaimFacts:
    """Read the total, the procedure codes, the service period and the identifier of a FHIR R4
    ``Claim`` (refuse anything else, and a Claim without a service period).

    Codes come from each item's ``productOrService`` (its first coding); items without one
    (Synthea's information and diagnosis lines) carry no code. The money (total, currency,
    each item's arithmetic, precision) is read and checked by
    :func:`~medledger.claims.amounts.claim_amount`. The service period and the identifier are
    read as the module's docs say.
    """
    ingest = fhir.load(body, source)
    if ingest.kind != "resource" or fhir.resource_type_of(body) != "Claim":
        raise FhirStructureError(source, "is not a FHIR Claim resource")
    resource = json.loads(body, parse_float=Decimal)
    money = claim_amount(resource, source)
    codes: list[Code] = []
    for item in resource.get("item") or []:
        concept = item.get("productOrService") or item.get("service") or {}  # STU3: service
        coding = concept.get("coding") or [] if isinstance(concept, dict) else []
        first = coding[0] if isinstance(coding, list) and coding else None
        if isinstance(first, dict) and first.get("code"):
            codes.append(Code(str(first.get("system") or ""), str(first["code"])))
    if not codes:
        raise FhirStructureError(
            source, "no item has a productOrService code, so no procedure can be checked"
        )
    patient = (resource.get("patient") or {}).get("reference")
    return ClaimFacts(
        money.total,
        money.currency,
        tuple(codes),
        patient,
        _service_period(resource, source),
        _identifier(resource),
    )
