"""Scenarios for the access layer: grants, signed grants, revocation, delegates, break-glass,
key delivery, reading under consent, the access log, erasure and the access trail.

Every scenario starts from the session's freshly deployed Anvil devnet plus its own world steps
(see ``conftest.py`` and ``chain_worlds.py``), restored from a snapshot before it touches the
chain. Time travel uses ``evm_increaseTime`` then ``evm_mine``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger import consent, crypto, providers, records, sealed
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.chain import deployments, events
from medledger.consent import envelopes
from medledger.crypto import eip712
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    DecryptionFailed,
    MedLedgerError,
    NoKeyForReader,
    PreconditionFailed,
    SignatureExpired,
    TransactionReverted,
)
from medledger.ipfs.cid import Cid
from medledger.ipfs.local import LocalBlockStore
from medledger.ipfs.stores import open_store

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)
ALL = consent.Scope(consent.ScopeKind.ALL)
TREATMENT = consent.Purpose.TREATMENT
MONTH = timedelta(days=30)
EVERY_EVENT_KIND = {
    "care relationship opened",
    "record anchored",
    "access granted",
    "keys delivered",
    "record read",
    "access revoked",
    "delegate added",
    "delegate removed",
    "EMERGENCY ACCESS OPENED",
    "emergency access closed",
    "signatures cancelled",
    "record erased",
}


def body(name: str) -> bytes:
    """A small FHIR body, distinct per name."""
    return json.dumps({"resourceType": "Observation", "id": name, "status": "final"}).encode()


def category(cat: Category) -> consent.Scope:
    return consent.Scope(consent.ScopeKind.CATEGORY, category=cat)


def only(record: records.Record) -> consent.Scope:
    return consent.Scope(consent.ScopeKind.RECORD, record=record.id)


def advance(chain, seconds: int) -> None:
    """Move the chain clock forward and mine a block at the new time."""
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


def last_receipt(chain):
    """The receipt of the newest transaction (Anvil mines one block per transaction)."""
    block = chain.w3.eth.get_block("latest")
    return chain.w3.eth.get_transaction_receipt(block["transactions"][-1])


def decoded(chain, event: str, receipt=None) -> list:
    """The decoded ``event`` logs of a receipt (default: the newest block, which holds the
    newest transaction), from the ConsentManager, or the ProviderRegistry for the events it
    holds (delegates, care)."""
    manager = consent.consent_contract(chain)
    contract = "ConsentManager"
    if not any(e.get("name") == event for e in manager.abi if e.get("type") == "event"):
        contract = "ProviderRegistry"
    if receipt is not None:
        found = events.from_receipt(receipt, contract, event)
    else:
        found = events.logs(chain, contract, event, from_block=chain.w3.eth.block_number)
    return [log.args for log in found]


@contextmanager
def reverts(error: str):
    """Expect ``TransactionReverted`` naming exactly the custom error ``error``."""
    with pytest.raises(TransactionReverted) as caught:
        yield caught
    assert caught.value.error == error, str(caught.value)


def raw_revoke(chain, signer, patient: str, grantee: str):
    """Send ``revoke`` of an ``all`` grant straight to the contract (no client-side checks)."""
    revoke = consent.consent_contract(chain).functions.revoke(
        patient, grantee, int(consent.ScopeKind.ALL), bytes(32)
    )
    return chain.transact("revoking", signer, revoke)


def envelopes_for(chain, store: LocalBlockStore, patient, grantee) -> dict:
    """Every pinned key envelope from ``patient`` for ``grantee`` in the store, by CID: the
    record ids it holds keys of (opened with the patient's key, a reader of every envelope)."""
    found = {}
    for cid in store.pins():
        try:
            held = consent.open_envelope(
                chain, store, cid, patient.address, grantee.address, patient.key
            )
        except MedLedgerError:
            continue  # a record body, or an envelope for another grantee
        found[cid] = set(held)
    return found


def typed_grant(chain, request: dict) -> dict:
    """The EIP-712 typed data of a GrantRequest, written from the contract's NatSpec.

    Built here independently of ``eip712.typed_data`` so the tests check the package against
    the contract rather than against itself.
    """
    fields = [
        ("patient", "address"), ("grantee", "address"), ("scopeKind", "uint8"),
        ("scope", "bytes32"), ("purpose", "uint8"), ("expiresAt", "uint40"),
        ("envelopeDigest", "bytes32"), ("nonce", "uint256"), ("deadline", "uint256"),
    ]  # fmt: skip
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "GrantRequest": [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": "GrantRequest",
        "domain": {
            "name": "MedLedger ConsentManager",
            "version": "1",
            "chainId": chain.chain_id,
            "verifyingContract": consent.consent_contract(chain).address,
        },
        "message": request,
    }


def request_tuple(request: dict) -> tuple:
    return (
        request["patient"], request["grantee"], request["scopeKind"],
        bytes.fromhex(request["scope"][2:]), request["purpose"], request["expiresAt"],
        bytes.fromhex(request["envelopeDigest"][2:]), request["nonce"], request["deadline"],
    )  # fmt: skip


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_block_clock(chain):
    """Forget block times cached by earlier tests.

    ``Chain.block_time`` caches by block *number*; every test re-mines the same numbers after
    ``evm_revert``, so without this the trail's event times (and, before its fix, the chain
    clock) can come from another test's, possibly time-travelled, blocks. See
    ``test_chain_now_is_the_latest_block_time_after_a_revert``.
    """
    chain.forget_blocks()


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def create_record(chain, store, verified_institution, hospital, registered_patient, care):
    """Factory: the hospital (in care of the patient) anchors a body for the registered patient."""
    care(registered_patient, verified_institution(hospital))

    def make(content: bytes | None = None, cat: Category = Category.LAB, previous=None, into=None):
        (record,) = records.anchor(
            chain, into or store, hospital, registered_patient.address,
            [records.Draft(content or OBSERVATION.read_bytes(), cat)], previous,
            readers=consent.readers_for(chain),
        )  # fmt: skip
        return record

    return make


@pytest.fixture
def give(chain, store, registered_patient):
    """Factory: the patient (or ``by``) grants ``grantee`` a scope for a purpose and a time."""

    def make(grantee, scope=ALL, expires=MONTH, by=None, purpose=TREATMENT):
        return consent.grant(
            chain, store, by or registered_patient, registered_patient.address,
            grantee.address, scope, purpose, expires,
        )  # fmt: skip

    return make


@pytest.fixture
def emergency_service(chain, verified_institution):
    """dev:7 as a verified emergency service."""
    return verified_institution(
        dev_account(7), providers.InstitutionKind.EMERGENCY_SERVICE, "City Ambulance"
    )


# --- reading under consent -------------------------------------------------------------------


def test_grantee_reads_the_exact_bytes_after_a_grant(
    chain, store, create_record, give, doctor_with_key, patient
):
    content = OBSERVATION.read_bytes()
    record = create_record(content)
    give(doctor_with_key, category(Category.LAB))
    (granted,) = decoded(chain, "AccessGranted")
    assert granted["grantee"] == doctor_with_key.address and granted["grantor"] == patient.address
    assert granted["scopeKind"] == int(consent.ScopeKind.CATEGORY)
    (state,) = consent.grants(chain, patient.address, doctor_with_key.address)
    assert [c.digest for c in state.envelopes] == [bytes(granted["envelopeDigest"])]
    assert state.status(chain.now()) == "active"
    held = consent.open_envelope(
        chain, store, state.envelopes[0], patient.address, doctor_with_key.address,
        doctor_with_key.key,
    )  # fmt: skip
    assert set(held) == {record.hex_id}

    assert consent.read(chain, store, doctor_with_key, record.id) == content
    (logged,) = decoded(chain, "RecordAccessed")  # the read was logged on chain
    assert logged["reader"] == doctor_with_key.address and bytes(logged["id"]) == record.id


def test_read_without_a_grant_is_refused_saying_no_grant(
    chain, store, create_record, doctor_with_key
):
    record = create_record()
    with pytest.raises(AccessRefused, match="no grant") as refused:
        consent.read(chain, store, doctor_with_key, record.id)
    assert refused.value.record_id == record.hex_id


def test_read_after_revocation_is_refused_saying_revoked(
    chain, store, create_record, give, doctor_with_key, patient
):
    record = create_record()
    give(doctor_with_key)
    consent.revoke(chain, patient, patient.address, doctor_with_key.address, ALL)
    (revoked,) = decoded(chain, "AccessRevoked")
    assert revoked["grantee"] == doctor_with_key.address and revoked["revoker"] == patient.address
    manager = consent.consent_contract(chain)
    assert not manager.functions.hasAccess(doctor_with_key.address, record.id).call()
    with pytest.raises(AccessRefused, match="revoked"):
        consent.read(chain, store, doctor_with_key, record.id)


def test_revoking_a_grant_that_is_not_live_is_refused_before_sending(
    chain, create_record, doctor_with_key, patient
):
    create_record()
    with pytest.raises(PreconditionFailed, match="has no grant from"):
        consent.revoke(chain, patient, patient.address, doctor_with_key.address, ALL)
    with reverts("ConsentNotGranted"):
        raw_revoke(chain, patient, patient.address, doctor_with_key.address)


def test_read_after_expiry_is_refused_saying_expired(
    chain, store, create_record, give, doctor_with_key
):
    content = body("expiring")
    record = create_record(content)
    give(doctor_with_key, expires=timedelta(hours=1))
    advance(chain, 30 * 60)
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == content
    advance(chain, 31 * 60)
    with pytest.raises(AccessRefused, match="expired"):
        consent.read(chain, store, doctor_with_key, record.id)


@pytest.mark.parametrize(
    ("scope_name", "readable"),
    [
        ("category:lab", {"lab-1", "lab-2"}),
        ("record:lab-1", {"lab-1"}),
        ("all", {"lab-1", "lab-2", "vitals"}),
    ],
    ids=["category-lab-opens-only-lab", "record-opens-only-that-record", "all-opens-everything"],
)
def test_a_grant_opens_exactly_the_records_in_its_scope(
    chain, store, create_record, give, doctor_with_key, scope_name, readable
):
    made = {
        "lab-1": create_record(body("lab-1"), Category.LAB),
        "lab-2": create_record(body("lab-2"), Category.LAB),
        "vitals": create_record(body("vitals"), Category.VITALS),
    }
    scope = only(made["lab-1"]) if scope_name == "record:lab-1" else consent.Scope.parse(scope_name)
    give(doctor_with_key, scope)
    manager = consent.consent_contract(chain)
    for name, record in made.items():
        allowed = manager.functions.hasAccess(doctor_with_key.address, record.id).call()
        assert allowed == (name in readable), name
        if name in readable:
            assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body(name)
        else:
            with pytest.raises(AccessRefused, match="no grant"):
                consent.read(chain, store, doctor_with_key, record.id, log=False)


def test_a_grantee_without_a_published_key_is_refused_before_sending(
    chain, store, create_record, verified_institution, clinic, doctor, patient
):
    create_record()
    verified_institution(clinic, providers.InstitutionKind.CLINIC, "Riverside Clinic")
    providers.add_practitioner(chain, clinic, doctor.address)  # no key until publish_key
    providers.accept_practitioner(chain, doctor, clinic.address)
    with pytest.raises(PreconditionFailed, match="published no encryption key"):
        consent.grant(chain, store, patient, patient.address, doctor.address, ALL, TREATMENT, MONTH)
    expires = int((chain.now() + MONTH).timestamp())
    for grantee in (patient.address, "0x" + "00" * 20):  # the contract refuses only these
        granting = consent.consent_contract(chain).functions.grant(
            patient.address, grantee, int(consent.ScopeKind.ALL), bytes(32), int(TREATMENT),
            expires, bytes(32),
        )  # fmt: skip
        with reverts("ConsentInvalidGrantee"):
            chain.transact("granting", patient, granting)


# --- key rotation and key delivery on write --------------------------------------------------


def test_a_version_written_after_revocation_is_not_wrapped_for_the_revoked_party(
    chain, store, create_record, give, doctor_with_key, clinic, patient
):
    v1 = create_record(body("v1"), Category.LAB)
    give(doctor_with_key, category(Category.LAB))
    give(clinic, category(Category.LAB))
    assert consent.read(chain, store, doctor_with_key, v1.id, log=False) == body("v1")
    consent.revoke(chain, patient, patient.address, doctor_with_key.address, category(Category.LAB))

    v2 = create_record(body("v2"), Category.LAB, previous=v1.id)

    revoked_key = crypto.public_key(doctor_with_key.key)
    assert revoked_key not in crypto.readers(store.cat(v2.cid))
    delivered = envelopes_for(chain, store, patient, doctor_with_key)
    assert delivered and all(v2.hex_id not in held for held in delivered.values())
    with pytest.raises(NoKeyForReader):  # even bypassing the chain's refusal
        consent.secret_of(chain, store, doctor_with_key, v2)
    with pytest.raises(AccessRefused, match="revoked"):
        consent.read(chain, store, doctor_with_key, v2.id)

    # key delivery on write: the party whose category grant is live got the new key at once
    assert crypto.public_key(clinic.key) in crypto.readers(store.cat(v2.cid))
    assert consent.read(chain, store, clinic, v2.id, log=False) == body("v2")


def test_a_new_record_is_wrapped_at_write_time_only_for_grants_that_cover_it(
    chain, store, create_record, give, doctor_with_key, clinic
):
    create_record(body("first"), Category.LAB)
    give(doctor_with_key, category(Category.LAB))
    give(clinic, category(Category.IMAGING))
    later = create_record(body("later"), Category.LAB)  # written after both grants
    wrapped_for = crypto.readers(store.cat(later.cid))
    assert crypto.public_key(doctor_with_key.key) in wrapped_for
    assert crypto.public_key(clinic.key) not in wrapped_for
    assert consent.read(chain, store, doctor_with_key, later.id, log=False) == body("later")


# --- signed (gasless) grants -----------------------------------------------------------------


def test_a_relayer_submits_a_grant_the_patient_signed(
    chain, store, create_record, doctor_with_key, patient
):
    relayer = dev_account(8)
    record = create_record(body("signed"))
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    state = consent.submit_signed_grant(chain, store, relayer, document)
    assert last_receipt(chain)["from"] == relayer.address  # the relayer paid the gas
    (granted,) = decoded(chain, "AccessGranted")
    assert granted["grantor"] == patient.address and granted["grantee"] == doctor_with_key.address
    assert state.live(chain.now())
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body("signed")
    (entry,) = [
        e for e in consent.access_trail(chain, patient.address) if e.event == "access granted"
    ]
    assert entry.actor == patient.address


def test_a_replayed_signed_grant_reverts_with_ConsentSignatureReplayed(
    chain, store, create_record, doctor_with_key, patient
):
    create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    consent.submit_signed_grant(chain, store, dev_account(8), document)
    with reverts("ConsentSignatureReplayed") as caught:
        consent.submit_signed_grant(chain, store, dev_account(8), document)
    assert caught.value.error_args["nonce"] == 0 and caught.value.error_args["expectedNonce"] == 1


def test_a_signed_grant_past_its_deadline_is_refused_before_sending(
    chain, store, create_record, doctor_with_key, patient
):
    # The contract reverts with ConsentSignatureExpired (tests/contracts); the client says so
    # first, by the chain's clock, and sends nothing.
    create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH,
        valid_for=timedelta(hours=1),
    )  # fmt: skip
    advance(chain, 2 * 3600)
    head = chain.w3.eth.block_number
    with pytest.raises(SignatureExpired, match="signed grant expired"):
        consent.submit_signed_grant(chain, store, dev_account(8), document)
    assert chain.w3.eth.block_number == head


