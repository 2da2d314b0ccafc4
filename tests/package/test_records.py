"""Scenarios for the record loop: anchor, read, verify, history, and every way it can go wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from medledger import providers, records
from medledger.categories import Category
from medledger.errors import (
    BlockCorrupted,
    DecryptionFailed,
    IntegrityError,
    NodeUnavailable,
    NoKeyForReader,
    PreconditionFailed,
    RecordNotFound,
)
from medledger.ipfs.local import LocalBlockStore, tamper_with_block

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-samples"
OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def create_record(chain, store, verified_institution, hospital, registered_patient, care):
    """Factory: the hospital (in care of the patient) anchors a body for the registered patient."""
    care(registered_patient, verified_institution(hospital))

    def make(
        body: bytes = OBSERVATION.read_bytes(), category: Category = Category.LAB, previous=None
    ):
        (record,) = records.anchor(
            chain,
            store,
            hospital,
            registered_patient.address,
            [records.Draft(body, category)],
            previous,
        )
        return record

    return make


def test_patient_and_issuer_read_back_the_exact_bytes(
    chain, store, create_record, patient, hospital
):
    body = OBSERVATION.read_bytes()
    record = create_record(body)
    assert records.read(chain, store, patient, record.hex_id) == body
    assert records.read(chain, store, hospital, record.uri) == body


def test_any_other_key_is_refused(chain, store, create_record, stranger):
    record = create_record()
    with pytest.raises(NoKeyForReader):
        records.read(chain, store, stranger, record.hex_id)


def test_wrapped_key_does_not_open_with_another_private_key(
    create_record, store, stranger, patient
):
    from medledger.crypto import envelope

    record = create_record()
    sealed = store.cat(record.cid)
    wrapped = envelope.readers(sealed)[envelope.public_key(patient.key)]
    with pytest.raises(DecryptionFailed):
        envelope.unwrap(wrapped, stranger.key)


def test_record_id_matches_the_python_derivation(
    chain, create_record, hospital, registered_patient
):
    record = create_record()
    expected = records.derive_id(
        records.Context(chain.chain_id, record.registry, hospital.address),
        registered_patient.address, record.cid.digest, record.commitment, int(Category.LAB), None,
    )  # fmt: skip
    assert record.id == expected


def test_altered_body_block_is_detected(chain, store, create_record, patient):
    record = create_record()
    data = bytearray(store.get_block(record.cid))
    data[-1] ^= 0xFF
    tamper_with_block(store, record.cid, bytes(data))  # an attacker with disk access
    with pytest.raises(BlockCorrupted):
        records.read(chain, store, patient, record.hex_id)
    outcome = records.verify(chain, store, record.hex_id, patient)
    assert not outcome.ok and "does not match its CID" in (outcome.problem or "")


def test_swapped_pointer_is_detected(chain, create_record):
    first = create_record()
    second = create_record(b'{"resourceType":"Basic","id":"x"}', Category.OTHER)
    with pytest.raises(IntegrityError, match="does not match its id"):
        records.check_pointer(chain, replace(first, cid=second.cid))


def test_body_moved_under_another_record_does_not_decrypt(chain, store, create_record, patient):
    first = create_record()
    second = create_record(b'{"resourceType":"Basic","id":"x"}', Category.OTHER)
    with pytest.raises(DecryptionFailed):
        records.open_body(chain, second, store.cat(first.cid), patient.key)


def test_update_keeps_the_old_version_and_history_lists_both(chain, store, create_record, patient):
    v1 = create_record()
    v2 = create_record(OBSERVATION.read_bytes().replace(b"185", b"186"), previous=v1.id)
    versions = records.history(chain, v1.hex_id)
    assert [v.id for v in versions] == [v1.id, v2.id]
    assert versions[0].superseded and not versions[1].superseded
    assert records.read(chain, store, patient, v1.hex_id) == OBSERVATION.read_bytes()


def test_second_update_of_the_same_version_is_refused_before_sending(create_record):
    v1 = create_record()
    create_record(b'{"resourceType":"Basic","id":"v2"}', previous=v1.id)
    with pytest.raises(PreconditionFailed, match="already has a newer version"):
        create_record(b'{"resourceType":"Basic","id":"v2b"}', previous=v1.id)


def test_unknown_record_is_a_clear_error(chain):
    with pytest.raises(RecordNotFound):
        records.get(chain, "0x" + "ab" * 32)


def test_suspended_institution_cannot_anchor(
    chain, store, create_record, hospital, registrars, patient
):
    create_record()
    providers.suspend_institution(chain, registrars[0], hospital.address, "audit")
    with pytest.raises(PreconditionFailed, match="does not act for a verified institution"):
        records.anchor(
            chain, store, hospital, patient.address, [records.Draft(b"{}", Category.LAB)]
        )


def test_unregistered_patient_is_refused_before_anything_is_stored(
    chain, store, verified_institution, hospital, stranger
):
    verified_institution(hospital)
    with pytest.raises(Exception, match="not a registered patient"):
        records.anchor(
            chain, store, hospital, stranger.address, [records.Draft(b"{}", Category.LAB)]
        )
    assert store.pins() == frozenset()


def test_store_that_is_down_is_named(chain, create_record, patient):
    from medledger.ipfs.kubo import KuboStore

    record = create_record()
    with pytest.raises(NodeUnavailable, match=r"127\.0\.0\.1:9"):
        records.read(
            chain, KuboStore("http://127.0.0.1:9", timeout=1, retries=0), patient, record.hex_id
        )


# --- through the command line --------------------------------------------------------------------


@pytest.fixture
def cli_ready(chain, verified_institution, hospital, registered_patient, care):
    return care(registered_patient, verified_institution(hospital))


def test_anchor_then_read_through_the_cli(medledger, cli_ready, tmp_path):
    out = medledger(
        "anchor", str(OBSERVATION), "--patient", cli_ready.address, "--account", "dev:3", "--json"
    )
    assert out.exit_code == 0, out.stderr
    (row,) = out.json()
    assert row["category"] == "vitals" or row["category"] == "lab"
    target = tmp_path / "back.json"
    back = medledger("read", row["id"], "--account", "dev:5", "--out", str(target))
    assert back.exit_code == 0, back.stderr
    assert target.read_bytes() == OBSERVATION.read_bytes()
    verified = medledger("verify", "--patient", cli_ready.address, "--account", "dev:5")
    assert verified.exit_code == 0 and "1 verified, 0 erased, 0 failed" in verified.stdout


# A read in a new process (``medledger read``, what ``medledger bench`` times) must not pay for
# web3, eth-account or aiohttp at start-up: it speaks JSON-RPC through the package's own client.
SLOW_TO_IMPORT = ("web3", "eth_account", "aiohttp", "eth_keyfile", "Crypto")


@pytest.mark.parametrize("options", [["--no-log"], []], ids=["no-log", "logged"])
def test_a_read_in_a_new_process_imports_no_web3_nor_eth_account(
    medledger, cli_ready, env, options
):
    out = medledger(
        "anchor", str(OBSERVATION), "--patient", cli_ready.address, "--account", "dev:3", "--json"
    )
    assert out.exit_code == 0, out.stderr
    (row,) = out.json()
    argv = ["read", row["id"], "--account", "dev:5", *options]
    code = (
        "import json, sys\n"
        "from medledger.cli import main\n"
        f"code = main({argv!r})\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env={**os.environ, **env}, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == OBSERVATION.read_bytes()  # fetched, verified and decrypted
    modules = json.loads(done.stderr.decode().strip().splitlines()[-1])
    loaded = [m for m in modules if m.split(".")[0] in SLOW_TO_IMPORT]
    assert loaded == []


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/fhir-samples is not beside the checkout")
def test_a_bundle_becomes_one_record_per_entry(medledger, cli_ready):
    bundle = SAMPLES / "Charis952_Blanda868_3c1a5ef4-bc86-4361-8c60-806f06955bfc.json"
    out = medledger(
        "anchor", str(bundle), "--patient", cli_ready.address, "--account", "dev:3", "--json"
    )
    assert out.exit_code == 0, out.stderr
    assert len(out.json()) == len(json.loads(bundle.read_bytes())["entry"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "not valid JSON"),
        (b'{"id": "x"}', "resourceType"),
        (b'{"resourceType": "Spaceship"}', "Spaceship"),
    ],
    ids=["not-json", "no-resource-type", "unknown-resource-type"],
)
def test_malformed_fhir_anchors_nothing(medledger, cli_ready, tmp_path, content, message, chain):
    good = tmp_path / "a-good.json"
    good.write_bytes(OBSERVATION.read_bytes())
    bad = tmp_path / "b-bad.json"
    bad.write_bytes(content)
    out = medledger(
        "anchor", str(good), str(bad), "--patient", cli_ready.address, "--account", "dev:3"
    )
    assert out.exit_code == 1
    assert message in out.stderr and "b-bad.json" in out.stderr
    assert records.for_patient(chain, cli_ready.address) == []


def test_ipfs_add_cat_and_car_round_trip(medledger, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLEDGER_HOME", str(tmp_path / "home"))
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello world\n")
    added = medledger("ipfs", "add", str(source))
    assert added.stdout.strip() == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"  # Kubo's CID
    car = tmp_path / "hello.car"
    assert medledger("ipfs", "export-car", added.stdout.strip(), str(car)).exit_code == 0
    monkeypatch.setenv("MEDLEDGER_HOME", str(tmp_path / "other-home"))
    imported = medledger("ipfs", "import-car", str(car))
    assert imported.stdout.strip() == added.stdout.strip()
    cat = medledger("ipfs", "cat", added.stdout.strip())
    assert cat.exit_code == 0


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/fhir-samples is not beside the checkout")
def test_bundles_of_two_patients_in_one_command_are_refused(medledger, cli_ready, chain):
    one = SAMPLES / "Charis952_Blanda868_3c1a5ef4-bc86-4361-8c60-806f06955bfc.json"
    two = SAMPLES / "Clarence5_Hodkiewicz467_72ad4e96-92b8-4449-aae6-bbe2d72f0c83.json"
    out = medledger(
        "anchor", str(one), str(two), "--patient", cli_ready.address, "--account", "dev:3"
    )
    assert out.exit_code == 1 and "one input must hold the records of one patient" in out.stderr
    assert records.for_patient(chain, cli_ready.address) == []


def test_practitioner_record_is_readable_by_their_institution(
    chain, store, verified_institution, hospital, doctor, registered_patient, care
):
    care(registered_patient, verified_institution(hospital))
    providers.add_practitioner(chain, hospital, doctor.address)
    providers.accept_practitioner(chain, doctor, hospital.address)
    body = OBSERVATION.read_bytes()
    (record,) = records.anchor(
        chain, store, doctor, registered_patient.address, [records.Draft(body, Category.VITALS)]
    )
    assert record.issuer == doctor.address
    assert records.read(chain, store, hospital, record.hex_id) == body
    assert records.read(chain, store, doctor, record.hex_id) == body
