"""``verify``, ``history`` and ``audit`` tell the truth, and the consent verbs say what really
happened (issue #14, item 6 and its misleading messages).

* an address that is no registered patient is a one-line error, never "0 of 0 verified";
* a record the patient erased is reported as erased (when, by whom), not failed; a body that is
  gone without an erasure still fails;
* ``history`` says superseded, erased or current, and names a record's batch, registered or
  not; ``audit`` lists batched records and refuses an unknown patient;
* ``revoke`` of a grant never given says so; a delegate's grant says that it delivered no keys
  and why; ``deliver-keys`` by default serves every live grant; a store that cannot be written
  still serves reads.

Every scenario runs the CLI in-process against the session's devnet and the session home's
embedded store (the one the CLI opens).
"""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
from pathlib import Path

import pytest

from medledger import consent, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.config import Settings
from medledger.errors import StoreError
from medledger.ipfs.local import LocalBlockStore, tamper_with_block
from medledger.ipfs.stores import open_store
from medledger.ipfs.unixfs import hash_bytes

GUARDIAN = dev_account(8)


def body(name: str) -> bytes:
    """A small FHIR body, distinct per name."""
    return json.dumps({"resourceType": "Observation", "id": name, "status": "final"}).encode()


def one_line_error(outcome) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert outcome.exit_code == 1, outcome
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    return lines[0]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def cli_store(settings):
    """The block store the CLI opens (the session home's embedded store)."""
    return open_store(settings)


@pytest.fixture
def ready(verified_institution, hospital, registered_patient, care):
    """The registered patient, in care of the hospital (dev:3), which writes their records."""
    return care(registered_patient, verified_institution(hospital))


@pytest.fixture
def write(chain, cli_store, hospital, ready):
    """Factory: the hospital anchors a body for the patient into the CLI's store."""

    def make(name: str, previous: bytes | None = None, cat: Category = Category.LAB):
        (record,) = records.anchor(
            chain, cli_store, hospital, ready.address, [records.Draft(body(name), cat)],
            previous, readers=consent.readers_for(chain),
        )  # fmt: skip
        return record

    return make


@pytest.fixture
def write_batch(chain, cli_store, hospital, ready):
    """Factory: the hospital anchors bodies for the patient in one batch (not registered)."""

    def make(*names: str, previous: bytes | None = None) -> records.Batch:
        entries = [
            records.Entry(ready.address, records.Draft(body(n), Category.LAB), previous)
            for n in names
        ]
        return records.anchor_batch(chain, cli_store, hospital, entries)

    return make


@pytest.fixture
def lose_body(cli_store):
    """Factory: delete a record's body block behind the store's back (loss or tampering, no
    erasure). Afterwards its root is unpinned, so the session's store is whole again."""
    lost = []

    def lose(record: records.Record) -> None:
        tamper_with_block(cli_store, record.cid, None)
        lost.append(record.cid)

    yield lose
    for cid in lost:
        cli_store.unpin(cid)



# --- verify: unknown patients, no records ---------------------------------------------------


@pytest.mark.parametrize(
    "who", ["a stranger", "an institution"], ids=["stranger", "institution"]
)
def test_verify_of_an_address_that_is_no_patient_is_a_one_line_error(
    medledger, ready, stranger, hospital, who
):
    address = stranger.address if who == "a stranger" else hospital.address
    outcome = medledger("verify", "--patient", address, "--account", "dev:5")
    assert "is not a registered patient" in one_line_error(outcome)
    assert outcome.stdout == ""


def test_verify_of_a_patient_with_no_records_says_so(medledger, registered_patient):
    outcome = medledger("verify", "--patient", registered_patient.address, "--account", "dev:5")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.strip() == f"no records anchored for {registered_patient.address}"


# --- verify: erased records, lost bodies -------------------------------------------------------


