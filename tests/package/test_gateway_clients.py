"""The FHIR gateway driven by two FHIR clients nobody here wrote, as an EHR's integration would:

- Python: ``fhirclient`` 4.4.0 (SMART on FHIR's client library, PyPI), its ``FHIRServer`` with
  the bearer token given as its saved OAuth2 state, and its models (``Bundle.create``,
  ``Observation.where(...).perform_resources_iter``, which follows ``next`` links itself,
  ``Observation.read``, ``read_from``);
- JavaScript: ``fhir-kit-client`` 2.0.3 (npm), run by ``clients/fhirkit_scenario.mjs``.

The gateway is the real ``medledger serve`` on a free loopback port, run by the hospital (dev:3)
against the session's Anvil devnet (``gateway_harness``). Every response body each client
received is validated with the package's validator (``fhir_responses``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import gateway_harness
import pytest
from fhir_responses import schema_errors, unvalidated_types
from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient
from fhirclient.server import (
    FHIRNotFoundException,
    FHIRPermissionDeniedException,
    FHIRServer,
    FHIRUnauthorizedException,
)
from requests import HTTPError

from medledger import providers
from medledger.accounts import dev_account

CLIENTS = Path(__file__).parent / "clients"
OBSERVATIONS = 5  # per patient; pages of 2 make three pages


@pytest.fixture
def other_patient(chain, writer, care, hospital):
    """A second patient (dev:7), also in the hospital's care."""
    other = dev_account(7)
    providers.register_patient(chain, other)
    return care(other, hospital)


@pytest.fixture
def server(env, writer, other_patient):
    running = gateway_harness.start(env, "dev:3")
    yield running
    running.stop()


def transaction(patient: str, label: str) -> dict[str, Any]:
    """A transaction Bundle for ``patient``: the Patient (naming the MedLedger account) and
    :data:`OBSERVATIONS` lab Observations referring to it by its ``urn:uuid``."""
    subject = f"urn:uuid:{label}-0000-4000-8000-000000000000"
    entries = [{
        "fullUrl": subject,
        "resource": {"resourceType": "Patient",
                     "identifier": [{"system": "urn:medledger:account", "value": patient}],
                     "name": [{"family": label.title(), "given": ["Jan"]}]},
        "request": {"method": "POST", "url": "Patient"},
    }]  # fmt: skip
    for i in range(OBSERVATIONS):
        entries.append({
            "fullUrl": f"urn:uuid:{label}-0000-4000-8000-00000000000{i + 1}",
            "resource": {
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}],
                         "text": f"glucose {label} {i}"},
                "subject": {"reference": subject},
                "valueQuantity": {"value": 90 + i, "unit": "mg/dL"},
            },
            "request": {"method": "POST", "url": "Observation"},
        })  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class Recorded(FHIRServer):
    """fhirclient's server, signed in the library's own way (the OAuth2 state it saves after
    SMART's token exchange, holding the access token), keeping every response body it got."""

    def __init__(self, base: str, token: str | None) -> None:
        auth = {"access_token": token} if token else None
        super().__init__(None, state={"base_uri": f"{base}/", "auth_type": "oauth2" if token
                                      else "none", "auth": auth})  # fmt: skip
        self.bodies: list[dict[str, Any]] = []
        self.session.hooks["response"].append(self._keep)

    def _keep(self, response: Any, *args: Any, **kwargs: Any) -> None:
        if response.content:
            self.bodies.append(response.json())


def assert_all_valid(bodies: list[dict[str, Any]]) -> set[str]:
    """Every body validates; the types the validator has no R4B model for."""
    assert bodies
    for body in bodies:
        assert schema_errors(body) == [], body.get("resourceType")
    return set().union(*(unvalidated_types(b) for b in bodies))