def test_a_grant_signed_by_a_stranger_reverts_with_ConsentInvalidSignature(
    chain, store, create_record, doctor_with_key, patient, stranger
):
    create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    forged = Account.sign_message(
        encode_typed_data(full_message=typed_grant(chain, document["request"])), stranger.key
    )
    document["signature"] = "0x" + bytes(forged.signature).hex()
    with reverts("ConsentInvalidSignature") as caught:
        consent.submit_signed_grant(chain, store, dev_account(8), document)
    assert caught.value.error_args == {"signer": stranger.address, "patient": patient.address}


def test_a_signed_grant_altered_after_signing_reverts_with_ConsentInvalidSignature(
    chain, store, create_record, doctor_with_key, patient
):
    create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    document["request"]["expiresAt"] += 365 * 86400  # a relayer stretching the grant
    with reverts("ConsentInvalidSignature"):
        consent.submit_signed_grant(chain, store, dev_account(8), document)


def test_a_signed_grant_whose_envelope_does_not_match_its_digest_is_refused(
    chain, store, create_record, doctor_with_key, patient
):
    record = create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    signed = Cid.from_digest_v0(bytes.fromhex(document["request"]["envelopeDigest"][2:]))
    held = consent.open_envelope(
        chain, store, signed, patient.address, doctor_with_key.address, patient.key
    )
    held["0x" + "ee" * 32] = held[record.hex_id]  # one key more, sealed the same way
    readers = [crypto.public_key(doctor_with_key.key), crypto.public_key(patient.key)]
    more = envelopes.document(chain, patient.address, doctor_with_key.address, readers, held)
    document["envelope"] = base64.b64encode(store.cat(sealed.seal_one(store, more).cid)).decode()
    with pytest.raises(PreconditionFailed, match="does not match the signed digest"):
        consent.submit_signed_grant(chain, store, dev_account(8), document)
    manager = consent.consent_contract(chain)
    assert not manager.functions.hasAccess(doctor_with_key.address, record.id).call()


