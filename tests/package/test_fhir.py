"""FHIR input and output: splitting inputs into records, refusing bad ones, categories, export.

The real samples are read from ``/work/shared/fhir-samples`` (or ``$MEDLEDGER_FHIR_SAMPLES``);
tests that need them are skipped when the folder is absent. The malformed inputs are small files
in ``data/fhir``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger import fhir
from medledger.categories import Category
from medledger.errors import (
    FhirError,
    FhirParseError,
    FhirPatientMismatch,
    FhirStructureError,
    FhirValidationError,
)
from medledger.fhir._spans import entry_resource_spans

DATA = Path(__file__).parent / "data" / "fhir"
SAMPLES = Path(os.environ.get("MEDLEDGER_FHIR_SAMPLES", "/work/shared/fhir-samples"))

# name -> (entries, valid against the R4B models); the counts are those of SOURCES.md.
SYNTHEA_2_2 = {  # raw Synthea 2.2 exports (2019): STU3 leftovers, invalid
    "Alfonzo975_Huel628_1e171bcc-8438-4aba-b910-789cb36ec4f7.json": 1373,
    "Amie520_Champlin946_100f3c21-499b-4313-ad93-e6d646ec41a3.json": 2192,
    "Charis952_Blanda868_3c1a5ef4-bc86-4361-8c60-806f06955bfc.json": 23,
    "Clarence5_Hodkiewicz467_72ad4e96-92b8-4449-aae6-bbe2d72f0c83.json": 32,
    "Dick869_Kling921_2e4c7143-9f84-4298-a71e-fe23746e3373.json": 143,
    "Isabella615_Hintz995_e05ef828-2065-4537-a622-ff1b16439005.json": 463,
    "Jon665_Schaden604_489b56b9-6c57-46cd-803d-89734597d535.json": 386,
    "Nathanial472_Mann644_50c49163-008f-4649-963f-90c628c674a0.json": 65,
    "Roselle682_Koepp521_8ae8429f-1c22-4797-ba6c-1b679755e531.json": 207,
    "Soledad678_Nava670_b626a9af-ef50-4bcc-a4f2-2f794660c469.json": 724,
}
VALID_BUNDLES = {  # later Synthea versions: valid
    "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json": 70,
    "Tobie_Rempel_38cde5fd-1861-44db-b7cc-58769b464658.json": 480,
    "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json": 238,
    "Eileen854_Pfeffer420_cff2b0df-a682-d100-4be6-a612f9190a0d.json": 541,
    "fhiry-afhir.json": 319,
}
HL7_EXAMPLES = [  # single resources from the R4 examples package: valid
    "Patient-example.json",
    "Observation-example.json",
    "Condition-example.json",
    "Claim-100150.json",
    "ClaimResponse-R3500.json",
    "Coverage-9876B1.json",
    "ExplanationOfBenefit-EB3500.json",
    "Consent-consent-example-basic.json",
    "ResearchStudy-example.json",
    "ResearchSubject-example.json",
    "DocumentReference-example.json",
]
BUNDLES = {**SYNTHEA_2_2, **VALID_BUNDLES}
BIG = 1_000_000  # bytes: samples above this are marked slow where they are loaded twice
AMIE = "Amie520_Champlin946_100f3c21-499b-4313-ad93-e6d646ec41a3.json"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real FHIR samples; skip the test when it is not there."""
    if not SAMPLES.is_dir():
        pytest.skip(f"FHIR samples folder {SAMPLES} is absent (set MEDLEDGER_FHIR_SAMPLES)")
    return SAMPLES


_LOADED: dict[str, fhir.Ingest] = {}


def load_sample(samples: Path, name: str) -> tuple[bytes, fhir.Ingest]:
    """A sample's bytes and its lenient load, loaded once per session."""
    data = (samples / name).read_bytes()
    if name not in _LOADED:
        _LOADED[name] = fhir.load(data, name)
    return data, _LOADED[name]


