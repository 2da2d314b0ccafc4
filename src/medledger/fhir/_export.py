"""The output direction: records back into a Bundle, one-line summaries, cheap type look-up."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from medledger.errors import FhirStructureError
from medledger.fhir._ingest import parse_json, resource_type
from medledger.fhir._spans import BOM, top_level_string

if TYPE_CHECKING:
    from collections.abc import Iterable

BODY = "record body"  # how messages name a record body, which has no file name

# Where the date a listing shows is, by preference; ``a.b`` is ``b`` inside ``a``.
_DATE_FIELDS = (
    "effectiveDateTime",
    "effectivePeriod.start",
    "effectiveInstant",
    "issued",
    "occurrenceDateTime",
    "performedDateTime",
    "performedPeriod.start",
    "started",
    "onsetDateTime",
    "recordedDate",
    "authoredOn",
    "period.start",
    "billablePeriod.start",
    "created",
    "date",
    "dateTime",
    "birthDate",
)
# Where what the resource is about is described (a CodeableConcept, a list of them or a name).
_WHAT_FIELDS = (
    "code",
    "vaccineCode",
    "medicationCodeableConcept",
    "procedureCode",
    "type",
    "name",
    "title",
    "description",
    "category",
)
_SUMMARY_WIDTH = 80


def to_bundle(bodies: Iterable[tuple[str | None, bytes]]) -> bytes:
    """A FHIR ``collection`` Bundle holding the records ``(full_url, body)``, in that order.

    Each body is copied into the Bundle unchanged (only a UTF-8 BOM is dropped), so loading the
    Bundle gives back each body without its surrounding whitespace. Raises FhirStructureError if
    a body is not a FHIR R4 resource or two records share a fullUrl and version.
    """
    parts = []
    seen: set[tuple[str, object]] = set()
    for index, (full_url, body) in enumerate(bodies):
        resource = parse_json(body, f"{BODY} {index}")
        resource_type(resource, f"{BODY} {index}", None, "the body")
        head = b"{"
        if full_url is not None:
            meta = resource.get("meta")
            key = (full_url, meta.get("versionId") if isinstance(meta, dict) else None)
            if key in seen:
                problem = f"the fullUrl {full_url!r} repeats that of an earlier record"
                raise FhirStructureError(f"{BODY} {index}", problem)
            seen.add(key)
            head = b'{"fullUrl":' + json.dumps(full_url).encode() + b","
        parts.append(head + b'"resource":' + body.removeprefix(BOM) + b"}")
    return b'{"resourceType":"Bundle","type":"collection","entry":[' + b",".join(parts) + b"]}"


def parse_resource(body: bytes) -> dict[str, Any]:
    """A record body as a FHIR resource object; raises a FhirError if it is not one."""
    resource = parse_json(body, BODY)
    resource_type(resource, BODY, None, "the body")
    return dict(resource)


def _at(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _describe(value: Any) -> str | None:
    """The human text of a CodeableConcept, HumanName, string or the first of a list of them."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("text"), str):
        return str(value["text"])
    codings = value.get("coding")
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict):
            for key in ("display", "code"):
                if isinstance(coding.get(key), str):
                    return str(coding[key])
    given = value.get("given")
    names = [*(given if isinstance(given, list) else []), value.get("family")]
    return " ".join(n for n in names if isinstance(n, str)) or None


def summary(body: bytes) -> str:
    """One line describing a record body for listings: ``Type/id date what``.

    For example ``Observation/example 2016-03-28 Body Weight``; date and description are left
    out when the resource has none. Raises a FhirError if ``body`` is not a FHIR resource.
    """
    resource = parse_json(body, BODY)
    name = resource_type(resource, BODY, None, "the body")
    words = [f"{name}/{resource['id']}" if isinstance(resource.get("id"), str) else name]
    date = next((d for f in _DATE_FIELDS if isinstance(d := _at(resource, f), str)), None)
    if date:
        words.append(date[:10])
    what = next((d for f in _WHAT_FIELDS if (d := _describe(resource.get(f)))), None)
    if what:
        what = " ".join(what.split())
        words.append(what if len(what) <= _SUMMARY_WIDTH else what[: _SUMMARY_WIDTH - 3] + "...")
    return " ".join(words)


def resource_type_of(body: bytes) -> str:
    """The ``resourceType`` of a record body, read without parsing the whole body.

    Reads members only up to ``resourceType`` (first in FHIR's JSON form), so it does not check
    the rest of the body; raises FhirStructureError if there is no string ``resourceType``.
    """
    try:
        name = top_level_string(body, "resourceType")
    except ValueError:
        name = None
    if name is None:
        raise FhirStructureError(BODY, "the body has no resourceType: it is not a FHIR resource")
    return name