def test_fhirclient_creates_pages_reads_and_exports_as_the_hospital(server, registered_patient):
    patient = registered_patient.address
    fhir = Recorded(server.fhir, server.sign_in(dev_account(3), "user/*.cruds"))

    answer = Bundle(transaction(patient, "aaaaaaaa")).create(fhir)
    assert answer["type"] == "transaction-response"
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert [s["response"]["status"] for s in answer["entry"]] == ["201 Created"] * 6
    assert [loc.split("/")[0] for loc in locations] == ["Patient"] + ["Observation"] * 5

    search = Observation.where({"patient": patient, "_count": "2"})
    pages = list(search.perform_iter(fhir))
    found = [e.resource for page in pages for e in page.entry]
    assert len(pages) == 3 and pages[0].total == OBSERVATIONS
    assert sorted(o.valueQuantity.value for o in found) == [90, 91, 92, 93, 94]
    (subject,) = {o.subject.reference for o in found}  # the urn:uuid, made resolvable
    assert subject.startswith(f"{server.fhir}/Patient/")
    assert Patient.read_from(subject, fhir).identifier[0].value == patient

    first = found[0]
    read = Observation.read(first.id, fhir)
    assert read.as_json() == first.as_json()
    version = Observation.read_from(f"Observation/{first.id}/_history/1", fhir)
    assert version.meta.versionId == "1" and version.id == first.id
    history = Bundle.read_from(f"Observation/{first.id}/_history", fhir)
    assert history.type == "history" and [e.resource.id for e in history.entry] == [first.id]

    everything = Bundle.read_from(f"Patient/{patient}/$everything", fhir)
    kinds = sorted(e.resource.resource_type for e in everything.entry)
    assert kinds == ["Observation"] * OBSERVATIONS + ["Patient"]

    assert assert_all_valid(fhir.bodies) == set()


def test_fhirclient_as_a_patient_sees_only_that_patients_records(
    server, registered_patient, other_patient
):
    hospital = Recorded(server.fhir, server.sign_in(dev_account(3), "user/*.cruds"))
    Bundle(transaction(registered_patient.address, "aaaaaaaa")).create(hospital)
    Bundle(transaction(other_patient.address, "bbbbbbbb")).create(hospital)

    own = Recorded(server.fhir, server.sign_in(registered_patient, "patient/*.rs"))
    mine = list(Observation.where({"_count": "100"}).perform_resources_iter(own))
    assert len(mine) == OBSERVATIONS
    assert all(o.code.text.startswith("glucose aaaaaaaa") for o in mine)
    with pytest.raises(FHIRPermissionDeniedException) as refused:
        list(Observation.where({"patient": other_patient.address}).perform_resources_iter(own))
    said = OperationOutcome(refused.value.response.json())
    assert said.issue[0].severity == "error" and said.issue[0].diagnostics

    assert assert_all_valid(own.bodies) == set()


@pytest.mark.parametrize(
    ("ask", "status", "raised"),
    [
        (lambda fhir: Observation.read("0x" + "ab" * 32, fhir), 404, FHIRNotFoundException),
        (lambda fhir: Observation.where({"patient": "nobody"}).perform_resources_iter(fhir)
         .__next__(), 400, HTTPError),
        (lambda fhir: Bundle({"resourceType": "Bundle", "type": "transaction", "entry": []})
         .create(fhir), 400, HTTPError),
    ],
    ids=["unknown-record", "malformed-patient", "empty-bundle"],
)  # fmt: skip
def test_fhirclient_surfaces_an_error_as_an_operation_outcome(
    server, registered_patient, ask, status, raised
):
    fhir = Recorded(server.fhir, server.sign_in(dev_account(3), "user/*.cruds"))
    with pytest.raises(raised) as failed:
        ask(fhir)
    response = failed.value.response
    assert response.status_code == status
    said = OperationOutcome(response.json())
    assert said.issue[0].severity == "error"
    assert "\n" not in said.issue[0].diagnostics and said.issue[0].diagnostics
    assert assert_all_valid(fhir.bodies) == set()


def test_fhirclient_without_a_token_is_refused_with_an_operation_outcome(server):
    anonymous = Recorded(server.fhir, None)
    with pytest.raises(FHIRUnauthorizedException) as refused:
        Observation.read("0x" + "ab" * 32, anonymous)
    said = OperationOutcome(refused.value.response.json())
    assert "sign in" in said.issue[0].diagnostics
    assert assert_all_valid(anonymous.bodies) == set()