def test_a_refused_signed_grant_leaves_nothing_pinned(
    chain, store, create_record, doctor_with_key, patient, tmp_path
):
    create_record()
    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    document["envelope"] = base64.b64encode(b"not the signed envelope").decode()
    relayer_store = LocalBlockStore(tmp_path / "relayer")
    with pytest.raises(PreconditionFailed):
        consent.submit_signed_grant(chain, relayer_store, dev_account(8), document)
    assert relayer_store.pins() == frozenset()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    grantee=st.integers(1, 2**160 - 1),
    scope_kind=st.sampled_from(list(consent.ScopeKind)),
    scope=st.binary(min_size=32, max_size=32),
    purpose=st.integers(0, 6),
    expires=st.integers(0, 2**40 - 1),
    envelope=st.binary(min_size=32, max_size=32),
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_and_the_contract_agree_on_the_grant_digest(
    chain, patient, grantee, scope_kind, scope, purpose, expires, envelope, nonce, deadline
):
    from eth_utils.address import to_checksum_address

    request = {
        "patient": patient.address,
        "grantee": to_checksum_address(grantee.to_bytes(20, "big")),
        "scopeKind": int(scope_kind), "scope": "0x" + scope.hex(), "purpose": purpose,
        "expiresAt": expires, "envelopeDigest": "0x" + envelope.hex(),
        "nonce": nonce, "deadline": deadline,
    }  # fmt: skip
    manager = consent.consent_contract(chain)
    on_chain = bytes(manager.functions.grantDigest(request_tuple(request)).call())
    ours = encode_typed_data(full_message=typed_grant(chain, request))
    theirs = encode_typed_data(
        full_message=eip712.typed_data(
            "ConsentManager", chain.chain_id, manager.address, "GrantRequest",
            consent.GRANT_FIELDS, request,
        )
    )  # fmt: skip
    digest = keccak(b"\x19" + ours.version + ours.header + ours.body)
    assert digest == on_chain
    assert (theirs.header, theirs.body) == (ours.header, ours.body)


