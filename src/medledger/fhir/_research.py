"""FHIR R4 ``ResearchStudy`` and ``ResearchSubject`` for studies and participations on chain.

The chain knows addresses, versions and times, never names: so every reference here is *by
identifier*. A study is ``urn:medledger:study|eip155:<chain>/<TrialRegistry>/<id>``; its sponsor
and sites are institutions (``urn:medledger:institution|<address>``); a participant is their
pseudonymous study address (``urn:medledger:participant|<address>``), never their record
identity. What FHIR has no element for (the protocol version in force, when the study was
registered, the consented version, a pending re-consent, the enrolling site of a subject) goes
in simple extensions. :func:`study_facts_of` and :func:`subject_facts_of` read the resources
back, so a system that only holds the FHIR can find the study on chain again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medledger.errors import FhirStructureError

if TYPE_CHECKING:
    from collections.abc import Mapping

STUDY_SYSTEM = "urn:medledger:study"
PARTICIPANT_SYSTEM = "urn:medledger:participant"
INSTITUTION_SYSTEM = "urn:medledger:institution"
PROTOCOL_VERSION_URL = "urn:medledger:fhir:protocol-version"
REGISTERED_AT_URL = "urn:medledger:fhir:registered-at"
CONSENTED_VERSION_URL = "urn:medledger:fhir:consented-protocol-version"
RECONSENT_URL = "urn:medledger:fhir:reconsent-required"
SITE_URL = "urn:medledger:fhir:enrolling-site"
_STUDY_VALUE = re.compile(r"^eip155:(\d+)/(0x[0-9a-fA-F]{40})/(\d+)$")


@dataclass(frozen=True)
class StudyRef:
    """Where a study lives: chain id, TrialRegistry address and study id."""

    chain_id: int
    registry: str
    study_id: int

    @property
    def value(self) -> str:
        """The identifier value ``eip155:<chain>/<registry>/<id>``."""
        return f"eip155:{self.chain_id}/{self.registry}/{self.study_id}"

    @classmethod
    def parse(cls, text: str, source: str = "resource") -> StudyRef:
        """Parse an identifier value; raise ``FhirStructureError`` when it is not one."""
        match = _STUDY_VALUE.match(text.strip())
        if match is None:
            raise FhirStructureError(
                source, f"{text!r} is not a study identifier (eip155:<chain>/<registry>/<id>)"
            )
        return cls(int(match[1]), match[2], int(match[3]))


@dataclass(frozen=True)
class StudyFacts:
    """What the chain says about a study, in the terms a ``ResearchStudy`` needs."""

    ref: StudyRef
    sponsor: str
    sites: tuple[str, ...]
    protocol_version: int
    registered_at: datetime


@dataclass(frozen=True)
class SubjectFacts:
    """What the chain says about one participation, for a ``ResearchSubject``."""

    study: StudyRef
    participant: str
    site: str
    withdrawn: bool
    start: datetime
    end: datetime | None
    consented_version: int
    reconsent_required: bool

    @property
    def status(self) -> str:
        """The R4 ``ResearchSubject.status``: ``on-study`` or ``withdrawn``."""
        return "withdrawn" if self.withdrawn else "on-study"


def institution_reference(address: str, resource_type: str) -> dict[str, Any]:
    """A reference to an institution by its address (the chain knows no names)."""
    return {"type": resource_type, "identifier": {"system": INSTITUTION_SYSTEM, "value": address}}


def research_study(facts: StudyFacts, protocol: Mapping[str, Any] | None = None) -> bytes:
    """The study as a ``ResearchStudy``: the protocol document (when readable) with the chain's
    view laid over it (identifier, protocol version, sponsor, sites, registration time)."""
    base = dict(protocol or {})
    ours = {"system": STUDY_SYSTEM, "value": facts.ref.value}
    identifiers = [
        i
        for i in base.get("identifier") or []
        if isinstance(i, dict) and i.get("system") != STUDY_SYSTEM
    ]
    sponsor = institution_reference(facts.sponsor, "Organization")
    given = base.get("sponsor")
    if isinstance(given, dict) and isinstance(given.get("display"), str):
        sponsor["display"] = given["display"]
    extensions = [
        e
        for e in base.get("extension") or []
        if isinstance(e, dict) and e.get("url") not in (PROTOCOL_VERSION_URL, REGISTERED_AT_URL)
    ]
    resource: dict[str, Any] = {
        **base,
        "resourceType": "ResearchStudy",
        "extension": [
            *extensions,
            {"url": PROTOCOL_VERSION_URL, "valuePositiveInt": facts.protocol_version},
            {"url": REGISTERED_AT_URL, "valueDateTime": facts.registered_at.isoformat()},
        ],
        "identifier": [*identifiers, ours],
        "status": base.get("status") or "active",
        "sponsor": sponsor,
    }
    if facts.sites:
        resource["site"] = [institution_reference(s, "Location") for s in facts.sites]
    else:
        resource.pop("site", None)
    return json.dumps(resource, indent=2).encode()


def research_subject(facts: SubjectFacts) -> bytes:
    """A participation as a ``ResearchSubject``; the individual is the pseudonymous address."""
    period = {"start": facts.start.isoformat()}
    if facts.end is not None:
        period["end"] = facts.end.isoformat()
    resource = {
        "resourceType": "ResearchSubject",
        "extension": [
            {"url": CONSENTED_VERSION_URL, "valuePositiveInt": facts.consented_version},
            {"url": RECONSENT_URL, "valueBoolean": facts.reconsent_required},
            {"url": SITE_URL, "valueReference": institution_reference(facts.site, "Organization")},
        ],
        "identifier": [
            {"system": PARTICIPANT_SYSTEM, "value": f"{facts.study.value}/{facts.participant}"}
        ],
        "status": facts.status,
        "period": period,
        "study": {
            "type": "ResearchStudy",
            "identifier": {"system": STUDY_SYSTEM, "value": facts.study.value},
        },
        "individual": {
            "type": "Patient",
            "identifier": {"system": PARTICIPANT_SYSTEM, "value": facts.participant},
            "display": "pseudonymous trial participant",
        },
    }
    return json.dumps(resource, indent=2).encode()


# --- back from FHIR ------------------------------------------------------------------------------


def study_ref_of(resource: Mapping[str, Any], source: str = "resource") -> StudyRef:
    """The study a ``ResearchStudy`` (its identifier) or ``ResearchSubject`` (its ``study``)
    names on chain."""
    kind = resource.get("resourceType")
    candidates: list[object]
    if kind == "ResearchStudy":
        candidates = list(resource.get("identifier") or [])
    elif kind == "ResearchSubject":
        study = resource.get("study")
        candidates = [study.get("identifier")] if isinstance(study, dict) else []
    else:
        raise FhirStructureError(source, f"is a {kind}, not a ResearchStudy or ResearchSubject")
    for identifier in candidates:
        if isinstance(identifier, dict) and identifier.get("system") == STUDY_SYSTEM:
            return StudyRef.parse(str(identifier.get("value", "")), source)
    raise FhirStructureError(source, f"names no {STUDY_SYSTEM} study identifier")


def study_facts_of(resource: Mapping[str, Any], source: str = "ResearchStudy") -> StudyFacts:
    """Read back what :func:`research_study` wrote."""
    ref = study_ref_of(resource, source)
    if resource.get("resourceType") != "ResearchStudy":
        raise FhirStructureError(source, "is not a ResearchStudy")
    version = _extension(resource, PROTOCOL_VERSION_URL, "valuePositiveInt", source)
    registered = _extension(resource, REGISTERED_AT_URL, "valueDateTime", source)
    sites = tuple(
        _institution_address(s, source) for s in resource.get("site") or [] if isinstance(s, dict)
    )
    return StudyFacts(
        ref=ref,
        sponsor=_institution_address(resource.get("sponsor"), source),
        sites=sites,
        protocol_version=int(version),
        registered_at=_datetime(registered, source),
    )


def subject_facts_of(resource: Mapping[str, Any], source: str = "ResearchSubject") -> SubjectFacts:
    """Read back what :func:`research_subject` wrote."""
    if resource.get("resourceType") != "ResearchSubject":
        raise FhirStructureError(source, "is not a ResearchSubject")
    ref = study_ref_of(resource, source)
    individual = resource.get("individual")
    identifier = individual.get("identifier") if isinstance(individual, dict) else None
    if not isinstance(identifier, dict) or identifier.get("system") != PARTICIPANT_SYSTEM:
        raise FhirStructureError(source, f"its individual has no {PARTICIPANT_SYSTEM} identifier")
    period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
    assert isinstance(period, dict)
    status = resource.get("status")
    if status not in ("on-study", "withdrawn"):
        raise FhirStructureError(source, f"status {status!r} is not on-study or withdrawn")
    return SubjectFacts(
        study=ref,
        participant=str(identifier.get("value")),
        site=_institution_address(_extension(resource, SITE_URL, "valueReference", source), source),
        withdrawn=status == "withdrawn",
        start=_datetime(period.get("start"), source),
        end=_datetime(period["end"], source) if period.get("end") else None,
        consented_version=int(
            _extension(resource, CONSENTED_VERSION_URL, "valuePositiveInt", source)
        ),
        reconsent_required=bool(_extension(resource, RECONSENT_URL, "valueBoolean", source)),
    )


def _extension(resource: Mapping[str, Any], url: str, value: str, source: str) -> Any:
    for extension in resource.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url and value in extension:
            return extension[value]
    raise FhirStructureError(source, f"has no {url} extension")


def _institution_address(reference: object, source: str) -> str:
    identifier = reference.get("identifier") if isinstance(reference, dict) else None
    if not isinstance(identifier, dict) or identifier.get("system") != INSTITUTION_SYSTEM:
        raise FhirStructureError(source, f"a reference has no {INSTITUTION_SYSTEM} identifier")
    return str(identifier.get("value"))


def _datetime(value: object, source: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise FhirStructureError(source, f"{value!r} is not a dateTime") from None
