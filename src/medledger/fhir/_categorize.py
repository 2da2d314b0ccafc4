"""Which :class:`~medledger.categories.Category` a FHIR resource is recorded under.

A patient grants access per category, so the split follows what a patient would want to share
separately: test results with a specialist, immunisations with a school, claims with an insurer,
study data with a trial, but not all of it with everyone. The rule:

1. By ``resourceType`` (:data:`BY_TYPE`): the Patient and the people around them are
   DEMOGRAPHICS; Encounter, EpisodeOfCare and Appointments are ENCOUNTER; Condition,
   ClinicalImpression and FamilyMemberHistory are CONDITION; every ``Medication*`` is
   MEDICATION; Immunization* IMMUNIZATION; Procedure PROCEDURE; AllergyIntolerance ALLERGY;
   CarePlan, CareTeam and Goal CARE_PLAN; Composition, DocumentReference, DocumentManifest, Media
   and Binary DOCUMENT; claims, coverage, accounts, invoices and payments FINANCIAL; ImagingStudy
   IMAGING; Specimen LAB; ResearchStudy and ResearchSubject RESEARCH (study participation can
   reveal a diagnosis and is what a trial sponsor needs, so it is granted on its own); the
   organisations, practitioners, locations, devices and provenance around care ADMINISTRATIVE.
2. Refined by content where FHIR itself says the kind:
   - Observation by ``category`` (observation-category codes): ``laboratory`` LAB,
     ``vital-signs`` VITALS, ``imaging`` IMAGING, ``procedure`` PROCEDURE; ``survey`` and
     ``social-history`` (depression screens, substance use, housing, sexual orientation) OTHER,
     and they win over any other code of the same Observation, so that granting "lab" or
     "vitals" never discloses them.
   - DiagnosticReport by ``category``: HL7 v2 table 0074 laboratory sections (LAB, HM, CH, MB,
     SP...) or LOINC LP7839-6 (pathology) LAB; imaging sections (RAD, CT, RX, US...) or LOINC
     LP29684-5 (radiology) IMAGING. A report with neither that carries a ``presentedForm`` is a
     note, DOCUMENT; otherwise, when ``resolve`` is given, the category its ``result``
     Observations all share (Synthea's lab panels have no category of their own).
   - Consent with scope ``research`` is RESEARCH, any other consent (privacy, treatment) is
     ADMINISTRATIVE: it governs access rather than describing care.
   - A Bundle stored as one record is DOCUMENT when it is a ``document`` Bundle.
3. Anything else, and any Observation or report whose kind is not stated, is OTHER: the category
   a patient shares least widely, so an unknown kind is never disclosed by a broad grant.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from medledger.categories import Category
from medledger.fhir._r4 import R4_RESOURCE_TYPES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

_C = Category
BY_TYPE: dict[str, Category] = {
    **dict.fromkeys(("Patient", "RelatedPerson", "Person"), _C.DEMOGRAPHICS),
    **dict.fromkeys(
        ("Encounter", "EpisodeOfCare", "Appointment", "AppointmentResponse"), _C.ENCOUNTER
    ),
    **dict.fromkeys(("Condition", "ClinicalImpression", "FamilyMemberHistory"), _C.CONDITION),
    "Specimen": _C.LAB,
    "ImagingStudy": _C.IMAGING,
    **dict.fromkeys(
        (
            "Medication",
            "MedicationAdministration",
            "MedicationDispense",
            "MedicationKnowledge",
            "MedicationRequest",
            "MedicationStatement",
        ),
        _C.MEDICATION,
    ),
    **dict.fromkeys(
        ("Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation"), _C.IMMUNIZATION
    ),
    "Procedure": _C.PROCEDURE,
    "AllergyIntolerance": _C.ALLERGY,
    **dict.fromkeys(("CarePlan", "CareTeam", "Goal"), _C.CARE_PLAN),
    **dict.fromkeys(
        ("Composition", "DocumentReference", "DocumentManifest", "Media", "Binary"), _C.DOCUMENT
    ),
    **dict.fromkeys(
        (
            "Account",
            "ChargeItem",
            "Claim",
            "ClaimResponse",
            "Coverage",
            "CoverageEligibilityRequest",
            "CoverageEligibilityResponse",
            "EnrollmentRequest",
            "EnrollmentResponse",
            "ExplanationOfBenefit",
            "Invoice",
            "PaymentNotice",
            "PaymentReconciliation",
        ),
        _C.FINANCIAL,
    ),
    **dict.fromkeys(("ResearchStudy", "ResearchSubject"), _C.RESEARCH),
    **dict.fromkeys(
        (
            "Device",
            "Endpoint",
            "HealthcareService",
            "Location",
            "Organization",
            "OrganizationAffiliation",
            "Practitioner",
            "PractitionerRole",
            "Provenance",
        ),
        _C.ADMINISTRATIVE,
    ),
}

# Observation.category: the R4 code system and its STU3 URL, which Synthea 2.2 still writes.
_OBSERVATION_SYSTEMS = {
    "http://terminology.hl7.org/CodeSystem/observation-category",
    "http://hl7.org/fhir/observation-category",
}
_SENSITIVE_OBSERVATIONS = {"survey", "social-history"}
_OBSERVATION_CODES = {
    "laboratory": _C.LAB,
    "vital-signs": _C.VITALS,
    "imaging": _C.IMAGING,
    "procedure": _C.PROCEDURE,
}
# DiagnosticReport.category: HL7 v2 table 0074 (diagnostic service sections) and US Core LOINC.
_SECTION_SYSTEMS = {"http://terminology.hl7.org/CodeSystem/v2-0074", "http://hl7.org/fhir/v2/0074"}
# fmt: off
_LAB_SECTIONS = {
    "BG", "BLB", "CG", "CH", "CP", "GE", "HM", "IMM", "LAB", "MB", "MCB", "MYC", "OSL", "SP", "SR",
    "TX", "VR",
}
_IMAGING_SECTIONS = {"CT", "CUS", "NMR", "NMS", "OUS", "RAD", "RUS", "RX", "VUS", "XRC"}
# fmt: on
_LOINC = "http://loinc.org"
_LOINC_REPORT_CATEGORIES = {"LP7839-6": _C.LAB, "LP29684-5": _C.IMAGING}


def _codings(concepts: Any) -> Iterator[tuple[str | None, str]]:
    """``(system, code)`` of every coding of a CodeableConcept or a list of them."""
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str):
                system = coding.get("system")
                yield (system if isinstance(system, str) else None), code


def _observation(resource: Mapping[str, Any]) -> Category:
    codes = [
        code
        for system, code in _codings(resource.get("category"))
        if system is None or system in _OBSERVATION_SYSTEMS
    ]
    if _SENSITIVE_OBSERVATIONS.intersection(codes):
        return _C.OTHER
    return next((_OBSERVATION_CODES[c] for c in codes if c in _OBSERVATION_CODES), _C.OTHER)


def _report_section(system: str | None, code: str) -> Category | None:
    if system is None or system in _SECTION_SYSTEMS:
        if code in _LAB_SECTIONS:
            return _C.LAB
        if code in _IMAGING_SECTIONS:
            return _C.IMAGING
    return _LOINC_REPORT_CATEGORIES.get(code) if system == _LOINC else None


def _diagnostic_report(
    resource: Mapping[str, Any], resolve: Callable[[str], Mapping[str, Any] | None] | None
) -> Category:
    for system, code in _codings(resource.get("category")):
        section = _report_section(system, code)
        if section is not None:
            return section
    if resource.get("presentedForm"):
        return _C.DOCUMENT
    results = resource.get("result")
    if resolve is None or not isinstance(results, list):
        return _C.OTHER
    found = set()
    for result in results:
        reference = result.get("reference") if isinstance(result, dict) else None
        target = resolve(reference) if isinstance(reference, str) else None
        if target is not None and target.get("resourceType") == "Observation":
            found.add(_observation(target))
    return found.pop() if len(found) == 1 else _C.OTHER


def categorize(
    resource: Mapping[str, Any],
    resolve: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> Category:
    """The category ``resource`` is recorded under (the rule is in this module's docstring).

    ``resolve``, when given, maps a reference string to the resource it points to in the same
    input (or ``None``); it lets a DiagnosticReport without a category take its results'.
    """
    resource_type = resource.get("resourceType")
    if resource_type == "Observation":
        return _observation(resource)
    if resource_type == "DiagnosticReport":
        return _diagnostic_report(resource, resolve)
    if resource_type == "Consent":
        research = any(code == "research" for _, code in _codings(resource.get("scope")))
        return _C.RESEARCH if research else _C.ADMINISTRATIVE
    if resource_type == "Bundle":
        return _C.DOCUMENT if resource.get("type") == "document" else _C.OTHER
    return BY_TYPE.get(resource_type, _C.OTHER) if isinstance(resource_type, str) else _C.OTHER


# Types whose category depends on their content (the rule above).
_BY_CONTENT: dict[str, frozenset[Category]] = {
    "Observation": frozenset(
        {Category.LAB, Category.VITALS, Category.IMAGING, Category.PROCEDURE, Category.OTHER}
    ),
    "DiagnosticReport": frozenset(
        {Category.LAB, Category.IMAGING, Category.DOCUMENT, Category.OTHER}
    ),
    "Consent": frozenset({Category.RESEARCH, Category.ADMINISTRATIVE}),
    "Bundle": frozenset({Category.DOCUMENT, Category.OTHER}),
}


@cache
def categories_of(resource_type: str) -> frozenset[Category]:
    """Every category a resource of ``resource_type`` can be recorded under."""
    fixed = _BY_CONTENT.get(resource_type)
    return fixed or frozenset({categorize({"resourceType": resource_type})})


@cache
def types_of(categories: frozenset[Category]) -> frozenset[str]:
    """Every R4 resource type a record of one of ``categories`` can be."""
    return frozenset(t for t in R4_RESOURCE_TYPES if categories_of(t) & categories)