# --- delegates -------------------------------------------------------------------------------


def test_a_delegate_grants_and_revokes_for_the_patient(
    chain, store, create_record, give, doctor_with_key, patient
):
    guardian = dev_account(8)
    record = create_record()
    providers.set_delegate(chain, patient, guardian.address, True)
    (changed,) = decoded(chain, "DelegateChanged")
    assert changed["delegate"] == guardian.address and changed["allowed"] is True

    give(doctor_with_key, by=guardian)
    (granted,) = decoded(chain, "AccessGranted")
    assert granted["grantor"] == guardian.address and granted["patient"] == patient.address
    manager = consent.consent_contract(chain)
    assert manager.functions.hasAccess(doctor_with_key.address, record.id).call()

    consent.revoke(chain, guardian, patient.address, doctor_with_key.address, ALL)
    (revoked,) = decoded(chain, "AccessRevoked")
    assert revoked["revoker"] == guardian.address
    assert not manager.functions.hasAccess(doctor_with_key.address, record.id).call()


def test_a_delegates_grant_carries_no_keys_until_the_patient_delivers_them(
    chain, store, create_record, give, doctor_with_key, patient
):
    guardian = dev_account(8)
    record = create_record(body("delegated"))
    providers.set_delegate(chain, patient, guardian.address, True)
    give(doctor_with_key, by=guardian)
    (granted,) = decoded(chain, "AccessGranted")
    assert bytes(granted["envelopeDigest"]) == bytes(32)  # a delegate holds no record keys
    with pytest.raises(NoKeyForReader):
        consent.read(chain, store, doctor_with_key, record.id, log=False)
    envelope = consent.deliver_keys(
        chain, store, patient, patient.address, doctor_with_key.address, ALL
    )
    assert envelope is not None
    (delivered,) = decoded(chain, "KeysDelivered")
    assert bytes(delivered["envelopeDigest"]) == envelope.digest
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body("delegated")


def test_a_removed_delegate_can_no_longer_grant_or_revoke(
    chain, store, create_record, give, doctor_with_key, patient
):
    guardian = dev_account(8)
    create_record()
    providers.set_delegate(chain, patient, guardian.address, True)
    give(doctor_with_key, by=guardian)
    providers.set_delegate(chain, patient, guardian.address, False)
    (changed,) = decoded(chain, "DelegateChanged")
    assert changed["allowed"] is False

    with pytest.raises(PreconditionFailed, match="neither patient"):
        give(doctor_with_key, category(Category.LAB), by=guardian)
    with pytest.raises(PreconditionFailed, match="neither patient"):
        consent.revoke(chain, guardian, patient.address, doctor_with_key.address, ALL)
    with reverts("ConsentNotPatientOrDelegate"):
        raw_revoke(chain, guardian, patient.address, doctor_with_key.address)


