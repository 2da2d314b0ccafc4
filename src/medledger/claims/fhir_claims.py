"""Claims over FHIR: a ``Claim`` resource submitted as the claim flow, and a claim's
``ClaimResponse`` and ``ExplanationOfBenefit`` as the FHIR server serves them.

A submitted ``Claim`` names its policy in ``insurance[].coverage`` (the focal one, or the
first) and the care it bills as MedLedger records in ``item[].encounter``,
``procedure[].procedureReference``, ``diagnosis[].diagnosisReference`` and
``supportingInfo[].valueReference``: ``<Type>/<64-hex record id>`` or the identifier
``urn:ietf:rfc:3986 | medledger://...`` (a contained ``#ref`` is skipped). Its ``patient`` is
``Patient/<address>`` of the insured; ``payee.type`` ``subscriber`` pays the patient (who paid
the provider already), anything else the provider. Every one of these is checked, with a
one-line error naming the element, before anything is written.

The body anchored as the provider's Financial record is the ``Claim`` as JSON without the
``id`` a client may send (a server ignores it on create). The same ``Claim`` posted again,
however its keys are ordered, is the same record (anchoring compares bodies as canonical JSON,
see :mod:`medledger.records.once`), and :func:`~medledger.claims.submission.submit_claim`
answers that retry with the claim it made before instead of submitting twice. Float amounts
are fine (the JSON number is read back as a ``Decimal``); a ``Decimal`` in the mapping is not
JSON and is refused.

Ids: a claim's FHIR id is its id in 64 hex digits (a provider's claim has its claim record's
id, so ``Claim/<id>`` is also the record); its ``ClaimResponse`` and ``ExplanationOfBenefit``
have the same id, reference the claim record as ``Claim/<record id>``, the policy as
``Coverage/<policy id>``, the patient as ``Patient/<address>`` and the insurer by its address.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from medledger import consent, fhir, records
from medledger.claims.facts import claim_facts
from medledger.claims.fhir_coverage import policy_of
from medledger.claims.history import Claim, claims, get_claim
from medledger.claims.policy import Policy, get_policy, policies
from medledger.claims.responses import documents_of
from medledger.claims.submission import submit_claim
from medledger.errors import (
    ConfigurationError,
    FhirStructureError,
    InvalidRecordId,
    PreconditionFailed,
    RecordNotFound,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.claims.terms import Terms
    from medledger.ipfs.blockstore import BlockStore

RECORD_URI_SYSTEM = "urn:ietf:rfc:3986"
_RECORD_REFERENCE = re.compile(r"^(?:\S*/)?[A-Z][A-Za-z]{1,63}/([0-9a-fA-F]{64})$")
_PATIENT_REFERENCE = re.compile(r"^(?:\S*/)?Patient/(0x[0-9a-fA-F]{40})$")
_FHIR_CLAIM_ID = re.compile(r"^[0-9a-fA-F]{64}$")


def fhir_claim_id(claim_id: int) -> str:
    """A claim's FHIR id: its id in 64 hex digits (no ``0x``: FHIR ids are letters, digits,
    ``-`` and ``.``)."""
    return f"{claim_id:064x}"


def parse_fhir_claim_id(text: str) -> int:
    """The claim a FHIR id (64 hex digits) names."""
    if not _FHIR_CLAIM_ID.match(text) or int(text, 16) == 0:
        raise ConfigurationError("id", f"{text!r} is not a claim id (64 hex digits)")
    return int(text, 16)


def submit_fhir_claim(
    chain: Chain,
    store: BlockStore,
    submitter: Signer,
    claim: Mapping[str, Any],
    terms: Terms | None = None,
) -> tuple[Claim, dict[str, Any]]:
    """Submit a FHIR ``Claim`` (see the module); return the claim and its ``ClaimResponse``.

    ``terms`` are the policy's terms the patient gave the provider (the insurer and the patient
    read them from the chain themselves). A retry of the same ``Claim`` returns the claim made
    the first time, with its current response, and writes nothing.
    """
    resource = {k: v for k, v in claim.items() if k != "id"}
    try:
        body = json.dumps(resource).encode()
    except (TypeError, ValueError) as exc:
        raise FhirStructureError("Claim", f"is not JSON data ({exc})") from None
    claim_facts(body, "Claim")  # the Claim itself first: type, money, codes, service period
    policy = policy_of(chain, *_insurance(resource))
    _check_patient(resource, policy)
    _check_insurer(resource, policy)
    pay_patient = _pays_patient(resource)
    found = [_evidence_record(chain, store, policy, *named) for named in _evidence(resource)]
    evidence = list(dict.fromkeys(e for e in found if e is not None))
    if not evidence:
        raise FhirStructureError(
            "Claim",
            "names no evidence: reference the care it bills as MedLedger records (<Type>/<64-hex "
            "record id>) in item[].encounter, procedure[].procedureReference, "
            "diagnosis[].diagnosisReference or supportingInfo[].valueReference",
        )
    submitted = submit_claim(
        chain, store, submitter, policy.id, body, evidence=evidence,
        terms=terms, pay_patient=pay_patient, source="Claim",
    )  # fmt: skip
    response, _ = claim_views(chain, store, submitter, submitted.id)
    return submitted, response


def claim_views(
    chain: Chain, store: BlockStore, reader: Signer, claim_id: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A claim's ``ClaimResponse`` and, once something was paid, its ``ExplanationOfBenefit``
    (None before), as the server serves them. ``reader`` must be able to open the claim record
    (its provider, the patient or the consented insurer)."""
    claim = get_claim(chain, claim_id)
    policy = get_policy(chain, claim.policy_id)
    body = consent.read(chain, store, reader, claim.claim_record, log=False)
    built = {k: json.loads(v) for k, v in documents_of(chain, claim, body).items()}
    response = _served(built["ClaimResponse"], claim, policy)
    response["request"] = {"reference": f"Claim/{claim.claim_record.hex()}"}
    response["insurance"] = [{"sequence": 1, "focal": True, "coverage": _coverage(policy)}]
    eob = built.get("ExplanationOfBenefit")
    if eob is not None:
        eob = _served(eob, claim, policy)
        eob["claim"] = {"reference": f"Claim/{claim.claim_record.hex()}"}
        eob["claimResponse"] = {"reference": f"ClaimResponse/{fhir_claim_id(claim.id)}"}
        eob["insurance"] = [{"focal": True, "coverage": _coverage(policy)}]
    return response, eob


