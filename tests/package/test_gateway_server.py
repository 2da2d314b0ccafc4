"""``medledger serve``: the FHIR R4 REST gateway, driven over HTTP as an EHR would drive it.

The server is the real console script on a free loopback port (``gateway_harness``), run by
the hospital (dev:3) against the session's Anvil devnet; callers sign in with Ethereum as
wallets do. Every response body is validated with ``fhir.resources`` (the package's
validator: R4B models, the closest the library has to R4).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import gateway_harness
import pytest

from medledger import records
from medledger.accounts import dev_account
from medledger.fhir._validate import bundle_problems, problems_of
from medledger.ipfs.local import LocalBlockStore

LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
VITALS = {"system": "http://terminology.hl7.org/CodeSystem/observation-category",
          "code": "vital-signs"}  # fmt: skip
PATIENT_URL = "urn:uuid:7f6a2c1e-0000-4000-8000-000000000001"


def observation(n: int, category: dict[str, str], code: str) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:7f6a2c1e-0000-4000-8000-1000000000{n:02d}",
        "resource": {
            "resourceType": "Observation", "id": f"o{n}", "status": "final",
            "category": [{"coding": [category]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": PATIENT_URL},
            "valueQuantity": {"value": n, "unit": "mg/dL"},
        },
        "request": {"method": "POST", "url": "Observation"},
    }  # fmt: skip


def transaction(patient: str, labs: int = 3, vitals: int = 2) -> dict[str, Any]:
    """A transaction Bundle: a Patient naming the MedLedger account, labs and vital signs."""
    person = {
        "resourceType": "Patient", "id": "p1", "name": [{"family": "Doe", "given": ["Jan"]}],
        "identifier": [{"system": "urn:medledger:account", "value": patient}],
    }  # fmt: skip
    entries = [{"fullUrl": PATIENT_URL, "resource": person,
                "request": {"method": "POST", "url": "Patient"}}]  # fmt: skip
    entries += [observation(n, LAB, "2339-0") for n in range(labs)]
    entries += [observation(labs + n, VITALS, "8867-4") for n in range(vitals)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def assert_valid(document: dict[str, Any]) -> None:
    """The response body validates: a Bundle shell and each resource in it, or the resource."""
    if document["resourceType"] == "Bundle":
        entries = document.get("entry", [])
        assert bundle_problems(document, entries) == []
        for entry in entries:
            if "resource" in entry:
                assert_valid(entry["resource"])
        return
    assert problems_of(document, document["resourceType"], None) == []


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert_valid(body)
    return body


def refused(response: Any, status: int, *words: str) -> str:
    """The response is an OperationOutcome with ``status`` whose one line says ``words``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid(body)
    assert body["resourceType"] == "OperationOutcome"
    message = body["issue"][0]["diagnostics"]
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message
    return str(message)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def server(env, writer):
    """The hospital's gateway (dev:3, verified, in the patient's care)."""
    running = gateway_harness.start(env, "dev:3")
    yield running
    running.stop()


@pytest.fixture
def store_of_home(settings):
    """The block store of the session's home: the one the gateway uses."""
    from medledger.ipfs.stores import open_store

    return open_store(settings)


@pytest.fixture
def hospital_http(server):
    with server.client(server.sign_in(dev_account(3), "user/*.cruds")) as http:
        yield http


def post(http: Any, patient: str) -> dict[str, Any]:
    """POST the transaction Bundle (in the test's body: fixtures run before the test's world is
    entered, and their writes would be rolled back); its response Bundle."""
    return ok(http.post("", json=transaction(patient)))


# --- what the server says it does ----------------------------------------------------------


def test_metadata_is_a_valid_capability_statement_naming_every_interaction(server):
    import httpx

    statement = ok(httpx.get(f"{server.fhir}/metadata"))
    assert statement["fhirVersion"] == "4.0.1"
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    codes = {i["code"] for i in by_type["Observation"]["interaction"]}
    assert codes == {"read", "vread", "update", "history-instance", "search-type", "create"}
    assert {p["name"] for p in by_type["Observation"]["searchParam"]} >= {
        "patient", "_lastUpdated", "category", "code", "_count"}  # fmt: skip
    assert by_type["Patient"]["operation"][0]["name"] == "everything"
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {"transaction", "batch"}


