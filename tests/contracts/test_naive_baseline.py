"""NaiveRecordStore, the benchmark's baseline (not part of MedLedger): it stores what it is
given as strings, refuses an empty CID, and emits its event, so the bench compares against a
working contract of that common design."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import assert_events, reverts

if TYPE_CHECKING:
    from ape.api import AccountAPI

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


@pytest.fixture(scope="module")
def naive(project: Any, admin: AccountAPI) -> Any:
    return project.NaiveRecordStore.deploy(sender=admin)


def test_records_are_stored_as_strings_per_patient(
    naive: Any, hospital: AccountAPI, patient: AccountAPI
) -> None:
    receipt = naive.addRecord(patient, CID, "Observation", sender=hospital)
    naive.addRecord(patient, CID[::-1], "Condition", sender=hospital)
    assert naive.recordCount(patient) == 2
    first = naive.recordAt(patient, 0)
    assert (first.cid, first.recordType, first.issuer) == (CID, "Observation", hospital.address)
    assert naive.recordAt(patient, 1).cid == CID[::-1]
    assert_events(receipt, naive.RecordAdded(patient=patient, issuer=hospital, cid=CID))
    assert receipt.gas_used > 100_000  # strings in storage: what the bench's ratio is against


def test_an_empty_cid_is_refused(naive: Any, hospital: AccountAPI, patient: AccountAPI) -> None:
    with reverts(naive.EmptyCid):
        naive.addRecord(patient, "", "Observation", sender=hospital)
