"""Turning input bytes into record drafts: :func:`load` (its rules are in the package docstring)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from medledger.errors import (
    FhirParseError,
    FhirPatientMismatch,
    FhirStructureError,
    FhirValidationError,
)
from medledger.fhir._categorize import categorize
from medledger.fhir._r4 import R4_RESOURCE_TYPES
from medledger.fhir._spans import BOM, DuplicateMember, entry_resource_spans
from medledger.fhir._types import Ingest, PatientRef, RecordDraft
from medledger.fhir._validate import (
    Problem,
    bundle_problems,
    json_kind,
    problems_of,
    summarise,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

STRICT_SHOWN = 3  # problems named in a strict-mode error

# Reference fields naming the patient a resource is about: ``subject`` may also point to a
# Group, Device or Location; the others only ever point to a Patient.
_PATIENT_ONLY_FIELDS = ("patient", "beneficiary", "individual")
_LITERAL = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class _DuplicateKey(ValueError):
    """An object names the same key twice (``json`` would silently keep the last value)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(
                    f"the key {key!r} appears twice in one object (parsers disagree on which "
                    "value counts)"
                )
            seen.add(key)
    return found


def parse_json(data: bytes, source: str) -> Any:
    """Parse ``data`` as strict UTF-8 JSON (a leading BOM is allowed), or raise FhirParseError."""
    try:
        text = data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise FhirParseError(source, f"not UTF-8 text (bad byte at offset {error.start})") from None
    if not text.strip():
        raise FhirParseError(source, "the input is empty")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise FhirParseError(source, str(error)) from None
    except json.JSONDecodeError as error:
        raise FhirParseError(source, error.msg, error.lineno, error.colno) from None
    except ValueError as error:
        raise FhirParseError(source, str(error)) from None
    except RecursionError:
        raise FhirParseError(source, "the JSON is nested too deeply") from None