def slow_if_big(names: list[str]) -> list[Any]:
    """Parameters for ``names``, the ones over :data:`BIG` bytes marked slow."""
    sizes = {n: (SAMPLES / n).stat().st_size if (SAMPLES / n).exists() else 0 for n in names}
    return [pytest.param(n, marks=[pytest.mark.slow] if sizes[n] > BIG else []) for n in names]


def bundle(*resources: dict[str, Any], full_urls: bool = True) -> bytes:
    """A collection Bundle of ``resources``, pretty-printed, fullUrl ``urn:uuid:<id>``."""
    entries = [
        {"fullUrl": f"urn:uuid:{r['id']}", "resource": r} if full_urls else {"resource": r}
        for r in resources
    ]
    document = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:mrn", "value": "42"}],
}


def observation(ident: str, subject: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """A valid Observation with ``subject`` (left out when ``None``)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"text": "Body weight"},
        **fields,
    }
    if subject is not None:
        resource["subject"] = subject
    return resource


# --- the real samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUNDLES))
def test_every_sample_bundle_loads_leniently_with_one_draft_per_entry(
    samples: Path, name: str
) -> None:
    _data, ingest = load_sample(samples, name)
    assert ingest.kind == "bundle"
    assert len(ingest.drafts) == BUNDLES[name]
    assert [d.entry_index for d in ingest.drafts] == list(range(BUNDLES[name]))
    assert ingest.patient is not None and ingest.patient.full_url
    assert (name in SYNTHEA_2_2) == bool(ingest.warnings)


@pytest.mark.parametrize("name", HL7_EXAMPLES)
def test_every_hl7_example_loads_as_one_record_whose_body_is_the_whole_input(
    samples: Path, name: str
) -> None:
    data, ingest = load_sample(samples, name)
    assert ingest.kind == "resource"
    assert ingest.warnings == []
    [draft] = ingest.drafts
    assert draft.body == data
    assert draft.entry_index is None and draft.full_url is None
    assert (draft.resource_type, draft.resource_id) == (name.split("-")[0], json.loads(data)["id"])


@pytest.mark.parametrize("name", slow_if_big(list(SYNTHEA_2_2)))
def test_strict_mode_refuses_the_synthea_2_2_exports(samples: Path, name: str) -> None:
    with pytest.raises(FhirValidationError) as refused:
        fhir.load((samples / name).read_bytes(), name, strict=True)
    message = str(refused.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    assert f"{refused.value.total} FHIR validation problem(s)" in message


@pytest.mark.parametrize("name", [*slow_if_big(list(VALID_BUNDLES)), *HL7_EXAMPLES])
def test_strict_mode_accepts_the_valid_samples(samples: Path, name: str) -> None:
    ingest = fhir.load((samples / name).read_bytes(), name, strict=True)
    assert ingest.warnings == []


@pytest.mark.parametrize("name", list(BUNDLES))
def test_bundle_bodies_are_the_exact_bytes_of_each_entry_resource(samples: Path, name: str) -> None:
    data, ingest = load_sample(samples, name)
    entries = json.loads(data)["entry"]
    position = 0
    for draft, entry in zip(ingest.drafts, entries, strict=True):
        assert json.loads(draft.body) == entry["resource"]
        position = data.index(draft.body, position)  # in order, verbatim
        assert draft.full_url == entry["fullUrl"]
        assert draft.resource_id == entry["resource"]["id"]


def test_warnings_are_grouped_and_counted(samples: Path) -> None:
    _data, ingest = load_sample(samples, AMIE)
    assert 10 < len(ingest.warnings) < 40  # thousands of problems, a screenful of lines
    assert sum(w.count for w in ingest.warnings) > 3000
    missing = next(w for w in ingest.warnings if w.path == "item[*].productOrService")
    assert (missing.resource_type, missing.message) == ("Claim", "required field is missing")
    assert missing.count > missing.resources > 1
    assert str(missing).startswith(f"{AMIE}: entry[{missing.entry_index}] Claim/")


@pytest.mark.slow
def test_the_biggest_sample_loads_in_a_few_seconds(samples: Path) -> None:
    data = (samples / AMIE).read_bytes()
    started = time.perf_counter()
    fhir.load(data, AMIE)
    assert time.perf_counter() - started < 10


def test_compact_and_pretty_inputs_give_the_same_records(samples: Path) -> None:
    name = "Soledad678_Nava670_b626a9af-ef50-4bcc-a4f2-2f794660c469.json"  # has non-ASCII text
    data, pretty = load_sample(samples, name)
    assert any(byte > 127 for byte in data)
    compact = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode()
    assert b"\n" not in compact
    single_line = fhir.load(compact, "compact.json")
    for a, b in zip(pretty.drafts, single_line.drafts, strict=True):
        assert json.loads(a.body) == json.loads(b.body)
        assert b"\n" not in b.body and compact.count(b.body) >= 1
        assert (a.category, a.full_url, a.resource_id) == (b.category, b.full_url, b.resource_id)


def test_non_ascii_text_keeps_byte_offsets_right() -> None:
    patient = {"resourceType": "Patient", "id": "zoe", "name": [{"given": ["Zoë 😀"]}]}
    note = observation(
        "n1",
        {"reference": "urn:uuid:zoe"},
        valueString='東京 — ünïcödé \\ " \u2028',
        note=[{"text": "é" * 300}],
    )
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "🔑 ключ": "значение",
        "entry": [
            {"fullUrl": "urn:uuid:zoe", "ünï": ["😀"], "resource": patient},
            {"fullUrl": "urn:uuid:n1", "resource": note, "ünï": "é"},
        ],
    }
    for ensure_ascii in (False, True):
        for indent in (None, 1, "\t"):
            data = json.dumps(document, ensure_ascii=ensure_ascii, indent=indent).encode()
            drafts = fhir.load(data, "unicode.json").drafts
            assert [json.loads(d.body) for d in drafts] == [patient, note]


def test_a_leading_byte_order_mark_is_accepted_and_kept_in_a_single_resource() -> None:
    data = b"\xef\xbb\xbf" + json.dumps(PATIENT).encode()
    assert fhir.load(data, "bom.json").drafts[0].body == data
    in_bundle = b"\xef\xbb\xbf" + bundle(PATIENT)
    assert json.loads(fhir.load(in_bundle, "bom.json").drafts[0].body) == PATIENT


# --- refused inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "error", "says"),
    [
        ("not-json.json", FhirParseError, "(line 5, column 22)"),
        ("array.json", FhirStructureError, "the input is an array, not a resource object"),
        ("no-resource-type.json", FhirStructureError, "the input has no resourceType"),
        ("unknown-resource-type.json", FhirStructureError, "did you mean 'Observation'?"),
        ("r4b-only-resource-type.json", FhirStructureError, "'SubscriptionTopic' is not a FHIR R4"),
        ("empty-bundle.json", FhirStructureError, "the Bundle has no entries"),
        ("entry-without-resource.json", FhirStructureError, "entry[1]: the entry has no resource"),
        ("duplicate-full-url.json", FhirStructureError, "repeats that of entry[1]"),
        ("duplicate-resource-member.json", FhirParseError, "'resource' appears twice"),
        ("second-patient.json", FhirPatientMismatch, "entry[1] (a second Patient)"),
        ("reference-to-other-patient.json", FhirPatientMismatch, "entry[2].subject names patient"),
    ],
)
def test_malformed_input_is_refused_with_one_line_naming_the_source(
    file: str, error: type[FhirError], says: str
) -> None:
    with pytest.raises(error) as refused:
        fhir.load((DATA / file).read_bytes(), file)
    message = str(refused.value)
    assert message.startswith(f"{file}: ") and says in message and "\n" not in message


def test_bundle_with_second_patient_is_refused() -> None:
    with pytest.raises(FhirPatientMismatch, match="names patient urn:uuid:bob"):
        fhir.load(bundle(PATIENT, {"resourceType": "Patient", "id": "bob"}), "two.json")


def test_entry_about_another_patient_by_bundle_local_reference_is_refused() -> None:
    claim = {"resourceType": "Claim", "id": "c1", "patient": {"reference": "urn:uuid:elsewhere"}}
    with pytest.raises(FhirPatientMismatch, match=r"entry\[1\]\.patient names patient urn:uuid:"):
        fhir.load(bundle(PATIENT, claim), "claim.json")


def test_entry_about_another_patient_by_identifier_is_refused() -> None:
    reference = {"type": "Patient", "identifier": {"system": "urn:mrn", "value": "43"}}
    with pytest.raises(FhirPatientMismatch, match=re.escape("names patient identifier urn:mrn|43")):
        fhir.load(bundle(PATIENT, observation("o1", reference)), "mrn.json")


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "urn:uuid:p1"},  # the Patient's fullUrl
        {"reference": "Patient/p1"},  # its id
        {"reference": "https://ehr.example.org/fhir/Patient/p1/_history/3"},
        {"type": "Patient", "identifier": {"system": "urn:mrn", "value": "42"}},
        {"reference": "Group/g1"},  # not a patient at all
        {"reference": "urn:uuid:unresolved"},  # subject of unknown kind: not checked
        {"display": "the patient"},
        None,
    ],
)
def test_references_to_the_same_patient_or_to_no_patient_are_accepted(
    subject: dict[str, Any] | None,
) -> None:
    ingest = fhir.load(bundle(PATIENT, observation("o1", subject)), "same.json")
    assert ingest.patient == fhir.PatientRef("urn:uuid:p1", "p1", (("urn:mrn", "42"),))


def test_without_a_patient_entry_the_patient_comes_from_the_references() -> None:
    data = bundle(observation("o1", {"reference": "Patient/p9"}), observation("o2", None))
    assert fhir.load(data, "refs.json").patient == fhir.PatientRef(None, "p9")
    with pytest.raises(FhirPatientMismatch, match="Patient/p8"):
        fhir.load(
            bundle(
                observation("o1", {"reference": "Patient/p9"}),
                observation("o2", {"reference": "Patient/p8"}),
            ),
            "refs.json",
        )


def test_the_patient_of_a_sample_is_its_patient_entry(samples: Path) -> None:
    name = "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
    _data, ingest = load_sample(samples, name)
    assert ingest.patient is not None
    assert ingest.patient.full_url == "urn:uuid:d78af07c-9cb9-4f31-9b11-c45a28f2eec8"
    assert ingest.patient.resource_id == "d78af07c-9cb9-4f31-9b11-c45a28f2eec8"
    assert ("http://hl7.org/fhir/sid/us-ssn", "999-48-8934") in ingest.patient.identifiers


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the input is empty"),
        (b"  \n", "the input is empty"),
        (b'{"resourceType": "Patient", "id": "caf\xe9"}', "not UTF-8 text (bad byte at offset 38)"),
        (b'{"resourceType": "Observation", "valueQuantity": {"value": NaN}}', "NaN is not"),
        (b'{"resourceType": "Patient"} {}', "Extra data (line 1, column 29)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_text_that_is_not_utf8_json_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(FhirParseError) as refused:
        fhir.load(data, "upload.json")
    assert str(refused.value).startswith("upload.json: not valid JSON: ")
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("3", "entry[0]: the entry is a number, not an object"),
        ('{"resource": [1]}', "entry[0]: the resource is an array, not a resource object"),
        ('{"resource": {"id": "x"}}', "entry[0]: the resource has no resourceType"),
        ('{"fullUrl": 7, "resource": {"resourceType": "Basic"}}', "the fullUrl is not a string"),
    ],
)
def test_a_bad_entry_is_refused(entry: str, says: str) -> None:
    data = f'{{"resourceType": "Bundle", "type": "collection", "entry": [{entry}]}}'.encode()
    with pytest.raises(FhirStructureError, match=re.escape(says)):
        fhir.load(data, "entry.json")


def test_bundle_naming_entry_twice_is_refused() -> None:
    entry = b'[{"resource": {"resourceType": "Basic"}}]'
    data = b'{"resourceType": "Bundle", "entry": [], "entry": ' + entry + b"}"
    with pytest.raises(FhirParseError, match="'entry' appears twice"):
        fhir.load(data, "twice.json")


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_a_key_named_twice_anywhere_is_refused_naming_it(strict: bool) -> None:
    data = b'{"resourceType": "Observation", "id": "a", "code": {"text": "x", "text": "y"}}'
    with pytest.raises(FhirParseError, match=r"twice\.json: .*the key 'text' appears twice"):
        fhir.load(data, "twice.json", strict=strict)


def _observation(identifier: str, patient: str) -> dict:
    return {"resourceType": "Observation", "id": identifier, "status": "final",
            "code": {"text": "x"}, "subject": {"reference": f"Patient/{patient}"}}  # fmt: skip


def test_a_nested_bundle_is_opened_and_each_inner_resource_recorded() -> None:
    inner = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _observation("o2", "p1")},
        {"resource": {"resourceType": "Condition", "id": "c1",
                      "subject": {"reference": "Patient/p1"}}},
    ]}  # fmt: skip
    outer = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": _observation("o1", "p1")}, {"resource": inner}]}  # fmt: skip
    data = json.dumps(outer).encode()
    found = fhir.load(data, "nested.json")
    assert [(d.resource_type, d.resource_id, d.entry_index) for d in found.drafts] == [
        ("Observation", "o1", 0), ("Observation", "o2", 1), ("Condition", "c1", 1),
    ]  # fmt: skip
    assert [json.loads(d.body) for d in found.drafts[1:]] == [e["resource"] for e in inner["entry"]]
    condition = inner["entry"][1]["resource"]
    assert found.drafts[2].category == fhir.categorize(condition, lambda _r: None)
    assert found.drafts[2].category != found.drafts[1].category  # each inner resource its own


def test_a_second_patient_inside_a_nested_bundle_is_refused() -> None:
    inner = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": _observation("o2", "p2")}]}  # fmt: skip
    outer = {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": _observation("o1", "p1")}, {"resource": inner}]}  # fmt: skip
    with pytest.raises(FhirPatientMismatch, match=r"entry\[1\]\.resource\.entry\[0\]\.subject"):
        fhir.load(json.dumps(outer).encode(), "nested.json")


def test_the_same_full_url_is_allowed_for_different_versions() -> None:
    v1 = {**PATIENT, "meta": {"versionId": "1"}}
    v2 = {**PATIENT, "meta": {"versionId": "2"}}
    assert len(fhir.load(bundle(v1, v2), "history.json").drafts) == 2


# --- warnings and strict mode -------------------------------------------------------------------


def test_schema_problems_are_warnings_that_never_quote_the_values() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "secret-1970", "gender": 7}
    ingest = fhir.load(json.dumps(patient).encode(), "p.json")
    assert len(ingest.drafts) == 1
    text = "\n".join(map(str, ingest.warnings))
    assert "birthDate" in text and "gender" in text and "got a number" in text
    assert "secret" not in text


def test_an_r4_type_that_r4b_dropped_is_kept_with_a_warning_and_refused_in_strict_mode() -> None:
    data = json.dumps({"resourceType": "MedicinalProduct", "id": "mp1"}).encode()
    [warning] = fhir.load(data, "mp.json").warnings
    assert "no R4B model" in warning.message
    with pytest.raises(FhirValidationError, match=re.escape("mp.json: 1 FHIR validation problem")):
        fhir.load(data, "mp.json", strict=True)


def test_bundle_level_problems_name_the_entry() -> None:
    data = json.loads(bundle(PATIENT))
    data["entry"][0]["request"] = {"method": "POST"}  # no url
    [warning] = fhir.load(json.dumps(data).encode(), "b.json").warnings
    assert (warning.resource_type, warning.entry_index, warning.path) == (
        "Bundle",
        0,
        "entry[*].request.url",
    )


def test_strict_error_names_the_first_problems_and_the_total() -> None:
    bad = [
        {"resourceType": "Basic", "id": f"b{i}", "code": {"text": "x"}, f"field{i}": 1}
        for i in range(5)
    ]
    with pytest.raises(FhirValidationError) as refused:
        fhir.load(bundle(*bad), "basics.json", strict=True)
    message = str(refused.value)
    assert "5 FHIR validation problem(s) of 5 kind(s)" in message
    assert "field0" in message and "field2" in message and "field3" not in message


# --- categories ---------------------------------------------------------------------------------

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"


def concept(system: str, code: str) -> list[dict[str, Any]]:
    """A ``category`` list holding one coding."""
    return [{"coding": [{"system": system, "code": code}]}]


@pytest.mark.parametrize(
    ("resource", "category"),
    [
        ({"resourceType": "Patient"}, Category.DEMOGRAPHICS),
        ({"resourceType": "RelatedPerson"}, Category.DEMOGRAPHICS),
        ({"resourceType": "Encounter"}, Category.ENCOUNTER),
        ({"resourceType": "Condition"}, Category.CONDITION),
        ({"resourceType": "MedicationRequest"}, Category.MEDICATION),
        ({"resourceType": "MedicationStatement"}, Category.MEDICATION),
        ({"resourceType": "Immunization"}, Category.IMMUNIZATION),
        ({"resourceType": "Procedure"}, Category.PROCEDURE),
        ({"resourceType": "AllergyIntolerance"}, Category.ALLERGY),
        ({"resourceType": "CarePlan"}, Category.CARE_PLAN),
        ({"resourceType": "Goal"}, Category.CARE_PLAN),
        ({"resourceType": "DocumentReference"}, Category.DOCUMENT),
        ({"resourceType": "Media"}, Category.DOCUMENT),
        ({"resourceType": "ExplanationOfBenefit"}, Category.FINANCIAL),
        ({"resourceType": "Coverage"}, Category.FINANCIAL),
        ({"resourceType": "ResearchSubject"}, Category.RESEARCH),
        ({"resourceType": "Organization"}, Category.ADMINISTRATIVE),
        ({"resourceType": "Provenance"}, Category.ADMINISTRATIVE),
        ({"resourceType": "ImagingStudy"}, Category.IMAGING),
        ({"resourceType": "Questionnaire"}, Category.OTHER),
        ({"resourceType": "Observation", "category": concept(OBS, "laboratory")}, Category.LAB),
        ({"resourceType": "Observation", "category": concept(OBS, "vital-signs")}, Category.VITALS),
        ({"resourceType": "Observation", "category": concept(OBS, "imaging")}, Category.IMAGING),
        ({"resourceType": "Observation", "category": concept(OBS, "survey")}, Category.OTHER),
        ({"resourceType": "Observation", "category": concept(OBS, "exam")}, Category.OTHER),
        ({"resourceType": "Observation"}, Category.OTHER),
        (  # STU3 system URL, as Synthea 2.2 writes it
            {
                "resourceType": "Observation",
                "category": concept("http://hl7.org/fhir/observation-category", "laboratory"),
            },
            Category.LAB,
        ),
        (  # a sensitive code wins over a clinical one
            {
                "resourceType": "Observation",
                "category": [*concept(OBS, "laboratory"), *concept(OBS, "social-history")],
            },
            Category.OTHER,
        ),
        (
            {
                "resourceType": "DiagnosticReport",
                "category": concept("http://terminology.hl7.org/CodeSystem/v2-0074", "HM"),
            },
            Category.LAB,
        ),
        (
            {
                "resourceType": "DiagnosticReport",
                "category": concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD"),
            },
            Category.IMAGING,
        ),
        (
            {
                "resourceType": "DiagnosticReport",
                "category": concept("http://loinc.org", "LP29684-5"),
            },
            Category.IMAGING,
        ),
        (
            {
                "resourceType": "DiagnosticReport",
                "category": concept("http://loinc.org", "34117-2"),
                "presentedForm": [{"contentType": "text/plain", "data": "Tm90ZQ=="}],
            },
            Category.DOCUMENT,
        ),
        ({"resourceType": "DiagnosticReport"}, Category.OTHER),
        (
            {
                "resourceType": "Consent",
                "scope": {"coding": [{"code": "research"}]},
            },
            Category.RESEARCH,
        ),
        (
            {"resourceType": "Consent", "scope": {"coding": [{"code": "patient-privacy"}]}},
            Category.ADMINISTRATIVE,
        ),
        ({"resourceType": "Bundle", "type": "document"}, Category.DOCUMENT),
    ],
)
def test_category_rule(resource: dict[str, Any], category: Category) -> None:
    assert fhir.categorize(resource) is category


def test_a_report_without_category_takes_the_category_of_its_results() -> None:
    lab = observation("o1", None, category=concept(OBS, "laboratory"))
    report = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "code": {"text": "Lipid panel"},
        "result": [{"reference": "urn:uuid:o1"}],
    }
    drafts = fhir.load(bundle(lab, report), "panel.json").drafts
    assert [d.category for d in drafts] == [Category.LAB, Category.LAB]
    assert fhir.categorize(report) is Category.OTHER  # alone, it does not say what it is


def test_sample_records_fall_into_the_expected_categories(samples: Path) -> None:
    _data, ingest = load_sample(
        samples, "Jon665_Schaden604_489b56b9-6c57-46cd-803d-89734597d535.json"
    )
    by_type: dict[str, set[Category]] = {}
    for draft in ingest.drafts:
        by_type.setdefault(draft.resource_type, set()).add(draft.category)
    assert by_type["Patient"] == {Category.DEMOGRAPHICS}
    assert by_type["AllergyIntolerance"] == {Category.ALLERGY}
    assert by_type["Claim"] == {Category.FINANCIAL}
    assert by_type["DiagnosticReport"] == {Category.LAB}
    assert by_type["Observation"] == {Category.LAB, Category.VITALS, Category.OTHER}


# --- output -------------------------------------------------------------------------------------


def test_records_reassembled_into_a_bundle_load_back_to_the_same_bodies(samples: Path) -> None:
    name = "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
    _data, ingest = load_sample(samples, name)
    exported = fhir.to_bundle([(d.full_url, d.body) for d in ingest.drafts])
    again = fhir.load(exported, "export.json", strict=True)
    assert json.loads(exported)["type"] == "collection"
    assert [(d.full_url, d.body) for d in again.drafts] == [
        (d.full_url, d.body) for d in ingest.drafts
    ]
    assert again.patient == ingest.patient


def test_to_bundle_keeps_single_resource_files_byte_for_byte(samples: Path) -> None:
    bodies = [(None, (samples / n).read_bytes()) for n in HL7_EXAMPLES[:3]]
    exported = fhir.load(fhir.to_bundle(bodies), "export.json")
    assert [d.body for d in exported.drafts] == [body.strip() for _, body in bodies]
    assert all(d.full_url is None for d in exported.drafts)


def test_to_bundle_refuses_what_is_not_a_resource_or_repeats_a_full_url() -> None:
    body = json.dumps(PATIENT).encode()
    with pytest.raises(FhirParseError, match="record body 1: not valid JSON"):
        fhir.to_bundle([(None, body), (None, b"{not json")])
    with pytest.raises(FhirStructureError, match="record body 0: the body has no resourceType"):
        fhir.to_bundle([(None, b'{"id": "x"}')])
    with pytest.raises(FhirStructureError, match="record body 1: the fullUrl 'urn:uuid:p1'"):
        fhir.to_bundle([("urn:uuid:p1", body), ("urn:uuid:p1", body)])


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("Observation-example.json", "Observation/example 2016-03-28 Body Weight"),
        ("Patient-example.json", "Patient/example 1974-12-25 Peter James Chalmers"),
        ("Condition-example.json", "Condition/example 2012-05-24 Burnt Ear"),
        ("Coverage-9876B1.json", "Coverage/9876B1 2011-05-23 extended healthcare"),
        ("ResearchStudy-example.json", "ResearchStudy/example"),
    ],
)
def test_summary_is_one_line_with_type_id_date_and_what(
    samples: Path, name: str, line: str
) -> None:
    assert fhir.summary((samples / name).read_bytes()) == line


def test_summary_shortens_long_descriptions_and_refuses_non_resources() -> None:
    text = fhir.summary(
        json.dumps({"resourceType": "Basic", "code": {"text": "x\n" * 100}}).encode()
    )
    assert text.startswith("Basic x x x") and text.endswith("...") and len(text) < 100
    with pytest.raises(FhirStructureError, match="record body: the body has no resourceType"):
        fhir.summary(b'{"id": "x"}')


def test_resource_type_of_reads_the_type_without_parsing_the_rest() -> None:
    assert fhir.resource_type_of(b' {"resourceType" : "Claim", "id": [') == "Claim"
    assert fhir.resource_type_of(b'{"id": "x", "resourceType": "Patient"}') == "Patient"
    for body in (b'{"id": "x"}', b"[]", b"", b'{"resourceType": 5}', b'{"id": '):
        with pytest.raises(FhirStructureError, match="record body: the body has no resourceType"):
            fhir.resource_type_of(body)


# --- the span scanner, property-tested ----------------------------------------------------------

WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def emit(value: Any, draw: st.DrawFn) -> str:
    """``value`` as JSON with random whitespace between tokens and random ``\\u`` escaping."""

    def ws() -> str:
        return draw(WHITESPACE)

    if isinstance(value, dict):
        members = [
            f"{ws()}{emit(k, draw)}{ws()}:{ws()}{emit(v, draw)}{ws()}" for k, v in value.items()
        ]
        return "{" + (",".join(members) or ws()) + "}"
    if isinstance(value, list):
        return "[" + (",".join(f"{ws()}{emit(v, draw)}{ws()}" for v in value) or ws()) + "]"
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def bundles(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A Bundle's bytes and the exact bytes each entry's resource was written as."""
    resources = draw(
        st.lists(
            st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5).map(
                lambda d: {"resourceType": "Basic", **d}
            ),
            min_size=1,
            max_size=5,
        )
    )
    written = [emit(r, draw) for r in resources]
    entries = []
    for text in written:
        extra = draw(
            st.dictionaries(
                st.text(max_size=6).filter(lambda k: k != "resource"), JSON_VALUES, max_size=2
            )
        )
        members = [f"{json.dumps(k)}:{emit(v, draw)}" for k, v in extra.items()]
        members.insert(
            draw(st.integers(0, len(members))),
            f'"resource"{draw(WHITESPACE)}:{draw(WHITESPACE)}{text}',
        )
        entries.append(draw(WHITESPACE) + "{" + ",".join(members) + "}" + draw(WHITESPACE))
    top = draw(
        st.dictionaries(st.text(max_size=6).filter(lambda k: k != "entry"), JSON_VALUES, max_size=3)
    )
    members = [f"{emit(k, draw)}:{emit(v, draw)}" for k, v in top.items()]
    members.insert(draw(st.integers(0, len(members))), '"entry":[' + ",".join(entries) + "]")
    text = draw(WHITESPACE) + "{" + ",".join(members) + "}" + draw(WHITESPACE)
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode(), [w.encode() for w in written]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundles())
def test_span_scanner_agrees_with_json_loads(case: tuple[bytes, list[bytes]]) -> None:
    data, written = case
    parsed = json.loads(data.decode("utf-8-sig"))
    spans = entry_resource_spans(data)
    assert [data[s:e] for s, e in (span for span in spans if span)] == written
    assert [json.loads(data[s:e]) for s, e in (span for span in spans if span)] == [
        entry["resource"] for entry in parsed["entry"]
    ]
