"""The end-to-end flow on a second EVM: Hardhat Network (npm ``hardhat``, EDR), reached as a
configured network (``[networks.node] rpc = ...``), so that nothing depends on Anvil; and the
same runs on an Anvil reached the same way, for comparison.

One node of each kind serves the module (tests/package/evm_nodes.py); every request goes
through a recording proxy, so each test also proves that a network other than the embedded
devnet is never sent a development-node method (``anvil_*``, ``evm_*``, ``hardhat_*``): those
belong to :mod:`medledger.chain.devnet` and the sends to it. Both nodes would answer
``evm_*``, which is why the proxy, not the node, is the check. Each test has a home of its own
(its own deployment of the contracts on the shared node); the session's devnet is not used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import erc20
import pytest
from conftest import Outcome
from evm_nodes import DEV_ONLY_PREFIXES, RecordingProxy, anvil_node, hardhat_node

from medledger.accounts import DEV_CHAIN_IDS, dev_account
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.demo import claims as demo_claims
from medledger.demo import trials as demo_trials

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow  # `make test` (CI) runs these; `make test-fast` leaves them out

SRC = Path(__file__).resolve().parents[2] / "src" / "medledger"


@dataclass(frozen=True)
class Node:
    """A node the module started: which kind, on which chain id, at which URL."""

    kind: str
    chain_id: int
    url: str = ""


STARTERS = {"hardhat": hardhat_node, "anvil": anvil_node}
# Hardhat Network, and Anvil for comparison, on the devnet's chain id (dev:N accounts work, the
# DevStablecoin pays claims); and Hardhat on a chain id that is no devnet's, as a public chain.
DEVNET_IDS = [Node("hardhat", 31337), Node("anvil", 31337)]
PUBLIC_ID = Node("hardhat", 4242)


@pytest.fixture(scope="module")
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """The node a test is parametrised with (``indirect``), one per kind and chain id for the
    module; reached as a configured network."""
    kind, chain_id = request.param.kind, request.param.chain_id
    log = tmp_path_factory.mktemp(f"{kind}-{chain_id}") / "node.log"
    with STARTERS[kind](log, chain_id) as url:
        yield Node(kind, chain_id, url)


def _id(node: Node) -> str:
    return f"{node.kind}-{node.chain_id}"


@pytest.fixture
def proxy(node: Node) -> Iterator[RecordingProxy]:
    """The recording proxy in front of the node, for one test."""
    recorder = RecordingProxy(node.url)
    yield recorder
    recorder.stop()


@pytest.fixture
def on_node(tmp_path, proxy, monkeypatch, capsys):
    """Run a ``medledger`` command in-process on ``--network node``, in a fresh home whose
    config.toml names the node (through the proxy)."""
    from medledger.cli import main

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[networks.node]\nrpc = "{proxy.url}"\n')
    monkeypatch.setenv("MEDLEDGER_HOME", str(home))
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(home / "deployments"))
    monkeypatch.delenv("MEDLEDGER_NETWORK", raising=False)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        code = main([*args, "--network", "node"])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.mark.parametrize("node", DEVNET_IDS, ids=_id, indirect=True)
def test_demo_runs_end_to_end_on_a_configured_network(on_node, proxy):
    """The main job, unchanged, on the node: deploy, k-of-n verification, patients, 120 records
    anchored and verified, grant and revoke, break-glass, claims paid, a trial audited."""
    outcome = on_node("demo")
    assert outcome.exit_code == 0, outcome.stderr
    text = outcome.stdout
    assert "(chain id 31337)" in text and "node at http://127.0.0.1:" in text
    assert "verified by 2 of 3 registrars" in text
    assert "identical to the input" in text
    assert "altered body:     caught" in text
    assert "swapped pointer:  caught" in text
    assert "another reader:   refused" in text
    assert "120 of 120 records" in text
    assert "the doctor reads" in text and "(verified)" in text
    assert "never wrapped for the revoked doctor" in text
    assert "EMERGENCY ACCESS OPENED" in text
    assert "approved automatically" in text and "paid to the clinic at once" in text
    assert "audit: passes" in text and "the audit FAILS" in text
    assert "eth_sendRawTransaction" in proxy.methods  # the node was reached through the proxy
    assert proxy.dev_only() == []


@pytest.mark.parametrize("node", [*DEVNET_IDS, PUBLIC_ID], ids=_id, indirect=True)
def test_cli_flow_with_environment_accounts_on_a_configured_network(
    node, on_node, proxy, monkeypatch, tmp_path
):
    """Every step through the CLI verbs, each actor an ``env:`` key as on a real network:
    deploy, a hospital verified by 2 of 3 registrars, a patient, an anchored record, a grant
    and the grantee's read, a claim paid, a trial consent and datum. On a chain that is not a
    devnet, test accounts are refused and claims are paid in an ERC-20 chosen at deploy."""
    actors = {"REG0": 0, "REG1": 1, "REG2": 2, "HOSPITAL": 3, "CLINIC": 4, "PATIENT": 5,
              "INSURER": 10, "SPONSOR": 13, "PARTICIPANT": 16}  # fmt: skip
    address = {name: dev_account(index).address for name, index in actors.items()}
    for name, index in actors.items():
        monkeypatch.setenv(f"HH_{name}", "0x" + bytes(dev_account(index).key).hex())

    def ok(*args: str) -> Outcome:
        outcome = on_node(*args)
        assert outcome.exit_code == 0, f"{args}: {outcome.stderr}"
        return outcome

    def as_(name: str) -> tuple[str, str]:
        return ("--account", f"env:HH_{name}")

    registrars = [a for r in ("REG0", "REG1", "REG2") for a in ("--registrar", address[r])]
    token: list[str] = []
    if node.chain_id not in DEV_CHAIN_IDS:
        refused = on_node("patient", "register", "--account", "dev:5")
        assert refused.exit_code == 1
        assert f"test accounts are refused on chain {node.chain_id}" in refused.stderr
        chain = Chain(load_settings(), "node")
        usdc = erc20.deploy_token(chain, address["REG0"], "USDC", 6)
        erc20.mint(chain, address["REG0"], usdc, address["INSURER"], 5_000 * 10**6)
        token = ["--claims-token", usdc]
    deployed = ok("deploy", *registrars, "--threshold", "2", *token, *as_("REG0"), "--json")
    assert "RecordRegistry" in deployed.json()["deployed"]
    assert ("DevStablecoin" in deployed.json()["deployed"]) == (not token)

    for name, kind in (("HOSPITAL", "hospital"), ("CLINIC", "clinic"), ("INSURER", "insurer"),
                       ("SPONSOR", "research-sponsor")):  # fmt: skip
        ok("institution", "apply", "--kind", kind, "--name", name.title(), *as_(name))
        first = ok("institution", "verify", address[name], *as_("REG0"), "--json").json()
        assert first["status"] == "pending"
        if name == "HOSPITAL":  # a revert, as the node reports it: decoded, one line
            again = on_node("institution", "verify", address[name], *as_("REG0"))
            assert again.exit_code == 1 and again.stderr.count("\n") == 1, again.stderr
            assert "ProviderAlreadyApproved" in again.stderr
        assert (
            ok("institution", "verify", address[name], *as_("REG2"), "--json").json()["status"]
            == "verified"
        )

    ok("patient", "register", *as_("PATIENT"))
    ok("care", "authorize", address["HOSPITAL"], *as_("PATIENT"))
    ok("care", "authorize", address["CLINIC"], *as_("PATIENT"))

    # A record, granted to the clinic, read back by it.
    body = demo_trials.ldl(131.0)
    (tmp_path / "ldl.json").write_bytes(body)
    (anchored,) = ok("anchor", str(tmp_path / "ldl.json"), "--patient", address["PATIENT"],
                     *as_("HOSPITAL"), "--json").json()  # fmt: skip
    record_id = anchored["id"]
    ok("publish-key", *as_("CLINIC"))
    ok("grant", address["CLINIC"], "--scope", "all", *as_("PATIENT"))
    ok("read", record_id, "--out", str(tmp_path / "back.json"), *as_("CLINIC"))
    assert (tmp_path / "back.json").read_bytes() == body

    # A claim from policy to payment, settled automatically.
    for category in ("financial", "encounter"):
        ok("grant", address["INSURER"], "--scope", f"category:{category}", "--purpose",
           "payment", *as_("PATIENT"))  # fmt: skip
    now = datetime.now(UTC)
    (tmp_path / "visit.json").write_bytes(demo_claims.encounter("Patient/p1", now))
    (visit,) = ok("anchor", str(tmp_path / "visit.json"), "--patient", address["PATIENT"],
                  *as_("CLINIC"), "--json").json()  # fmt: skip
    visit_id = visit["id"]
    policy = ok("policy", "issue", "--patient", address["PATIENT"], "--deductible", "50",
                "--limit", "2000", "--auto-settle-limit", "500", "--code",
                f"{demo_claims.CPT}|99213", *as_("INSURER"), "--json").json()  # fmt: skip
    ok("policy", "fund", str(policy["id"]), "3000", *as_("INSURER"))
    ok("policy", "show", str(policy["id"]), "--terms", "--out", str(tmp_path / "terms.json"),
       *as_("PATIENT"))  # fmt: skip
    bill = demo_claims.claim("Patient/p1", "e1", [("99213", Decimal(180))],
                             now - timedelta(hours=1))  # fmt: skip
    (tmp_path / "claim.json").write_bytes(bill)
    submitted = ok("claim", "submit", str(tmp_path / "claim.json"), "--policy",
                   str(policy["id"]), "--evidence", visit_id, "--terms",
                   str(tmp_path / "terms.json"), *as_("CLINIC"), "--json").json()  # fmt: skip
    assert submitted["state"] == "approved" and submitted["paid"] == "104.000000"

    # A trial: registered, a participant's signed consent relayed by the site, a datum.
    (tmp_path / "v1.json").write_bytes(demo_trials.protocol("LDL study", ["baseline"]))
    study = ok("trial", "register", str(tmp_path / "v1.json"), "--site", address["HOSPITAL"],
               *as_("SPONSOR"), "--json").json()  # fmt: skip
    study_id = str(study["id"])
    ok("trial", "consent", study_id, "--site", address["HOSPITAL"], "--sign-only", "--out",
       str(tmp_path / "consent.json"), *as_("PARTICIPANT"))  # fmt: skip
    consented = ok("trial", "consent", "--submit", str(tmp_path / "consent.json"),
                   *as_("HOSPITAL"), "--json").json()  # fmt: skip
    assert consented["standing"] == "active"
    ok("trial", "submit-data", study_id, str(tmp_path / "ldl.json"), "--participant",
       address["PARTICIPANT"], "--visit", "baseline", *as_("HOSPITAL"))  # fmt: skip
    data = ok("trial", "data", study_id, "--json").json()
    assert len(data) == 1

    assert "eth_sendRawTransaction" in proxy.methods
    assert proxy.dev_only() == []


# Where development-node methods may be named in the package, and why each place only ever
# reaches this home's own devnet.
DEV_METHOD_PLACES = {
    "chain/devnet.py": "the devnet module itself (state dumps)",
    "chain/pipeline.py": "Rpc.windows_mined and the sends it mines: only when Rpc.mines, which "
    "Pipeline sets from Chain.embedded and devnet.py's journal replay sets for its own node",
    "benchmarks/node.py": "the bench's node limit, on the fresh devnet its harness starts",
    "benchmarks/recovery.py": "the recovery bench skips the guardians' delay with the clock of "
    "the fresh devnet its harness (open_world) starts",
}


def test_development_node_methods_are_named_only_where_the_devnet_is_driven():
    """Every ``anvil_*``/``evm_*``/``hardhat_*`` method the package names is in a module that
    sends it to the embedded devnet only (the runs above check the behaviour)."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and text.startswith(DEV_ONLY_PREFIXES) and " " not in text:
                found.setdefault(path.relative_to(SRC).as_posix(), set()).add(text)
    assert found  # the scan sees the devnet's own calls
    assert set(found) <= set(DEV_METHOD_PLACES), found