# --- create ----------------------------------------------------------------------------------


def test_a_transaction_bundle_is_anchored_and_answered_entry_by_entry(
    hospital_http, chain, registered_patient, settings
):
    posted = post(hospital_http, registered_patient.address)
    assert posted["type"] == "transaction-response"
    assert [e["response"]["status"] for e in posted["entry"]] == ["201 Created"] * 6
    anchored = {r.id.hex(): r for r in records.for_patient(
        chain, registered_patient.address, LocalBlockStore(settings.home / "ipfs"))}  # fmt: skip
    for entry in posted["entry"]:
        kind, logical_id, _h, version = entry["response"]["location"].split("/")
        assert logical_id in anchored and version == "1"
        assert entry["fullUrl"].endswith(f"/{kind}/{logical_id}")
        said = entry["response"]["outcome"]["issue"][0]["diagnostics"]
        assert anchored[logical_id].uri in said
        assert anchored[logical_id].transaction_hash in said


def test_posting_the_same_bundle_again_writes_nothing_twice(
    hospital_http, chain, registered_patient
):
    posted = post(hospital_http, registered_patient.address)
    block = chain.w3.eth.block_number
    again = ok(hospital_http.post("", json=transaction(registered_patient.address)))
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 6
    assert [e["response"]["location"] for e in again["entry"]] == [
        e["response"]["location"] for e in posted["entry"]]  # fmt: skip
    assert chain.w3.eth.block_number == block


def test_one_resource_posted_to_its_type_answers_201_with_location(
    server, hospital_http, registered_patient
):
    single = copy.deepcopy(observation(1, LAB, "2339-0")["resource"])
    single["subject"] = {"reference": f"Patient/{registered_patient.address}"}
    answer = hospital_http.post("Observation", json=single)
    body = ok(answer, 201)
    assert answer.headers["location"] == f"{server.fhir}/Observation/{body['id']}/_history/1"
    assert body["valueQuantity"] == single["valueQuantity"]
    assert body["meta"]["versionId"] == "1"


@pytest.mark.parametrize(("path", "payload", "status", "words"), [
    ("", b"{not json", 400, ["not valid JSON"]),
    ("", {"resourceType": "Observation", "status": "final"}, 400, ["transaction or batch"]),
    ("", {"resourceType": "Bundle", "type": "collection", "entry": []}, 400, ["no entries"]),
    ("Observation", {"resourceType": "Patient"}, 400, ["POST /Observation takes"]),
    ("Observation", {"resourceType": "Observation", "status": "final"}, 400, ["whose records"]),
    ("Provenance", {"resourceType": "Provenance"}, 405, ["Provenance"]),
    ("Nonsense", {"resourceType": "Nonsense"}, 404, ["not a FHIR R4 resource type"]),
])  # fmt: skip
def test_bad_input_is_refused_in_one_line_before_anything_is_sent(
    hospital_http, chain, path, payload, status, words
):
    block = chain.w3.eth.block_number
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    refused(hospital_http.post(path, content=content), status, *words)
    assert chain.w3.eth.block_number == block


def test_a_bundle_for_an_unregistered_account_is_refused(hospital_http, chain):
    stranger = dev_account(9).address
    refused(hospital_http.post("", json=transaction(stranger)), 404, stranger)


# --- read, search, history ------------------------------------------------------------------


