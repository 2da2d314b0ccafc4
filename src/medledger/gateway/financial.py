"""Insurance and research over REST: ``Coverage`` (policies), ``POST /Claim`` (the claim flow,
answered with its ``ClaimResponse``), ``ClaimResponse`` and ``ExplanationOfBenefit`` (once
paid), ``ResearchStudy`` and ``ResearchSubject``; thin over :mod:`medledger.claims` and
:mod:`medledger.trials`.

A submitted ``Claim`` is itself a record (the provider's Financial record of the patient): it
is read at ``Claim/{record id}`` like any record. The policy's terms, which a provider cannot
read from the chain, come with the Claim as the patient handed them over: a ``supportingInfo``
whose category is ``urn:medledger:claim-info|policy-terms`` and whose ``valueAttachment.data``
is the terms file (``medledger policy show --terms --out F``), base64; it is taken out of the
Claim before the Claim is stored.

Who may read: ``Coverage``, ``ClaimResponse`` and ``ExplanationOfBenefit`` follow the patient's
standing (the patient, a grantee, the institution); studies are shown to any signed-in
caller; a ``ResearchSubject`` to the institution and to the participant's own study account.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from medledger import claims, trials
from medledger.errors import FhirStructureError, Forbidden, InvalidRequest, RecordNotFound
from medledger.gateway.queries import patient_address
from medledger.gateway.scopes import Action

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from medledger.gateway.auth import Authority, Principal
    from medledger.gateway.serving import Records

    Authorize = Callable[[str, Action, str | None], Principal]

TERMS_INFO = ("urn:medledger:claim-info", "policy-terms")
TYPES = frozenset({
    "Coverage", "Claim", "ClaimResponse", "ExplanationOfBenefit", "ResearchStudy",
    "ResearchSubject",
})  # fmt: skip
SEARCHES = {
    "Coverage": ("patient", "beneficiary"),
    "ClaimResponse": ("patient",),
    "ExplanationOfBenefit": ("patient",),
    "ResearchStudy": (),
    "ResearchSubject": ("study", "patient", "individual"),
}


class Financial:
    """The non-record resources a gateway serves."""

    def __init__(self, records: Records, authority: Authority) -> None:
        self.records, self.authority = records, authority
        self.chain, self.store, self.account = records.chain, records.store, records.account

    def read(self, kind: str, resource_id: str, authorize: Authorize) -> dict[str, Any]:
        """``GET /{kind}/{id}``."""
        if kind == "Coverage":
            policy = claims.get_policy(self.chain, _number(resource_id, kind))
            authorize(kind, Action.READ, policy.patient)
            return claims.coverage_resource(self.chain, policy)
        if kind in ("ClaimResponse", "ExplanationOfBenefit"):
            claim = claims.get_claim(self.chain, _claim_id(resource_id, kind))
            policy = claims.get_policy(self.chain, claim.policy_id)
            authorize(kind, Action.READ, policy.patient)
            response, eob = claims.claim_views(self.chain, self.store, self.account, claim.id)
            found = response if kind == "ClaimResponse" else eob
            if found is None:
                raise RecordNotFound(f"{kind}/{resource_id} (nothing was paid on the claim yet)")
            return found
        if kind == "ResearchStudy":
            authorize(kind, Action.READ, None)
            number = _number(resource_id, kind)
            return trials.study_resources(self.chain, self.store, number, self.account)[0]
        if kind == "ResearchSubject":
            found = trials.subject_resource(self.chain, resource_id)
            self._may_see_subject(authorize, found)
            return found
        raise RecordNotFound(f"{kind}/{resource_id}")

    def search(
        self, kind: str, params: Iterable[tuple[str, str]], authorize: Authorize
    ) -> list[dict[str, Any]]:
        """``GET /{kind}?...`` (every match: these lists are short)."""
        given = _params(kind, params)
        patient = next((patient_address(given[k]) for k in SEARCHES[kind][:2]
                        if k in given and kind != "ResearchSubject"), None)  # fmt: skip
        if kind == "Coverage":
            caller = authorize(kind, Action.SEARCH, patient)
            patient = patient or caller.patient
            if patient is None:
                raise InvalidRequest("name the patient: GET /Coverage?patient=0x...")
            return claims.coverages(self.chain, patient=patient)
        if kind in ("ClaimResponse", "ExplanationOfBenefit"):
            caller = authorize(kind, Action.SEARCH, patient)
            patient = patient or caller.patient
            if patient is None:
                raise InvalidRequest(f"name the patient: GET /{kind}?patient=0x...")
            found = []
            for claim in claims.claims_of_patient(self.chain, patient):
                response, eob = claims.claim_views(self.chain, self.store, self.account, claim.id)
                shown = response if kind == "ClaimResponse" else eob
                found += [shown] if shown is not None else []
            return found
        if kind == "ResearchStudy":
            authorize(kind, Action.SEARCH, None)
            return trials.study_resources(self.chain, self.store, None, self.account)
        study = _number(given["study"], "study") if "study" in given else None
        who = given.get("patient") or given.get("individual")
        subjects = trials.subject_resources(
            self.chain, study, patient_address(who) if who else None
        )
        for subject in subjects:
            self._may_see_subject(authorize, subject)
        return subjects

    def submit_claim(self, body: bytes, authorize: Authorize) -> tuple[dict[str, Any], str]:
        """``POST /Claim``: the claim's ``ClaimResponse`` and the Claim record's id."""
        try:
            resource = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FhirStructureError("Claim", "is not valid JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Claim":
            raise InvalidRequest("POST /Claim takes a Claim")
        reference = (resource.get("patient") or {}).get("reference", "")
        authorize("Claim", Action.CREATE, patient_address(reference) if reference else None)
        resource, terms = _take_terms(resource)
        claim, response = claims.submit_fhir_claim(
            self.chain, self.store, self.account, resource, terms
        )
        return response, claim.claim_record.hex()

    def _may_see_subject(self, authorize: Authorize, subject: dict[str, Any]) -> None:
        caller = authorize("ResearchSubject", Action.READ, None)
        participant = str(subject.get("individual", {}).get("identifier", {}).get("value", ""))
        if not caller.institution and caller.address.lower() != participant.lower():
            raise Forbidden(
                "a ResearchSubject is shown to the study site's institution and to the "
                "participant's own study account only"
            )


def _params(kind: str, params: Iterable[tuple[str, str]]) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in params:
        if name in ("_format", "_pretty", "_count"):
            continue
        if name not in SEARCHES[kind]:
            known = ", ".join(SEARCHES[kind]) or "none"
            raise InvalidRequest(f"{kind} search parameter {name!r} is not supported ({known})")
        given[name] = value
    return given


def _number(text: str, kind: str) -> int:
    if not text.isdigit():
        raise RecordNotFound(f"{kind}/{text}")
    return int(text)


def _claim_id(text: str, kind: str) -> int:
    try:
        return claims.parse_fhir_claim_id(text)
    except ValueError:
        raise RecordNotFound(f"{kind}/{text}") from None


def _take_terms(resource: dict[str, Any]) -> tuple[dict[str, Any], claims.Terms | None]:
    """The Claim without the policy-terms supportingInfo, and the terms it carried."""
    kept, terms = [], None
    for info in resource.get("supportingInfo") or []:
        codings = (info.get("category") or {}).get("coding") or [] if isinstance(info, dict) else []
        if not any((c.get("system"), c.get("code")) == TERMS_INFO for c in codings):
            kept.append(info)
            continue
        data = (info.get("valueAttachment") or {}).get("data", "")
        try:
            document = json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise FhirStructureError(
                "Claim", "the policy-terms supportingInfo's valueAttachment.data is not a "
                "base64 terms file",
            ) from None  # fmt: skip
        terms = claims.Terms.from_json(document, "the Claim's policy terms")
    out = {k: v for k, v in resource.items() if k != "supportingInfo"}
    if kept:
        out["supportingInfo"] = kept
    return out, terms
