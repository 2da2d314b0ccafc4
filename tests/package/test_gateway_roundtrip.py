"""The held-out style round trip through the FHIR gateway (about 12 s): a Synthea Bundle no
other test anchors, POSTed as a transaction to a running ``medledger serve`` (the hospital,
dev:3, on a free loopback port), searched type by type, and exported twice (``GET
/Patient/0x.../$everything`` and ``medledger export``). Each answer validates with the
package's validator (``fhir_responses``), holds as many resources of each type as the input,
and has no dangling reference: every ``reference`` is an entry's ``fullUrl`` or an absolute URL
that the gateway serves (each one GET, expecting 200).

Two samples no other test anchors (see /work/shared/fhir-samples/SOURCES.md): Eileen854
(google/fhir-data-pipes' synthea-hiv, 541 entries) validates cleanly as it is, so any schema
error in an answer is the gateway's own; Roselle682 (smart-on-fhir's generated-sample-data,
Synthea 2.2, 207 entries) has schema problems of its own against R4B (Claim fields, a
MedicationRequest.context), and the answers must carry exactly those, no more, no fewer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gateway_harness
import pytest
from fhir_responses import (
    bundle_errors,
    counts,
    dangling,
    references,
    resource_problems,
    schema_errors,
)

from medledger.accounts import dev_account

SAMPLES = Path(os.environ.get("MEDLEDGER_FHIR_SAMPLES", "/work/shared/fhir-samples"))
SAMPLES_USED = [
    "Eileen854_Pfeffer420_cff2b0df-a682-d100-4be6-a612f9190a0d.json",
    "Roselle682_Koepp521_8ae8429f-1c22-4797-ba6c-1b679755e531.json",
]
PAGE = 200  # _count of the per-type searches


@pytest.fixture
def server(env, writer):
    running = gateway_harness.start(env, "dev:3")
    yield running
    running.stop()


def every_page(http: Any, kind: str, patient: str) -> list[dict[str, Any]]:
    """All pages of ``GET /{kind}?patient=...``, following ``next`` links."""
    pages = []
    answer = http.get(kind, params={"patient": patient, "_count": str(PAGE)})
    while True:
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        following = [link["url"] for link in pages[-1].get("link", [])
                     if link["relation"] == "next"]  # fmt: skip
        if not following:
            return pages
        answer = http.get(following[0])


def assert_valid_and_whole(bundle: dict[str, Any], source: dict[str, Any], http: Any) -> None:
    assert bundle_errors(bundle) == []
    assert resource_problems(bundle) == resource_problems(source)  # the input's own, if any
    assert counts(bundle) == counts(source)
    assert any(references(bundle["entry"]))  # there are references to resolve
    assert dangling(bundle, lambda url: http.get(url).status_code) == []


@pytest.mark.parametrize("name", SAMPLES_USED, ids=lambda name: name.split("_")[0])
def test_a_synthea_bundle_posted_searched_and_exported_is_valid_and_whole(
    server, registered_patient, medledger, tmp_path, name
):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    source = json.loads(path.read_bytes())
    patient = registered_patient.address
    token = server.sign_in(dev_account(3), "user/*.cruds")
    with server.client(token) as http:
        posted = http.post("", params={"patient": patient}, content=path.read_bytes(),
                           headers={"Content-Type": "application/fhir+json"})  # fmt: skip
        assert posted.status_code == 200, posted.text
        answer = posted.json()
        assert schema_errors(answer) == []
        statuses = [e["response"]["status"] for e in answer["entry"]]
        assert statuses == ["201 Created"] * len(source["entry"])

        for kind, expected in sorted(counts(source).items()):
            pages = every_page(http, kind, patient)
            assert all(bundle_errors(page) == [] for page in pages), kind
            found = [e["resource"] for page in pages for e in page.get("entry", [])]
            of_kind = [e for e in source["entry"] if e["resource"]["resourceType"] == kind]
            assert resource_problems({"entry": [{"resource": r} for r in found]}) == (
                resource_problems({"entry": of_kind})
            ), kind
            assert len(found) == expected, kind
            assert {r["resourceType"] for r in found} == {kind}

        everything = http.get(f"Patient/{patient}/$everything")
        assert everything.status_code == 200, everything.text
        assert_valid_and_whole(everything.json(), source, http)

        out = tmp_path / "export.json"
        done = medledger("export", "--patient", patient, "--out", str(out), "--account", "dev:3")
        assert done.exit_code == 0, done.stderr
        assert_valid_and_whole(json.loads(out.read_bytes()), source, http)