def test_search_pages_with_next_links_and_filters(hospital_http, registered_patient):
    post(hospital_http, registered_patient.address)
    patient = registered_patient.address
    first = ok(hospital_http.get("Observation", params={"patient": patient, "_count": 2}))
    assert first["total"] == 5 and len(first["entry"]) == 2
    seen = [e["resource"]["id"] for e in first["entry"]]
    page = first
    while nxt := next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None):
        page = ok(hospital_http.get(nxt))
        seen += [e["resource"]["id"] for e in page["entry"]]
    assert len(seen) == len(set(seen)) == 5
    labs = ok(
        hospital_http.get("Observation", params={"patient": patient, "category": "laboratory"})
    )
    assert labs["total"] == 3
    heart = ok(
        hospital_http.get(
            "Observation",
            params={"subject": f"Patient/{patient}", "code": "http://loinc.org|8867-4"},
        )
    )
    assert heart["total"] == 2
    none_yet = ok(
        hospital_http.get(
            "Observation", params={"patient": patient, "_lastUpdated": "lt2000-01-01"}
        )
    )
    assert none_yet["total"] == 0 and none_yet.get("entry", []) == []
    patients = ok(hospital_http.get("Patient", params={"patient": patient}))
    assert patients["total"] == 1


@pytest.mark.parametrize(("params", "words"), [
    ({"patient": "0x12"}, ["does not name a MedLedger patient"]),
    ({"patient": "P", "_count": "0"}, ["_count"]),
    ({"patient": "P", "_sort": "date"}, ["'_sort' is not supported"]),
    ({"patient": "P", "_lastUpdated": "yesterday"}, ["not a date"]),
    ({}, ["name the patient"]),
])  # fmt: skip
def test_bad_searches_are_refused_in_one_line(hospital_http, registered_patient, params, words):
    params = {k: (registered_patient.address if v == "P" else v) for k, v in params.items()}
    refused(hospital_http.get("Observation", params=params), 400, *words)


def test_read_follows_references_to_where_the_gateway_serves_them(
    hospital_http, registered_patient
):
    post(hospital_http, registered_patient.address)
    observations = ok(
        hospital_http.get("Observation", params={"patient": registered_patient.address})
    )
    one = observations["entry"][0]["resource"]
    read = ok(hospital_http.get(f"Observation/{one['id']}"))
    assert read == one
    subject = ok(hospital_http.get(read["subject"]["reference"]))
    assert subject["resourceType"] == "Patient" and subject["name"][0]["family"] == "Doe"


def test_a_put_makes_a_new_version_shown_in_history_and_vread(
    hospital_http, chain, registered_patient
):
    posted = post(hospital_http, registered_patient.address)
    first = posted["entry"][1]["response"]["location"]  # Observation/<id>/_history/1
    kind, logical_id = first.split("/")[:2]
    body = json.dumps(
        {
            "resourceType": "Observation",
            "id": "o0",
            "status": "amended",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
            "subject": {"reference": f"Patient/{registered_patient.address}"},
        }
    )
    put = hospital_http.put(f"{kind}/{logical_id}", content=body)
    assert ok(put)["meta"]["versionId"] == "2"
    assert put.headers["location"].endswith(f"/{kind}/{logical_id}/_history/2")
    block = chain.w3.eth.block_number
    assert ok(hospital_http.put(f"{kind}/{logical_id}", content=body))["meta"]["versionId"] == "2"
    assert chain.w3.eth.block_number == block  # the same PUT again writes nothing
    refused(hospital_http.put(f"{kind}/{logical_id}", content=b'{"resourceType": "Patient"}'),
            400, "takes one Observation")  # fmt: skip
    current = ok(hospital_http.get(f"{kind}/{logical_id}"))
    assert current["status"] == "amended" and current["meta"]["versionId"] == "2"
    assert ok(hospital_http.get(f"{kind}/{logical_id}/_history/1"))["status"] == "final"
    history = ok(hospital_http.get(f"{kind}/{logical_id}/_history"))
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    refused(hospital_http.get(f"{kind}/{logical_id}/_history/3"), 404)
    listed = ok(hospital_http.get("Observation", params={"patient": registered_patient.address}))
    assert listed["total"] == 5  # the versions are one resource


