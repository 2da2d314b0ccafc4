"""``medledger export``: a patient's records back out as FHIR, whole and valid (issue #17, parts
2 and 4).

Each scenario anchors a Bundle through the CLI (the hospital, dev:3, in care of the registered
patient, dev:5) and exports it again: as the patient, or as a grantee (the doctor, dev:6) who
may read only what the patient granted. Every exported resource and Bundle is validated with
``fhir.resources`` (R4B models, the closest it has to R4), and every reference is checked to
resolve to an entry's ``fullUrl``, to be ``#`` local, absolute, or made logical by the rule of
``medledger.fhir._references``. The round trip is checked against the input: each reference of
an exported resource names the same resource (type and id) as the input's reference did.

The real samples are read from ``/work/shared/fhir-samples`` (or ``$MEDLEDGER_FHIR_SAMPLES``);
tests that need them are skipped when the folder is absent; the big ones are marked slow.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from medledger import consent, fhir, records
from medledger.chain import events
from medledger.fhir._references import ORIGINAL_REFERENCE, RECORD_TAG_SYSTEM, URI_SYSTEM
from medledger.fhir._validate import problems_of
from medledger.ipfs.stores import open_store

SAMPLES = Path(os.environ.get("MEDLEDGER_FHIR_SAMPLES", "/work/shared/fhir-samples"))
FAST_SAMPLES = ["Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"]
SLOW_SAMPLES = [  # a valid later Synthea with conditional references, and an invalid 2.2 one
    "Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json",
    "Dick869_Kling921_2e4c7143-9f84-4298-a71e-fe23746e3373.json",
    "fhiry-afhir.json",
]
PATIENT_URL = "urn:uuid:2d1c8a4e-0000-4000-8000-000000000001"
ENCOUNTER_URL = "urn:uuid:2d1c8a4e-0000-4000-8000-000000000002"
LAB_URL = "urn:uuid:2d1c8a4e-0000-4000-8000-000000000003"
MISSING_URL = "urn:uuid:2d1c8a4e-0000-4000-8000-0000000000ff"
NPI = "http://hl7.org/fhir/sid/us-npi"


# --- inputs ----------------------------------------------------------------------------------


def coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def generated_bundle(labs: int = 3) -> dict[str, Any]:
    """A transaction Bundle written here with every kind of reference: bundle-local
    ``urn:uuid:``, relative ``Type/id``, conditional, absolute, ``#`` contained, and one to a
    resource that is not in the Bundle."""
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]}
    encounter = {
        "resourceType": "Encounter", "id": "e1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": PATIENT_URL},
        "participant": [{"individual": {"reference": f"Practitioner?identifier={NPI}|1234"}}],
        "serviceProvider": {"reference": "https://other.example/fhir/Organization/9"},
    }  # fmt: skip
    entries = [(PATIENT_URL, patient), (ENCOUNTER_URL, encounter)]
    for n in range(labs):
        entries.append((
            LAB_URL if n == 0 else f"urn:uuid:{uuid.UUID(int=n + 1000)}",
            {
                "resourceType": "Observation", "id": f"lab{n}", "status": "final",
                "category": [coded("http://terminology.hl7.org/CodeSystem/observation-category",
                                   "laboratory")],
                "code": coded("http://loinc.org", "2339-0"),
                "subject": {"reference": "Patient/p1", "display": "Jane Doe"},
                "encounter": {"reference": ENCOUNTER_URL},
                "specimen": {"reference": "#s1"},
                "contained": [{"resourceType": "Specimen", "id": "s1"}],
                "basedOn": [{"reference": MISSING_URL}],
            },
        ))  # fmt: skip
    report = {
        "resourceType": "DiagnosticReport", "id": "r1", "status": "final",
        "category": [coded("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")],
        "code": coded("http://loinc.org", "24323-8"),
        "subject": {"reference": PATIENT_URL},
        "result": [{"reference": LAB_URL}],
    }  # fmt: skip
    entries.append(("urn:uuid:2d1c8a4e-0000-4000-8000-000000000004", report))
    return {
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": resource,
             "request": {"method": "POST", "url": resource["resourceType"]}}
            for url, resource in entries
        ],
    }  # fmt: skip


def references(value: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Every Reference (an object with ``reference``, or made logical by the export) in a
    resource, by its JSON path."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(value, list):
        for n, item in enumerate(value):
            found.update(references(item, f"{path}[{n}]"))
    elif isinstance(value, dict):
        logical = any(e.get("url") == ORIGINAL_REFERENCE for e in value.get("extension", []))
        if isinstance(value.get("reference"), str) or logical:
            found[path] = value
        for key, item in value.items():
            if key not in ("reference", "extension"):
                found.update(references(item, f"{path}.{key}"))
    return found


def record_tag(resource: dict[str, Any]) -> str:
    (tag,) = [t for t in resource["meta"]["tag"] if t["system"] == RECORD_TAG_SYSTEM]
    return str(tag["code"])


def assert_valid_and_whole(bundle: dict[str, Any], sources: list[dict[str, Any]]) -> None:
    """Every resource validates when its source did (and has no problem its source had not),
    the Bundle validates when every source did, and no reference dangles."""
    for entry, source in zip(bundle["entry"], sources, strict=True):
        resource, kind = entry["resource"], entry["resource"]["resourceType"]
        assert problems_of(resource, kind, None) == problems_of(source, kind, None)
    if all(not problems_of(s, s["resourceType"], None) for s in sources):
        Bundle.model_validate(bundle)
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert len(urls) == len(bundle["entry"])
    for entry in bundle["entry"]:
        for path, ref in references(entry["resource"]).items():
            text = ref.get("reference")
            if text is None:  # made logical: says what it named, points nowhere
                assert "type" in ref or "identifier" in ref, path
                continue
            contained = {c.get("id") for c in entry["resource"].get("contained", [])}
            assert (
                text in urls
                or (text.startswith("#") and text[1:] in contained)
                or text.startswith(("http://", "https://"))
            ), f"{path}: {text} dangles"


def assert_same_targets(
    bundle: dict[str, Any], source_bundle: dict[str, Any], exported_urls: dict[str, str]
) -> None:
    """Each exported reference names the resource (type/id) its input reference named.

    ``exported_urls`` maps an input fullUrl to the fullUrl its record got in the export."""
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    originals = {e["fullUrl"]: e["resource"] for e in source_bundle["entry"]}
    for entry, source in zip(bundle["entry"], source_bundle["entry"], strict=True):
        before = references(source["resource"])
        after = references(entry["resource"])
        assert before.keys() == after.keys()
        for path, ref in before.items():
            if ref["reference"] in originals:
                assert after[path]["reference"] == exported_urls[ref["reference"]], path
                target = by_url[after[path]["reference"]]
                named = originals[ref["reference"]]
                assert (target["resourceType"], target.get("id")) == (
                    named["resourceType"], named.get("id"),
                )  # fmt: skip


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def store(settings):
    """The block store the CLI opens (the session home's embedded store)."""
    return open_store(settings)


@pytest.fixture
def anchored(medledger, writer, registered_patient, tmp_path):
    """Factory: anchor a Bundle (a dict or a file) through the CLI; the records made."""

    def anchor(bundle: dict[str, Any] | Path, *flags: str) -> list[dict[str, Any]]:
        path = bundle if isinstance(bundle, Path) else tmp_path / "input.json"
        if not isinstance(bundle, Path):
            path.write_text(json.dumps(bundle))
        done = medledger("anchor", str(path), "--patient", registered_patient.address,
                         "--account", "dev:3", "--json", *flags)  # fmt: skip
        assert done.exit_code == 0, done.stderr
        return list(done.json())  # type: ignore[arg-type]

    return anchor


@pytest.fixture
def export(medledger, registered_patient, tmp_path):
    """Factory: ``medledger export`` of the patient as ``account``; the Bundle and stderr."""

    def run(account: str = "dev:5", *flags: str) -> tuple[dict[str, Any], str]:
        out = tmp_path / f"export-{account}.json"
        done = medledger("export", "--patient", registered_patient.address, "--out", str(out),
                         "--account", account, *flags)  # fmt: skip
        assert done.exit_code == 0, done.stderr
        return json.loads(out.read_bytes()), done.stderr

    return run


def urls_of(made: list[dict[str, Any]], source: dict[str, Any]) -> dict[str, str]:
    """Input fullUrl → the fullUrl its record gets in an export."""
    return {
        entry["fullUrl"]: fhir._references.full_url_of(row["uri"])
        for entry, row in zip(source["entry"], made, strict=True)
    }


# --- the round trip --------------------------------------------------------------------------


def sample_params() -> list[Any]:
    return [pytest.param(n, id=n.split("_")[0]) for n in FAST_SAMPLES] + [
        pytest.param(n, id=n.split("_")[0].removesuffix(".json"), marks=pytest.mark.slow)
        for n in SLOW_SAMPLES
    ]


@pytest.mark.parametrize("name", sample_params())
def test_an_anchored_sample_bundle_exports_valid_and_whole(
    anchored, export, name, store, chain, registered_patient
):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    made = anchored(path, "--batch")
    source = json.loads(path.read_bytes())
    bundle, _notes = export()
    assert [record_tag(e["resource"]) for e in bundle["entry"]] == [r["uri"] for r in made]
    assert_valid_and_whole(bundle, [e["resource"] for e in source["entry"]])
    assert_same_targets(bundle, source, urls_of(made, source))
    ingest = fhir.load(path.read_bytes(), name)  # a read still gives the exact bytes sent
    body = consent.read(chain, store, registered_patient, made[1]["id"])
    assert body == ingest.drafts[1].body


def test_a_generated_bundle_exports_valid_and_whole(anchored, export):
    source = generated_bundle()
    made = anchored(source)
    bundle, notes = export("dev:5", "--bundle-type", "searchset")
    assert bundle["type"] == "searchset" and bundle["total"] == len(made) == 6
    assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])
    assert_valid_and_whole(bundle, [e["resource"] for e in source["entry"]])
    assert_same_targets(bundle, source, urls_of(made, source))
    assert "note:" not in notes