def claims_of_patient(chain: Chain, patient: str) -> list[Claim]:
    """Every claim against a patient's policies, policy by policy, oldest first."""
    return [c for p in policies(chain, patient=patient) for c in claims(chain, policy_id=p.id)]


# --- reading the Claim ---------------------------------------------------------------------------


def _served(resource: dict[str, Any], claim: Claim, policy: Policy) -> dict[str, Any]:
    """The server's ids and references in a built response."""
    resource["id"] = fhir_claim_id(claim.id)
    resource["patient"] = {"reference": f"Patient/{policy.patient}"}
    resource["insurer"] = fhir.institution_reference(policy.insurer, "Organization")
    return resource


def _coverage(policy: Policy) -> dict[str, str]:
    return {"reference": f"Coverage/{policy.id}"}


def _items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _insurance(resource: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The coverage reference of the focal insurance (or the first), and where it is."""
    entries = _items(resource.get("insurance"))
    focal = [n for n, e in enumerate(entries) if isinstance(e, dict) and e.get("focal") is True]
    n = focal[0] if focal else 0
    entry = entries[n] if entries else None
    coverage = entry.get("coverage") if isinstance(entry, dict) else None
    if not isinstance(coverage, dict):
        raise FhirStructureError(
            "Claim", "has no insurance[].coverage naming the policy (Coverage/<policy id>)"
        )
    return coverage, f"insurance[{n}].coverage"


def _check_patient(resource: Mapping[str, Any], policy: Policy) -> None:
    patient = resource.get("patient")
    reference = patient.get("reference") if isinstance(patient, dict) else None
    match = _PATIENT_REFERENCE.match(reference.strip()) if isinstance(reference, str) else None
    if match is None:
        raise FhirStructureError(
            "Claim", f"patient must be Patient/<address> of the insured ({policy.patient})"
        )
    if match[1].lower() != policy.patient.lower():
        raise PreconditionFailed(
            f"the Claim's patient {match[1]} is not the insured of policy {policy.id} "
            f"({policy.patient})"
        )


def _check_insurer(resource: Mapping[str, Any], policy: Policy) -> None:
    insurer = resource.get("insurer")
    identifier = insurer.get("identifier") if isinstance(insurer, dict) else None
    if not isinstance(identifier, dict) or identifier.get("system") != fhir.INSTITUTION_SYSTEM:
        return  # a display or the EHR's own reference: the policy says who the insurer is
    if str(identifier.get("value", "")).lower() != policy.insurer.lower():
        raise PreconditionFailed(
            f"the Claim's insurer {identifier.get('value')} is not policy {policy.id}'s "
            f"({policy.insurer})"
        )


def _pays_patient(resource: Mapping[str, Any]) -> bool:
    payee = resource.get("payee")
    kind = payee.get("type") if isinstance(payee, dict) else None
    coding = _items(kind.get("coding")) if isinstance(kind, dict) else []
    codes = {c.get("code") for c in coding if isinstance(c, dict)}
    if codes - {"subscriber", "provider"}:
        raise FhirStructureError(
            "Claim", "payee.type must be subscriber (pay the patient) or provider (the default)"
        )
    return "subscriber" in codes


def _evidence(resource: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(element, reference) of every reference that may name evidence."""
    for n, item in enumerate(_items(resource.get("item"))):
        if isinstance(item, dict):
            for m, ref in enumerate(_items(item.get("encounter"))):
                yield f"item[{n}].encounter[{m}]", ref
    for field, element in (
        ("procedure", "procedureReference"),
        ("diagnosis", "diagnosisReference"),
        ("supportingInfo", "valueReference"),
    ):
        for n, entry in enumerate(_items(resource.get(field))):
            if isinstance(entry, dict) and element in entry:
                yield f"{field}[{n}].{element}", entry[element]


def _evidence_record(
    chain: Chain, store: BlockStore, policy: Policy, where: str, reference: object
) -> bytes | None:
    """The record a reference names, checked to be anchored and the insured's (None for a
    contained resource)."""
    if not isinstance(reference, dict):
        raise FhirStructureError("Claim", f"{where} is not a Reference")
    text = reference.get("reference")
    if isinstance(text, str) and text.startswith("#"):
        return None
    identifier = reference.get("identifier")
    named: str | None = None
    if isinstance(text, str) and (match := _RECORD_REFERENCE.match(text.strip())):
        named = "0x" + match[1].lower()
    elif isinstance(identifier, dict) and identifier.get("system") == RECORD_URI_SYSTEM:
        named = str(identifier.get("value", ""))
    if named is None:
        shown = text if isinstance(text, str) else "a reference"
        raise FhirStructureError(
            "Claim",
            f"{where} {shown!r} does not name a MedLedger record (<Type>/<64-hex record id>, "
            f"or the identifier {RECORD_URI_SYSTEM} medledger://...)",
        )
    try:
        found = records.get(chain, named, store)
    except (RecordNotFound, InvalidRecordId, PreconditionFailed) as exc:
        raise FhirStructureError("Claim", f"{where}: {exc}") from None
    if found.patient != policy.patient:
        raise PreconditionFailed(
            f"Claim {where}: record {found.hex_id} is another patient's, not the insured's "
            f"({policy.patient}, policy {policy.id})"
        )
    return found.id
