"""Batch anchoring: Merkle proofs built in Python verify in Solidity, and batched records work
like single ones (read, grant, history) once registered on demand."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger import consent, records
from medledger.categories import Category
from medledger.chain import deployments
from medledger.crypto import merkle
from medledger.errors import TransactionReverted
from medledger.ipfs.local import LocalBlockStore, tamper_with_block
from medledger.records import batches
from medledger.sealed import manifest

BODY = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
).read_bytes()


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


def _fields(seed: int, issuer: str, patient: str, chain, registry: str):
    rnd = os.urandom
    cid, commitment = rnd(32), rnd(32)
    category = 1 + seed % 16
    record_id = records.derive_id(
        records.Context(chain.chain_id, registry, issuer), patient, cid, commitment, category, None
    )
    return record_id, (patient, cid, commitment, category, bytes(32))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(size=st.integers(min_value=1, max_value=40))
def test_python_proofs_verify_in_solidity(chain, writer, registered_patient, size):
    contract = deployments.contract(chain, "RecordRegistry")
    rows = [
        _fields(i, writer.address, registered_patient.address, chain, contract.address)
        for i in range(size)
    ]
    tree = merkle.IndexedTree.build([r[0] for r in rows])
    chain.transact(
        "anchoring a batch", writer, contract.functions.anchorBatch(tree.root, os.urandom(32), size)
    )
    for index, (record_id, entry) in enumerate(rows):
        proof = tree.proof(index)
        assert merkle.verify_indexed(proof, tree.root, record_id, index, size)
        on_chain = contract.functions.verifyBatchRecord(
            writer.address, tree.root, entry, index, proof
        ).call()
        assert bytes(on_chain) == record_id


def test_a_wrong_proof_is_refused_on_chain(chain, writer, registered_patient):
    contract = deployments.contract(chain, "RecordRegistry")
    rows = [
        _fields(i, writer.address, registered_patient.address, chain, contract.address)
        for i in range(5)
    ]
    tree = merkle.IndexedTree.build([r[0] for r in rows])
    chain.transact(
        "anchoring a batch", writer, contract.functions.anchorBatch(tree.root, os.urandom(32), 5)
    )
    record_id, entry = rows[0]
    wrong = tree.proof(1)
    assert not merkle.verify_indexed(wrong, tree.root, record_id, 0, 5)
    for index, proof in ((0, wrong), (1, tree.proof(0)), (5, tree.proof(0))):
        with pytest.raises(TransactionReverted, match="RecordNotInBatch"):
            chain.call(
                "verifying",
                contract.functions.verifyBatchRecord(
                    writer.address, tree.root, entry, index, proof
                ),
            )


def test_batched_record_reads_like_a_single_one(chain, store, writer, registered_patient, stranger):
    entries = [
        batches.Entry(registered_patient.address, records.Draft(BODY, Category.VITALS))
        for _ in range(7)
    ]
    batch = batches.anchor_batch(chain, store, writer, entries)
    assert len(batch.records) == 7
    target = batch.records[3]
    assert records.get(chain, target.hex_id, store).registered is False
    assert (
        consent.read(chain, store, registered_patient, target.hex_id) == BODY
    )  # the patient, no gas
    with pytest.raises(Exception, match="no grant"):
        consent.read(chain, store, stranger, target.hex_id)


def test_a_grantee_read_registers_the_batched_record(
    chain, store, writer, registered_patient, doctor
):
    from medledger import providers

    providers.register_patient(chain, doctor)  # the doctor needs a published key
    batch = batches.anchor_batch(
        chain,
        store,
        writer,
        [
            batches.Entry(registered_patient.address, records.Draft(BODY, Category.LAB))
            for _ in range(3)
        ],
    )
    consent.grant(
        chain,
        store,
        registered_patient,
        registered_patient.address,
        doctor.address,
        consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB),
        consent.Purpose.TREATMENT,
        timedelta(days=1),
    )
    target = batch.records[1]
    assert consent.read(chain, store, doctor, target.hex_id) == BODY
    assert records.get(chain, target.hex_id).registered is True  # now an ordinary record
    assert records.history(chain, target.hex_id)[0].id == target.id


def test_a_tampered_manifest_is_not_trusted(chain, store, writer, registered_patient):
    batch = batches.anchor_batch(
        chain,
        store,
        writer,
        [batches.Entry(registered_patient.address, records.Draft(BODY, Category.LAB))],
    )
    data = bytearray(store.get_block(batch.manifest))
    data[-5] ^= 1
    tamper_with_block(store, batch.manifest, bytes(data))  # an attacker with disk access
    assert records.find_batched(chain, store, batch.records[0].id) is None


def test_a_batch_manifest_is_read_once_not_on_every_lookup(
    chain, store, writer, registered_patient, monkeypatch
):
    """Its items are kept in the event index: a later connection (a later command) finds a
    batched record without reading any manifest again, and a rewound chain forgets them."""

    def entries(first: int) -> list[batches.Entry]:
        drafts = [records.Draft(_distinct(BODY, n), Category.LAB) for n in (first, first + 2)]
        return [batches.Entry(registered_patient.address, draft) for draft in drafts]

    made = [batches.anchor_batch(chain, store, writer, entries(first)) for first in (1, 2)]
    target = made[1].records[1]
    assert records.find_batched(chain, store, target.id) is not None
    chain.cache.clear()  # a new connection
    reads: list[str] = []
    cat = store.cat
    monkeypatch.setattr(store, "cat", lambda cid: reads.append(str(cid)) or cat(cid))
    found = records.find_batched(chain, store, target.id)
    assert found is not None and found.cid == target.cid and found.batch == made[1].id
    assert {r.id for r in records.batched_for(chain, store, registered_patient.address)} >= {
        r.id for b in made for r in b.records
    }
    assert records.batch_proof(chain, store, target.id).index == 1
    assert reads == []


def _distinct(body: bytes, n: int) -> bytes:
    """``body`` (a FHIR resource) with its own id: another record's content."""
    resource = json.loads(body)
    resource["id"] = f"{resource.get('id', 'r')}-{n}"
    return json.dumps(resource).encode()