# What each kind of reference in the generated Bundle becomes, exported by the patient (who
# reads everything): (entry, path, expected Reference; "<url:X>" is the export fullUrl of the
# input entry X).
RULES = [
    ("bundle-local", 1, ".subject", {"reference": f"<url:{PATIENT_URL}>"}),
    ("relative Type/id in the input", 2, ".subject",
     {"reference": f"<url:{PATIENT_URL}>", "display": "Jane Doe"}),
    ("contained", 2, ".specimen", {"reference": "#s1"}),
    ("absolute", 1, ".serviceProvider",
     {"reference": "https://other.example/fhir/Organization/9"}),
    ("conditional", 1, ".participant[0].individual",
     {"type": "Practitioner", "identifier": {"system": NPI, "value": "1234"},
      "extension": [{"url": ORIGINAL_REFERENCE,
                     "valueString": f"Practitioner?identifier={NPI}|1234"}]}),
    ("not in the input", 2, ".basedOn[0]",
     {"identifier": {"system": URI_SYSTEM, "value": MISSING_URL},
      "extension": [{"url": ORIGINAL_REFERENCE, "valueString": MISSING_URL}]}),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "path", "expected"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])  # fmt: skip
def test_each_kind_of_reference_becomes_what_the_rule_says(anchored, export, entry, path, expected):
    source = generated_bundle(labs=1)
    urls = urls_of(anchored(source), source)
    bundle, _notes = export()
    wanted = json.loads(
        json.dumps(expected).replace(f'"<url:{PATIENT_URL}>"', json.dumps(urls[PATIENT_URL]))
    )
    assert references(bundle["entry"][entry]["resource"])[path] == wanted


