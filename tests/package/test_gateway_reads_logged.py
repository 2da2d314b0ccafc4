"""Reads served by a gateway, logged on chain as the reader's (issue #17).

The gateway (``medledger serve``) runs with its institution's account and decrypts records that
institution wrote for callers the chain lets read them; ``consent.log_reads_for`` logs each such
read with the reader and the gateway, and the patient's audit shows both.

The world: the registered patient (dev:5) in the care of the hospital (dev:3), which anchors
the records; the doctor (dev:6) of a verified clinic (dev:4), the grantee, with a category
grant of the patient's lab records.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from medledger import consent, records
from medledger.categories import Category
from medledger.chain import events
from medledger.errors import AccessRefused, MedLedgerError, PreconditionFailed, RecordNotFound
from medledger.ipfs.local import LocalBlockStore

LAB = consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB)
MONTH = timedelta(days=30)


def body(name: str) -> bytes:
    return json.dumps({"resourceType": "Observation", "id": name, "status": "final"}).encode()


def served(chain, since: int) -> list:
    """The ``RecordAccessServed`` events since block ``since``."""
    return [e.args for e in events.logs(chain, "ConsentManager", "RecordAccessServed",
                                        from_block=since)]  # fmt: skip


def reads_in_trail(chain, patient: str) -> list:
    return [e for e in consent.access_trail(chain, patient) if e.event == "record read"]


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def anchored(chain, store, writer, registered_patient):
    """Two lab records and one imaging record the hospital anchored for the patient."""
    drafts = [
        records.Draft(body("lab-1"), Category.LAB),
        records.Draft(body("lab-2"), Category.LAB),
        records.Draft(body("imaging"), Category.IMAGING),
    ]
    return records.anchor(
        chain, store, writer, registered_patient.address, drafts,
        readers=consent.readers_for(chain),
    )  # fmt: skip


@pytest.fixture
def grantee(chain, store, doctor_with_key, registered_patient):
    """The clinic's doctor, with a month's grant of the patient's lab records."""
    consent.grant(
        chain, store, registered_patient, registered_patient.address, doctor_with_key.address,
        LAB, consent.Purpose.TREATMENT, MONTH,
    )  # fmt: skip
    return doctor_with_key


def test_the_audit_shows_a_served_read_with_the_reader_and_the_gateway(
    chain, anchored, grantee, hospital, patient
):
    lab_1, lab_2, _imaging = anchored
    start = chain.w3.eth.block_number

    receipt = consent.log_reads_for(chain, hospital, grantee.address, [lab_1.id, lab_2.id])

    assert receipt.status == 1
    logged = served(chain, start)
    assert [(bytes(e["id"]), e["reader"], e["gateway"]) for e in logged] == [
        (lab_1.id, grantee.address, hospital.address),
        (lab_2.id, grantee.address, hospital.address),
    ]
    assert events.logs(chain, "ConsentManager", "RecordAccessed", from_block=start) == []
    reads = reads_in_trail(chain, patient.address)
    assert [(e.actor, e.subject, e.detail) for e in reads] == [
        (grantee.address, lab_1.hex_id, f"served by gateway {hospital.address}"),
        (grantee.address, lab_2.hex_id, f"served by gateway {hospital.address}"),
    ]


def test_the_audit_command_shows_the_reader_and_the_gateway(
    chain, anchored, grantee, hospital, patient, medledger
):
    consent.log_reads_for(chain, hospital, grantee.address, [anchored[0].id])

    outcome = medledger("audit", "--patient", patient.address, "--format", "json")

    assert outcome.exit_code == 0, outcome.stderr
    (read,) = [e for e in outcome.json() if e["event"] == "record read"]
    assert read["actor"] == grantee.address and hospital.address in read["detail"]


def test_a_revoked_grant_refuses_the_log_in_one_line_and_nothing_is_logged(
    chain, anchored, grantee, hospital, patient
):
    consent.revoke(chain, patient, patient.address, grantee.address, LAB)
    start = chain.w3.eth.block_number

    with pytest.raises(AccessRefused) as refused:
        consent.log_reads_for(chain, hospital, grantee.address, [anchored[0].id])

    message = str(refused.value)
    assert "\n" not in message and "revoked" in message and anchored[0].hex_id in message
    assert chain.w3.eth.block_number == start  # nothing was sent
    assert served(chain, start) == []
    assert reads_in_trail(chain, patient.address) == []


def test_a_record_outside_the_grant_refuses_the_whole_batch(chain, anchored, grantee, hospital):
    lab_1, _lab_2, imaging = anchored
    start = chain.w3.eth.block_number
    with pytest.raises(AccessRefused, match="no grant"):
        consent.log_reads_for(chain, hospital, grantee.address, [lab_1.id, imaging.id])
    assert chain.w3.eth.block_number == start


@pytest.mark.parametrize("logger", ["the-clinic", "its-doctor", "the-patient"])
def test_nobody_but_the_writing_institution_logs_a_served_read(
    chain, anchored, grantee, clinic, patient, logger
):
    """The clinic (verified, but not the writer), the grantee itself and the patient are
    refused before anything is sent; sent anyway, the contract refuses as well."""
    account = {"the-clinic": clinic, "its-doctor": grantee, "the-patient": patient}[logger]
    start = chain.w3.eth.block_number

    with pytest.raises(PreconditionFailed) as refused:
        consent.log_reads_for(chain, account, grantee.address, [anchored[0].id])

    assert "\n" not in str(refused.value) and account.address in str(refused.value)
    assert chain.w3.eth.block_number == start
    raw = consent.consent_contract(chain).functions.logAccessFor(grantee.address, [anchored[0].id])
    with pytest.raises(MedLedgerError, match="ConsentNotRecordWriter"):
        chain.transact("logging served reads", account, raw)
    assert served(chain, start) == []


@pytest.mark.parametrize(
    ("reader", "ids", "error"),
    [
        ("not-an-address", "lab", "not a valid address"),
        ("grantee", "none", "no records given"),
        ("grantee", "unknown", "0x" + "ab" * 32),
    ],
    ids=["bad-reader", "no-records", "unknown-record"],
)
def test_bad_input_is_refused_before_anything_is_sent(
    chain, anchored, grantee, hospital, reader, ids, error
):
    who = grantee.address if reader == "grantee" else reader
    record_ids = {"lab": [anchored[0].id], "none": [], "unknown": [bytes.fromhex("ab" * 32)]}[ids]
    start = chain.w3.eth.block_number
    with pytest.raises(MedLedgerError, match=error) as refused:
        consent.log_reads_for(chain, hospital, who, record_ids)
    if ids == "unknown":
        assert isinstance(refused.value, RecordNotFound)
    assert chain.w3.eth.block_number == start
