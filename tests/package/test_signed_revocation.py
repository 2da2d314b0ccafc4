"""Revocation by signature (issue #17: the gateway's ``DELETE /Consent/{id}``).

The patient signs the revocation off chain (``consent.sign_revocation``); an institution,
holding only its own key, submits it (``consent.submit_signed_revocation``). The world: the
registered patient (dev:5) in the care of the hospital (dev:3), which anchors a lab record
and submits the revocations; the doctor (dev:6) of a verified clinic (dev:4) holds a
category grant of the patient's lab records.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from hexbytes import HexBytes

from medledger import consent, records
from medledger.categories import Category
from medledger.chain import events
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    PreconditionFailed,
    SignatureExpired,
    TransactionReverted,
)
from medledger.ipfs.local import LocalBlockStore

LAB = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB)
MONTH = timedelta(days=30)


def revoked_events(chain, after: int) -> list:
    """The ``AccessRevoked`` events in the blocks after block ``after``."""
    found = events.logs(chain, "ConsentManager", "AccessRevoked", from_block=after + 1)
    return [e.args for e in found]


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def record(chain, store, writer, registered_patient):
    (anchored,) = records.anchor(
        chain, store, writer, registered_patient.address,
        [records.Draft(json.dumps({"resourceType": "Observation"}).encode(), Category.LAB)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return anchored


@pytest.fixture
def grantee(chain, store, record, doctor_with_key, registered_patient):
    """The clinic's doctor, with a month's grant of the patient's lab records."""
    consent.grant(
        chain, store, registered_patient, registered_patient.address, doctor_with_key.address,
        LAB, consent.Purpose.TREATMENT, MONTH,
    )  # fmt: skip
    return doctor_with_key


def test_patient_signs_an_institution_submits_and_the_grantee_can_no_longer_read(
    chain, store, record, grantee, patient, hospital
):
    assert consent.read(chain, store, grantee, record.id, log=False)
    start = chain.w3.eth.block_number
    document = consent.sign_revocation(chain, patient, grantee.address, LAB)
    assert chain.w3.eth.block_number == start  # signing sends nothing
    assert document["kind"] == consent.SIGNED_REVOCATION_KIND

    state = consent.submit_signed_revocation(chain, hospital, document)

    assert state.revoked_at is not None and state.status(chain.now()) == "revoked"
    (revoked,) = revoked_events(chain, start)
    assert (revoked["patient"], revoked["grantee"], revoked["revoker"]) == (
        patient.address, grantee.address, patient.address,
    )  # fmt: skip
    receipt = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block("latest")["transactions"][0]
    )
    assert receipt["from"] == hospital.address  # the institution paid; the patient signed
    with pytest.raises(AccessRefused, match="revoked"):
        consent.read(chain, store, grantee, record.id)


def test_a_replayed_revocation_is_refused_before_sending_and_by_the_contract(
    chain, store, grantee, patient, hospital, registered_patient
):
    document = consent.sign_revocation(chain, patient, grantee.address, LAB)
    consent.submit_signed_revocation(chain, hospital, document)
    consent.grant(
        chain,
        store,
        registered_patient,
        patient.address,
        grantee.address,
        LAB,
        consent.Purpose.TREATMENT,
        MONTH,
    )  # fmt: skip (granted again)
    start = chain.w3.eth.block_number

    with pytest.raises(PreconditionFailed, match="already used or cancelled") as refused:
        consent.submit_signed_revocation(chain, hospital, document)

    assert "\n" not in str(refused.value)
    assert chain.w3.eth.block_number == start
    request = document["request"]
    args = (request["patient"], request["grantee"], request["scopeKind"],
            HexBytes(request["scope"]), request["nonce"], request["deadline"])  # fmt: skip
    raw = consent.consent_contract(chain).functions.revokeWithSignature(
        args, HexBytes(document["signature"])
    )
    with pytest.raises(TransactionReverted, match="ConsentSignatureReplayed"):
        chain.transact("replaying", hospital, raw)
    assert consent.grant_state(chain, patient.address, grantee.address, LAB).live(chain.now())