# --- who reads what --------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [[], ["--batch"]], ids=["one by one", "in a batch"])
def test_a_grantee_exports_only_what_is_granted_and_each_read_is_logged(
    anchored, export, medledger, chain, doctor_with_key, registered_patient, flags
):
    source = generated_bundle(labs=3)
    made = anchored(source, *flags)  # a batched record is registered by the grantee to read it
    granted = medledger("grant", doctor_with_key.address, "--scope", "category:lab",
                        "--account", "dev:5")  # fmt: skip
    assert granted.exit_code == 0, granted.stderr
    start = chain.w3.eth.block_number
    bundle, notes = export("dev:6")
    labs = [r for r in made if r["category"] == "lab"]
    assert [record_tag(e["resource"]) for e in bundle["entry"]] == [r["uri"] for r in labs]
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Observation"] * 3 + [
        "DiagnosticReport"
    ]
    assert "2 record(s) left out: not readable by this account" in notes
    assert_valid_and_whole(bundle, [source["entry"][n]["resource"] for n in (2, 3, 4, 5)])
    (lab,) = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "lab0"]
    patient_uri = made[0]["uri"]  # not granted: a logical reference carrying the record URI
    assert lab["subject"] == {
        "type": "Patient", "identifier": {"system": URI_SYSTEM, "value": patient_uri},
        "display": "Jane Doe",
        "extension": [{"url": ORIGINAL_REFERENCE, "valueString": "Patient/p1"}],
    }  # fmt: skip
    report = bundle["entry"][-1]["resource"]
    assert report["result"] == [{"reference": urls_of(made, source)[LAB_URL]}]
    logged = events.logs(chain, "ConsentManager", "RecordAccessed", from_block=start + 1)
    assert sorted("0x" + bytes(log["id"]).hex() for log in logged) == sorted(r["id"] for r in labs)
    assert {log["reader"] for log in logged} == {doctor_with_key.address}
    assert len({log.transaction_hash for log in logged}) == 1  # one batched transaction