def test_an_erased_record_verifies_as_erased_with_when_and_by_whom(medledger, write, ready):
    kept, gone = write("kept"), write("gone")
    assert medledger("erase", gone.hex_id, "--account", "dev:5").exit_code == 0

    outcome = medledger("verify", "--patient", ready.address, "--account", "dev:5")
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    lines = outcome.stdout.strip().splitlines()
    assert lines[0].startswith(f"ok     {kept.hex_id}")
    assert lines[1].startswith(f"erased {gone.hex_id}  erased on ")
    assert lines[1].endswith(f"by {ready.address}")
    assert lines[2] == "1 verified, 1 erased, 0 failed (2 in all)"

    as_json = medledger("verify", gone.hex_id, "--account", "dev:5", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    (row,) = as_json.json()
    assert row["status"] == "erased" and row["ok"] is True
    assert row["erased"]["by"] == ready.address and row["checks"] == ["pointer matches id"]


@pytest.mark.parametrize("how", ["unpinned and collected", "block file deleted"])
def test_a_body_gone_without_an_erasure_still_fails(
    medledger, write, cli_store, lose_body, ready, how
):
    record = write("lost")
    if how == "unpinned and collected":
        cli_store.unpin(record.cid)
        cli_store.gc()
    else:
        lose_body(record)
    outcome = medledger("verify", "--patient", ready.address, "--account", "dev:5")
    assert record.hex_id in one_line_error(outcome)
    assert f"FAIL   {record.hex_id}" in outcome.stdout
    assert "0 verified, 0 erased, 1 failed" in outcome.stdout


def test_an_erasure_of_another_record_does_not_excuse_a_lost_body(
    medledger, write, lose_body, ready
):
    erased, lost = write("erased"), write("lost")
    assert medledger("erase", erased.hex_id, "--account", "dev:5").exit_code == 0
    lose_body(lost)
    outcome = medledger("verify", lost.hex_id, "--account", "dev:5")
    assert lost.hex_id in one_line_error(outcome)
    assert outcome.stdout.startswith(f"FAIL   {lost.hex_id}")


def test_the_outbox_hook_knows_no_write_today(chain, ready):
    """The hook where ``verify`` and ``history`` will ask the outbox: nothing yet."""
    assert records.unconfirmed_writes(chain, patient=ready.address) == []


# --- history -----------------------------------------------------------------------------------


def test_history_says_superseded_erased_and_current(medledger, write):
    v1 = write("v1")
    v2 = write("v2", previous=v1.id)
    v3 = write("v3", previous=v2.id)
    assert medledger("erase", v2.hex_id, "--account", "dev:5").exit_code == 0

    outcome = medledger("history", v1.hex_id)
    assert outcome.exit_code == 0, outcome.stderr
    states = [line.split(f"by {v1.issuer}  ")[1] for line in outcome.stdout.splitlines()]
    assert states[0] == "(superseded)"
    assert states[1].startswith("(erased on ") and states[1].endswith(f"by {v1.patient})")
    assert states[2] == "(current)"
    rows = medledger("history", v3.hex_id, "--json").json()
    assert [r["state"] for r in rows] == ["superseded", "erased", "current"]
    assert [r["id"] for r in rows] == [v1.hex_id, v2.hex_id, v3.hex_id]


def test_history_of_a_batched_record_names_its_batch_before_and_after_registration(
    medledger, chain, cli_store, write_batch, hospital
):
    batch = write_batch("b0", "b1", "b2")
    target = batch.records[1]
    batch_hex = "0x" + batch.id.hex()

    before = medledger("history", target.hex_id)
    assert before.exit_code == 0, before.stderr
    assert before.stdout.strip().endswith(f"(current)  in batch {batch_hex}, not yet registered")

    records.ensure_registered(chain, cli_store, hospital, target)
    after = medledger("history", target.hex_id, "--json")
    assert after.exit_code == 0, after.stderr
    (row,) = after.json()
    assert row["batch"] == batch_hex and row["registered"] is True
    assert medledger("history", target.hex_id).stdout.strip().endswith(
        f"(current)  in batch {batch_hex}"
    )


def test_history_follows_a_new_version_written_in_a_batch_not_yet_registered(
    medledger, write, write_batch
):
    v1 = write("single")
    batch = write_batch("batched v2", previous=v1.id)
    outcome = medledger("history", v1.hex_id, "--json")
    assert outcome.exit_code == 0, outcome.stderr
    rows = outcome.json()
    assert [r["id"] for r in rows] == [v1.hex_id, batch.records[0].hex_id]
    assert [r["state"] for r in rows] == ["superseded", "current"]
    assert rows[1]["registered"] is False


# --- audit -------------------------------------------------------------------------------------


def test_audit_of_an_address_that_is_no_patient_is_a_one_line_error(medledger, stranger):
    outcome = medledger("audit", "--patient", stranger.address)
    assert "is not a registered patient" in one_line_error(outcome)


def test_audit_lists_batched_registered_and_erased_records(
    medledger, chain, cli_store, write, write_batch, hospital, ready
):
    erased = write("to erase")
    batch = write_batch("b0", "b1")
    records.ensure_registered(chain, cli_store, hospital, batch.records[0])
    assert medledger("erase", erased.hex_id, "--account", "dev:5").exit_code == 0

    outcome = medledger("audit", "--patient", ready.address, "--json")
    assert outcome.exit_code == 0, outcome.stderr
    rows = [(r["event"], r["subject"], r["detail"]) for r in outcome.json()]
    short = batch.id.hex()[:12]
    assert ("record anchored", erased.hex_id, "new record") in rows
    assert ("record erased", erased.hex_id, "keys destroyed, body unpinned") in rows
    assert (
        "record anchored in batch", batch.records[0].hex_id, f"new record, batch 0x{short}"
    ) in rows
    assert (
        "record anchored in batch",
        batch.records[1].hex_id,
        f"new record, batch 0x{short} (not yet registered)",
    ) in rows
    assert (
        "record registered from batch", batch.records[0].hex_id, f"new record, from batch 0x{short}"
    ) in rows
    assert not [r for r in rows if r[0] == "record anchored" and r[1] == batch.records[0].hex_id]


# --- revoke, delegates' grants, deliver-keys ----------------------------------------------------


def test_revoke_of_a_party_never_granted_says_so(medledger, registered_patient, stranger):
    outcome = medledger("revoke", stranger.address, "--account", "dev:5")
    line = one_line_error(outcome)
    assert line == f"error: {stranger.address} has no grant from {registered_patient.address}"


def test_revoke_of_another_scope_names_the_live_grants(
    medledger, chain, registered_patient, doctor_with_key
):
    granted = medledger("grant", doctor_with_key.address, "--scope", "category:lab",
                        "--account", "dev:5")  # fmt: skip
    assert granted.exit_code == 0, granted.stderr
    line = one_line_error(medledger("revoke", doctor_with_key.address, "--account", "dev:5"))
    assert "has no all grant" in line and "its live grants: category:lab" in line


def test_revoke_of_an_expired_grant_says_expired(
    medledger, chain, registered_patient, doctor_with_key
):
    assert medledger("grant", doctor_with_key.address, "--expires", "1h",
                     "--account", "dev:5").exit_code == 0  # fmt: skip
    chain.w3.provider.make_request("evm_increaseTime", [7200])
    chain.w3.provider.make_request("evm_mine", [])
    chain.forget_blocks()
    line = one_line_error(medledger("revoke", doctor_with_key.address, "--account", "dev:5"))
    assert "expired on" in line


def test_a_delegates_grant_says_it_delivered_no_keys_and_deliver_keys_completes_it(
    medledger, write, ready, doctor_with_key, tmp_path
):
    record = write("for the doctor")
    assert medledger("delegate", GUARDIAN.address, "--account", "dev:5").exit_code == 0
    granted = medledger("grant", doctor_with_key.address, "--patient", ready.address,
                        "--scope", "category:lab", "--account", "dev:8", "--json")  # fmt: skip
    assert granted.exit_code == 0, granted.stderr
    assert granted.json()["undelivered"] == [record.hex_id]
    assert "warning: keys not delivered" in granted.stderr
    assert f"medledger deliver-keys {doctor_with_key.address} --patient" in granted.stderr

    # The delegate cannot deliver them either, and says why.
    by_delegate = medledger("deliver-keys", doctor_with_key.address, "--patient", ready.address,
                            "--account", "dev:8")  # fmt: skip
    assert "does not hold the keys of 1 record(s)" in one_line_error(by_delegate)

    # The patient can, with deliver-keys' default scope (the grant is a category grant).
    delivered = medledger("deliver-keys", doctor_with_key.address, "--patient", ready.address,
                          "--account", "dev:5", "--json")  # fmt: skip
    assert delivered.exit_code == 0, delivered.stderr
    assert list(delivered.json()["envelopes"]) == ["category:lab"]
    target = tmp_path / "read.json"
    back = medledger("read", record.hex_id, "--account", "dev:6", "--out", str(target))
    assert back.exit_code == 0, back.stderr
    assert target.read_bytes() == body("for the doctor")


def test_deliver_keys_without_a_live_grant_says_so(medledger, write, ready, doctor_with_key):
    write("nobody granted")
    outcome = medledger("deliver-keys", doctor_with_key.address, "--patient", ready.address,
                        "--account", "dev:5")  # fmt: skip
    assert "has no live grant from" in one_line_error(outcome)


# --- a store that cannot be written ----------------------------------------------------------


def _refuse_writes_under(monkeypatch, root: Path) -> None:
    """Every folder created under ``root`` fails as on a read-only home (we run as root here,
    so file modes would not stop us)."""
    real = Path.mkdir

    def mkdir(self: Path, *args, **kwargs):
        if self.is_relative_to(root):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)


def test_verify_reads_a_store_that_cannot_be_written(
    medledger, write, settings, tmp_path, monkeypatch, ready
):
    record = write("read only")
    copy = tmp_path / "read-only-ipfs"
    copy.mkdir()
    source = sqlite3.connect(settings.ipfs_dir / "store.db")
    with contextlib.closing(source), contextlib.closing(sqlite3.connect(copy / "store.db")) as to:
        source.backup(to)  # the store's committed blocks and pins, as a backup would hold them
    monkeypatch.setattr(Settings, "ipfs_dir", property(lambda self: copy))
    _refuse_writes_under(monkeypatch, copy)

    outcome = medledger("verify", record.hex_id, "--account", "dev:5")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith(f"ok     {record.hex_id}  pointer matches id, body matches")


def test_a_store_that_cannot_be_written_reads_and_refuses_writes_in_one_line(
    tmp_path, monkeypatch
):
    _refuse_writes_under(monkeypatch, tmp_path / "ro")
    store = LocalBlockStore(tmp_path / "ro")
    assert store.pins() == frozenset() and not store.has(hash_bytes(b"anything"))
    with pytest.raises(StoreError, match=r"is read-only .*: it can be read, not written"):
        store.add_bytes(b"anything")