def test_only_a_registered_patient_can_name_delegates(chain, registered_patient, stranger):
    with pytest.raises(PreconditionFailed, match="not a registered patient"):
        providers.set_delegate(chain, stranger, dev_account(8).address, True)
    registry = deployments.contract(chain, "ProviderRegistry")
    with reverts("ProviderNotPatient"):
        chain.transact(
            "naming a delegate",
            stranger,
            registry.functions.setDelegate(dev_account(8).address, True),
        )
    with reverts("ProviderInvalidDelegate"):  # a patient cannot name themself
        chain.transact(
            "naming a delegate",
            registered_patient,
            registry.functions.setDelegate(registered_patient.address, True),
        )


# --- emergency (break-glass) access ----------------------------------------------------------


def test_emergency_access_is_refused_to_an_institution_that_is_not_an_emergency_service(
    chain, create_record, hospital, patient
):
    create_record()
    with pytest.raises(PreconditionFailed, match="emergency service"):
        consent.open_emergency_access(chain, hospital, patient.address, timedelta(hours=2), "ER")
    manager = consent.consent_contract(chain)
    with reverts("ConsentNotEmergencyService"):
        opening = manager.functions.openEmergencyAccess(patient.address, 7200, "ER")
        chain.transact("opening", hospital, opening)


def test_emergency_access_without_a_reason_is_refused(
    chain, create_record, emergency_service, patient
):
    create_record()
    with pytest.raises(ConfigurationError, match="reason"):
        consent.open_emergency_access(
            chain, emergency_service, patient.address, timedelta(hours=2), " "
        )
    manager = consent.consent_contract(chain)
    with reverts("ConsentEmergencyReasonRequired"):
        opening = manager.functions.openEmergencyAccess(patient.address, 7200, "")
        chain.transact("opening", emergency_service, opening)
    with pytest.raises(ConfigurationError, match="at most 24 hours"):
        consent.open_emergency_access(
            chain, emergency_service, patient.address, timedelta(hours=25), "cardiac arrest"
        )
    with reverts("ConsentEmergencyTooLong"):
        opening = manager.functions.openEmergencyAccess(patient.address, 25 * 3600, "arrest")
        chain.transact("opening", emergency_service, opening)


def test_emergency_service_reads_after_the_issuer_delivers_keys_until_24_hours_pass(
    chain, store, create_record, give, doctor_with_key, emergency_service, hospital, patient
):
    record = create_record(body("allergies"), Category.ALLERGY)
    give(doctor_with_key)  # earlier events, so "first" in the trail means something
    until = consent.open_emergency_access(
        chain, emergency_service, patient.address, timedelta(hours=24), "unconscious, ER 4"
    )
    (opened,) = decoded(chain, "EmergencyAccessOpened")
    assert opened["opener"] == emergency_service.address and opened["reason"] == "unconscious, ER 4"
    assert opened["expiresAt"] == int(until.timestamp())
    manager = consent.consent_contract(chain)
    assert manager.functions.hasAccess(emergency_service.address, record.id).call()

    first = consent.access_trail(chain, patient.address)[0]
    assert first.event == "EMERGENCY ACCESS OPENED" and first.actor == emergency_service.address
    assert "unconscious, ER 4" in first.detail

    with pytest.raises(NoKeyForReader):  # access is open, but nobody delivered keys yet
        consent.read(chain, store, emergency_service, record.id, log=False)
    consent.deliver_keys(chain, store, hospital, patient.address, emergency_service.address, ALL)
    (delivered,) = decoded(chain, "KeysDelivered")
    assert delivered["deliverer"] == hospital.address
    assert consent.read(chain, store, emergency_service, record.id) == body("allergies")

    advance(chain, 24 * 3600 + 60)
    assert not manager.functions.hasAccess(emergency_service.address, record.id).call()
    with pytest.raises(AccessRefused, match="expired"):
        consent.read(chain, store, emergency_service, record.id)


def test_an_emergency_opening_does_not_cut_short_the_patients_own_grant(
    chain, create_record, give, emergency_service, patient
):
    record = create_record()
    give(emergency_service, ALL, expires=MONTH)  # the patient's own month-long grant
    consent.open_emergency_access(
        chain, emergency_service, patient.address, timedelta(hours=1), "cardiac arrest"
    )
    advance(chain, 2 * 3600)
    manager = consent.consent_contract(chain)
    assert manager.functions.hasAccess(emergency_service.address, record.id).call()


# --- the access log --------------------------------------------------------------------------


def test_many_reads_are_logged_in_one_transaction_and_each_appears_in_the_trail(
    chain, store, create_record, give, doctor_with_key, patient
):
    made = [create_record(body(f"r{i}"), Category.LAB) for i in range(5)]
    give(doctor_with_key)
    receipt = consent.log_reads(chain, doctor_with_key, [r.id for r in made])
    logged = decoded(chain, "RecordAccessed", receipt)
    assert [bytes(e["id"]) for e in logged] == [r.id for r in made]
    assert {e["reader"] for e in logged} == {doctor_with_key.address}
    reads = [e for e in consent.access_trail(chain, patient.address) if e.event == "record read"]
    assert [e.subject for e in reads] == [r.hex_id for r in made]
    assert {e.actor for e in reads} == {doctor_with_key.address}


def test_logging_a_read_without_access_reverts_with_ConsentAccessDenied(
    chain, create_record, give, doctor_with_key, patient
):
    lab = create_record(body("lab"), Category.LAB)
    vitals = create_record(body("vitals"), Category.VITALS)
    give(doctor_with_key, category(Category.LAB))
    with reverts("ConsentAccessDenied") as caught:
        consent.log_reads(chain, doctor_with_key, [lab.id, vitals.id])
    assert caught.value.error_args["reader"] == doctor_with_key.address
    assert not [e for e in consent.access_trail(chain, patient.address) if e.event == "record read"]