def test_the_patients_own_export_logs_nothing_and_a_stranger_gets_an_empty_bundle(
    anchored, export, chain
):
    anchored(generated_bundle(labs=1))
    start = chain.w3.eth.block_number
    bundle, _ = export("dev:5")
    assert len(bundle["entry"]) == 4 and chain.w3.eth.block_number == start
    empty, notes = export("dev:9")
    assert empty == {"resourceType": "Bundle", "type": "collection", "entry": []}
    assert "4 record(s) left out: not readable by this account" in notes
    Bundle.model_validate(empty)


def test_erased_and_superseded_records_are_left_out_with_a_note(
    anchored, export, medledger, tmp_path
):
    made = anchored(generated_bundle(labs=2))
    erased = medledger("erase", made[2]["id"], "--account", "dev:5")
    assert erased.exit_code == 0, erased.stderr
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**generated_bundle(labs=2)["entry"][3]["resource"],
                                 "status": "amended"}))  # fmt: skip
    updated = medledger("anchor", str(newer), "--patient", made[0]["patient"], "--update",
                        made[3]["id"], "--account", "dev:3")  # fmt: skip
    assert updated.exit_code == 0, updated.stderr
    bundle, notes = export()
    assert "1 record(s) left out: erased by the patient" in notes
    assert "1 record(s) left out: superseded by a newer version" in notes
    ids = [(e["resource"]["id"], e["resource"]["status"]) for e in bundle["entry"]
           if e["resource"]["resourceType"] == "Observation"]  # fmt: skip
    assert ids == [("lab1", "amended")]
    amended = bundle["entry"][3]["resource"]  # its input had no Encounter: its first version's
    assert amended["encounter"] == {"reference": bundle["entry"][1]["fullUrl"]}
    report = bundle["entry"][2]["resource"]  # its result named the erased lab0
    assert report["result"][0]["identifier"]["value"] == made[2]["uri"]


# --- NDJSON ----------------------------------------------------------------------------------


def test_ndjson_files_hold_one_valid_resource_per_line_by_type(
    anchored, medledger, registered_patient, tmp_path
):
    made = anchored(generated_bundle(labs=3))
    folder = tmp_path / "bulk"
    done = medledger("export", "--patient", registered_patient.address, "--ndjson", str(folder),
                     "--account", "dev:5", "--json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "DiagnosticReport.ndjson", "Encounter.ndjson", "Observation.ndjson", "Patient.ndjson",
    ]  # fmt: skip
    seen = []
    for file in sorted(folder.iterdir()):
        kind = file.name.removesuffix(".ndjson")
        for line in file.read_text().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == kind
            get_fhir_model_class(kind).model_validate(resource)
            seen.append(record_tag(resource))
    assert sorted(seen) == sorted(r["uri"] for r in made)
    assert done.json()["resources"] == len(made)  # type: ignore[index]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        pytest.param(["--patient", "{stranger}"], "is not a registered patient", id="unknown"),
        pytest.param(["--out", "{tmp}/nowhere/b.json"], "does not exist", id="out-no-folder"),
        pytest.param(["--out", "{tmp}"], "is a folder", id="out-is-a-folder"),
        pytest.param(["--ndjson", "{tmp}/nowhere/deeper"], "does not exist", id="ndjson-no-parent"),
        pytest.param(["--ndjson", "{tmp}/file.txt"], "is a file", id="ndjson-is-a-file"),
        pytest.param(["--out", "{tmp}/b.json", "--ndjson", "{tmp}/d"], "not both", id="both"),
        pytest.param(["--bundle-type", "history"], "history", id="bad-bundle-type"),
    ],
)
def test_bad_export_input_is_one_line_and_sends_nothing(
    anchored, medledger, registered_patient, stranger, tmp_path, chain, flags, says
):
    anchored(generated_bundle(labs=1))
    (tmp_path / "file.txt").write_text("x")
    start = chain.w3.eth.block_number
    args = [f.format(stranger=stranger.address, tmp=tmp_path) for f in flags]
    if "--patient" not in args:
        args += ["--patient", registered_patient.address]
    done = medledger("export", *args, "--account", "dev:6")
    assert done.exit_code != 0 and done.exit_code != 70
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert chain.w3.eth.block_number == start


