"""``medledger serve``: the FHIR R4 REST gateway, driven over HTTP as an EHR would drive it.

The server is the real console script on a free loopback port (``gateway_harness``), run by
the hospital (dev:3) against the session's Anvil devnet; callers sign in with Ethereum. Every
response body is validated with ``fhir.resources`` (the package's validator).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from medledger.accounts import dev_account
import gateway_harness

SAMPLE_BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {"fullUrl": "urn:uuid:7f6a2c1e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "id": "p1",
                      "identifier": [{"system": "urn:medledger:account", "value": "PATIENT"}],
                      "name": [{"family": "Doe", "given": ["Jan"]}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:7f6a2c1e-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                      "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                      "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
                      "subject": {"reference": "urn:uuid:7f6a2c1e-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
    ],
}  # fmt: skip


@pytest.fixture
def server(env, writer):
    running = gateway_harness.start(env, "dev:3")
    yield running
    running.stop()


def bundle_for(patient: str) -> bytes:
    return json.dumps(SAMPLE_BUNDLE).replace("PATIENT", patient).encode()


def test_smoke(server, registered_patient):
    token = server.sign_in(dev_account(3), "user/*.cruds")
    with server.client(token) as http:
        posted = http.post("", content=bundle_for(registered_patient.address),
                           headers={"Content-Type": "application/fhir+json"})
        print(posted.status_code, posted.text[:2000])
        assert posted.status_code == 200
        found = http.get("Observation", params={"patient": registered_patient.address})
        print(found.status_code, found.text[:3000])
        assert found.status_code == 200
        first = found.json()["entry"][0]["resource"]
        read = http.get(f"Observation/{first['id']}")
        print(read.text[:1000])
        assert read.status_code == 200