def test_fhirclient_as_a_grantee_reads_a_granted_record(server, registered_patient, chain,
                                                         doctor_with_key):  # fmt: skip
    from datetime import timedelta

    from medledger import consent
    from medledger.categories import Category
    from medledger.ipfs.stores import open_store

    hospital = Recorded(server.fhir, server.sign_in(dev_account(3), "user/*.cruds"))
    Bundle(transaction(registered_patient.address, "dddddddd")).create(hospital)
    consent.grant(
        chain, open_store(chain.settings), registered_patient, registered_patient.address,
        doctor_with_key.address, consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB),
        consent.Purpose.TREATMENT, timedelta(days=30),
    )  # fmt: skip
    doctor = Recorded(server.fhir, server.sign_in(doctor_with_key, "user/Observation.rs"))
    search = {"patient": registered_patient.address, "_count": "100"}
    try:
        found = list(Observation.where(search).perform_resources_iter(doctor))
        read = Observation.read(found[0].id, doctor)
    except HTTPError as failed:
        raise AssertionError(failed.response.text) from None
    assert len(found) == OBSERVATIONS
    assert read.as_json() == found[0].as_json()
    assert assert_all_valid(doctor.bodies) == set()


# --- fhir-kit-client (npm) -------------------------------------------------------------------


def run_fhirkit(server, token: str, patient: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """``clients/fhirkit_scenario.mjs`` against ``server``: its steps by name (a step that ran
    more than once, nextPage, as a list)."""
    node = shutil.which("node")
    assert node, "node is needed (the npm toolchain installs with it)"
    done = subprocess.run(
        [node, str(CLIENTS / "fhirkit_scenario.mjs"), server.fhir, patient],
        input=json.dumps(bundle), capture_output=True, text=True, timeout=300,
        env={"PATH": str(Path(node).parent), "MEDLEDGER_TOKEN": token},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    steps: dict[str, Any] = {}
    for step in json.loads(done.stdout)["steps"]:
        if step["step"] == "nextPage":
            steps.setdefault("nextPage", []).append(step)
        else:
            steps[step["step"]] = step
    return steps


def test_fhir_kit_client_creates_pages_reads_and_exports_as_the_hospital(
    server, registered_patient
):
    patient = registered_patient.address
    token = server.sign_in(dev_account(3), "user/*.cruds")
    steps = run_fhirkit(server, token, patient, transaction(patient, "cccccccc"))

    created = steps["transaction"]["body"]
    assert steps["transaction"]["status"] == 200
    assert [e["response"]["status"] for e in created["entry"]] == ["201 Created"] * 6
    pages = [steps["search"], *steps.get("nextPage", [])]
    assert [p["status"] for p in pages] == [200] * 3
    values = sorted(e["resource"]["valueQuantity"]["value"] for p in pages
                    for e in p["body"]["entry"])  # fmt: skip
    assert values == [90, 91, 92, 93, 94]
    first = pages[0]["body"]["entry"][0]["resource"]
    assert steps["read"]["body"] == first
    assert steps["vread"]["body"]["meta"]["versionId"] == "1"
    assert steps["vread"]["body"]["id"] == first["id"]
    assert [e["resource"]["id"] for e in steps["history"]["body"]["entry"]] == [first["id"]]
    everything = steps["everything"]["body"]
    assert sorted(e["resource"]["resourceType"] for e in everything["entry"]) == (
        ["Observation"] * OBSERVATIONS + ["Patient"]
    )
    missing = steps["read-missing"]
    assert missing["status"] == 404
    assert missing["body"]["resourceType"] == "OperationOutcome"
    assert "not anchored" in missing["body"]["issue"][0]["diagnostics"]

    bodies = [s["body"] for s in steps.values() if isinstance(s, dict)]
    assert assert_all_valid(bodies + [p["body"] for p in pages[1:]]) == set()


# --- what the clients' keep-alive connections showed -----------------------------------------


def test_the_gateway_answers_a_keep_alive_connection_without_waiting_for_an_ack():
    """Clients keep their connection open (fhirclient's requests session, fhir-kit-client's
    keep-alive agent). asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets made
    with the TCP protocol number; without it every small answer on a kept-alive connection
    waited for the client's delayed ACK (~40 ms: a read took 56-60 ms instead of 12)."""
    import asyncio
    import socket

    from medledger.gateway.server import listen

    sock = listen("127.0.0.1", 0)

    async def accepted_nodelay() -> int:
        seen: list[int] = []

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted = writer.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accept, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()
        return seen[0]

    assert asyncio.run(accepted_nodelay()) != 0
