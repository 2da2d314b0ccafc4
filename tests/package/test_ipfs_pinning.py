"""The Pinning Service API client, remote pins over replicated stores, and Kubo RPC auth.

The servers are stand-ins the tests start on 127.0.0.1: ``FakePinningService``
(pinning_stand_in.py), written from the IPFS Pinning Service API specification v1.0.0
(https://ipfs.github.io/pinning-services-api-spec/), and ``FakeKubo`` (ipfs_conftest_helpers.py)
with Kubo's ``API.Authorizations`` check. No real pinning service or Kubo daemon runs here.
"""

from __future__ import annotations

import base64
import warnings
from typing import TYPE_CHECKING

import pytest
import requests
from ipfs_conftest_helpers import FakeKubo, random_bytes
from pinning_stand_in import FakePinningService

from medledger.config import load_settings
from medledger.errors import (
    ConfigurationError,
    NodeUnavailable,
    Notice,
    RemotePinFailed,
    StoreAccessDenied,
    StoreError,
)
from medledger.ipfs import CHUNK_SIZE, Cid, KuboStore, LocalBlockStore, ReplicatedStore
from medledger.ipfs.kubo import authorization_header
from medledger.ipfs.pinning import PinningService
from medledger.ipfs.remotepins import RemotePinnedStore, RemoteService
from medledger.ipfs.stores import open_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN = "psa-token-7f3c"
BODY = random_bytes(2 * CHUNK_SIZE + 11, seed=21)


@pytest.fixture
def kubo_node(tmp_path: Path) -> Iterator[FakeKubo]:
    server = FakeKubo(tmp_path / "kubo")
    yield server
    server.stop()


@pytest.fixture
def service(kubo_node: FakeKubo) -> Iterator[FakePinningService]:
    server = FakePinningService(TOKEN, source=kubo_node.store, peer_id=kubo_node.peer_id)
    yield server
    server.stop()


@pytest.fixture
def client(service: FakePinningService) -> PinningService:
    return PinningService("psa", service.url, TOKEN, timeout=5, retries=2, backoff=0.01)


def replicated_with_pins(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService, wait: float
) -> RemotePinnedStore:
    kubo = KuboStore(kubo_node.url, timeout=5, retries=1, backoff=0.01)
    inner = ReplicatedStore([LocalBlockStore(tmp_path / "local"), kubo])
    return RemotePinnedStore(inner, [RemoteService(client, wait)], kubo.addresses, poll=0.01)


# --- the stand-in follows the specification -----------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}"],
                         ids=["no-token", "wrong-token", "not-bearer"])  # fmt: skip
