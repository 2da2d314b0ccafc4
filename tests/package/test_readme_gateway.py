"""The README's five-line hospital integration, run as written (only the port is a free one
instead of 8080): start the gateway, get a token, POST the demo patient's Synthea Bundle,
search it, export it; every answer validated."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from test_gateway_server import assert_valid

from medledger.fhir._validate import bundle_problems, problems_of

REPO = Path(__file__).resolve().parents[2]
SECTION = "### The FHIR gateway: a hospital's integration in five lines"


def readme_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split(SECTION, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_readme_integration_works_as_written(env, writer, registered_patient, tmp_path):
    lines = readme_lines()
    assert len(lines) == 5
    port = free_port()
    script = "\n".join(lines)
    script = script.replace("serve --account", f"serve --port {port} --account")
    script = script.replace(
        "sign-in --account", f"sign-in --gateway http://127.0.0.1:{port} --account"
    )
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    assert registered_patient.address in script
    (tmp_path / "src").symlink_to(REPO / "src")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    wrapped = f"set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}\n"
    done = subprocess.run(["bash", "-c", wrapped], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    source = json.loads((REPO / re.search(r"@(\S+\.json)", script)[1]).read_text())
    posted = json.loads((tmp_path / "posted.json").read_text())
    assert posted["type"] == "transaction-response"
    assert len(posted["entry"]) == len(source["entry"])
    assert {e["response"]["status"] for e in posted["entry"]} <= {"201 Created", "200 OK"}
    observations = json.loads((tmp_path / "observations.json").read_text())
    expected = sum(e["resource"]["resourceType"] == "Observation" for e in source["entry"])
    assert observations["total"] == expected > 0
    everything = json.loads((tmp_path / "everything.json").read_text())
    assert len(everything["entry"]) == len(source["entry"])
    assert_valid(posted)
    known = {(p.resource_type, p.path, p.message)  # Synthea's STU3 leftovers stay as they came
             for e in source["entry"]
             for p in problems_of(e["resource"], e["resource"]["resourceType"], None)}  # fmt: skip
    for bundle in (observations, everything):
        assert bundle_problems(bundle, bundle["entry"]) == []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            found = problems_of(resource, resource["resourceType"], None)
            assert {(p.resource_type, p.path, p.message) for p in found} <= known
