"""Scenarios for the foundation verbs: deploy, institutions, patients, devnet, errors."""

from __future__ import annotations

import json

import pytest

from medledger import providers
from medledger.accounts import dev_account
from medledger.chain import deployments
from medledger.chain.artifacts import DEPLOYABLE


def test_deploy_reuses_contracts_already_on_the_chain(medledger, chain):
    first = medledger("deploy", "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["deployed"] == []  # the session fixture deployed them already
    recorded = json.loads(deployments.deployment_file(chain).read_text())
    assert recorded["chain_id"] == 31337
    # with the two contracts the ProviderRegistry's constructor deploys
    assert set(recorded["contracts"]) == {*DEPLOYABLE, *deployments.CREATED_BY_REGISTRY}
    for entry in recorded["contracts"].values():
        assert entry["transaction_hash"].startswith("0x") and entry["block"] > 0
    assert recorded["compiler"].startswith("0.8.30")


def test_deploy_redeploys_when_the_recorded_code_is_gone(medledger, chain, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
    stale = json.loads(deployments.deployment_file(chain).read_text())
    stale["contracts"]["RecordRegistry"]["address"] = "0x" + "11" * 20
    (tmp_path / "local.json").write_text(json.dumps(stale))
    outcome = medledger("deploy", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["deployed"] == list(DEPLOYABLE[1:])  # and every later contract


def test_institution_is_verified_only_at_the_threshold(medledger, hospital):
    applied = medledger("institution", "apply", "--kind", "hospital", "--name", "St Mary",
                        "--account", "dev:3")  # fmt: skip
    assert applied.exit_code == 0, applied.stderr
    first = medledger("institution", "verify", hospital.address, "--account", "dev:0", "--json")
    assert first.json()["status"] == "pending" and first.json()["approvals"] == 1
    second = medledger("institution", "verify", hospital.address, "--account", "dev:1", "--json")
    assert second.json()["status"] == "verified"


def test_second_approval_by_the_same_registrar_is_refused_in_one_line(medledger, hospital, chain):
    providers.apply_institution(chain, hospital, providers.InstitutionKind.CLINIC, "Clinic")
    assert medledger("institution", "verify", hospital.address, "--account", "dev:0").exit_code == 0
    again = medledger("institution", "verify", hospital.address, "--account", "dev:0")
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1
    assert "ProviderAlreadyApproved" in again.stderr and hospital.address in again.stderr


def test_suspend_then_reinstate_needs_the_threshold_again(
    medledger, verified_institution, hospital
):
    verified_institution(hospital)
    suspended = medledger("institution", "suspend", hospital.address, "--reason", "licence",
                          "--account", "dev:2", "--json")  # fmt: skip
    assert suspended.json()["status"] == "suspended"
    verify = medledger("institution", "verify", hospital.address, "--account", "dev:0")
    assert verify.exit_code == 1 and "not pending" in verify.stderr
    one = medledger("institution", "reinstate", hospital.address, "--account", "dev:0", "--json")
    assert one.json()["status"] == "suspended"
    two = medledger("institution", "reinstate", hospital.address, "--account", "dev:2", "--json")
    assert two.json()["status"] == "verified"


def test_non_registrar_cannot_verify(medledger, hospital, chain):
    providers.apply_institution(chain, hospital, providers.InstitutionKind.CLINIC, "Clinic")
    outcome = medledger("institution", "verify", hospital.address, "--account", "dev:9")
    assert outcome.exit_code == 1
    assert "is not a registrar" in outcome.stderr


def test_patient_registers_with_the_key_of_their_account(medledger, patient):
    from medledger.crypto.envelope import public_key

    assert medledger("patient", "register", "--account", "dev:5").exit_code == 0
    shown = medledger("patient", "show", patient.address, "--json").json()
    assert shown["encryption_key"] == "0x" + public_key(patient.key).hex()
    again = medledger("patient", "register", "--account", "dev:5")
    assert again.exit_code == 1 and "already registered as patient" in again.stderr


def test_unknown_institution_is_a_clear_error(medledger, stranger):
    outcome = medledger("institution", "show", stranger.address)
    assert outcome.exit_code == 1
    assert f"no institution is registered at {stranger.address}" in outcome.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["institution", "apply", "--kind", "spaceship", "--name", "X"],
            "unknown kind 'spaceship'",
        ),
        (["patient", "register", "--account", "dev:42"], "devnet accounts are dev:0 to dev:19"),
        (["patient", "register", "--account", "nobody-here"], "no keystore at"),
        (["deploy", "--network", "moon"], "unknown network 'moon'"),
        (["patient", "register", "--account", "env:MEDLEDGER_TEST_UNSET"], "is not set"),
    ],
    ids=[
        "unknown-kind",
        "dev-account-out-of-range",
        "missing-keystore",
        "unknown-network",
        "unset-env-key",
    ],
)
def test_bad_input_gets_one_line_and_a_non_zero_exit(
    medledger, args, message, tmp_path, monkeypatch
):
    monkeypatch.setenv("APE_DATA_FOLDER", str(tmp_path))
    outcome = medledger(*args)
    assert outcome.exit_code != 0
    assert message in outcome.stderr
    assert outcome.stderr.startswith("error: ") and outcome.stderr.count("\n") == 1