def test_the_stand_in_wants_the_bearer_token(service: FakePinningService, header: str | None):
    headers = {"Authorization": header} if header else {}
    answer = requests.get(f"{service.url}/pins", headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["reason"] == "UNAUTHORIZED"


# --- the client ---------------------------------------------------------------------------------


def test_a_pin_goes_queued_pinning_pinned_and_is_listed_by_cid(
    client: PinningService, kubo_node: FakeKubo
) -> None:
    cid = kubo_node.store.add_bytes(BODY)
    origins = [f"/ip4/192.0.2.7/tcp/4001/p2p/{kubo_node.peer_id}"]
    asked = client.add(cid, origins, name=str(cid))
    assert (asked.status, asked.cid, asked.delegates != ()) == ("queued", cid, True)
    assert client.get(asked.requestid).status == "pinning"
    assert client.get(asked.requestid).status == "pinned"
    (listed,) = client.find([cid])
    assert (listed.requestid, listed.status) == (asked.requestid, "pinned")
    assert client.find([Cid.of_block(b"another")]) == []


def test_a_pin_no_origin_provides_fails_with_the_services_reason(client: PinningService) -> None:
    cid = Cid.of_block(b"held by nobody")
    asked = client.add(cid)  # no origins: the stand-in cannot fetch it
    client.get(asked.requestid)
    failed = client.get(asked.requestid)
    assert failed.status == "failed" and failed.details == "no origin provides the DAG"


def test_remove_and_replace(client: PinningService, service: FakePinningService) -> None:
    first = client.add(Cid.of_block(b"one"))
    second = client.replace(first.requestid, Cid.of_block(b"two"))
    assert second.requestid != first.requestid
    assert set(service.pins) == {second.requestid}  # the old request is gone
    client.remove(second.requestid)
    client.remove(second.requestid)  # 404 NOT_FOUND on a second removal is not an error
    assert service.pins == {}
    with pytest.raises(StoreError, match=r"HTTP 404 NOT_FOUND: The specified resource"):
        client.get(second.requestid)


def test_listing_reads_every_page(client: PinningService, service: FakePinningService) -> None:
    service.page_size = 3  # a service may answer fewer than the limit asked for
    cids = [Cid.of_block(bytes([n])) for n in range(8)]
    for cid in cids:
        client.add(cid)
    assert {p.cid for p in client.find()} == set(cids)
    assert {p.cid for p in client.find(cids[:5])} == set(cids[:5])


@pytest.mark.parametrize("token", ["", "psa-token-wrong"], ids=["empty", "wrong"])
def test_a_wrong_token_is_one_clear_line_without_the_token(
    service: FakePinningService, token: str
) -> None:
    if not token:
        with pytest.raises(ConfigurationError, match="access token is empty"):
            PinningService("psa", service.url, token)
        return
    with pytest.raises(StoreAccessDenied) as caught:
        PinningService("psa", service.url, token, retries=2).add(Cid.of_block(b"x"))
    message = str(caught.value)
    assert message == (
        f"pinning service 'psa' at {service.url} refused the credentials (HTTP 401: "
        "UNAUTHORIZED: Access token is missing or invalid): check the token that config.toml "
        "[[ipfs.pinning]] token_env / token_file names"
    )
    assert token not in message and TOKEN not in repr(caught.value)
    assert len(service.requests) == 1  # refused credentials are not retried


def test_insufficient_funds_is_reported_with_the_reason(
    client: PinningService, service: FakePinningService
) -> None:
    service.insufficient_funds = True
    with pytest.raises(StoreError, match=r"refused pinning .* \(HTTP 409 INSUFFICIENT_FUNDS: "):
        client.add(Cid.of_block(b"x"))


def test_server_errors_are_retried_then_reported(
    client: PinningService, service: FakePinningService
) -> None:
    service.bare_500s = 2
    assert client.add(Cid.of_block(b"x")).status == "queued"  # the third attempt
    service.bare_500s = 5
    with pytest.raises(NodeUnavailable, match=r"HTTP 500 INTERNAL_SERVER_ERROR.*\(3 attempts\)"):
        client.find()


# --- remote pins over the configured stores -----------------------------------------------------


def test_a_body_replicated_to_kubo_is_pinned_remotely_from_kubo(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService, service: FakePinningService
) -> None:
    store = replicated_with_pins(tmp_path, kubo_node, client, wait=5)
    cid = store.add_bytes(BODY)
    assert kubo_node.store.cat(cid) == BODY  # on the Kubo node before the pin was asked for
    assert service.statuses() == {str(cid): "pinned"}
    (status,) = service.pins.values()
    assert status["pin"]["origins"] == [f"/ip4/192.0.2.7/tcp/4001/p2p/{kubo_node.peer_id}"]
    assert store.cat(cid) == BODY
    store.add_bytes(BODY)  # again: the service is not asked a second time
    assert service.requests.count(("POST", "/pins")) == 1


def test_pins_made_in_bulk_are_asked_for_when_the_bulk_ends(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService, service: FakePinningService
) -> None:
    store = replicated_with_pins(tmp_path, kubo_node, client, wait=0)
    with store.bulk():
        roots = [store.add_bytes(random_bytes(100, seed=n)) for n in range(3)]
        assert service.pins == {}
    assert set(service.statuses()) == {str(r) for r in roots}
    with pytest.raises(RuntimeError), store.bulk():
        store.add_bytes(b"a write that fails later")
        raise RuntimeError
    assert len(service.pins) == 3  # nothing of the failed write was asked for


def test_a_failed_pin_stops_the_write_and_is_listed(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService, service: FakePinningService
) -> None:
    cid = Cid.parse(str(LocalBlockStore(tmp_path / "probe").add_bytes(BODY)))
    service.fail.add(str(cid.to_v1()))
    store = replicated_with_pins(tmp_path, kubo_node, client, wait=5)
    with pytest.raises(RemotePinFailed, match=r"could not pin .* \(the service gave up"):
        store.add_bytes(BODY)
    (failed,) = store.unfinished()[client.name]
    assert (failed.cid, failed.status) == (cid, "failed")
    service.fail.clear()
    assert store.retry_failed() == 1
    (again,) = store.unfinished()[client.name]  # reading it moved it on from queued
    assert (again.status, again.requestid != failed.requestid) == ("pinning", True)


def test_a_pin_still_queued_after_the_wait_is_a_notice(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService
) -> None:
    store = replicated_with_pins(tmp_path, kubo_node, client, wait=0.001)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.add_bytes(BODY)
    assert [str(w.message) for w in caught if w.category is Notice] == [
        f"1 pin(s) on {client.name} still queued after 0.001 s: `medledger ipfs remote-pins` "
        "lists them"
    ]


def test_unpin_removes_the_remote_pin_requests(
    tmp_path: Path, kubo_node: FakeKubo, client: PinningService, service: FakePinningService
) -> None:
    store = replicated_with_pins(tmp_path, kubo_node, client, wait=0)
    cid = store.add_bytes(BODY)
    kept = store.add_bytes(b"another record")
    store.unpin(cid)  # erasure: the body must not stay pinned anywhere
    assert service.statuses() == {str(kept): "pinning"}  # listing moved it one step on


# --- Kubo RPC authentication --------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "header"), [
    ("bearer:tok3n", "Bearer tok3n"),
    ("tok3n", "Bearer tok3n"),
    ("basic:alice:pass:word", "Basic " + base64.b64encode(b"alice:pass:word").decode()),
    ("basic:YWxpY2U6cHc=", "Basic YWxpY2U6cHc="),
], ids=["bearer", "bare-token", "basic-user-password", "basic-base64"])  # fmt: skip
def test_kubo_secret_becomes_the_header_kubo_expects(secret: str, header: str) -> None:
    assert authorization_header(secret) == header


