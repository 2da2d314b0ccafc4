"""A run interrupted after it sealed and stored a body, before any transaction was journalled
(a crash, or a write the chain rolled back), leaves the body in the store and its intent in the
outbox; the next run of the same body takes that body instead of sealing it again. The body's
header wraps its key for the readers of the first run's moment, so it is taken only if they are
still this run's readers: a grantee revoked in between must not find a key for the new record,
and one granted in between must find it.

The hospital (dev:3) writes for the patient (dev:5); the doctor (dev:6) is the grantee.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from medledger import consent, records
from medledger.categories import Category
from medledger.chain.pipeline import Pipeline
from medledger.crypto import envelope
from medledger.errors import NoKeyForReader
from medledger.ipfs.local import LocalBlockStore

ALL = consent.Scope(consent.ScopeKind.ALL)
BODY = json.dumps({"resourceType": "Observation", "id": "interrupted"}).encode()


class Interrupted(Exception):
    """The run stopped after storing the body, before its transaction was journalled."""


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


def anchor(chain, store, writer, patient) -> records.Record:
    (record,) = records.anchor(
        chain, store, writer, patient.address, [records.Draft(BODY, Category.VITALS)],
        readers=consent.readers_for(chain),
    )  # fmt: skip
    return record


def interrupted_anchor(chain, store, writer, patient, monkeypatch) -> set:
    """Run an anchoring that stops before sending; return the CIDs it stored."""

    def stop(*_args, **_kwargs):
        raise Interrupted

    before = store.pins()
    with monkeypatch.context() as patch:
        patch.setattr(Pipeline, "send", stop)
        with pytest.raises(Interrupted):
            anchor(chain, store, writer, patient)
    stored = store.pins() - before
    assert len(stored) == 1
    return stored


def grant(chain, store, patient, grantee) -> None:
    consent.grant(chain, store, patient, patient.address, grantee.address, ALL,
                  consent.Purpose.TREATMENT, timedelta(days=30))  # fmt: skip


def test_with_the_same_readers_the_re_run_takes_the_stored_body(
    chain, store, writer, registered_patient, monkeypatch
):
    stored = interrupted_anchor(chain, store, writer, registered_patient, monkeypatch)
    record = anchor(chain, store, writer, registered_patient)
    assert {record.cid} == stored


def test_a_grantee_revoked_before_the_re_run_gets_no_key_for_the_record(
    chain, store, writer, registered_patient, doctor_with_key, monkeypatch
):
    patient, doctor = registered_patient, doctor_with_key
    grant(chain, store, patient, doctor)
    stored = interrupted_anchor(chain, store, writer, patient, monkeypatch)
    consent.revoke(chain, patient, patient.address, doctor.address, ALL)
    record = anchor(chain, store, writer, patient)
    assert {record.cid} != stored
    sealed = store.cat(record.cid)
    assert envelope.public_key(doctor.key) not in envelope.readers(sealed)
    with pytest.raises(NoKeyForReader):
        envelope.secret_for(sealed, doctor.key)
    assert consent.read(chain, store, patient, record.id, log=False) == BODY


def test_a_grantee_granted_before_the_re_run_reads_the_record(
    chain, store, writer, registered_patient, doctor_with_key, monkeypatch
):
    patient, doctor = registered_patient, doctor_with_key
    stored = interrupted_anchor(chain, store, writer, patient, monkeypatch)
    grant(chain, store, patient, doctor)
    record = anchor(chain, store, writer, patient)
    assert {record.cid} != stored
    assert consent.read(chain, store, doctor, record.id, log=False) == BODY