def test_cancel_signatures_cancels_a_signed_revocation(chain, grantee, patient, hospital):
    document = consent.sign_revocation(chain, patient, grantee.address, LAB)
    assert (
        consent.cancel_signatures(chain, patient, patient.address) == document["request"]["nonce"]
    )

    with pytest.raises(PreconditionFailed, match="already used or cancelled"):
        consent.submit_signed_revocation(chain, hospital, document)
    assert consent.grant_state(chain, patient.address, grantee.address, LAB).live(chain.now())


def tampered(document: dict, **changes) -> dict:
    changed = copy.deepcopy(document)
    changed["request"].update(changes)
    return changed


@pytest.mark.parametrize(
    "case",
    ["expired", "another-grantee", "nonce-ahead", "another-chain", "already-revoked",
     "not-a-revocation", "bad-scope", "category-out-of-range"],
)  # fmt: skip
def test_a_submission_that_would_fail_is_refused_in_one_line_and_nothing_is_sent(
    chain, grantee, patient, hospital, clinic, case
):
    document = consent.sign_revocation(
        chain, patient, grantee.address, LAB, deadline=chain.now() + timedelta(hours=1)
    )
    error: type[Exception] = PreconditionFailed
    if case == "expired":
        advance(chain, 2 * 3600)
        error = SignatureExpired
    elif case == "another-grantee":
        document = tampered(document, grantee=clinic.address)
    elif case == "nonce-ahead":
        document = tampered(document, nonce=document["request"]["nonce"] + 1)
    elif case == "another-chain":
        document["chain_id"] += 1
    elif case == "already-revoked":
        consent.revoke(chain, patient, patient.address, grantee.address, LAB)
    elif case == "not-a-revocation":
        document["kind"] = consent.SIGNED_GRANT_KIND
        error = ConfigurationError
    elif case == "bad-scope":
        document = tampered(document, scope="0x12")
        error = ConfigurationError
    elif case == "category-out-of-range":
        document = tampered(document, scope="0x" + (999).to_bytes(32, "big").hex())
        error = ConfigurationError
    start = chain.w3.eth.block_number

    with pytest.raises(error) as refused:
        consent.submit_signed_revocation(chain, hospital, document)

    assert "\n" not in str(refused.value)
    assert chain.w3.eth.block_number == start
    assert revoked_events(chain, start) == []


def test_signing_the_revocation_of_no_live_grant_is_refused(chain, doctor_with_key, patient):
    with pytest.raises(PreconditionFailed, match="has no grant"):
        consent.sign_revocation(chain, patient, doctor_with_key.address, LAB)


def test_cli_signs_and_submits_a_revocation(medledger, chain, grantee, patient, hospital, tmp_path):
    signed = tmp_path / "revocation.json"
    made = medledger("revoke", grantee.address, "--scope", "category:lab", "--sign-only",
                     "--out", str(signed), "--account", "dev:5")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert json.loads(signed.read_text())["kind"] == "medledger/signed-revocation"
    assert consent.grant_state(chain, patient.address, grantee.address, LAB).live(chain.now())

    sent = medledger("revoke", "--submit", str(signed), "--account", "dev:3", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.json()["status"] == "revoked" and sent.json()["scope"] == "category:lab"

    again = medledger("revoke", "--submit", str(signed), "--account", "dev:3")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
    assert "already used or cancelled" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sign-only"], "--out"),
        ([], "name the GRANTEE"),
    ],
    ids=["sign-only-without-out", "no-grantee"],
)
def test_cli_revoke_refuses_incomplete_options(medledger, grantee, args, message):
    who = [grantee.address] if args else []
    outcome = medledger("revoke", *who, *args, "--account", "dev:5")
    assert outcome.exit_code == 1 and message in outcome.stderr