def test_only_writers_anchor_batches(chain, stranger):
    contract = deployments.contract(chain, "RecordRegistry")
    with pytest.raises(TransactionReverted, match="RecordBatchIssuerNotAuthorized"):
        chain.transact(
            "anchoring a batch",
            stranger,
            contract.functions.anchorBatch(os.urandom(32), os.urandom(32), 1),
        )


@pytest.mark.parametrize("named", ["itself", "another-issuer", "another-contract", "another-chain"])
def test_a_manifest_that_names_another_batch_is_ignored(
    chain, store, writer, registered_patient, stranger, named
):
    """The root matches, but a manifest naming another chain, contract or issuer than the
    batch it was anchored with is not trusted: its records are not found."""
    contract = deployments.contract(chain, "RecordRegistry")
    cid, commitment = store.add_bytes(os.urandom(64)), os.urandom(32)
    context = records.Context(chain.chain_id, contract.address, writer.address)
    patient = registered_patient.address
    record_id = records.derive_id(context, patient, cid.digest, commitment, 4, None)
    item = {
        "id": "0x" + record_id.hex(), "patient": patient, "cid": str(cid),
        "commitment": "0x" + commitment.hex(), "category": 4, "previous": None,
    }  # fmt: skip
    header = {
        "itself": (chain.chain_id, contract.address, writer.address),
        "another-issuer": (chain.chain_id, contract.address, stranger.address),
        "another-contract": (chain.chain_id, stranger.address, writer.address),
        "another-chain": (chain.chain_id + 1, contract.address, writer.address),
    }[named]
    raw, built = manifest.build(*header, {}, [item])
    listed = store.add_bytes(raw)
    chain.transact(
        "anchoring a batch", writer, contract.functions.anchorBatch(built.root, listed.digest, 1)
    )
    found = records.find_batched(chain, store, record_id)
    if named == "itself":
        assert found is not None and found.patient == patient and found.cid == cid
        assert found.category is Category.LAB and not found.registered
    else:
        assert found is None


_words = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())


@settings(max_examples=40, deadline=None)
@given(
    ids=st.lists(_words, min_size=1, max_size=40, unique=True),
    context=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3),
)
def test_a_built_manifest_is_what_its_bytes_parse_to(ids: list[str], context: dict) -> None:
    """build() gives its parsed form without parsing its bytes back: the two must agree."""
    items = [{"id": i, "cid": f"cid{n}", "commitment": i, "category": n % 7}
             for n, i in enumerate(ids)]  # fmt: skip
    raw, built = manifest.build(31337, "0x" + "11" * 20, "0x" + "22" * 20, context, items)
    assert built == manifest.parse(raw)
    assert built.root == manifest.parse(raw).root


@pytest.mark.parametrize("collector_on", [True, False], ids=["collector-on", "collector-off"])
def test_a_parallel_batch_journals_and_lists_every_record_in_order(
    chain, store, writer, registered_patient, monkeypatch, collector_on
):
    """Enough records for the worker pool (several chunks, each described as it comes back):
    the manifest lists every record in order, the outbox holds each one's intent under the
    batch and every stored body, and the cycle collector is left as it was."""
    import gc

    from medledger.chain.outbox import open_outbox
    from medledger.sealed import sealing

    monkeypatch.setenv("MEDLEDGER_WORKERS", "2")
    entries = [
        batches.Entry(registered_patient.address, records.Draft(os.urandom(300), Category.VITALS))
        for _ in range(sealing.PARALLEL_FROM + 6)
    ]
    was = gc.isenabled()
    (gc.enable if collector_on else gc.disable)()
    try:
        batch = batches.anchor_batch(chain, store, writer, entries)
        assert gc.isenabled() is collector_on
    finally:
        (gc.enable if was else gc.disable)()
    listed = manifest.parse(store.cat(batch.manifest))
    assert listed.root == batch.root
    assert listed.ids() == [r.id for r in batch.records]
    assert [(i["cid"], i["commitment"]) for i in listed.items] == [
        (str(r.cid), "0x" + r.commitment.hex()) for r in batch.records
    ]
    box = open_outbox(chain.settings.home)
    intents = {i.record: i for i, _ in box.sent_records(chain.journal_key) if i.batch == batch.id}
    assert set(intents) == {r.id for r in batch.records}
    assert all(intents[r.id].cid == str(r.cid) for r in batch.records)
    bodies = {b.cid for b in box.bodies(chain.journal_key)}
    assert {str(r.cid) for r in batch.records} | {str(batch.manifest)} <= bodies