def test_a_node_that_is_down_is_named(medledger):
    outcome = medledger("deploy", "--network", "http://127.0.0.1:9")
    assert outcome.exit_code == 1
    assert "chain RPC at http://127.0.0.1:9 is not reachable" in outcome.stderr


def test_ape_keystore_account_unlocks_from_the_environment(medledger, tmp_path, monkeypatch):
    from eth_account import Account

    account = Account.create()
    keystore = Account.encrypt(account.key, "correct horse")
    (tmp_path / "accounts").mkdir()
    (tmp_path / "accounts" / "clinic1.json").write_text(json.dumps(keystore))
    monkeypatch.setenv("APE_DATA_FOLDER", str(tmp_path))
    monkeypatch.setenv("APE_ACCOUNTS_clinic1_PASSPHRASE", "wrong")
    wrong = medledger("patient", "register", "--account", "clinic1")
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.stderr
    monkeypatch.setenv("APE_ACCOUNTS_clinic1_PASSPHRASE", "correct horse")
    # The fresh account has no ETH: registration is refused by the node, in one line.
    unfunded = medledger("patient", "register", "--account", "clinic1")
    assert unfunded.exit_code == 1
    assert "refused by the node: the account has too little ETH to pay for gas" in unfunded.stderr
    assert "reverted by the contract" not in unfunded.stderr


@pytest.mark.parametrize(
    ("node_says", "we_say"),
    [
        ("nonce too low", "another transaction from this account took its nonce"),
        ("Insufficient funds for gas * price + value", "too little ETH to pay for gas"),
        ("transaction underpriced", "its fee was below what the node accepts"),
        ("something else", "refused by the node: something else"),
    ],
)
def test_a_node_refusal_is_worded_for_a_person_not_as_a_contract_revert(node_says, we_say):
    from medledger.errors import TransactionRejected

    refused = TransactionRejected.from_node("anchoring records", node_says)
    assert we_say in str(refused) and "reverted" not in str(refused)


def test_console_script_prints_no_traceback(medledger_process, base_chain):
    outcome = medledger_process("institution", "verify", dev_account(8).address)
    assert outcome.exit_code == 1
    assert "Traceback" not in outcome.stderr
    assert outcome.stderr.strip().count("\n") == 0


def test_practitioner_writes_until_removed(
    medledger, verified_institution, hospital, doctor, chain
):
    verified_institution(hospital)
    added = medledger("institution", "add-practitioner", doctor.address, "--account", "dev:3")
    assert added.exit_code == 0, added.stderr
    assert providers.participant(chain, doctor.address).role is providers.Role.NONE  # invited only
    joined = medledger("institution", "join", hospital.address, "--account", "dev:6")
    assert joined.exit_code == 0, joined.stderr
    shown = providers.participant(chain, doctor.address)
    assert shown.role is providers.Role.PRACTITIONER and shown.employer == hospital.address
    removed = medledger("institution", "remove-practitioner", doctor.address, "--account", "dev:3")
    assert removed.exit_code == 0, removed.stderr
    assert providers.participant(chain, doctor.address).role is providers.Role.NONE
    again = medledger("institution", "remove-practitioner", doctor.address, "--account", "dev:3")
    assert again.exit_code == 1 and "not a practitioner" in again.stderr


def test_key_rotation_needs_a_role(medledger, stranger):
    outcome = medledger("publish-key", "--account", "dev:9")
    assert outcome.exit_code == 1 and "has no role" in outcome.stderr


def test_deploy_replaces_an_older_version_and_what_depends_on_it(
    medledger, chain, tmp_path, monkeypatch
):
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
    older = json.loads(deployments.deployment_file(chain).read_text())
    older["contracts"]["RecordRegistry"]["artifact_hash"] = "0x" + "00" * 32  # an older build
    (tmp_path / "local.json").write_text(json.dumps(older))
    outcome = medledger("deploy", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["deployed"] == list(DEPLOYABLE[1:])