# --- erasure ---------------------------------------------------------------------------------


def test_an_erased_record_is_refused_to_everyone_and_its_blocks_are_gone(
    chain, store, create_record, give, doctor_with_key, hospital, patient
):
    record = create_record(body("to erase"))
    give(doctor_with_key, only(record))
    ((envelope,),) = [g.envelopes for g in consent.grants(chain, patient.address)]
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body("to erase")

    removed = consent.erase(chain, store, patient, record.id)
    (erased,) = decoded(chain, "RecordErased")
    assert bytes(erased["id"]) == record.id and erased["by"] == patient.address

    assert removed >= 2 and not store.has(record.cid) and not store.has(envelope)
    assert envelope not in store.pins() and record.cid not in store.pins()
    manager = consent.consent_contract(chain)
    for reader in (patient, doctor_with_key, hospital):
        assert not manager.functions.hasAccess(reader.address, record.id).call()
        with pytest.raises(AccessRefused, match="erased"):
            consent.read(chain, store, reader, record.id)


def test_erasure_leaves_no_pinned_envelope_holding_the_erased_key(
    chain, store, create_record, give, doctor_with_key, patient
):
    erased = create_record(body("erased"))
    kept = create_record(body("kept"))
    give(doctor_with_key)  # one envelope holding both keys
    consent.erase(chain, store, patient, erased.id)
    assert consent.read(chain, store, doctor_with_key, kept.id, log=False) == body("kept")
    delivered = envelopes_for(chain, store, patient, doctor_with_key)
    assert [c for c, held in delivered.items() if erased.hex_id in held] == []
    assert [held for held in delivered.values()] == [{kept.hex_id}]  # re-issued without it


def test_a_delegate_erasing_unpins_every_envelope_that_may_hold_the_key(
    chain, store, create_record, give, doctor_with_key, patient
):
    guardian = dev_account(8)
    erased = create_record(body("erased"))
    kept = create_record(body("kept"))
    ((envelope,),) = [give(doctor_with_key).envelopes]  # the patient's: both keys
    providers.set_delegate(chain, patient, guardian.address, True)
    consent.erase(chain, store, guardian, erased.id)  # the delegate cannot open the envelope
    assert envelope not in store.pins() and not store.has(envelope)
    assert envelopes_for(chain, store, patient, doctor_with_key) == {}
    with pytest.raises(NoKeyForReader):  # only the patient re-issues envelopes
        consent.read(chain, store, doctor_with_key, kept.id, log=False)


def test_a_stranger_cannot_erase(chain, store, create_record, patient, stranger):
    record = create_record(body("mine"))
    with pytest.raises(PreconditionFailed, match="neither patient"):
        consent.erase(chain, store, stranger, record.id)
    manager = consent.consent_contract(chain)
    with reverts("ConsentNotPatientOrDelegate"):
        chain.transact("erasing", stranger, manager.functions.eraseRecord(record.id))
    assert store.has(record.cid)
    assert consent.read(chain, store, patient, record.id) == body("mine")


# --- the access trail ------------------------------------------------------------------------


@pytest.fixture
def eventful(chain, store, create_record, give, doctor_with_key, emergency_service, hospital,
             patient):  # fmt: skip
    """A scenario that produces every kind of trail event; returns the trail."""
    kept = create_record(body("kept"))
    gone = create_record(body("gone"), Category.VITALS)
    give(doctor_with_key)
    consent.deliver_keys(chain, store, hospital, patient.address, doctor_with_key.address, ALL)
    consent.read(chain, store, doctor_with_key, kept.id)
    consent.revoke(chain, patient, patient.address, doctor_with_key.address, ALL)
    providers.set_delegate(chain, patient, dev_account(8).address, True)
    providers.set_delegate(chain, patient, dev_account(8).address, False)
    consent.open_emergency_access(
        chain, emergency_service, patient.address, timedelta(hours=6), "road accident, bay 2"
    )
    consent.close_emergency_access(chain, patient, patient.address, emergency_service.address)
    consent.cancel_signatures(chain, patient, patient.address)
    consent.erase(chain, store, patient, gone.id)
    return consent.access_trail(chain, patient.address)


def test_trail_json_and_csv_hold_every_event_kind_and_the_table_one_line_per_event(eventful):
    assert {e.event for e in eventful} == EVERY_EVENT_KIND
    assert [e.event for e in eventful[:2]] == ["EMERGENCY ACCESS OPENED", "emergency access closed"]
    rest = eventful[2:]
    assert [e.block for e in rest] == sorted(e.block for e in rest)

    as_json = json.loads(consent.render_trail(eventful, "json"))
    assert [row["event"] for row in as_json] == [e.event for e in eventful]
    assert set(as_json[0]) == {"time", "block", "event", "actor", "subject", "detail"}

    rows = list(csv.DictReader(io.StringIO(consent.render_trail(eventful, "csv"))))
    assert [row["event"] for row in rows] == [e.event for e in eventful]
    assert [int(row["block"]) for row in rows] == [e.block for e in eventful]

    table = consent.render_trail(eventful, "table").splitlines()
    assert len(table) == 1 + len(eventful)
    assert table[0].startswith("time (UTC)")
    assert all(entry.event in line for entry, line in zip(eventful, table[1:], strict=True))


