"""FHIR R4 JSON in and out: input bytes into record drafts, records back into a Bundle.

MedLedger anchors each FHIR resource of a patient as its own encrypted record, so that a patient
can grant access per record or per category. :func:`load` splits one input (a single resource,
or a Bundle whose entries become one record each) into :class:`RecordDraft` values whose
``body`` is the exact bytes of the resource in the input; :func:`to_bundle` puts records back
into a ``collection`` Bundle (their exact bytes), :func:`export_resource`,
:func:`export_bundle` and :func:`export_ndjson` build an export (references made resolvable,
see ``_references``), :func:`summary` describes one in a line, :func:`resource_type_of`
reads a body's type cheaply and :func:`categorize` says which category a resource goes under.

What refuses an input and what only warns
-----------------------------------------
An input is refused, with a :class:`~medledger.errors.FhirError` subclass whose one-line
message names the source, and nothing is returned, when MedLedger could not store it
faithfully or could not tell whose records they are:

- ``FhirParseError``: not UTF-8, not JSON (with line and column), empty, NaN/Infinity;
- ``FhirStructureError``: not a JSON object, no ``resourceType``, a ``resourceType`` that is not
  an R4 resource type (R4B- or R5-only types included), a Bundle with no entries, an entry that
  is not an object or has no ``resource``, a non-string ``fullUrl``, a ``fullUrl`` repeated
  without a different ``meta.versionId`` (bdl-7), a Bundle or entry naming ``entry`` or
  ``resource`` twice (``json`` would silently keep the last copy, and the record would not be
  the bytes that went in);
- ``FhirPatientMismatch``: a second Patient (another version of the same one is fine), or a
  ``subject``, ``patient``, ``beneficiary`` or ``individual`` reference to another patient than
  the input's Patient (or, without one, than the first patient referenced). A reference names a
  patient when it resolves to a Patient of the input, reads ``[base/]Patient/<id>``, says
  ``type: Patient`` or sits in a field that only points to patients (all but ``subject``); it
  names the same patient when fullUrl, id or an identifier agree. An unresolved ``subject``
  without a type (it may be a Group, Device or Location) is not checked.

Everything a schema check finds is a warning (:class:`FhirWarning`), and the record is kept:
unknown fields, missing required fields, wrong JSON types, bad value formats, R4 types that
R4B has no model for. Real exports are full of these (Synthea 2.2 writes STU3 fields such as
``context`` and a ``Money`` with ``system``/``code``), the bytes are stored unchanged either
way, and a clinic cannot drop a patient's history for them. Identical problems are grouped into
one warning with a count. ``strict=True`` turns any warning into a ``FhirValidationError``
that names the first few and the total.

Validation uses the ``fhir.resources`` R4B models (the library has no R4 ones; R4B is the
closest), one model class per resource, see ``_validate``. The category rule is in
``_categorize``. Which files of a folder are read, and what is skipped and said, is in
``_files`` (:func:`load_files`).
"""

from __future__ import annotations

from medledger.fhir._categorize import categories_of, categorize, types_of
from medledger.fhir._export import parse_resource, resource_type_of, summary, to_bundle
from medledger.fhir._files import Loaded, load_files, select_files
from medledger.fhir._financial import Decision, claim_response, explanation_of_benefit
from medledger.fhir._ingest import load
from medledger.fhir._r4 import R4_RESOURCE_TYPES
from medledger.fhir._references import BundleType, Exported, Target, export_resource
from medledger.fhir._references import bundle as export_bundle
from medledger.fhir._references import full_url_of as export_full_url
from medledger.fhir._references import literal as literal_reference
from medledger.fhir._references import ndjson as export_ndjson
from medledger.fhir._research import (
    INSTITUTION_SYSTEM,
    StudyFacts,
    StudyRef,
    SubjectFacts,
    institution_reference,
    research_study,
    research_subject,
    study_facts_of,
    study_ref_of,
    subject_facts_of,
)
from medledger.fhir._types import FhirWarning, Ingest, PatientRef, RecordDraft

__all__ = [
    "INSTITUTION_SYSTEM",
    "R4_RESOURCE_TYPES",
    "BundleType",
    "Decision",
    "Exported",
    "FhirWarning",
    "Ingest",
    "Loaded",
    "PatientRef",
    "RecordDraft",
    "StudyFacts",
    "StudyRef",
    "SubjectFacts",
    "Target",
    "categories_of",
    "categorize",
    "claim_response",
    "explanation_of_benefit",
    "export_bundle",
    "export_full_url",
    "export_ndjson",
    "export_resource",
    "institution_reference",
    "literal_reference",
    "load",
    "load_files",
    "parse_resource",
    "research_study",
    "research_subject",
    "resource_type_of",
    "select_files",
    "study_facts_of",
    "study_ref_of",
    "subject_facts_of",
    "summary",
    "to_bundle",
    "types_of",
]