def test_provenance_names_the_record_uri_and_the_transaction(registered_patient, hospital_http):
    posted = post(hospital_http, registered_patient.address)
    location = posted["entry"][1]["response"]["location"]
    record_id = location.split("/")[1]
    provenance = ok(hospital_http.get(f"Provenance/{record_id}"))
    assert provenance["target"] == [{"reference": location}]
    said = {e["what"]["identifier"]["system"]: e["what"]["identifier"]["value"]
            for e in provenance["entity"]}  # fmt: skip
    assert said["urn:ietf:rfc:3986"].endswith("0x" + record_id)
    outcome = posted["entry"][1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert said["urn:medledger:transaction"].split(":")[-1] in outcome


def test_everything_holds_the_patients_records_and_the_patient(hospital_http, registered_patient):
    posted = post(hospital_http, registered_patient.address)
    address = registered_patient.address
    everything = ok(hospital_http.get(f"Patient/{address}/$everything"))
    assert sorted(e["resource"]["resourceType"] for e in everything["entry"]) == [
        "Observation"] * 5 + ["Patient"]  # fmt: skip
    person = ok(hospital_http.get(f"Patient/{address}"))
    assert person["id"] == address
    assert person["link"][0]["other"]["reference"] == posted["entry"][0]["fullUrl"]


def test_unknown_ids_are_not_found(registered_patient, hospital_http):
    posted = post(hospital_http, registered_patient.address)
    refused(hospital_http.get("Observation/" + "ab" * 32), 404)
    refused(hospital_http.get("Observation/not-an-id"), 404)
    patient_id = posted["entry"][0]["response"]["location"].split("/")[1]
    refused(hospital_http.get(f"Observation/{patient_id}"), 404)  # a Patient, not an Observation


# --- who may ---------------------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_401_with_an_operation_outcome(
    registered_patient, hospital_http, server
):
    posted = post(hospital_http, registered_patient.address)
    with server.client(None) as anonymous:
        answer = anonymous.get("Observation", params={"patient": dev_account(5).address})
        refused(answer, 401, "no bearer token")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    with server.client("not-a-token") as forged:
        refused(forged.get(posted["entry"][1]["response"]["location"]), 401)


def test_a_patient_sees_their_own_records_and_no_one_elses(
    hospital_http, server, registered_patient
):
    post(hospital_http, registered_patient.address)
    with server.client(server.sign_in(registered_patient, "patient/*.rs")) as mine:
        found = ok(mine.get("Observation"))  # the token's patient context
        assert found["total"] == 5
        assert ok(mine.get(f"Observation/{found['entry'][0]['resource']['id']}"))
        refused(mine.get("Observation", params={"patient": dev_account(9).address}), 403)
        refused(mine.post("", json=transaction(registered_patient.address)), 403)


# --- Bulk Data -------------------------------------------------------------------------------


def bulk_export(http: Any, **params: str) -> dict[str, list[dict[str, Any]]]:
    """Kick off ``$export``, read the manifest, fetch every file: resources by type."""
    kicked = http.get("$export", params=params, headers={"Prefer": "respond-async"})
    assert kicked.status_code == 202, kicked.text
    status = http.get(kicked.headers["content-location"])
    assert status.status_code == 200, status.text
    manifest = status.json()
    assert manifest["requiresAccessToken"] is True
    found: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        data = http.get(output["url"])
        assert data.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [json.loads(line) for line in data.text.splitlines() if line]
        assert len(lines) == output["count"]
        for resource in lines:
            assert_valid(resource)
        found[output["type"]] = lines
    return found


def test_a_patients_bulk_export_holds_their_records_by_type(
    hospital_http, server, registered_patient
):
    post(hospital_http, registered_patient.address)
    with server.client(server.sign_in(registered_patient, "patient/*.rs")) as mine:
        files = bulk_export(mine)
        assert {kind: len(found) for kind, found in files.items()} == {
            "Observation": 5, "Patient": 1}  # fmt: skip
        assert set(bulk_export(mine, _type="Patient")) == {"Patient"}
        assert bulk_export(mine, _since="2999-01-01") == {}
        refused(mine.get("$export", params={"_type": "Nonsense"}), 400, "Nonsense")
    with server.client(server.sign_in(dev_account(3), "user/*.rs")) as hospital:
        kicked = mine_again = hospital.get("$export")
        refused(kicked, 403, "no live grant")
        del mine_again


