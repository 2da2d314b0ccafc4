"""Scenarios: a hospital's home replicating record bodies to a Kubo node that wants an RPC secret
and to a remote pinning service, through the ``medledger`` command line.

Both servers are stand-ins started here on 127.0.0.1: ``FakeKubo`` (ipfs_conftest_helpers.py,
Kubo RPC API with ``API.Authorizations``) and ``FakePinningService`` (pinning_stand_in.py, from
the IPFS Pinning Service API specification v1.0.0,
https://ipfs.github.io/pinning-services-api-spec/). The secrets come from environment variables
that ``config.toml`` names, as in production.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ipfs_conftest_helpers import FakeKubo
from pinning_stand_in import DELEGATE, FakePinningService

from medledger.ipfs import Cid, LocalBlockStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)
TOKEN = "psa-token-for-the-hospital"
KUBO_SECRET = "basic:medledger:kubo-pass"


@pytest.fixture
def kubo_node(tmp_path: Path) -> Iterator[FakeKubo]:
    server = FakeKubo(tmp_path / "kubo")
    server.authorization = "Basic " + base64.b64encode(b"medledger:kubo-pass").decode()
    yield server
    server.stop()


@pytest.fixture
def service(kubo_node: FakeKubo) -> Iterator[FakePinningService]:
    server = FakePinningService(TOKEN, source=kubo_node.store, peer_id=kubo_node.peer_id)
    yield server
    server.stop()


@pytest.fixture
def configure(
    env: dict[str, str], kubo_node: FakeKubo, service: FakePinningService, monkeypatch
) -> Iterator[Callable[..., None]]:
    """Write the home's config.toml (Kubo + pinning service); removed after the test."""
    config = Path(env["MEDLEDGER_HOME"]) / "config.toml"
    assert not config.exists()

    def write(wait: float = 5, token: str = TOKEN, kubo_secret: str = KUBO_SECRET) -> None:
        monkeypatch.setenv("TEST_PSA_TOKEN", token)
        monkeypatch.setenv("TEST_KUBO_AUTH", kubo_secret)
        config.write_text(
            f'[ipfs]\nkubo = ["{kubo_node.url}"]\nkubo_auth_env = "TEST_KUBO_AUTH"\n'
            f'[[ipfs.pinning]]\nname = "psa"\nendpoint = "{service.url}"\n'
            f'token_env = "TEST_PSA_TOKEN"\nwait = {wait}\n'
        )

    yield write
    config.unlink(missing_ok=True)


@pytest.fixture
def hospital_writes(verified_institution, hospital, registered_patient, care):
    care(registered_patient, verified_institution(hospital))
    return ("anchor", str(OBSERVATION), "--patient", registered_patient.address,
            "--account", "dev:3", "--json")  # fmt: skip


def test_a_record_body_is_replicated_to_kubo_and_pinned_remotely(
    medledger, configure, hospital_writes, kubo_node: FakeKubo, service: FakePinningService, env
) -> None:
    configure(wait=5)
    done = medledger(*hospital_writes)
    assert done.exit_code == 0, done.stderr
    cid = Cid.parse(done.json()[0]["cid"])
    local = LocalBlockStore(Path(env["MEDLEDGER_HOME"]) / "ipfs")
    assert kubo_node.store.cat(cid) == local.cat(cid)  # the body is on the Kubo node
    assert service.statuses() == {str(cid): "pinned"}  # fetched from it: origins named it
    (pin,) = service.pins.values()
    assert pin["pin"]["origins"] == [f"/ip4/192.0.2.7/tcp/4001/p2p/{kubo_node.peer_id}"]
    assert kubo_node.connected == [DELEGATE]  # the node dialled the service's delegate
    listed = medledger("ipfs", "remote-pins")
    assert (listed.exit_code, listed.stdout.strip()) == (0, "0 queued or pinning, 0 failed")


@pytest.mark.parametrize("wrong", ["token", "kubo_secret"])
def test_a_wrong_secret_is_one_line_and_nothing_is_anchored(
    medledger, configure, hospital_writes, registered_patient, service: FakePinningService,
    wrong: str,
) -> None:  # fmt: skip
    configure(**{wrong: "bearer:not-the-secret" if wrong == "kubo_secret" else "wrong-token"})
    done = medledger(*hospital_writes)
    assert done.exit_code == 1
    (line,) = done.stderr.strip().splitlines()
    refused = "pinning service 'psa'" if wrong == "token" else "Kubo at"
    assert line.startswith("error: ") and f"{refused}" in line and "refused the credentials" in line
    assert "not-the-secret" not in line and "wrong-token" not in line
    assert service.requests.count(("POST", "/pins")) == 0
    verify = medledger("verify", "--patient", registered_patient.address)
    assert verify.stdout.strip() == f"no records anchored for {registered_patient.address}"


def test_a_failed_remote_pin_stops_the_anchor_when_waited_for(
    medledger, configure, hospital_writes, registered_patient, service: FakePinningService
) -> None:
    configure(wait=5)
    service.source = None  # the service cannot fetch anything
    done = medledger(*hospital_writes)
    assert done.exit_code == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: pinning service 'psa'") and "could not pin" in line
    assert "(no origin provides the DAG)" in line
    verify = medledger("verify", "--patient", registered_patient.address)
    assert verify.stdout.strip() == f"no records anchored for {registered_patient.address}"


def test_a_failed_remote_pin_is_reported_and_asked_for_again(
    medledger, configure, hospital_writes, kubo_node: FakeKubo, service: FakePinningService
) -> None:
    configure(wait=0)  # anchoring does not wait: queued is enough
    service.source = None
    done = medledger(*hospital_writes)
    assert done.exit_code == 0, done.stderr
    cid = done.json()[0]["cid"]
    medledger("ipfs", "remote-pins")  # queued -> pinning
    report = medledger("ipfs", "remote-pins")  # pinning -> failed
    assert report.exit_code == 1
    assert (
        report.stdout.splitlines()[0]
        == f"failed   {cid}  {service_name(service)}  no origin provides the DAG"
    )
    assert report.stderr.strip() == (
        "error: 1 remote pin(s) failed: run `medledger ipfs remote-pins --retry`"
    )
    service.source = kubo_node.store  # the service can reach the Kubo node again
    again = medledger("ipfs", "remote-pins", "--retry")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[-2:] == [
        "1 failed pin(s) asked for again",
        "1 queued or pinning, 0 failed",
    ]
    assert medledger("ipfs", "remote-pins").exit_code == 0
    assert service.statuses() == {cid: "pinned"}


def service_name(service: FakePinningService) -> str:
    return f"pinning service 'psa' at {service.url}"