def test_kubo_secret_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="bearer:TOKEN, basic:USER:PASSWORD"):
        authorization_header("digest:alice:pw")


def test_kubo_with_authorizations_takes_the_secret_and_refuses_others(kubo_node: FakeKubo) -> None:
    kubo_node.authorization = "Basic " + base64.b64encode(b"medledger:s3cret").decode()
    with KuboStore(kubo_node.url, auth="basic:medledger:s3cret") as kubo:
        cid = kubo.add_bytes(BODY)
        assert kubo.cat(cid) == BODY
    for secret in (None, "basic:medledger:wrong"):
        with (
            KuboStore(kubo_node.url, auth=secret, retries=2) as kubo,
            pytest.raises(StoreAccessDenied) as caught,
        ):
            kubo.version()
        assert str(caught.value).startswith(
            f"Kubo at {kubo_node.url} refused the credentials (HTTP 403: Kubo RPC Access Denied"
        )
        assert "s3cret" not in str(caught.value) and "wrong" not in str(caught.value)
    assert kubo_node.requests.count("denied:version") == 2  # once each: never retried


# --- secrets in the settings --------------------------------------------------------------------


def pinning_home(tmp_path: Path, secret_lines: str) -> Path:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        '[ipfs]\nkubo = ["http://127.0.0.1:5001"]\n'
        f'[[ipfs.pinning]]\nname = "psa"\nendpoint = "https://psa.example"\n{secret_lines}\n'
    )
    return home


@pytest.mark.parametrize(("lines", "problem"), [
    (f'token = "{TOKEN}"', "a secret is never written in config.toml"),
    ("", 'needs token_env = "VARIABLE" or token_file'),
    ('token_env = "A"\ntoken_file = "/b"', "give token_env or token_file, not both"),
], ids=["token-in-place", "no-token", "both"])  # fmt: skip
def test_pinning_settings_refuse_a_token_in_config_or_none(
    tmp_path: Path, lines: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        load_settings(pinning_home(tmp_path, lines))
    assert TOKEN not in str(caught.value)


def test_the_token_comes_from_the_named_variable_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PSA_TOKEN", raising=False)
    settings = load_settings(pinning_home(tmp_path / "env", 'token_env = "PSA_TOKEN"'))
    (service,) = settings.pinning
    with pytest.raises(ConfigurationError, match="the environment variable PSA_TOKEN is not set"):
        service.token.read()
    monkeypatch.setenv("PSA_TOKEN", TOKEN)
    assert service.token.read() == TOKEN
    assert TOKEN not in repr(settings)  # the settings hold where the secret is, not the secret

    secrets = tmp_path / "secrets"  # outside any git work tree
    secrets.mkdir()
    (secrets / "psa").write_text(TOKEN + "\n")
    home = pinning_home(tmp_path / "file", f'token_file = "{secrets / "psa"}"')
    assert load_settings(home).pinning[0].token.read() == TOKEN


def test_a_token_file_inside_a_git_work_tree_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "psa-token").write_text(TOKEN)
    home = pinning_home(tmp_path, f'token_file = "{project / "psa-token"}"')
    with pytest.raises(ConfigurationError, match="is inside a git work tree: keep secrets outside"):
        load_settings(home).pinning[0].token.read()


def test_a_pinning_service_without_a_kubo_node_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PSA_TOKEN", TOKEN)
    home = pinning_home(tmp_path, 'token_env = "PSA_TOKEN"')
    config = home / "config.toml"
    config.write_text(config.read_text().replace('kubo = ["http://127.0.0.1:5001"]', ""))
    with pytest.raises(ConfigurationError, match="add a Kubo node to \\[ipfs\\] kubo"):
        open_store(load_settings(home))