def resource_type(
    resource: object, source: str, entry_index: int | None, what: str = "the input"
) -> str:
    """The R4 ``resourceType`` of ``resource``, or raise FhirStructureError saying why not."""
    if not isinstance(resource, dict):
        kind = json_kind(resource)
        raise FhirStructureError(source, f"{what} is {kind}, not a resource object", entry_index)
    name = resource.get("resourceType")
    if name is None:
        raise FhirStructureError(source, f"{what} has no resourceType", entry_index)
    if not isinstance(name, str) or name not in R4_RESOURCE_TYPES:
        close = difflib.get_close_matches(str(name), R4_RESOURCE_TYPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problem = f"resourceType {name!r} is not a FHIR R4 resource type{hint}"
        raise FhirStructureError(source, problem, entry_index)
    return name


def _text(resource: Mapping[str, Any], key: str) -> str | None:
    value = resource.get(key)
    return value if isinstance(value, str) else None


def _patient_entry(resource: Mapping[str, Any], full_url: str | None) -> PatientRef:
    identifiers = resource.get("identifier")
    pairs = tuple(
        (_text(i, "system"), value)
        for i in (identifiers if isinstance(identifiers, list) else [])
        if isinstance(i, dict) and isinstance(value := i.get("value"), str)
    )
    return PatientRef(full_url, _text(resource, "id"), pairs)


class _Resources:
    """The resources of one input, found by ``fullUrl`` or by ``Type/id``."""

    def __init__(
        self, entries: list[tuple[str | None, dict[str, Any]]], places: list[str] | None = None
    ) -> None:
        self.entries = entries
        self.places = places or [f"entry[{n}]" for n in range(len(entries))]
        self._by_key: dict[str, tuple[str | None, dict[str, Any]]] = {}
        for full_url, resource in entries:
            if full_url:
                self._by_key[full_url] = (full_url, resource)
            if isinstance(identifier := resource.get("id"), str):
                key = f"{resource['resourceType']}/{identifier}"
                self._by_key.setdefault(key, (full_url, resource))

    def _find(self, reference: str) -> tuple[str | None, dict[str, Any]] | None:
        found = self._by_key.get(reference)
        if found is None and (literal := _LITERAL.search(reference)):
            found = self._by_key.get(f"{literal[1]}/{literal[2]}")
        return found

    def resolve(self, reference: str) -> dict[str, Any] | None:
        """The resource ``reference`` points to in this input, if it is here."""
        found = self._find(reference)
        return found[1] if found else None

    def patient_named(self, field: str, value: object) -> PatientRef | None:
        """The patient a Reference in ``field`` names, or ``None`` if it names no patient.

        A Reference names a patient if it resolves to a Patient of the input, has the literal
        form ``[base/]Patient/<id>``, says ``type: Patient``, or sits in a field that only
        points to patients; an unresolved reference in ``subject`` with no type is ignored.
        """
        if not isinstance(value, dict):
            return None
        reference, typed = value.get("reference"), value.get("type")
        only_patients = field in _PATIENT_ONLY_FIELDS or typed == "Patient"
        if isinstance(reference, str) and not reference.startswith("#"):
            found = self._find(reference)
            if found is not None:
                full_url, target = found
                return _patient_entry(target, full_url) if _is_patient(target) else None
            literal = _LITERAL.search(reference)
            if literal:
                return PatientRef(None, literal[2]) if literal[1] == "Patient" else None
            return PatientRef(reference, None) if only_patients else None
        identifier = value.get("identifier")
        if (
            only_patients
            and isinstance(identifier, dict)
            and isinstance(number := identifier.get("value"), str)
        ):
            return PatientRef(None, None, ((_text(identifier, "system"), number),))
        return None

    def the_patient(self, source: str, bundle: bool) -> PatientRef | None:
        """The one patient the resources are about, or raise FhirPatientMismatch.

        That is the Patient resource if there is one (a Patient that is not the same patient is
        refused; another version of it is fine), otherwise the first patient a reference names;
        every reference to a patient must then name it.
        """
        patient = None
        for index, (full_url, resource) in enumerate(self.entries):
            if _is_patient(resource):
                this = _patient_entry(resource, full_url)
                if patient is not None and not patient.same_patient(this):
                    where = f"{self.places[index]} (a second Patient)"
                    raise FhirPatientMismatch(source, where, this.label, patient.label)
                patient = this
        for index, (_full_url, resource) in enumerate(self.entries):
            for field in ("subject", *_PATIENT_ONLY_FIELDS):
                named = self.patient_named(field, resource.get(field))
                if named is None:
                    continue
                if patient is None:
                    patient = named
                elif not patient.same_patient(named):
                    where = f"{self.places[index]}.{field}" if bundle else f"the resource's {field}"
                    raise FhirPatientMismatch(source, where, named.label, patient.label)
        return patient


def _is_patient(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") == "Patient"


def _bundle_entries(
    bundle: Mapping[str, Any], source: str
) -> list[tuple[str | None, dict[str, Any]]]:
    """``(fullUrl, resource)`` of each entry, or raise FhirStructureError for a bad entry."""
    entries = bundle.get("entry")
    if entries is None or entries == []:
        raise FhirStructureError(source, "the Bundle has no entries: there is nothing to record")
    if not isinstance(entries, list):
        raise FhirStructureError(source, f"Bundle.entry is {json_kind(entries)}, not an array")
    found: list[tuple[str | None, dict[str, Any]]] = []
    seen: dict[tuple[str, object], int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problem = f"the entry is {json_kind(entry)}, not an object"
            raise FhirStructureError(source, problem, index)
        if "resource" not in entry:
            problem = "the entry has no resource (request-only entries cannot be recorded)"
            raise FhirStructureError(source, problem, index)
        resource = entry["resource"]
        resource_type(resource, source, index, "the resource")
        full_url = entry.get("fullUrl")
        if full_url is not None and not isinstance(full_url, str):
            raise FhirStructureError(source, "the fullUrl is not a string", index)
        if full_url:  # bdl-7: unique, unless the versions differ
            meta = resource.get("meta")
            key = (full_url, meta.get("versionId") if isinstance(meta, dict) else None)
            if key in seen:
                problem = f"the fullUrl {full_url!r} repeats that of entry[{seen[key]}]"
                raise FhirStructureError(source, problem, index)
            seen[key] = index
        found.append((full_url, resource))
    return found


@dataclass(frozen=True)
class _Item:
    """One resource of the input: where it is (``entry[2]``, ``entry[2].resource.entry[0]``),
    the top-level entry it is in, its fullUrl, the parsed resource and its exact bytes."""

    where: str
    entry_index: int | None
    full_url: str | None
    resource: dict[str, Any]
    body: bytes


def _open_bundle(
    bundle: Mapping[str, Any],
    data: bytes,
    source: str,
    problems: list[Problem],
    outer: tuple[int, str] | None = None,
) -> list[_Item]:
    """The resources of a Bundle, each nested Bundle opened in turn (its entries are checked
    and recorded as the outer ones are; the nested Bundle itself is not a record)."""
    label = source if outer is None else f"{source}: {outer[1]} (a nested Bundle)"
    entries = _bundle_entries(bundle, label)
    try:
        spans = entry_resource_spans(data)
    except DuplicateMember as duplicate:
        problem = f"the member {duplicate.name!r} appears twice"
        raise FhirStructureError(label, problem, duplicate.entry_index) from None
    bodies = [data[span[0] : span[1]] for span in spans if span is not None]
    assert len(bodies) == len(entries), "span scanner disagrees with the JSON parser"
    found = bundle_problems(bundle, bundle["entry"])
    problems += found if outer is None else [replace(p, entry_index=outer[0]) for p in found]
    items: list[_Item] = []
    for index, ((full_url, resource), body) in enumerate(zip(entries, bodies, strict=True)):
        top = index if outer is None else outer[0]
        where = f"entry[{index}]" if outer is None else f"{outer[1]}.resource.entry[{index}]"
        if resource["resourceType"] == "Bundle":
            items += _open_bundle(resource, body, source, problems, (top, where))
        else:
            items.append(_Item(where, top, full_url, resource, body))
    return items


def load(data: bytes, source: str, *, strict: bool = False) -> Ingest:
    """Split ``data`` (one FHIR R4 resource or a Bundle, JSON) into record drafts.

    ``source`` names the input in every message (a file name, ``"<stdin>"``). Raises a
    :class:`~medledger.errors.FhirError` subclass for what makes the input unusable, and in
    ``strict`` mode for any schema problem; otherwise schema problems become warnings. A Bundle
    in a Bundle's entry is opened: each of its resources is checked and recorded as a top-level
    entry's would be (``entry_index`` is then that of the outer entry).
    """
    document = parse_json(data, source)
    kind = resource_type(document, source, None)
    problems: list[Problem] = []
    if kind == "Bundle":
        items = _open_bundle(document, data, source, problems)
    else:
        items = [_Item("the resource", None, None, document, data)]
    resources = _Resources([(i.full_url, i.resource) for i in items], [i.where for i in items])
    patient = resources.the_patient(source, kind == "Bundle")
    drafts = []
    for item in items:
        resource = item.resource
        rtype, rid = resource["resourceType"], _text(resource, "id")
        problems += problems_of(resource, rtype, item.entry_index)
        category = categorize(resource, resources.resolve)
        drafts.append(RecordDraft(item.body, rtype, rid, item.full_url, category, item.entry_index))
    warnings = summarise(source, problems)
    if strict and warnings:
        shown = [str(w).removeprefix(f"{source}: ") for w in warnings[:STRICT_SHOWN]]
        total = sum(w.count for w in warnings)
        raise FhirValidationError(source, shown, total, len(warnings))
    return Ingest(source, "bundle" if kind == "Bundle" else "resource", drafts, warnings, patient)