# --- Consent ---------------------------------------------------------------------------------


def test_a_patient_signed_consent_is_submitted_read_and_searched(
    server, hospital_http, chain, settings, registered_patient, doctor_with_key
):
    from datetime import timedelta

    from medledger import consent
    from medledger.categories import Category
    from medledger.ipfs.stores import open_store

    post(hospital_http, registered_patient.address)
    patient = registered_patient.address
    proposed = consent.signed_consent(
        chain, open_store(settings), registered_patient, patient, doctor_with_key.address,
        consent.Scope.parse("category:lab"), consent.Purpose.TREATMENT, timedelta(days=30),
    )  # fmt: skip
    assert_valid(proposed)
    block = chain.w3.eth.block_number
    with server.client(server.sign_in(registered_patient, "patient/*.cruds")) as mine:
        tampered = json.loads(json.dumps(proposed))
        tampered["provision"]["period"]["end"] = "2099-01-01T00:00:00Z"
        refused(mine.post("Consent", json=tampered), 422)
        assert chain.w3.eth.block_number == block  # nothing sent for an altered Consent
        created = ok(mine.post("Consent", json=proposed), 201)
        assert created["status"] == "active"
        assert ok(mine.get(f"Consent/{created['id']}")) == created
        listed = ok(mine.get("Consent", params={"patient": patient, "status": "active"}))
        assert [e["resource"]["id"] for e in listed["entry"]] == [created["id"]]
    assert Category.LAB in {s.scope.category for s in consent.grants(chain, patient)}
    with server.client(server.sign_in(doctor_with_key, "user/*.rs")) as grantee:
        refused(grantee.get(f"Consent/{created['id']}"), 403)  # a lab grant shows labs only
    refused(hospital_http.get("Consent/" + "0" * 64), 404)
    refused(hospital_http.delete(f"Consent/{created['id']}"), 400, "X-MedLedger-Signature")
    signed = consent.revocation_for(chain, registered_patient, created["id"])
    revoked = ok(hospital_http.delete(
        f"Consent/{created['id']}", headers={consent.REVOCATION_HEADER: signed}))  # fmt: skip
    assert revoked["status"] == "inactive"
    assert not any(s.live(chain.now()) for s in consent.grants(chain, patient))


def test_a_grantee_reads_what_its_grant_covers_each_read_logged_naming_it(
    server, hospital_http, chain, store_of_home, registered_patient, doctor_with_key
):
    from datetime import timedelta

    from medledger import consent

    post(hospital_http, registered_patient.address)
    patient = registered_patient.address
    consent.grant(chain, store_of_home, registered_patient, patient, doctor_with_key.address,
                  consent.Scope.parse("category:lab"), consent.Purpose.TREATMENT,
                  timedelta(days=30))  # fmt: skip
    with server.client(server.sign_in(doctor_with_key, "user/*.rs")) as grantee:
        labs = ok(grantee.get("Observation", params={"patient": patient}))
        assert labs["total"] == 3  # the labs, not the vital signs
        one = labs["entry"][0]["resource"]["id"]
        read = ok(grantee.get(f"Observation/{one}"))  # registered from its batch by the search
        assert read == labs["entry"][0]["resource"]  # the same, lastUpdated included
        refused(grantee.get("Patient", params={"patient": patient}), 403)
        trail = consent.access_trail(chain, patient)
        served = [
            e for e in trail if e.event == "record read" and e.actor == doctor_with_key.address
        ]
        assert len(served) == 4  # the three labs of the search, then the read
        assert all(dev_account(3).address in e.detail for e in served)
        consent.revoke(chain, registered_patient, patient, doctor_with_key.address,
                       consent.Scope.parse("category:lab"))  # fmt: skip
        refused(grantee.get(f"Observation/{one}"), 403, "revoked")