def test_trail_table_keeps_one_line_per_event_whatever_the_reason_holds(
    chain, create_record, emergency_service, patient
):
    create_record()
    forged = "ok\n2030-01-01 00:00:00  access revoked  " + patient.address
    consent.open_emergency_access(
        chain, emergency_service, patient.address, timedelta(hours=1), forged
    )
    entries = consent.access_trail(chain, patient.address)
    assert len(consent.render_trail(entries, "table").splitlines()) == 1 + len(entries)


# --- through the command line ----------------------------------------------------------------


@pytest.fixture
def cli_store(settings):
    """The block store the CLI opens (the session home's embedded store)."""
    return open_store(settings)


def test_cli_read_without_a_grant_is_one_line_on_stderr_naming_the_reason(
    medledger, create_record, cli_store, doctor_with_key
):
    record = create_record(body("cli"), into=cli_store)
    out = medledger("read", record.hex_id, "--account", "dev:6")
    assert out.exit_code == 1
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1
    assert "refused" in out.stderr and "no grant" in out.stderr


def test_cli_grant_signed_offline_is_submitted_by_a_relayer(
    medledger, chain, create_record, cli_store, doctor_with_key, patient, tmp_path
):
    record = create_record(body("cli signed"), Category.LAB, into=cli_store)
    signed = tmp_path / "grant.json"
    made = medledger("grant", doctor_with_key.address, "--scope", "category:lab", "--expires",
                     "2d", "--sign-only", "--out", str(signed), "--account", "dev:5")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert json.loads(signed.read_text())["kind"] == "medledger/signed-grant"
    assert (
        not consent.consent_contract(chain)
        .functions.hasAccess(doctor_with_key.address, record.id)
        .call()
    )  # signing alone sends nothing

    sent = medledger("grant", "--submit", str(signed), "--account", "dev:8", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sent.json()["status"] == "active" and sent.json()["scope"] == "category:lab"
    assert last_receipt(chain)["from"] == dev_account(8).address

    target = tmp_path / "read.json"
    back = medledger("read", record.hex_id, "--account", "dev:6", "--out", str(target))
    assert back.exit_code == 0, back.stderr
    assert target.read_bytes() == body("cli signed")


def test_cli_audit_prints_csv(medledger, create_record, cli_store, doctor_with_key, patient):
    record = create_record(body("csv"), into=cli_store)
    assert medledger("grant", doctor_with_key.address, "--account", "dev:5").exit_code == 0
    assert (
        medledger("read", record.hex_id, "--account", "dev:6", "--out", "/dev/null").exit_code == 0
    )
    out = medledger("audit", "--patient", patient.address, "--format", "csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert out.stdout.splitlines()[0] == "time,block,event,actor,subject,detail"
    assert [r["event"] for r in rows] == [
        "care relationship opened", "record anchored", "access granted", "record read",
    ]  # fmt: skip
    assert rows[3]["actor"] == doctor_with_key.address and rows[3]["subject"] == record.hex_id


def test_cli_revoke_delegate_emergency_deliver_keys_grants_and_erase(
    medledger, chain, create_record, cli_store, doctor_with_key, emergency_service, patient,
    tmp_path,
):  # fmt: skip
    record = create_record(body("cli verbs"), into=cli_store)
    p = patient.address
    assert medledger("delegate", dev_account(8).address, "--account", "dev:5").exit_code == 0
    granted = medledger("grant", doctor_with_key.address, "--patient", p, "--scope", "all",
                        "--account", "dev:8", "--json")  # fmt: skip
    assert granted.exit_code == 0, granted.stderr
    (listed,) = medledger("grants", "--patient", p, "--json").json()
    assert listed["envelopes"] == [] and listed["status"] == "active"  # the delegate has no keys
    delivered = medledger("deliver-keys", doctor_with_key.address, "--patient", p,
                          "--account", "dev:3", "--json")  # fmt: skip
    assert delivered.exit_code == 0 and delivered.json()["envelope"], delivered.stderr
    target = tmp_path / "r.json"
    assert (
        medledger("read", record.hex_id, "--account", "dev:6", "--out", str(target)).exit_code == 0
    )
    assert target.read_bytes() == body("cli verbs")

    revoked = medledger("revoke", doctor_with_key.address, "--patient", p, "--account", "dev:8")
    assert revoked.exit_code == 0, revoked.stderr
    removed = medledger("delegate", dev_account(8).address, "--remove", "--account", "dev:5")
    assert removed.exit_code == 0
    again = medledger("revoke", doctor_with_key.address, "--patient", p, "--account", "dev:8")
    assert again.exit_code == 1 and "neither patient" in again.stderr

    opened = medledger("emergency-access", p, "--reason", "cardiac arrest", "--duration", "2h",
                       "--account", "dev:7")  # fmt: skip
    assert opened.exit_code == 0 and "audited" in opened.stdout, opened.stderr
    listed = medledger("grants", "--patient", p, "--json")
    status = {row["grantee"]: row["status"] for row in listed.json()}
    assert status == {doctor_with_key.address: "revoked", emergency_service.address: "active"}

    erased = medledger("erase", record.hex_id, "--account", "dev:5", "--json")
    assert erased.exit_code == 0 and erased.json()["blocks_removed"] >= 1, erased.stderr
    refused = medledger("read", record.hex_id, "--account", "dev:5")
    assert refused.exit_code == 1 and "erased" in refused.stderr


# --- reported bugs outside the happy paths ---------------------------------------------------


def test_grant_returns_the_envelope_it_delivered(chain, create_record, give, doctor_with_key):
    record = create_record()
    state = give(doctor_with_key)
    (granted,) = decoded(chain, "AccessGranted")
    assert [c.digest for c in state.envelopes] == [bytes(granted["envelopeDigest"])]
    assert record.hex_id


def test_a_key_envelope_opens_only_for_its_readers_and_in_the_grant_it_was_sealed_for(
    chain, store, create_record, give, doctor_with_key, clinic, patient
):
    record = create_record(body("bound"))
    (envelope,) = give(doctor_with_key, only(record)).envelopes
    for reader in (patient, doctor_with_key):  # its readers: the grantee and the patient
        held = consent.open_envelope(
            chain, store, envelope, patient.address, doctor_with_key.address, reader.key
        )
        assert list(held) == [record.hex_id]
    with pytest.raises(NoKeyForReader):
        consent.open_envelope(
            chain, store, envelope, patient.address, doctor_with_key.address, clinic.key
        )
    with pytest.raises(DecryptionFailed):  # its context names the doctor's grant
        consent.open_envelope(chain, store, envelope, patient.address, clinic.address, patient.key)


def test_a_bogus_envelope_delivered_by_a_stranger_does_not_block_the_grantee(
    chain, store, create_record, give, doctor_with_key, patient, stranger
):
    record = create_record(body("targeted"))
    give(doctor_with_key, only(record))
    junk = {record.hex_id: crypto.BodySecret.generate()}  # a key, but not this body's
    readers = [crypto.public_key(doctor_with_key.key)]
    bogus = envelopes.document(chain, patient.address, doctor_with_key.address, readers, junk)
    cid = sealed.seal_one(store, bogus).cid
    assert (
        consent.open_envelope(
            chain, store, cid, patient.address, doctor_with_key.address, doctor_with_key.key
        )
        == junk
    )  # a well-formed envelope for this very grant: only its key is wrong
    manager = consent.consent_contract(chain)
    delivering = manager.functions.deliverKeys(
        patient.address, doctor_with_key.address, int(consent.ScopeKind.RECORD), record.id,
        cid.digest,
    )  # fmt: skip
    with reverts("ConsentNotKeyHolder"):  # a stranger cannot deliver at all
        chain.transact("delivering junk", stranger, delivering)
    chain.transact("delivering junk", patient, delivering)  # a key holder's mistake (or malice)
    assert consent.read(chain, store, doctor_with_key, record.id, log=False) == body("targeted")


def test_chain_now_is_the_latest_block_time_after_a_revert(chain):
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    advance(chain, 10 * 86400)
    number = chain.w3.eth.block_number
    travelled = chain.now()
    chain.w3.provider.make_request("evm_revert", [snapshot])
    while chain.w3.eth.block_number < number:
        chain.w3.provider.make_request("evm_mine", [])
    latest = chain.w3.eth.get_block("latest")
    assert latest["number"] == number
    assert int(chain.now().timestamp()) == latest["timestamp"] != int(travelled.timestamp())


# --- gas ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_has_access_costs_the_same_with_1_and_with_1000_grants(
    chain, store, create_record, give, doctor_with_key, clinic, hospital, patient
):
    started = time.monotonic()
    manager = consent.consent_contract(chain)
    others = [dev_account(7), dev_account(8)]
    for account in others:
        providers.register_patient(chain, account)
    grantees = [*others, clinic, hospital]  # all have published keys; none is the reader

    target = create_record(body("target"), Category.LAB)
    give(doctor_with_key, category(Category.LAB))
    grant_gas = last_receipt(chain)["gasUsed"]
    with_one = manager.functions.hasAccess(doctor_with_key.address, target.id).estimate_gas()

    drafts = [records.Draft(body(f"bulk-{i}"), Category.VITALS) for i in range(100)]
    bulk = records.anchor(
        chain, store, hospital, patient.address, drafts, readers=consent.readers_for(chain)
    )
    expires = int((chain.now() + MONTH).timestamp())
    calls = [
        manager.functions.grant(patient.address, g.address, int(consent.ScopeKind.RECORD), r.id,
                                int(TREATMENT), expires, bytes(32))
        for r in bulk for g in grantees
    ] + [
        manager.functions.grant(patient.address, g.address, int(consent.ScopeKind.CATEGORY),
                                code.to_bytes(32, "big"), int(TREATMENT), expires, bytes(32))
        for code in range(1, 151) for g in grantees
    ]  # fmt: skip
    assert len(calls) == 1000
    receipts = chain.send("granting in bulk", patient, calls, 200_000)
    assert all(len(decoded(chain, "AccessGranted", r)) == 1 for r in receipts)
    with_thousand = manager.functions.hasAccess(doctor_with_key.address, target.id).estimate_gas()
    assert manager.functions.hasAccess(doctor_with_key.address, target.id).call()

    document = consent.sign_grant(
        chain, store, patient, patient.address, doctor_with_key.address, ALL, TREATMENT, MONTH
    )
    consent.submit_signed_grant(chain, store, dev_account(8), document)
    signed_gas = last_receipt(chain)["gasUsed"]
    consent.revoke(chain, patient, patient.address, doctor_with_key.address, ALL)
    revoke_gas = last_receipt(chain)["gasUsed"]
    give(doctor_with_key, ALL)
    log_gas = consent.log_reads(chain, doctor_with_key, [r.id for r in bulk]).gas_used

    print(f"\nGAS hasAccess with 1 grant:      {with_one}")
    print(f"GAS hasAccess after 1,000 more grants to others: {with_thousand}")
    print(f"GAS grant (category, fresh slot, with envelope digest): {grant_gas}")
    print(f"GAS grantWithSignature (all, fresh slot):               {signed_gas}")
    print(f"GAS revoke:                                             {revoke_gas}")
    print(f"GAS logAccess of 100 records:                           {log_gas}")
    print(f"(scenario took {time.monotonic() - started:.1f} s)")
    assert with_one == with_thousand