def test_the_full_url_mapping_outlives_the_anchoring_process(
    medledger_process, writer, registered_patient, export, tmp_path
):
    source = generated_bundle(labs=1)
    (tmp_path / "input.json").write_text(json.dumps(source))
    patient = registered_patient.address
    done = medledger_process("anchor", str(tmp_path / "input.json"), "--patient", patient,
                             "--account", "dev:3", "--json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    bundle, _notes = export()
    assert_same_targets(bundle, source, urls_of(json.loads(done.stdout), source))


# --- the package path ------------------------------------------------------------------------


def test_a_record_anchored_without_origins_exports_with_its_references_resolved_by_type_and_id(
    chain, store, writer, registered_patient
):
    bodies = [
        json.dumps({"resourceType": "Patient", "id": "p1"}).encode(),
        json.dumps({"resourceType": "Observation", "id": "o1", "status": "final",
                    "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}).encode(),
    ]  # fmt: skip
    made = records.anchor(
        chain, store, writer, registered_patient.address,
        [records.Draft(b, records.Category.OTHER) for b in bodies],
    )  # fmt: skip
    done = consent.export(chain, store, registered_patient, registered_patient.address)
    assert done.logged == 0 and done.skipped == {}
    (patient, observation) = done.entries
    assert observation.resource["subject"] == {"reference": patient.full_url}
    assert patient.full_url == fhir._references.full_url_of(made[0].uri)


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
def test_a_bundle_anchored_through_the_python_api_exports_valid_and_whole(
    chain, store, writer, registered_patient, batch
):
    """``intake.anchor_fhir``, the path the CLI and the server share, notes the fullUrls."""
    from medledger import intake

    source = generated_bundle()
    ingest = fhir.load(json.dumps(source).encode(), "generated.json")
    done = intake.anchor_fhir(
        chain, store, writer, registered_patient.address, [("generated.json", ingest)],
        batch=batch,
    )  # fmt: skip
    assert len(done.records) == len(source["entry"]) and not done.skipped
    assert done.labels[0].startswith("generated.json: ")
    exported = consent.export(chain, store, registered_patient, registered_patient.address)
    bundle = json.loads(exported.bundle("searchset"))
    assert_valid_and_whole(bundle, [e["resource"] for e in source["entry"]])
    made = [{"uri": record.uri} for record in done.records]
    assert_same_targets(bundle, source, urls_of(made, source))


# --- the rewriting alone (no chain) ----------------------------------------------------------

URI = "medledger://eip155:31337/0x5FbDB2315678afecb367f032d93F642f64180aa3/0x" + "ab" * 32


def exported(resource: dict[str, Any], targets: dict[str, Any] | None = None) -> dict[str, Any]:
    return fhir.export_resource(resource, URI, (targets or {}).get).resource


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        pytest.param(
            {"reference": f"Practitioner?identifier={NPI}%7C42"},
            {"type": "Practitioner", "identifier": {"system": NPI, "value": "42"}},
            id="conditional-with-encoded-bar",
        ),
        pytest.param(
            {"reference": "Organization?identifier=|7"},
            {"type": "Organization", "identifier": {"value": "7"}},
            id="conditional-without-system",
        ),
        pytest.param(
            {"reference": "Encounter/e9", "identifier": {"value": "kept"}},
            {"type": "Encounter", "identifier": {"value": "kept"}},
            id="own-identifier-kept",
        ),
        pytest.param(
            {"reference": "Encounter/e9", "type": "Encounter"},
            {"type": "Encounter"},
            id="relative-with-no-target",
        ),
    ],
)
def test_a_reference_with_no_target_becomes_logical_keeping_the_original_text(reference, expected):
    out = exported({"resourceType": "Observation", "subject": dict(reference)})["subject"]
    extension = {"url": ORIGINAL_REFERENCE, "valueString": reference["reference"]}
    assert out == {**expected, "extension": [extension]}


def test_exporting_leaves_the_stored_resource_alone_and_replaces_an_old_record_tag():
    other = {"system": "http://example.org/tags", "code": "x"}
    stale = {"system": RECORD_TAG_SYSTEM, "code": "medledger://an-older-export"}
    resource = {
        "resourceType": "Observation",
        "meta": {"versionId": "2", "tag": [other, stale]},
        "subject": {"reference": "urn:uuid:p"},
    }
    before = json.dumps(resource)
    target = fhir.Target("Patient", full_url="urn:uuid:new")
    out = exported(resource, {"urn:uuid:p": target})
    assert json.dumps(resource) == before
    assert out["meta"] == {"versionId": "2", "tag": [other, {"system": RECORD_TAG_SYSTEM,
                                                              "code": URI}]}  # fmt: skip
    assert out["subject"] == {"reference": "urn:uuid:new"}
    assert fhir.export_full_url(URI) == fhir.export_full_url(URI) != fhir.export_full_url(URI[:-1])
