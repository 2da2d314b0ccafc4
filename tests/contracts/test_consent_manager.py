"""ConsentManager: grants, signed grants and their cancellation, revocation, delegates (named
in the ProviderRegistry), emergency ("break-glass") access, key delivery, the access log,
erasure, views and gas.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):

* ``patient`` and ``other_patient`` registered;
* ``hospital`` a verified hospital (the usual grantee) and ``doctor`` its practitioner; both
  patients have a live care relationship with the hospital (opened when it wrote their
  records), so the hospital and the doctor may write for them and hold their record keys;
* ``clinic`` a verified clinic and ``outsider`` a verified hospital, neither with a care
  relationship with anybody;
* ``insurer`` a verified insurer;
* ``ems`` a verified emergency service and ``paramedic`` its practitioner;
* ``guardian`` an account with no role, named delegate by the ``delegate`` fixture only;
* ``stranger`` an account with no role and no key;
* records anchored by the hospital: ``lab`` and ``lab_2`` (LAB) and ``imaging`` (IMAGING) of
  the patient, ``other_lab`` (LAB) of the other patient.

Times: a view reads ``block.timestamp`` of the head block on both networks, so "now" below is
``chain.blocks.head.timestamp``. A transaction runs no earlier than the head: one second later
on eth-tester, in the same second on Anvil when it follows ``advance_time`` at once. Expiries,
deadlines and cooldown ends are therefore checked two seconds before (refused on both
networks) and at the head (allowed on both networks).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import (
    ZERO_ADDRESS,
    Category,
    Kind,
    assert_events,
    digest,
    record_id,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from .conftest import Anchored

HOUR = 3600
DAY = 24 * HOUR
MAX_EMERGENCY_DURATION = DAY
EMERGENCY_COOLDOWN = 7 * DAY
ZERO32 = HexBytes(bytes(32))
UNKNOWN_RECORD = digest("no-such-record")
ENVELOPE = digest("envelope")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class Purpose(IntEnum):
    """``IConsentManager.Purpose``."""

    NONE = 0
    TREATMENT = 1
    PAYMENT = 2
    RESEARCH = 3
    OPERATIONS = 4
    PATIENT_REQUEST = 5
    EMERGENCY = 6


class ScopeKind(IntEnum):
    """``IConsentManager.ScopeKind``."""

    RECORD = 0
    CATEGORY = 1
    ALL = 2


def as_scope(category: int) -> HexBytes:
    """A category code as the bytes32 scope value the contract expects."""
    return HexBytes(category.to_bytes(32, "big"))


def scope_key(kind: ScopeKind, scope: bytes) -> HexBytes:
    """``keccak256(abi.encode(uint8 kind, bytes32 scope))``, computed in Python."""
    return HexBytes(keccak(encode(["uint8", "bytes32"], [int(kind), bytes(scope)])))


ALL_KEY = scope_key(ScopeKind.ALL, ZERO32)
NO_GRANT = {"grantedAt": 0, "expiresAt": 0, "revokedAt": 0, "purpose": Purpose.NONE}
NO_EMERGENCY = {"openedAt": 0, "expiresAt": 0, "closedAt": 0, "round": 0}

GRANT_REQUEST_FIELDS = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "scopeKind", "type": "uint8"},
    {"name": "scope", "type": "bytes32"},
    {"name": "purpose", "type": "uint8"},
    {"name": "expiresAt", "type": "uint40"},
    {"name": "envelopeDigest", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
GRANT_TYPE = (
    "GrantRequest(" + ",".join(f"{f['type']} {f['name']}" for f in GRANT_REQUEST_FIELDS) + ")"
)


REVOCATION_REQUEST_FIELDS = [
    {"name": "patient", "type": "address"},
    {"name": "grantee", "type": "address"},
    {"name": "scopeKind", "type": "uint8"},
    {"name": "scope", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REVOCATION_TYPE = (
    "RevocationRequest("
    + ",".join(f"{f['type']} {f['name']}" for f in REVOCATION_REQUEST_FIELDS)
    + ")"
)


def typed_message(
    chain_id: int, verifying_contract: str, primary: str, fields: list[Any], message: Any
) -> Any:
    """An EIP-712 signable message of the ConsentManager (eth_account, independent of the SDK)."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: fields,
            },
            "primaryType": primary,
            "domain": {
                "name": "MedLedger ConsentManager",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": verifying_contract,
            },
            "message": message,
        }
    )


def typed_grant(chain_id: int, verifying_contract: str, request: dict[str, Any]) -> Any:
    """The EIP-712 signable message for a grant request."""
    return typed_message(
        chain_id, verifying_contract, "GrantRequest", GRANT_REQUEST_FIELDS, request
    )


def typed_revocation(chain_id: int, verifying_contract: str, request: dict[str, Any]) -> Any:
    """The EIP-712 signable message for a revocation request."""
    return typed_message(
        chain_id, verifying_contract, "RevocationRequest", REVOCATION_REQUEST_FIELDS, request
    )


def eip712_digest(chain_id: int, verifying_contract: str, request: dict[str, Any]) -> HexBytes:
    signable = typed_grant(chain_id, verifying_contract, request)
    return HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def block_time(chain: Any, receipt: ReceiptAPI) -> int:
    return int(chain.blocks[receipt.block_number].timestamp)


def grant_of(consent: Any, patient: Any, grantee: Any, key: bytes) -> dict[str, Any]:
    return dict(consent.getGrant(patient, grantee, key).items())


def emergency_of(consent: Any, patient: Any, institution: Any) -> dict[str, Any]:
    return dict(consent.emergencyOf(patient, institution).items())


def round_of(registry: Any, institution: Any) -> int:
    """The approval round of ``institution`` now: an opening remembers the round it was made
    in, and a suspension (a new round) ends it."""
    return int(registry.participant(institution).round)


DELEGATE_FIXTURES = {"delegate": "delegate", "dropped-delegate": "dropped_delegate"}


def actor(request: pytest.FixtureRequest, case: str, accounts: dict[str, Any]) -> Any:
    """The account a parametrized case names: one of ``accounts``, or for ``delegate`` and
    ``dropped-delegate`` the fixture of that name (set up only for the cases that use it)."""
    if case in DELEGATE_FIXTURES:
        return request.getfixturevalue(DELEGATE_FIXTURES[case])
    return accounts[case]


# ============================================================================ fixtures


@dataclass(frozen=True)
class Records:
    lab: Anchored
    lab_2: Anchored
    imaging: Anchored
    other_lab: Anchored

    @property
    def own(self) -> tuple[Anchored, Anchored, Anchored]:
        """The patient's three records."""
        return (self.lab, self.lab_2, self.imaging)


def fund(admin: AccountAPI, account: AccountAPI) -> AccountAPI:
    admin.transfer(account, 10**20)
    return account


@pytest.fixture(scope="module")
def consent_manager(project: Any, provider_registry: Any, record_registry: Any, admin: Any) -> Any:
    """The ConsentManager on the session's registries."""
    return project.ConsentManager.deploy(provider_registry, record_registry, sender=admin)


@pytest.fixture(scope="module")
def ems(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) account that the world makes a verified emergency service."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module")
def paramedic(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) practitioner of ``ems``."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module")
def insurer(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) account that the world makes a verified insurer."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module")
def outsider(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) account that the world makes a verified hospital with no patient."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module")
def guardian(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) account with no role: the delegate, once the patient names it."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module")
def records(
    hospital: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    create_record: Callable[..., Anchored],
    world_roles: None,
) -> Records:
    """Written by the hospital, which opens its care relationship with each patient."""
    return Records(
        lab=create_record(hospital, patient, category=Category.LAB),
        lab_2=create_record(hospital, patient, category=Category.LAB),
        imaging=create_record(hospital, patient, category=Category.IMAGING),
        other_lab=create_record(hospital, other_patient, category=Category.LAB),
    )


@pytest.fixture(scope="module")
def world_roles(
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    insurer: AccountAPI,
    outsider: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    verified_institution(Kind.EMERGENCY_SERVICE, account=ems)
    verified_institution(Kind.INSURER, account=insurer)
    verified_institution(Kind.HOSPITAL, account=outsider)
    add_practitioner(hospital, doctor)
    add_practitioner(ems, paramedic)


@pytest.fixture(scope="module", autouse=True)
def world(consent_manager: Any, world_roles: None, records: Records, guardian: AccountAPI) -> None:
    """Sets up every module fixture before any test (see conftest's note on isolation)."""


@pytest.fixture
def delegate(provider_registry: Any, patient: AccountAPI, guardian: AccountAPI) -> AccountAPI:
    """``guardian``, named delegate of ``patient`` in the ProviderRegistry."""
    provider_registry.setDelegate(guardian, True, sender=patient)
    return guardian


@pytest.fixture
def dropped_delegate(provider_registry: Any, patient: AccountAPI, guardian: AccountAPI) -> Any:
    """``guardian``, named delegate of ``patient`` and dropped again."""
    provider_registry.setDelegate(guardian, True, sender=patient)
    provider_registry.setDelegate(guardian, False, sender=patient)
    return guardian


@pytest.fixture(scope="module")
def now(chain: Any) -> Callable[[], int]:
    return lambda: int(chain.blocks.head.timestamp)


@pytest.fixture(scope="module")
def grant_access(
    consent_manager: Any, patient: AccountAPI, hospital: AccountAPI, now: Callable[[], int]
) -> Callable[..., ReceiptAPI]:
    """``grant_access(grantee=hospital, kind=ALL, scope=0, purpose=TREATMENT, ...)``."""

    def grant(
        grantee: Any = None,
        kind: ScopeKind = ScopeKind.ALL,
        scope: bytes = ZERO32,
        purpose: Purpose = Purpose.TREATMENT,
        expires_in: int = DAY,
        envelope: bytes = ENVELOPE,
        sender: Any = None,
        of: Any = None,
    ) -> ReceiptAPI:
        return consent_manager.grant(
            of or patient,
            grantee or hospital,
            kind,
            scope,
            purpose,
            now() + expires_in,
            envelope,
            sender=sender or of or patient,
        )

    return grant


@pytest.fixture(scope="module")
def open_emergency(
    consent_manager: Any, patient: AccountAPI, ems: AccountAPI
) -> Callable[..., ReceiptAPI]:
    """``open_emergency(opener=ems, duration=HOUR, of=patient)``."""

    def open_access(opener: Any = None, duration: int = HOUR, of: Any = None) -> ReceiptAPI:
        return consent_manager.openEmergencyAccess(
            of or patient, duration, "unconscious", sender=opener or ems
        )

    return open_access


@pytest.fixture(scope="module")
def make_request(
    consent_manager: Any, patient: AccountAPI, hospital: AccountAPI, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``make_request(**overrides)``: a grant request for the patient's next nonce."""

    def make(**overrides: Any) -> dict[str, Any]:
        of = overrides.get("patient", patient)
        request: dict[str, Any] = {
            "patient": to_checksum_address(getattr(of, "address", of)),
            "grantee": hospital.address,
            "scopeKind": int(ScopeKind.ALL),
            "scope": ZERO32,
            "purpose": int(Purpose.TREATMENT),
            "expiresAt": now() + DAY,
            "envelopeDigest": ENVELOPE,
            "nonce": consent_manager.nonces(of),
            "deadline": now() + HOUR,
        }
        request.update({k: v for k, v in overrides.items() if k != "patient"})
        grantee = request["grantee"]
        request["grantee"] = to_checksum_address(getattr(grantee, "address", grantee))
        return request

    return make


@pytest.fixture(scope="module")
def sign(consent_manager: Any, chain: Any) -> Callable[[Any, dict[str, Any]], HexBytes]:
    """``sign(account, request)``: the account's EIP-712 signature over the request."""

    def signed(account: Any, request: dict[str, Any]) -> HexBytes:
        signable = typed_grant(chain.chain_id, consent_manager.address, request)
        return HexBytes(Account.sign_message(signable, account.private_key).signature)

    return signed


@pytest.fixture(scope="module")
def make_revocation(
    consent_manager: Any, patient: AccountAPI, hospital: AccountAPI, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``make_revocation(**overrides)``: the revocation of the hospital's ``all`` grant, for
    the patient's next nonce."""

    def make(**overrides: Any) -> dict[str, Any]:
        of = overrides.get("patient", patient)
        revocation: dict[str, Any] = {
            "patient": to_checksum_address(getattr(of, "address", of)),
            "grantee": hospital.address,
            "scopeKind": int(ScopeKind.ALL),
            "scope": ZERO32,
            "nonce": consent_manager.nonces(of),
            "deadline": now() + HOUR,
        }
        revocation.update({k: v for k, v in overrides.items() if k != "patient"})
        grantee = revocation["grantee"]
        revocation["grantee"] = to_checksum_address(getattr(grantee, "address", grantee))
        return revocation

    return make


@pytest.fixture(scope="module")
def sign_revocation(consent_manager: Any, chain: Any) -> Callable[[Any, dict[str, Any]], HexBytes]:
    """``sign_revocation(account, revocation)``: the account's EIP-712 signature over it."""

    def signed(account: Any, revocation: dict[str, Any]) -> HexBytes:
        signable = typed_revocation(chain.chain_id, consent_manager.address, revocation)
        return HexBytes(Account.sign_message(signable, account.private_key).signature)

    return signed


# ============================================================================ grant


@pytest.mark.parametrize("grantor", ["patient", "delegate"])
@pytest.mark.parametrize("kind", ["record", "category", "all"])
def test_grant_stores_grant_and_emits_access_granted_naming_the_grantor(
    chain: Any,
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    guardian: AccountAPI,
    records: Records,
    now: Callable[[], int],
    grantor: str,
    kind: str,
) -> None:
    consent = consent_manager
    sender = patient
    if grantor == "delegate":
        provider_registry.setDelegate(guardian, True, sender=patient)
        sender = guardian
    scope_kind, scope = {
        "record": (ScopeKind.RECORD, records.lab.id),
        "category": (ScopeKind.CATEGORY, as_scope(Category.LAB)),
        "all": (ScopeKind.ALL, ZERO32),
    }[kind]
    key = scope_key(scope_kind, scope)
    expires = now() + DAY
    args = (patient, hospital, scope_kind, scope, Purpose.TREATMENT, expires, ENVELOPE)
    assert HexBytes(consent.grant.call(*args, sender=sender)) == key
    assert not consent.hasAccess(hospital, records.lab.id)

    tx = consent.grant(*args, sender=sender)

    assert_events(
        tx,
        consent.AccessGranted(
            patient=patient,
            grantee=hospital,
            scopeKey=key,
            scopeKind=scope_kind,
            scope=scope,
            purpose=Purpose.TREATMENT,
            expiresAt=expires,
            envelopeDigest=ENVELOPE,
            grantor=sender,
        ),
    )
    assert grant_of(consent, patient, hospital, key) == {
        "grantedAt": block_time(chain, tx),
        "expiresAt": expires,
        "revokedAt": 0,
        "purpose": Purpose.TREATMENT,
    }
    assert consent.hasAccess(hospital, records.lab.id)
    assert not consent.hasAccess(hospital, records.other_lab.id)


@pytest.mark.parametrize("category", [1, 255], ids=["lowest-code", "highest-code"])
def test_grant_accepts_category_codes_from_1_to_255(
    consent_manager: Any,
    grant_access: Callable[..., ReceiptAPI],
    category: int,
) -> None:
    tx = grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(category))
    (log,) = consent_manager.AccessGranted.from_receipt(tx)
    assert HexBytes(log.scopeKey) == scope_key(ScopeKind.CATEGORY, as_scope(category))


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "grantee",
        "other-patient",
        "dropped-delegate",
        "insurer",
        "emergency-service",
        "care-practitioner",
    ],
)
def test_grant_reverts_when_caller_is_neither_patient_nor_delegate(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    insurer: AccountAPI,
    ems: AccountAPI,
    doctor: AccountAPI,
    now: Callable[[], int],
    caller: str,
) -> None:
    account = actor(
        request,
        caller,
        {
            "stranger": stranger,
            "grantee": hospital,
            "other-patient": other_patient,
            "insurer": insurer,
            "emergency-service": ems,
            "care-practitioner": doctor,
        },
    )
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=account, patient=patient):
        consent_manager.grant(
            patient,
            hospital,
            ScopeKind.ALL,
            ZERO32,
            Purpose.TREATMENT,
            now() + DAY,
            ENVELOPE,
            sender=account,
        )
    assert grant_of(consent_manager, patient, hospital, ALL_KEY) == NO_GRANT


def test_delegate_of_one_patient_cannot_grant_for_another(
    consent_manager: Any,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    delegate: AccountAPI,
    now: Callable[[], int],
) -> None:
    with reverts(
        consent_manager.ConsentNotPatientOrDelegate, caller=delegate, patient=other_patient
    ):
        consent_manager.grant(
            other_patient,
            hospital,
            ScopeKind.ALL,
            ZERO32,
            Purpose.TREATMENT,
            now() + DAY,
            ENVELOPE,
            sender=delegate,
        )


@pytest.mark.parametrize("purpose", [Purpose.NONE, Purpose.EMERGENCY], ids=["none", "emergency"])
def test_grant_reverts_for_purpose_none_or_emergency(
    consent_manager: Any, grant_access: Callable[..., ReceiptAPI], purpose: Purpose
) -> None:
    with reverts(consent_manager.ConsentInvalidPurpose, purpose=purpose):
        grant_access(purpose=purpose)


@pytest.mark.networks  # the head's second: Anvil may run the transaction in it
@pytest.mark.parametrize("expiry", ["head-block", "an-hour-ago", "zero"])
def test_grant_reverts_when_expiry_is_not_in_the_future(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    now: Callable[[], int],
    expiry: str,
) -> None:
    # The transaction runs at the head's time or later, so the head's time is not in the future.
    expires = {"head-block": now(), "an-hour-ago": now() - HOUR, "zero": 0}[expiry]
    with reverts(consent_manager.ConsentInvalidExpiry, expiresAt=expires):
        consent_manager.grant(
            patient,
            hospital,
            ScopeKind.ALL,
            ZERO32,
            Purpose.TREATMENT,
            expires,
            ENVELOPE,
            sender=patient,
        )


@pytest.mark.parametrize("grantee", ["the-patient", "zero-address"])
def test_grant_reverts_for_the_patient_or_the_zero_address_as_grantee(
    consent_manager: Any,
    patient: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    grantee: str,
) -> None:
    account = patient.address if grantee == "the-patient" else ZERO_ADDRESS
    with reverts(consent_manager.ConsentInvalidGrantee, grantee=account):
        grant_access(grantee=account)


@pytest.mark.parametrize(
    "grantee", ["no-role-no-key", "practitioner-without-key", "other-patient", "delegate"]
)
def test_grant_to_any_other_account_is_accepted_without_a_key_check(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    grantee: str,
) -> None:
    """Only the grantee's being neither the patient nor zero is checked on chain; whether it
    published a key is the client's to check (without one it can decrypt nothing)."""
    account = actor(
        request,
        grantee,
        {
            "no-role-no-key": stranger,
            "practitioner-without-key": paramedic,
            "other-patient": other_patient,
        },
    )
    assert not consent_manager.hasAccess(account, records.lab.id)

    tx = grant_access(grantee=account, kind=ScopeKind.RECORD, scope=records.lab.id)

    (log,) = consent_manager.AccessGranted.from_receipt(tx)
    assert log.grantee == account.address
    assert consent_manager.hasAccess(account, records.lab.id)
    assert not consent_manager.hasAccess(account, records.lab_2.id)


@pytest.mark.parametrize(
    "case",
    [
        "record-zero",
        "category-0",
        "category-256",
        "category-max-uint",
        "all-with-nonzero-scope",
        "all-with-high-bit",
    ],
)
def test_grant_reverts_for_scope_that_does_not_fit_its_kind(
    consent_manager: Any,
    grant_access: Callable[..., ReceiptAPI],
    case: str,
) -> None:
    kind, scope = {
        "record-zero": (ScopeKind.RECORD, ZERO32),
        "category-0": (ScopeKind.CATEGORY, ZERO32),
        "category-256": (ScopeKind.CATEGORY, as_scope(256)),
        "category-max-uint": (ScopeKind.CATEGORY, HexBytes(b"\xff" * 32)),
        "all-with-nonzero-scope": (ScopeKind.ALL, as_scope(1)),
        "all-with-high-bit": (ScopeKind.ALL, HexBytes(b"\x80" + bytes(31))),
    }[case]
    with reverts(consent_manager.ConsentInvalidScope, kind=kind, scope=scope):
        grant_access(kind=kind, scope=scope)


@pytest.mark.parametrize("named", ["other-patients-record", "unknown-record"])
def test_record_scope_grant_naming_a_record_not_the_patients_never_opens_it(
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    named: str,
) -> None:
    """Grants are looked up under the record's own patient: a grant by ``patient`` naming
    ``other_patient``'s record is stored (the client refuses to send it) and opens nothing."""
    target = records.other_lab.id if named == "other-patients-record" else UNKNOWN_RECORD
    key = scope_key(ScopeKind.RECORD, target)

    tx = grant_access(kind=ScopeKind.RECORD, scope=target)

    (log,) = consent_manager.AccessGranted.from_receipt(tx)
    assert HexBytes(log.scopeKey) == key
    assert grant_of(consent_manager, patient, hospital, key)["grantedAt"] != 0
    assert grant_of(consent_manager, other_patient, hospital, key) == NO_GRANT
    for record in (target, *(r.id for r in records.own)):
        assert not consent_manager.hasAccess(hospital, record)
        for purpose in Purpose:
            if purpose is not Purpose.NONE:
                assert not consent_manager.hasAccessFor(hospital, record, purpose)
    with reverts(consent_manager.ConsentAccessDenied, reader=hospital, id=target):
        consent_manager.logAccess([target], sender=hospital)


def test_grant_again_after_revocation_restores_access_with_new_terms(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    grant_access()
    consent_manager.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=patient)
    assert not consent_manager.hasAccess(hospital, records.lab.id)

    tx = grant_access(purpose=Purpose.RESEARCH, expires_in=2 * DAY)

    assert consent_manager.hasAccessFor(hospital, records.lab.id, Purpose.RESEARCH)
    assert not consent_manager.hasAccessFor(hospital, records.lab.id, Purpose.TREATMENT)
    stored = grant_of(consent_manager, patient, hospital, ALL_KEY)
    assert stored["revokedAt"] == 0
    assert stored["grantedAt"] == block_time(chain, tx)
    assert stored["purpose"] == Purpose.RESEARCH


# ============================================================================ hasAccess


def test_patient_reads_own_records_for_no_purpose_or_patient_request_only(
    consent_manager: Any, patient: AccountAPI, records: Records
) -> None:
    consent = consent_manager
    for record in records.own:
        assert consent.hasAccess(patient, record.id)
        assert consent.hasAccessFor(patient, record.id, Purpose.PATIENT_REQUEST)
        for purpose in (Purpose.TREATMENT, Purpose.RESEARCH, Purpose.EMERGENCY):
            assert not consent.hasAccessFor(patient, record.id, purpose)
    assert not consent.hasAccess(patient, records.other_lab.id)
    assert not consent.hasAccessFor(patient, records.other_lab.id, Purpose.PATIENT_REQUEST)


def test_writing_a_patients_records_gives_no_read_access(
    consent_manager: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    records: Records,
) -> None:
    """The hospital wrote every record and holds a live care relationship; reading still needs
    the patient's grant."""
    for reader in (hospital, doctor):
        for record in (*records.own, records.other_lab):
            assert not consent_manager.hasAccess(reader, record.id)


@pytest.mark.parametrize(
    ("kind", "covered"),
    [
        ("record", {"lab"}),
        ("category", {"lab", "lab_2"}),
        ("all", {"lab", "lab_2", "imaging"}),
    ],
)
def test_grant_covers_exactly_the_records_in_its_scope(
    consent_manager: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    kind: str,
    covered: set[str],
) -> None:
    scope_kind, scope = {
        "record": (ScopeKind.RECORD, records.lab.id),
        "category": (ScopeKind.CATEGORY, as_scope(Category.LAB)),
        "all": (ScopeKind.ALL, ZERO32),
    }[kind]
    grant_access(kind=scope_kind, scope=scope, purpose=Purpose.PAYMENT)
    for name in ("lab", "lab_2", "imaging", "other_lab"):
        record_id = getattr(records, name).id
        expected = name in covered
        assert consent_manager.hasAccess(hospital, record_id) == expected, name
        assert consent_manager.hasAccessFor(hospital, record_id, Purpose.PAYMENT) == expected
        assert not consent_manager.hasAccessFor(hospital, record_id, Purpose.TREATMENT), name
        assert not consent_manager.hasAccessFor(hospital, record_id, Purpose.EMERGENCY), name
        assert not consent_manager.hasAccess(doctor, record_id), "the grant is per account"
    assert not consent_manager.hasAccess(hospital, UNKNOWN_RECORD)


def test_access_from_any_live_scope_survives_revocation_of_another(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    grant_access(kind=ScopeKind.RECORD, scope=records.lab.id, purpose=Purpose.TREATMENT)
    grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB), purpose=Purpose.RESEARCH)
    consent_manager.revoke(patient, hospital, ScopeKind.RECORD, records.lab.id, sender=patient)

    assert consent_manager.hasAccess(hospital, records.lab.id)
    assert consent_manager.hasAccessFor(hospital, records.lab.id, Purpose.RESEARCH)
    assert not consent_manager.hasAccessFor(hospital, records.lab.id, Purpose.TREATMENT)


def test_revoked_grant_gives_no_access(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    grant_access()
    consent_manager.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=patient)
    for record in records.own:
        assert not consent_manager.hasAccess(hospital, record.id)
        assert not consent_manager.hasAccessFor(hospital, record.id, Purpose.TREATMENT)


def test_grant_gives_access_until_just_before_expiry_and_none_from_then_on(
    consent_manager: Any,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    grant_access(expires_in=HOUR)
    expires = grant_of(consent_manager, records.lab.patient, hospital, ALL_KEY)["expiresAt"]

    advance_time(expires - 1 - now())
    assert consent_manager.hasAccess(hospital, records.lab.id)
    advance_time(1)  # head block at expiresAt exactly
    assert not consent_manager.hasAccess(hospital, records.lab.id)
    assert not consent_manager.hasAccessFor(hospital, records.lab.id, Purpose.TREATMENT)
    advance_time(DAY)
    assert not consent_manager.hasAccess(hospital, records.lab.id)


def test_erased_record_gives_nobody_access(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    grant_access(kind=ScopeKind.RECORD, scope=records.lab.id)
    grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB), purpose=Purpose.RESEARCH)
    grant_access()
    open_emergency()

    consent_manager.eraseRecord(records.lab.id, sender=patient)

    for reader in (patient, hospital, ems, paramedic):
        assert not consent_manager.hasAccess(reader, records.lab.id)
        for purpose in Purpose:
            if purpose is not Purpose.NONE:
                assert not consent_manager.hasAccessFor(reader, records.lab.id, purpose)
        assert consent_manager.hasAccess(reader, records.lab_2.id), "only that record is erased"


def test_unknown_record_gives_nobody_access(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    ems: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    grant_access()
    open_emergency()
    for reader in (patient, hospital, stranger, ems):
        assert not consent_manager.hasAccess(reader, UNKNOWN_RECORD)
        assert not consent_manager.hasAccessFor(reader, UNKNOWN_RECORD, Purpose.PATIENT_REQUEST)
        assert not consent_manager.hasAccessFor(reader, UNKNOWN_RECORD, Purpose.TREATMENT)
        assert not consent_manager.hasAccessFor(reader, UNKNOWN_RECORD, Purpose.EMERGENCY)


def test_has_access_for_reverts_for_purpose_none(
    consent_manager: Any, patient: AccountAPI, records: Records
) -> None:
    with reverts(consent_manager.ConsentInvalidPurpose, purpose=Purpose.NONE):
        consent_manager.hasAccessFor(patient, records.lab.id, Purpose.NONE)
    assert consent_manager.hasAccessFor(patient, records.lab.id, Purpose.PATIENT_REQUEST)


# ============================================================================ signed grants


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    patient_address=st.binary(min_size=20, max_size=20),
    grantee_address=st.binary(min_size=20, max_size=20),
    kind=st.sampled_from(ScopeKind),
    scope=st.binary(min_size=32, max_size=32),
    purpose=st.sampled_from(Purpose),
    expires=st.integers(0, 2**40 - 1),
    envelope=st.binary(min_size=32, max_size=32),
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_eip712_digest_equals_grant_digest(
    chain: Any,
    consent_manager: Any,
    patient_address: bytes,
    grantee_address: bytes,
    kind: ScopeKind,
    scope: bytes,
    purpose: Purpose,
    expires: int,
    envelope: bytes,
    nonce: int,
    deadline: int,
) -> None:
    request = {
        "patient": to_checksum_address(patient_address),
        "grantee": to_checksum_address(grantee_address),
        "scopeKind": int(kind),
        "scope": HexBytes(scope),
        "purpose": int(purpose),
        "expiresAt": expires,
        "envelopeDigest": HexBytes(envelope),
        "nonce": nonce,
        "deadline": deadline,
    }
    expected = eip712_digest(chain.chain_id, consent_manager.address, request)
    assert HexBytes(consent_manager.grantDigest(request)) == expected


def test_eip712_domain_type_hash_and_limits_are_the_documented_ones(
    chain: Any, consent_manager: Any
) -> None:
    domain = consent_manager.eip712Domain()
    assert (domain.name, domain.version) == ("MedLedger ConsentManager", "1")
    assert (domain.chainId, domain.verifyingContract) == (chain.chain_id, consent_manager.address)
    assert HexBytes(consent_manager.GRANT_TYPEHASH()) == HexBytes(keccak(text=GRANT_TYPE))
    assert consent_manager.MAX_EMERGENCY_DURATION() == MAX_EMERGENCY_DURATION
    assert consent_manager.EMERGENCY_COOLDOWN() == EMERGENCY_COOLDOWN


@pytest.mark.parametrize("signer", ["patient", "delegate"])
def test_relayer_submits_signed_grant_and_the_nonce_advances(
    chain: Any,
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    guardian: AccountAPI,
    records: Records,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    signer: str,
) -> None:
    consent = consent_manager
    account = patient
    if signer == "delegate":
        provider_registry.setDelegate(guardian, True, sender=patient)
        account = guardian
    scope = as_scope(Category.IMAGING)
    request = make_request(scopeKind=ScopeKind.CATEGORY, scope=scope, purpose=Purpose.RESEARCH)
    assert request["nonce"] == 0
    signature = sign(account, request)
    key = scope_key(ScopeKind.CATEGORY, scope)
    assert HexBytes(consent.grantWithSignature.call(request, signature, sender=stranger)) == key

    tx = consent.grantWithSignature(request, signature, sender=stranger)

    assert_events(
        tx,
        consent.AccessGranted(
            patient=patient,
            grantee=hospital,
            scopeKey=key,
            scopeKind=ScopeKind.CATEGORY,
            scope=scope,
            purpose=Purpose.RESEARCH,
            expiresAt=request["expiresAt"],
            envelopeDigest=ENVELOPE,
            grantor=account,
        ),
    )
    assert consent.nonces(patient) == 1
    assert consent.nonces(account) == (1 if account == patient else 0)
    assert grant_of(consent, patient, hospital, key) == {
        "grantedAt": block_time(chain, tx),
        "expiresAt": request["expiresAt"],
        "revokedAt": 0,
        "purpose": Purpose.RESEARCH,
    }
    assert consent.hasAccessFor(hospital, records.imaging.id, Purpose.RESEARCH)
    assert not consent.hasAccess(hospital, records.lab.id)
    assert not consent.hasAccess(stranger, records.imaging.id), "the relayer gains nothing"

    follow_up = make_request()
    assert follow_up["nonce"] == 1
    consent.grantWithSignature(follow_up, sign(account, follow_up), sender=stranger)
    assert consent.nonces(patient) == 2


def test_replayed_signature_reverts(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request()
    signature = sign(patient, request)
    consent_manager.grantWithSignature(request, signature, sender=stranger)

    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=0, expectedNonce=1
    ):
        consent_manager.grantWithSignature(request, signature, sender=stranger)


def test_signature_for_a_later_nonce_reverts(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request(nonce=5)
    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=5, expectedNonce=0
    ):
        consent_manager.grantWithSignature(request, sign(patient, request), sender=stranger)


def test_signature_after_its_deadline_reverts(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    request = make_request()
    advance_time(request["deadline"] + 1 - now())  # at the deadline itself it is still valid
    with reverts(consent_manager.ConsentSignatureExpired, deadline=request["deadline"]):
        consent_manager.grantWithSignature(request, sign(patient, request), sender=stranger)
    assert consent_manager.nonces(patient) == 0


@pytest.mark.parametrize(
    "signer", ["stranger", "grantee", "dropped-delegate", "other-patient", "insurer"]
)
def test_signature_by_neither_patient_nor_delegate_reverts(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    insurer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    signer: str,
) -> None:
    account = actor(
        request,
        signer,
        {
            "stranger": stranger,
            "grantee": hospital,
            "other-patient": other_patient,
            "insurer": insurer,
        },
    )
    grant_request = make_request()
    with reverts(consent_manager.ConsentInvalidSignature, signer=account, patient=patient):
        consent_manager.grantWithSignature(
            grant_request, sign(account, grant_request), sender=stranger
        )
    assert consent_manager.nonces(patient) == 0


def test_signature_of_a_delegate_dropped_before_submission_reverts(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    delegate: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request()
    signature = sign(delegate, request)  # signed while the delegate was named

    provider_registry.setDelegate(delegate, False, sender=patient)

    with reverts(consent_manager.ConsentInvalidSignature, signer=delegate, patient=patient):
        consent_manager.grantWithSignature(request, signature, sender=stranger)
    assert grant_of(consent_manager, patient, hospital, ALL_KEY) == NO_GRANT
    assert consent_manager.nonces(patient) == 0


def test_patient_signature_cannot_grant_for_another_patient(
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request(patient=other_patient)
    with reverts(consent_manager.ConsentInvalidSignature, signer=patient, patient=other_patient):
        consent_manager.grantWithSignature(request, sign(patient, request), sender=stranger)


@pytest.mark.parametrize("field", ["grantee", "purpose", "expiresAt", "scope"])
def test_signature_over_a_different_request_recovers_another_signer_and_reverts(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    field: str,
) -> None:
    request = make_request(scopeKind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    signature = sign(patient, request)
    changes = {
        "grantee": doctor.address,
        "purpose": int(Purpose.RESEARCH),
        "expiresAt": request["expiresAt"] + 1,
        "scope": as_scope(Category.IMAGING),
    }
    tampered = request | {field: changes[field]}
    recovered = Account.recover_message(
        typed_grant(chain.chain_id, consent_manager.address, tampered), signature=signature
    )
    assert recovered != patient.address
    with reverts(consent_manager.ConsentInvalidSignature, signer=recovered, patient=patient):
        consent_manager.grantWithSignature(tampered, signature, sender=stranger)


@pytest.mark.parametrize("signature", ["empty", "64-bytes", "high-s-twin", "v-not-27-or-28"])
def test_malformed_signature_reverts_with_zero_signer(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    signature: str,
) -> None:
    request = make_request()
    good = sign(patient, request)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    bad = {
        "empty": b"",
        "64-bytes": bytes(good[:64]),
        # Same signer, malleated: OpenZeppelin's ECDSA refuses s in the upper half.
        "high-s-twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
        "v-not-27-or-28": r + good[32:64] + bytes([v + 2]),
    }[signature]
    with reverts(consent_manager.ConsentInvalidSignature, signer=ZERO_ADDRESS, patient=patient):
        consent_manager.grantWithSignature(request, bad, sender=stranger)


def test_signed_grant_obeys_the_grant_rules_and_keeps_the_nonce_on_failure(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    consent = consent_manager
    cases = [
        (
            make_request(purpose=int(Purpose.EMERGENCY)),
            consent.ConsentInvalidPurpose,
            {"purpose": Purpose.EMERGENCY},
        ),
        (make_request(grantee=patient), consent.ConsentInvalidGrantee, {"grantee": patient}),
        (
            make_request(grantee=ZERO_ADDRESS),
            consent.ConsentInvalidGrantee,
            {"grantee": ZERO_ADDRESS},
        ),
        (
            make_request(scopeKind=int(ScopeKind.RECORD), scope=ZERO32),
            consent.ConsentInvalidScope,
            {"kind": ScopeKind.RECORD, "scope": ZERO32},
        ),
        (
            make_request(scopeKind=int(ScopeKind.CATEGORY), scope=as_scope(256)),
            consent.ConsentInvalidScope,
            {"kind": ScopeKind.CATEGORY, "scope": as_scope(256)},
        ),
        (make_request(expiresAt=0), consent.ConsentInvalidExpiry, {"expiresAt": 0}),
    ]
    for request, error, inputs in cases:
        with reverts(error, **inputs):
            consent.grantWithSignature(request, sign(patient, request), sender=stranger)
    assert consent.nonces(patient) == 0


# ============================================================================ cancelSignatures


@pytest.mark.parametrize("canceller", ["patient", "delegate"])
def test_cancel_signatures_burns_the_nonce_so_the_signed_grant_reverts(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    canceller: str,
) -> None:
    consent = consent_manager
    sender = patient if canceller == "patient" else request.getfixturevalue("delegate")
    signed = make_request()
    signature = sign(patient, signed)  # handed to a relayer, then the patient changes their mind
    registry_nonce = provider_registry.nonces(patient)

    tx = consent.cancelSignatures(patient, sender=sender)

    assert_events(tx, consent.SignaturesCancelled(patient=patient, nonce=0, by=sender))
    assert consent.nonces(patient) == 1
    assert provider_registry.nonces(patient) == registry_nonce, "the registry's nonces are apart"
    with reverts(consent.ConsentSignatureReplayed, patient=patient, nonce=0, expectedNonce=1):
        consent.grantWithSignature(signed, signature, sender=stranger)
    assert grant_of(consent, patient, hospital, ALL_KEY) == NO_GRANT

    fresh = make_request()
    assert fresh["nonce"] == 1
    consent.grantWithSignature(fresh, sign(patient, fresh), sender=stranger)
    assert grant_of(consent, patient, hospital, ALL_KEY)["expiresAt"] == fresh["expiresAt"]


@pytest.mark.parametrize(
    "caller", ["stranger", "grantee", "other-patient", "dropped-delegate", "insurer"]
)
def test_cancel_signatures_reverts_for_caller_neither_patient_nor_delegate(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    insurer: AccountAPI,
    records: Records,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    caller: str,
) -> None:
    account = actor(
        request,
        caller,
        {
            "stranger": stranger,
            "grantee": hospital,
            "other-patient": other_patient,
            "insurer": insurer,
        },
    )
    signed = make_request()

    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=account, patient=patient):
        consent_manager.cancelSignatures(patient, sender=account)

    assert consent_manager.nonces(patient) == 0
    consent_manager.grantWithSignature(signed, sign(patient, signed), sender=stranger)
    assert consent_manager.hasAccess(hospital, records.lab.id), "the signature still counts"


# ============================================================================ revoke


@pytest.mark.parametrize("revoker", ["patient", "delegate"])
def test_revoke_ends_access_and_emits_access_revoked(
    request: pytest.FixtureRequest,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    revoker: str,
) -> None:
    grant_access(kind=ScopeKind.RECORD, scope=records.lab.id)
    sender = patient if revoker == "patient" else request.getfixturevalue("delegate")
    key = scope_key(ScopeKind.RECORD, records.lab.id)
    granted = grant_of(consent_manager, patient, hospital, key)

    tx = consent_manager.revoke(patient, hospital, ScopeKind.RECORD, records.lab.id, sender=sender)

    assert_events(
        tx,
        consent_manager.AccessRevoked(
            patient=patient, grantee=hospital, scopeKey=key, revoker=sender
        ),
    )
    assert grant_of(consent_manager, patient, hospital, key) == granted | {
        "revokedAt": block_time(chain, tx)
    }
    assert not consent_manager.hasAccess(hospital, records.lab.id)


@pytest.mark.parametrize("state", ["never-granted", "already-revoked", "expired", "other-scope"])
def test_revoke_reverts_without_a_live_grant(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    advance_time: Callable[[int], int],
    state: str,
) -> None:
    if state == "already-revoked":
        grant_access(kind=ScopeKind.RECORD, scope=records.lab.id)
        consent_manager.revoke(patient, hospital, ScopeKind.RECORD, records.lab.id, sender=patient)
    elif state == "expired":
        grant_access(kind=ScopeKind.RECORD, scope=records.lab.id, expires_in=HOUR)
        advance_time(HOUR)
    elif state == "other-scope":
        grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    key = scope_key(ScopeKind.RECORD, records.lab.id)
    with reverts(
        consent_manager.ConsentNotGranted, patient=patient, grantee=hospital, scopeKey=key
    ):
        consent_manager.revoke(patient, hospital, ScopeKind.RECORD, records.lab.id, sender=patient)


@pytest.mark.parametrize(
    "caller", ["grantee", "stranger", "dropped-delegate", "insurer", "other-patient"]
)
def test_revoke_reverts_when_caller_is_neither_patient_nor_delegate(
    request: pytest.FixtureRequest,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    insurer: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    caller: str,
) -> None:
    account = actor(
        request,
        caller,
        {
            "grantee": hospital,
            "stranger": stranger,
            "insurer": insurer,
            "other-patient": other_patient,
        },
    )
    tx = grant_access()
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=account, patient=patient):
        consent_manager.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=account)
    assert grant_of(consent_manager, patient, hospital, ALL_KEY)["grantedAt"] == block_time(
        chain, tx
    )
    assert grant_of(consent_manager, patient, hospital, ALL_KEY)["revokedAt"] == 0
    assert consent_manager.hasAccess(hospital, records.lab.id)


def test_revoke_cannot_end_an_emergency_opening_which_is_no_grant(
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    open_emergency()
    with reverts(consent_manager.ConsentNotGranted, patient=patient, grantee=ems, scopeKey=ALL_KEY):
        consent_manager.revoke(patient, ems, ScopeKind.ALL, ZERO32, sender=patient)
    assert consent_manager.hasAccess(ems, records.lab.id), "closeEmergencyAccess ends it"


# ============================================================================ signed revocations
# The exploit tests first: what a relayer (the gateway serving DELETE /Consent/{id}), a
# grantee or another patient must not be able to do with a signed revocation.


def test_revocation_type_hash_matches_the_struct(consent_manager: Any) -> None:
    assert HexBytes(consent_manager.REVOCATION_TYPEHASH()) == HexBytes(keccak(text=REVOCATION_TYPE))


def test_revocation_digest_matches_an_independent_eip712_encoding(
    chain: Any, consent_manager: Any, make_revocation: Callable[..., dict[str, Any]]
) -> None:
    revocation = make_revocation(scopeKind=int(ScopeKind.CATEGORY), scope=as_scope(Category.LAB))
    signable = typed_revocation(chain.chain_id, consent_manager.address, revocation)
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert HexBytes(consent_manager.revocationDigest(revocation)) == HexBytes(expected)


def test_replayed_revocation_reverts_even_after_the_grant_is_given_again(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
) -> None:
    """Exploit: a relayer keeps a used revocation and replays it after the patient grants
    again, to end the new grant the patient did not mean to end."""
    grant_access()
    revocation = make_revocation()
    signature = sign_revocation(patient, revocation)
    consent_manager.revokeWithSignature(revocation, signature, sender=stranger)
    grant_access()

    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=0, expectedNonce=1
    ):
        consent_manager.revokeWithSignature(revocation, signature, sender=stranger)
    assert grant_of(consent_manager, patient, revocation["grantee"], ALL_KEY)["revokedAt"] == 0


def test_patient_signature_cannot_revoke_another_patients_grant(
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
) -> None:
    """Exploit: one patient's signature names another patient's grant."""
    grant_access(of=other_patient)
    revocation = make_revocation(patient=other_patient)
    with reverts(consent_manager.ConsentInvalidSignature, signer=patient, patient=other_patient):
        consent_manager.revokeWithSignature(
            revocation, sign_revocation(patient, revocation), sender=stranger
        )
    assert grant_of(consent_manager, other_patient, hospital, ALL_KEY)["revokedAt"] == 0


@pytest.mark.parametrize(
    "signer", ["the-grantee", "another-grantee", "dropped-delegate", "other-patient", "stranger"]
)
def test_revocation_signed_by_neither_patient_nor_delegate_reverts(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    signer: str,
) -> None:
    """Exploit: a grantee ends its own grant or a rival's (the clinic, also a grantee, ends the
    hospital's), or anyone else but the patient and a delegate ends one."""
    grant_access()
    grant_access(grantee=clinic)
    account = actor(
        request,
        signer,
        {
            "the-grantee": hospital,
            "another-grantee": clinic,
            "other-patient": other_patient,
            "stranger": stranger,
        },
    )
    revocation = make_revocation()
    with reverts(consent_manager.ConsentInvalidSignature, signer=account, patient=patient):
        consent_manager.revokeWithSignature(
            revocation, sign_revocation(account, revocation), sender=stranger
        )
    assert consent_manager.nonces(patient) == 0
    assert grant_of(consent_manager, patient, hospital, ALL_KEY)["revokedAt"] == 0


@pytest.mark.parametrize("field", ["grantee", "scope", "deadline"])
def test_revocation_signature_over_another_request_recovers_another_signer_and_reverts(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    field: str,
) -> None:
    """Exploit: a relayer given the revocation of one grant bends it to end another."""
    grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.IMAGING))
    grant_access(grantee=clinic, kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    revocation = make_revocation(scopeKind=int(ScopeKind.CATEGORY), scope=as_scope(Category.LAB))
    signature = sign_revocation(patient, revocation)
    changes = {
        "grantee": clinic.address,
        "scope": as_scope(Category.IMAGING),
        "deadline": revocation["deadline"] + 1,
    }
    tampered = revocation | {field: changes[field]}
    recovered = Account.recover_message(
        typed_revocation(chain.chain_id, consent_manager.address, tampered), signature=signature
    )
    with reverts(consent_manager.ConsentInvalidSignature, signer=recovered, patient=patient):
        consent_manager.revokeWithSignature(tampered, signature, sender=stranger)


def test_a_signed_grant_is_no_signed_revocation(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_request: Callable[..., dict[str, Any]],
    make_revocation: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    """Exploit: the signature of a grant (same patient, grantee, scope, nonce, deadline)
    submitted as a revocation: the type hashes differ, so another signer is recovered."""
    grant_access()
    granted = make_request()
    signature = sign(patient, granted)
    revocation = make_revocation(deadline=granted["deadline"])
    recovered = Account.recover_message(
        typed_revocation(chain.chain_id, consent_manager.address, revocation), signature=signature
    )
    assert recovered != patient.address
    with reverts(consent_manager.ConsentInvalidSignature, signer=recovered, patient=patient):
        consent_manager.revokeWithSignature(revocation, signature, sender=stranger)


@pytest.mark.parametrize("signature", ["empty", "64-bytes", "high-s-twin", "v-not-27-or-28"])
def test_malformed_or_malleated_revocation_signature_reverts_with_zero_signer(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    signature: str,
) -> None:
    """Exploit: a second valid-looking signature made from the first (s -> n - s) to revoke
    twice or dodge a relayer's deduplication."""
    grant_access()
    revocation = make_revocation()
    good = sign_revocation(patient, revocation)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    bad = {
        "empty": b"",
        "64-bytes": bytes(good[:64]),
        "high-s-twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
        "v-not-27-or-28": r + good[32:64] + bytes([v + 2]),
    }[signature]
    with reverts(consent_manager.ConsentInvalidSignature, signer=ZERO_ADDRESS, patient=patient):
        consent_manager.revokeWithSignature(revocation, bad, sender=stranger)
    assert grant_of(consent_manager, patient, hospital, ALL_KEY)["revokedAt"] == 0


def test_revocation_after_its_deadline_or_for_a_later_nonce_reverts(
    consent_manager: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    grant_access(expires_in=DAY)
    later = make_revocation(nonce=3)
    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=3, expectedNonce=0
    ):
        consent_manager.revokeWithSignature(later, sign_revocation(patient, later), sender=stranger)
    revocation = make_revocation()
    advance_time(revocation["deadline"] + 1 - now())
    with reverts(consent_manager.ConsentSignatureExpired, deadline=revocation["deadline"]):
        consent_manager.revokeWithSignature(
            revocation, sign_revocation(patient, revocation), sender=stranger
        )
    assert consent_manager.nonces(patient) == 0


@pytest.mark.parametrize("state", ["never-granted", "already-revoked", "emergency-only"])
def test_signed_revocation_of_no_live_grant_reverts_and_keeps_the_nonce(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    state: str,
) -> None:
    grantee = ems if state == "emergency-only" else hospital
    if state == "already-revoked":
        grant_access()
        consent_manager.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=patient)
    elif state == "emergency-only":
        open_emergency()
    revocation = make_revocation(grantee=grantee)
    with reverts(
        consent_manager.ConsentNotGranted, patient=patient, grantee=grantee, scopeKey=ALL_KEY
    ):
        consent_manager.revokeWithSignature(
            revocation, sign_revocation(patient, revocation), sender=stranger
        )
    assert consent_manager.nonces(patient) == 0


@pytest.mark.parametrize("signer", ["patient", "delegate"])
def test_relayer_submits_a_signed_revocation_which_ends_access_like_revoke(
    request: pytest.FixtureRequest,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
    signer: str,
) -> None:
    """The gateway relays (it holds the institution's key, here the hospital's, which is the
    grantee itself: relaying gives it nothing); the event names the signer as revoker."""
    account = patient if signer == "patient" else request.getfixturevalue("delegate")
    grant_access(kind=ScopeKind.RECORD, scope=records.lab.id)
    key = scope_key(ScopeKind.RECORD, records.lab.id)
    revocation = make_revocation(scopeKind=int(ScopeKind.RECORD), scope=records.lab.id)

    tx = consent_manager.revokeWithSignature(
        revocation, sign_revocation(account, revocation), sender=hospital
    )

    assert_events(
        tx,
        consent_manager.AccessRevoked(
            patient=patient, grantee=hospital, scopeKey=key, revoker=account
        ),
    )
    assert grant_of(consent_manager, patient, hospital, key)["revokedAt"] == block_time(chain, tx)
    assert not consent_manager.hasAccess(hospital, records.lab.id)
    assert consent_manager.nonces(patient) == 1


def test_grants_and_revocations_share_one_nonce_and_cancel_signatures_cancels_both(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    make_request: Callable[..., dict[str, Any]],
    make_revocation: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    sign_revocation: Callable[..., HexBytes],
) -> None:
    grant_access()
    revocation = make_revocation()
    revocation_signature = sign_revocation(patient, revocation)
    granted = make_request(scopeKind=int(ScopeKind.CATEGORY), scope=as_scope(Category.LAB))
    assert granted["nonce"] == revocation["nonce"] == 0
    grant_signature = sign(patient, granted)

    consent_manager.revokeWithSignature(revocation, revocation_signature, sender=stranger)
    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=0, expectedNonce=1
    ):
        consent_manager.grantWithSignature(granted, grant_signature, sender=stranger)

    grant_access()
    cancelled = make_revocation()
    signature = sign_revocation(patient, cancelled)
    consent_manager.cancelSignatures(patient, sender=patient)
    with reverts(
        consent_manager.ConsentSignatureReplayed, patient=patient, nonce=1, expectedNonce=2
    ):
        consent_manager.revokeWithSignature(cancelled, signature, sender=stranger)
    assert grant_of(consent_manager, patient, hospital, ALL_KEY)["revokedAt"] == 0


# ============================================================================ delegates


def test_delegate_named_in_the_provider_registry_acts_for_the_patient_until_dropped(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    guardian: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    now: Callable[[], int],
) -> None:
    consent = consent_manager
    assert not provider_registry.isDelegate(patient, guardian)

    added = provider_registry.setDelegate(guardian, True, sender=patient)

    assert_events(
        added,
        provider_registry.DelegateChanged(patient=patient, delegate=guardian, allowed=True),
    )
    assert provider_registry.isDelegate(patient, guardian)
    grant_access(sender=guardian)
    assert consent.hasAccess(hospital, records.lab.id)
    assert not consent.hasAccess(guardian, records.lab.id), "a delegate decides, it does not read"

    removed = provider_registry.setDelegate(guardian, False, sender=patient)

    assert_events(
        removed,
        provider_registry.DelegateChanged(patient=patient, delegate=guardian, allowed=False),
    )
    assert not provider_registry.isDelegate(patient, guardian)
    with reverts(consent.ConsentNotPatientOrDelegate, caller=guardian, patient=patient):
        consent.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=guardian)
    with reverts(consent.ConsentNotPatientOrDelegate, caller=guardian, patient=patient):
        consent.grant(
            patient,
            hospital,
            ScopeKind.CATEGORY,
            as_scope(Category.LAB),
            Purpose.TREATMENT,
            now() + DAY,
            ENVELOPE,
            sender=guardian,
        )
    assert consent.hasAccess(hospital, records.lab.id), "the delegate's grant stands"


@pytest.mark.parametrize("caller", ["stranger", "institution", "practitioner", "delegate"])
def test_set_delegate_reverts_for_caller_who_is_not_a_registered_patient(
    request: pytest.FixtureRequest,
    provider_registry: Any,
    stranger: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    caller: str,
) -> None:
    accounts = {"stranger": stranger, "institution": hospital, "practitioner": doctor}
    account = actor(request, caller, accounts)
    with reverts(provider_registry.ProviderNotPatient, account=account):
        provider_registry.setDelegate(clinic, True, sender=account)


@pytest.mark.parametrize("who", ["zero-address", "self"])
def test_set_delegate_reverts_for_zero_address_or_self(
    provider_registry: Any, patient: AccountAPI, who: str
) -> None:
    account = ZERO_ADDRESS if who == "zero-address" else patient.address
    with reverts(provider_registry.ProviderInvalidDelegate, delegate=account):
        provider_registry.setDelegate(account, True, sender=patient)


# ============================================================================ emergency access


@pytest.mark.parametrize("opener", ["emergency-service", "its-practitioner"])
def test_emergency_service_opens_time_boxed_read_access_for_all_its_accounts(
    provider_registry: Any,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    stranger: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
    opener: str,
) -> None:
    consent = consent_manager
    account = ems if opener == "emergency-service" else paramedic
    reason = "unconscious-on-arrival"
    assert consent.openEmergencyAccess.call(patient, HOUR, reason, sender=account) > now()

    tx = consent.openEmergencyAccess(patient, HOUR, reason, sender=account)

    opened = block_time(chain, tx)
    expires = opened + HOUR
    assert_events(
        tx,
        consent.EmergencyAccessOpened(
            patient=patient, opener=account, institution=ems, expiresAt=expires, reason=reason
        ),
    )
    assert emergency_of(consent, patient, ems) == {
        "openedAt": opened,
        "expiresAt": expires,
        "closedAt": 0,
        "round": round_of(provider_registry, ems),
    }
    assert emergency_of(consent, patient, paramedic) == NO_EMERGENCY, "stored for the service"
    for reader in (ems, paramedic):
        assert grant_of(consent, patient, reader, ALL_KEY) == NO_GRANT, "no grant is written"
        for record in records.own:
            assert consent.hasAccess(reader, record.id)
            assert consent.hasAccessFor(reader, record.id, Purpose.EMERGENCY)
            for purpose in (Purpose.TREATMENT, Purpose.PAYMENT, Purpose.PATIENT_REQUEST):
                assert not consent.hasAccessFor(reader, record.id, purpose)
        assert not consent.hasAccess(reader, records.other_lab.id)
    for outsider in (hospital, doctor, clinic, stranger):
        assert not consent.hasAccess(outsider, records.lab.id)
        assert not consent.hasAccessFor(outsider, records.lab.id, Purpose.EMERGENCY)

    advance_time(expires - 1 - now())
    assert consent.hasAccess(paramedic, records.lab.id)
    advance_time(1)
    for reader in (ems, paramedic):
        assert not consent.hasAccess(reader, records.lab.id)
        assert not consent.hasAccessFor(reader, records.lab.id, Purpose.EMERGENCY)


@pytest.mark.parametrize("duration", [1, MAX_EMERGENCY_DURATION], ids=["one-second", "24-hours"])
def test_emergency_access_may_last_from_one_second_to_the_maximum(
    chain: Any, consent_manager: Any, patient: AccountAPI, ems: AccountAPI, duration: int
) -> None:
    tx = consent_manager.openEmergencyAccess(patient, duration, "x", sender=ems)
    (log,) = consent_manager.EmergencyAccessOpened.from_receipt(tx)
    assert log.expiresAt == block_time(chain, tx) + duration


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "patient",
        "verified-hospital",
        "hospital-practitioner",
        "insurer",
        "suspended-emergency-service",
        "practitioner-of-suspended-service",
        "removed-practitioner",
        "practitioner-who-left",
        "invited-not-accepted",
        "pending-emergency-service",
    ],
)
def test_open_emergency_access_reverts_for_caller_who_is_not_a_verified_emergency_service(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    insurer: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    suspend: Callable[..., Any],
    apply_institution: Callable[..., Any],
    caller: str,
) -> None:
    account = {
        "stranger": stranger,
        "patient": other_patient,
        "verified-hospital": hospital,
        "hospital-practitioner": doctor,
        "insurer": insurer,
        "suspended-emergency-service": ems,
        "practitioner-of-suspended-service": paramedic,
        "removed-practitioner": paramedic,
        "practitioner-who-left": paramedic,
        "invited-not-accepted": stranger,
        "pending-emergency-service": stranger,
    }[caller]
    if caller in ("suspended-emergency-service", "practitioner-of-suspended-service"):
        suspend(ems)
    elif caller == "removed-practitioner":
        provider_registry.removePractitioner(paramedic, sender=ems)
    elif caller == "practitioner-who-left":
        provider_registry.removePractitioner(paramedic, sender=paramedic)
    elif caller == "invited-not-accepted":
        provider_registry.addPractitioner(stranger, sender=ems)
    elif caller == "pending-emergency-service":
        apply_institution(stranger, Kind.EMERGENCY_SERVICE)
    with reverts(consent_manager.ConsentNotEmergencyService, caller=account):
        consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=account)
    assert emergency_of(consent_manager, patient, ems) == NO_EMERGENCY
    assert not consent_manager.hasAccess(account, records.lab.id)


def test_open_emergency_access_reverts_without_a_reason(
    consent_manager: Any, patient: AccountAPI, ems: AccountAPI
) -> None:
    with reverts(consent_manager.ConsentEmergencyReasonRequired):
        consent_manager.openEmergencyAccess(patient, HOUR, "", sender=ems)


@pytest.mark.parametrize("duration", [0, MAX_EMERGENCY_DURATION + 1, 2**40 - 1])
def test_open_emergency_access_reverts_for_zero_or_too_long_duration(
    consent_manager: Any, patient: AccountAPI, ems: AccountAPI, duration: int
) -> None:
    with reverts(
        consent_manager.ConsentEmergencyTooLong,
        duration=duration,
        maxDuration=MAX_EMERGENCY_DURATION,
    ):
        consent_manager.openEmergencyAccess(patient, duration, "unconscious", sender=ems)


@pytest.mark.parametrize("who", ["no-role", "institution"])
def test_open_emergency_access_reverts_when_patient_is_not_registered(
    consent_manager: Any,
    stranger: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    who: str,
) -> None:
    account = stranger if who == "no-role" else hospital
    with reverts(consent_manager.ConsentNotPatient, account=account):
        consent_manager.openEmergencyAccess(account, HOUR, "unconscious", sender=ems)


@pytest.mark.parametrize("grantee", ["the-service", "its-practitioner"])
@pytest.mark.parametrize("state", ["live", "revoked", "expired"])
def test_emergency_opening_leaves_the_patients_grant_to_the_services_account_unchanged(
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
    advance_time: Callable[[int], int],
    grantee: str,
    state: str,
) -> None:
    """The patient's standing consent (30 days of treatment access for the service's account),
    live, revoked or expired, is exactly as it was after an opening, and the opening neither
    lengthens nor shortens what it gives."""
    account = ems if grantee == "the-service" else paramedic
    grant_access(grantee=account, expires_in=30 * DAY if state != "expired" else HOUR)
    if state == "revoked":
        consent_manager.revoke(patient, account, ScopeKind.ALL, ZERO32, sender=patient)
    elif state == "expired":
        advance_time(HOUR)
    before = grant_of(consent_manager, patient, account, ALL_KEY)
    other = paramedic if account is ems else ems

    open_emergency(opener=paramedic)

    assert grant_of(consent_manager, patient, account, ALL_KEY) == before
    assert grant_of(consent_manager, patient, other, ALL_KEY) == NO_GRANT
    live = state == "live"
    assert consent_manager.hasAccess(account, records.lab.id)
    assert consent_manager.hasAccessFor(account, records.lab.id, Purpose.EMERGENCY)
    assert consent_manager.hasAccessFor(account, records.lab.id, Purpose.TREATMENT) == live
    consent_manager.closeEmergencyAccess(patient, ems, sender=patient)
    assert grant_of(consent_manager, patient, account, ALL_KEY) == before
    assert consent_manager.hasAccess(account, records.lab.id) == live
    assert not consent_manager.hasAccessFor(account, records.lab.id, Purpose.EMERGENCY)
    advance_time(2 * HOUR)
    assert consent_manager.hasAccess(account, records.lab.id) == live, "the grant runs 30 days"


@pytest.mark.parametrize("how", ["suspended", "removed-by-service", "left-the-service"])
def test_emergency_access_ends_at_once_for_an_account_whose_service_no_longer_stands(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
    suspend: Callable[..., Any],
    how: str,
) -> None:
    open_emergency(opener=paramedic)
    assert consent_manager.hasAccess(paramedic, records.lab.id)

    if how == "suspended":
        suspend(ems)
    else:
        remover = ems if how == "removed-by-service" else paramedic
        provider_registry.removePractitioner(paramedic, sender=remover)

    losers = [ems, paramedic] if how == "suspended" else [paramedic]
    for reader in (ems, paramedic):
        allowed = reader not in losers
        for record in records.own:
            assert consent_manager.hasAccess(reader, record.id) == allowed, (how, reader)
            assert consent_manager.hasAccessFor(reader, record.id, Purpose.EMERGENCY) == allowed
    with reverts(consent_manager.ConsentAccessDenied, reader=paramedic, id=records.lab.id):
        consent_manager.logAccess([records.lab.id], sender=paramedic)
    with reverts(consent_manager.ConsentNoLiveAccess, patient=patient, grantee=paramedic):
        consent_manager.deliverKeys(
            patient, paramedic, ScopeKind.ALL, ZERO32, ENVELOPE, sender=patient
        )


def test_practitioner_who_joins_the_service_during_an_opening_reads_through_it(
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    stranger: AccountAPI,
    records: Records,
    add_practitioner: Callable[..., Any],
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    open_emergency()
    assert not consent_manager.hasAccess(stranger, records.lab.id)

    add_practitioner(ems, stranger)

    assert consent_manager.hasAccess(stranger, records.lab.id), "the opening is the service's"
    assert consent_manager.hasAccessFor(stranger, records.imaging.id, Purpose.EMERGENCY)


def test_opening_of_one_service_gives_another_service_nothing_and_does_not_hold_it_back(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    stranger: AccountAPI,
    records: Records,
    verified_institution: Callable[..., AccountAPI],
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    second = verified_institution(Kind.EMERGENCY_SERVICE, account=stranger)
    open_emergency()

    assert not consent_manager.hasAccess(second, records.lab.id)
    assert emergency_of(consent_manager, patient, second) == NO_EMERGENCY

    tx = open_emergency(opener=second)

    assert emergency_of(consent_manager, patient, second)["openedAt"] == block_time(chain, tx)
    assert consent_manager.hasAccess(second, records.lab.id)
    consent_manager.closeEmergencyAccess(patient, ems, sender=patient)
    assert not consent_manager.hasAccess(ems, records.lab.id)
    assert consent_manager.hasAccess(second, records.lab.id), "each opening ends on its own"


def test_emergency_service_cannot_reopen_while_open_nor_until_seven_days_after_expiry(
    provider_registry: Any,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    open_emergency: Callable[..., ReceiptAPI],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    consent = consent_manager
    first = open_emergency(duration=HOUR)
    until = block_time(chain, first) + HOUR + EMERGENCY_COOLDOWN

    for account in (ems, paramedic):  # the cooldown is the service's, whoever opens
        with reverts(
            consent.ConsentEmergencyCoolingDown, patient=patient, institution=ems, until=until
        ):
            consent.openEmergencyAccess(patient, HOUR, "still unconscious", sender=account)
    other = open_emergency(of=other_patient)  # another patient is another opening
    assert emergency_of(consent, other_patient, ems)["openedAt"] == block_time(chain, other)

    advance_time(until - 2 - now())  # expired long ago, but the cooldown runs to `until`
    with reverts(
        consent.ConsentEmergencyCoolingDown, patient=patient, institution=ems, until=until
    ):
        consent.openEmergencyAccess(patient, HOUR, "again", sender=paramedic)

    advance_time(until - now())
    tx = consent.openEmergencyAccess(patient, 2 * HOUR, "again", sender=paramedic)

    opened = block_time(chain, tx)
    assert_events(
        tx,
        consent.EmergencyAccessOpened(
            patient=patient,
            opener=paramedic,
            institution=ems,
            expiresAt=opened + 2 * HOUR,
            reason="again",
        ),
    )
    assert emergency_of(consent, patient, ems) == {
        "openedAt": opened,
        "expiresAt": opened + 2 * HOUR,
        "closedAt": 0,
        "round": round_of(provider_registry, ems),
    }


def test_emergency_cooldown_counts_from_the_closing(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    open_emergency: Callable[..., ReceiptAPI],
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    consent = consent_manager
    open_emergency(duration=MAX_EMERGENCY_DURATION)
    advance_time(HOUR)
    closed = consent.closeEmergencyAccess(patient, ems, sender=patient)
    until = block_time(chain, closed) + EMERGENCY_COOLDOWN

    with reverts(
        consent.ConsentEmergencyCoolingDown, patient=patient, institution=ems, until=until
    ):
        consent.openEmergencyAccess(patient, HOUR, "again", sender=ems)
    advance_time(until - 2 - now())
    with reverts(
        consent.ConsentEmergencyCoolingDown, patient=patient, institution=ems, until=until
    ):
        consent.openEmergencyAccess(patient, HOUR, "again", sender=ems)

    advance_time(until - now())
    tx = consent.openEmergencyAccess(patient, HOUR, "again", sender=ems)
    assert emergency_of(consent, patient, ems)["openedAt"] == block_time(chain, tx)


# ---------------------------------------------------------------------------- closing


@pytest.mark.parametrize("closer", ["patient", "delegate"])
def test_patient_or_delegate_closes_emergency_access_at_once(
    request: pytest.FixtureRequest,
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
    closer: str,
) -> None:
    consent = consent_manager
    sender = patient if closer == "patient" else request.getfixturevalue("delegate")
    opened = open_emergency(opener=paramedic, duration=MAX_EMERGENCY_DURATION)
    opening = emergency_of(consent, patient, ems)

    tx = consent.closeEmergencyAccess(patient, ems, sender=sender)

    assert_events(tx, consent.EmergencyAccessClosed(patient=patient, institution=ems, by=sender))
    assert emergency_of(consent, patient, ems) == opening | {"closedAt": block_time(chain, tx)}
    assert opening["openedAt"] == block_time(chain, opened)
    for reader in (ems, paramedic):
        for record in records.own:
            assert not consent.hasAccess(reader, record.id)
            assert not consent.hasAccessFor(reader, record.id, Purpose.EMERGENCY)
    with reverts(consent.ConsentNoLiveAccess, patient=patient, grantee=paramedic):
        consent.deliverKeys(patient, paramedic, ScopeKind.ALL, ZERO32, ENVELOPE, sender=patient)


def test_patient_closes_the_opening_of_a_suspended_service(
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    open_emergency: Callable[..., ReceiptAPI],
    suspend: Callable[..., Any],
) -> None:
    """An opening of a suspended service gives nothing, but it is still open: the patient can
    close it (so that a reinstatement does not bring it back)."""
    open_emergency()
    suspend(ems)
    tx = consent_manager.closeEmergencyAccess(patient, ems, sender=patient)
    assert_events(
        tx, consent_manager.EmergencyAccessClosed(patient=patient, institution=ems, by=patient)
    )


@pytest.mark.parametrize(
    "state",
    ["never-opened", "already-closed", "expired", "practitioner-named", "other-patient"],
)
def test_close_emergency_access_reverts_without_a_live_opening(
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    open_emergency: Callable[..., ReceiptAPI],
    advance_time: Callable[[int], int],
    state: str,
) -> None:
    institution = paramedic if state == "practitioner-named" else ems
    if state == "already-closed":
        open_emergency()
        consent_manager.closeEmergencyAccess(patient, ems, sender=patient)
    elif state == "expired":
        open_emergency(duration=HOUR)
        advance_time(HOUR)
    elif state == "practitioner-named":
        open_emergency(opener=paramedic)
    elif state == "other-patient":
        open_emergency(of=other_patient)
    with reverts(
        consent_manager.ConsentNoEmergencyAccess, patient=patient, institution=institution
    ):
        consent_manager.closeEmergencyAccess(patient, institution, sender=patient)


@pytest.mark.parametrize(
    "caller",
    ["stranger", "the-service", "its-practitioner", "other-patient", "dropped-delegate", "insurer"],
)
def test_close_emergency_access_reverts_for_caller_neither_patient_nor_delegate(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    insurer: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
    caller: str,
) -> None:
    account = actor(
        request,
        caller,
        {
            "stranger": stranger,
            "the-service": ems,
            "its-practitioner": paramedic,
            "other-patient": other_patient,
            "insurer": insurer,
        },
    )
    open_emergency()
    opening = emergency_of(consent_manager, patient, ems)

    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=account, patient=patient):
        consent_manager.closeEmergencyAccess(patient, ems, sender=account)

    assert emergency_of(consent_manager, patient, ems) == opening
    assert consent_manager.hasAccess(ems, records.lab.id)


# ============================================================================ deliverKeys


@pytest.mark.parametrize(
    "deliverer", ["patient", "delegate", "care-hospital", "care-hospital-practitioner"]
)
def test_key_holder_delivers_keys_for_a_live_grant(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    deliverer: str,
) -> None:
    account = actor(
        request,
        deliverer,
        {
            "patient": patient,
            "care-hospital": hospital,
            "care-hospital-practitioner": doctor,
        },
    )
    scope = as_scope(Category.LAB)
    grant_access(grantee=clinic, kind=ScopeKind.CATEGORY, scope=scope)
    envelope = digest("envelope-for-new-lab-record")

    tx = consent_manager.deliverKeys(
        patient, clinic, ScopeKind.CATEGORY, scope, envelope, sender=account
    )

    assert_events(
        tx,
        consent_manager.KeysDelivered(
            patient=patient,
            grantee=clinic,
            scopeKey=scope_key(ScopeKind.CATEGORY, scope),
            envelopeDigest=envelope,
            deliverer=account,
        ),
    )


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "insurer",
        "hospital-without-care",
        "hospital-after-care-revoked",
        "practitioner-after-care-revoked",
        "suspended-care-hospital",
        "the-grantee",
        "other-patient",
        "dropped-delegate",
        "emergency-service-with-opening",
    ],
)
def test_deliver_keys_reverts_for_caller_who_does_not_hold_the_keys(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    outsider: AccountAPI,
    insurer: AccountAPI,
    stranger: AccountAPI,
    ems: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
    suspend: Callable[..., Any],
    caller: str,
) -> None:
    account = actor(
        request,
        caller,
        {
            "stranger": stranger,
            "insurer": insurer,
            "hospital-without-care": outsider,
            "hospital-after-care-revoked": hospital,
            "practitioner-after-care-revoked": doctor,
            "suspended-care-hospital": hospital,
            "the-grantee": clinic,
            "other-patient": other_patient,
            "emergency-service-with-opening": ems,
        },
    )
    grant_access(grantee=clinic)
    if caller.endswith("after-care-revoked"):
        provider_registry.revokeCare(patient, hospital, sender=patient)
    elif caller == "suspended-care-hospital":
        suspend(hospital)
    elif caller == "emergency-service-with-opening":
        open_emergency()
    for grantee in (clinic, ems) if caller.startswith("emergency") else (clinic,):
        with reverts(consent_manager.ConsentNotKeyHolder, caller=account, patient=patient):
            consent_manager.deliverKeys(
                patient, grantee, ScopeKind.ALL, ZERO32, ENVELOPE, sender=account
            )


@pytest.mark.parametrize("grantee", ["the-service", "its-practitioner"])
@pytest.mark.parametrize("deliverer", ["patient", "care-hospital"])
def test_deliver_keys_for_a_live_emergency_opening_in_scope_all(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    open_emergency: Callable[..., ReceiptAPI],
    grantee: str,
    deliverer: str,
) -> None:
    account = ems if grantee == "the-service" else paramedic
    sender = patient if deliverer == "patient" else hospital
    open_emergency(opener=ems)
    envelope = digest("emergency-envelope")

    tx = consent_manager.deliverKeys(
        patient, account, ScopeKind.ALL, ZERO32, envelope, sender=sender
    )

    assert_events(
        tx,
        consent_manager.KeysDelivered(
            patient=patient,
            grantee=account,
            scopeKey=ALL_KEY,
            envelopeDigest=envelope,
            deliverer=sender,
        ),
    )


@pytest.mark.parametrize(
    "case",
    [
        "category-scope",
        "record-scope",
        "account-of-another-institution",
        "other-patient",
        "closed",
        "expired",
        "service-suspended",
        "practitioner-removed",
    ],
)
def test_deliver_keys_through_an_emergency_opening_reverts_unless_live_and_scope_all(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
    suspend: Callable[..., Any],
    advance_time: Callable[[int], int],
    case: str,
) -> None:
    open_emergency(duration=HOUR)
    whose, grantee, kind, scope = patient, paramedic, ScopeKind.ALL, ZERO32
    if case == "category-scope":
        kind, scope = ScopeKind.CATEGORY, as_scope(Category.LAB)
    elif case == "record-scope":
        kind, scope = ScopeKind.RECORD, records.lab.id
    elif case == "account-of-another-institution":
        grantee = doctor
    elif case == "other-patient":
        whose = other_patient
    elif case == "closed":
        consent_manager.closeEmergencyAccess(patient, ems, sender=patient)
    elif case == "expired":
        advance_time(HOUR)
    elif case == "service-suspended":
        suspend(ems)
    elif case == "practitioner-removed":
        provider_registry.removePractitioner(paramedic, sender=ems)
    with reverts(consent_manager.ConsentNoLiveAccess, patient=whose, grantee=grantee):
        consent_manager.deliverKeys(whose, grantee, kind, scope, ENVELOPE, sender=hospital)


@pytest.mark.parametrize("state", ["never-granted", "other-scope", "revoked", "expired"])
def test_deliver_keys_reverts_without_live_access_in_that_scope(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    advance_time: Callable[[int], int],
    state: str,
) -> None:
    scope = as_scope(Category.LAB)
    if state == "other-scope":
        grant_access(kind=ScopeKind.RECORD, scope=records.lab.id)
        grant_access(kind=ScopeKind.ALL)
    elif state == "revoked":
        grant_access(kind=ScopeKind.CATEGORY, scope=scope)
        consent_manager.revoke(patient, hospital, ScopeKind.CATEGORY, scope, sender=patient)
    elif state == "expired":
        grant_access(kind=ScopeKind.CATEGORY, scope=scope, expires_in=HOUR)
        advance_time(HOUR)
    with reverts(consent_manager.ConsentNoLiveAccess, patient=patient, grantee=hospital):
        consent_manager.deliverKeys(
            patient, hospital, ScopeKind.CATEGORY, scope, ENVELOPE, sender=patient
        )


# ============================================================================ logAccess


def test_log_access_emits_one_record_accessed_per_record(
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    consent = consent_manager
    grant_access()
    grant_access(of=other_patient, kind=ScopeKind.RECORD, scope=records.other_lab.id)
    opened = [records.lab, records.imaging, records.other_lab, records.lab]

    tx = consent.logAccess([r.id for r in opened], sender=hospital)

    assert_events(
        tx,
        *(consent.RecordAccessed(id=r.id, patient=r.patient, reader=hospital) for r in opened),
    )
    own = consent.logAccess([records.lab_2.id], sender=patient)
    assert_events(own, consent.RecordAccessed(id=records.lab_2.id, patient=patient, reader=patient))
    assert_events(consent.logAccess([], sender=hospital))


@pytest.mark.parametrize("reader", ["the-service", "its-practitioner"])
def test_log_access_through_an_emergency_opening(
    consent_manager: Any,
    patient: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
    reader: str,
) -> None:
    consent = consent_manager
    account = ems if reader == "the-service" else paramedic
    open_emergency(opener=ems)

    tx = consent.logAccess([records.lab.id, records.imaging.id], sender=account)

    assert_events(
        tx,
        consent.RecordAccessed(id=records.lab.id, patient=patient, reader=account),
        consent.RecordAccessed(id=records.imaging.id, patient=patient, reader=account),
    )
    with reverts(consent.ConsentAccessDenied, reader=account, id=records.other_lab.id):
        consent.logAccess([records.lab.id, records.other_lab.id], sender=account)
    consent.closeEmergencyAccess(patient, ems, sender=patient)
    with reverts(consent.ConsentAccessDenied, reader=account, id=records.lab.id):
        consent.logAccess([records.lab.id], sender=account)


@pytest.mark.parametrize("denied", ["unknown", "erased", "other-patients", "revoked"])
def test_log_access_reverts_for_any_record_without_access_and_logs_nothing(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    denied: str,
) -> None:
    consent = consent_manager
    grant = grant_access(kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    bad = {
        "unknown": UNKNOWN_RECORD,
        "erased": records.lab_2.id,
        "other-patients": records.other_lab.id,
        "revoked": records.imaging.id,
    }[denied]
    if denied == "erased":
        consent.eraseRecord(records.lab_2.id, sender=patient)
    elif denied == "revoked":
        grant_access(kind=ScopeKind.RECORD, scope=records.imaging.id)
        consent.revoke(patient, hospital, ScopeKind.RECORD, records.imaging.id, sender=patient)

    with reverts(consent.ConsentAccessDenied, reader=hospital, id=bad):
        consent.logAccess([records.lab.id, bad], sender=hospital)

    head = chain.blocks.head.number
    assert list(consent.RecordAccessed.range(grant.block_number, head + 1)) == []


# ============================================================================ logAccessFor
# A gateway (the institution that wrote a record, or its practitioner) serves the body it can
# decrypt to a reader the chain lets read it, and logs that read for the reader. The exploit
# tests first: what a hostile verified institution must not be able to do with it.


@pytest.mark.parametrize("caller", ["outsider", "clinic", "ems", "insurer", "patient", "stranger"])
def test_log_access_for_reverts_when_the_caller_did_not_write_the_record(
    consent_manager: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    outsider: AccountAPI,
    ems: AccountAPI,
    insurer: AccountAPI,
    stranger: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    caller: str,
) -> None:
    """Exploit: a verified institution (or anyone) logs reads of records another wrote; the
    clinic is also the reader here (a grantee cannot log its own read as served)."""
    consent = consent_manager
    grant_access(grantee=clinic, kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    account = {
        "outsider": outsider,
        "clinic": clinic,
        "ems": ems,
        "insurer": insurer,
        "patient": patient,
        "stranger": stranger,
    }[caller]

    with reverts(consent.ConsentNotRecordWriter, caller=account, id=records.lab.id):
        consent.logAccessFor(clinic, [records.lab.id], sender=account)


def test_log_access_for_reverts_for_a_batch_holding_one_record_another_institution_wrote(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    insurer: AccountAPI,
    records: Records,
    create_record: Callable[..., Anchored],
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    """Exploit: a record of another writer hidden among the caller's own; nothing is logged."""
    consent = consent_manager
    by_clinic = create_record(clinic, patient, category=Category.LAB)
    grant = grant_access(grantee=insurer)

    with reverts(consent.ConsentNotRecordWriter, caller=hospital, id=by_clinic.id):
        consent.logAccessFor(insurer, [records.lab.id, by_clinic.id], sender=hospital)

    head = chain.blocks.head.number
    assert list(consent.RecordAccessServed.range(grant.block_number, head + 1)) == []


@pytest.mark.parametrize("gone", ["suspended", "practitioner-removed"])
def test_log_access_for_reverts_once_the_caller_no_longer_acts_for_the_writer(
    consent_manager: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    suspend: Callable[..., ReceiptAPI],
    gone: str,
) -> None:
    """Exploit: a suspended institution, or a practitioner it removed, keeps logging."""
    consent = consent_manager
    grant_access(grantee=clinic)
    if gone == "suspended":
        suspend(hospital)
    else:
        provider_registry.removePractitioner(doctor, sender=hospital)
    for account in (hospital, doctor) if gone == "suspended" else (doctor,):
        with reverts(consent.ConsentNotRecordWriter, caller=account, id=records.lab.id):
            consent.logAccessFor(clinic, [records.lab.id], sender=account)


@pytest.mark.parametrize(
    "denied",
    ["never-granted", "revoked", "expired", "other-scope", "erased", "other-patients-grant",
     "the-gateway-itself", "zero-address"],
)  # fmt: skip
def test_log_access_for_reverts_when_the_reader_has_no_live_access_and_logs_nothing(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    advance_time: Callable[[int], int],
    denied: str,
) -> None:
    """Exploit: the writer logs a read by someone the patient never let read (or no longer)."""
    consent = consent_manager
    start = chain.blocks.head.number
    reader = {"the-gateway-itself": hospital, "zero-address": ZERO_ADDRESS}.get(denied, clinic)
    if denied == "revoked":
        grant_access(grantee=clinic)
        consent.revoke(patient, clinic, ScopeKind.ALL, ZERO32, sender=patient)
    elif denied == "expired":
        grant_access(grantee=clinic, expires_in=HOUR)
        advance_time(HOUR)
    elif denied == "other-scope":
        grant_access(grantee=clinic, kind=ScopeKind.CATEGORY, scope=as_scope(Category.IMAGING))
    elif denied == "erased":
        grant_access(grantee=clinic)
        consent.eraseRecord(records.lab.id, sender=patient)
    elif denied == "other-patients-grant":
        grant_access(grantee=clinic, of=other_patient)

    with reverts(consent.ConsentAccessDenied, reader=reader, id=records.lab.id):
        consent.logAccessFor(reader, [records.lab.id], sender=hospital)

    head = chain.blocks.head.number
    assert list(consent.RecordAccessServed.range(start, head + 1)) == []


def test_log_access_for_reverts_for_an_unknown_record(
    consent_manager: Any, hospital: AccountAPI, clinic: AccountAPI, records: Records,
    grant_access: Callable[..., ReceiptAPI],
) -> None:  # fmt: skip
    grant_access(grantee=clinic)
    with reverts(consent_manager.ConsentUnknownRecord, id=UNKNOWN_RECORD):
        consent_manager.logAccessFor(clinic, [records.lab.id, UNKNOWN_RECORD], sender=hospital)


@pytest.mark.parametrize("gateway", ["hospital", "doctor"])
def test_log_access_for_names_the_reader_and_the_gateway_that_sent_it(
    chain: Any,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    clinic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    gateway: str,
) -> None:
    """A served read is its own event (never a ``RecordAccessed``, which only the reader
    emits), and names as gateway the account that sent it: no caller makes a read look as if
    the reader logged it, or as if another gateway served it."""
    consent = consent_manager
    sender = hospital if gateway == "hospital" else doctor
    grant_access(grantee=clinic, kind=ScopeKind.CATEGORY, scope=as_scope(Category.LAB))
    grant_access(grantee=clinic, of=other_patient)
    opened = [records.lab, records.lab_2, records.other_lab, records.lab]

    tx = consent.logAccessFor(clinic, [r.id for r in opened], sender=sender)

    assert_events(
        tx,
        *(
            consent.RecordAccessServed(id=r.id, patient=r.patient, reader=clinic, gateway=sender)
            for r in opened
        ),
    )
    assert list(consent.RecordAccessed.range(tx.block_number, tx.block_number + 1)) == []
    own = consent.logAccessFor(patient, [records.imaging.id], sender=sender)
    assert_events(
        own,
        consent.RecordAccessServed(
            id=records.imaging.id, patient=patient, reader=patient, gateway=sender
        ),
    )
    assert_events(consent.logAccessFor(clinic, [], sender=sender))


def test_log_access_for_a_reader_with_an_emergency_opening(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    consent = consent_manager
    open_emergency()

    tx = consent.logAccessFor(paramedic, [records.imaging.id], sender=hospital)

    assert_events(
        tx,
        consent.RecordAccessServed(
            id=records.imaging.id, patient=patient, reader=paramedic, gateway=hospital
        ),
    )


# ============================================================================ eraseRecord


@pytest.mark.parametrize("by", ["patient", "delegate"])
def test_patient_or_delegate_erases_a_record(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    records: Records,
    by: str,
) -> None:
    sender = patient if by == "patient" else request.getfixturevalue("delegate")
    assert not consent_manager.isErased(records.lab.id)

    tx = consent_manager.eraseRecord(records.lab.id, sender=sender)

    assert_events(tx, consent_manager.RecordErased(id=records.lab.id, patient=patient, by=sender))
    assert consent_manager.isErased(records.lab.id)
    assert not consent_manager.isErased(records.lab_2.id)
    assert not consent_manager.hasAccess(patient, records.lab.id)


def test_erase_record_reverts_for_unknown_record(consent_manager: Any, patient: AccountAPI) -> None:
    with reverts(consent_manager.ConsentUnknownRecord, id=UNKNOWN_RECORD):
        consent_manager.eraseRecord(UNKNOWN_RECORD, sender=patient)


@pytest.mark.parametrize(
    "caller",
    [
        "stranger",
        "issuer",
        "grantee",
        "other-patient",
        "dropped-delegate",
        "emergency-service-with-opening",
    ],
)
def test_erase_record_reverts_for_caller_who_is_neither_patient_nor_delegate(
    request: pytest.FixtureRequest,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    ems: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
    caller: str,
) -> None:
    grant_access(grantee=doctor)
    open_emergency()
    account = actor(
        request,
        caller,
        {
            "stranger": stranger,
            "issuer": hospital,
            "grantee": doctor,
            "other-patient": other_patient,
            "emergency-service-with-opening": ems,
        },
    )
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=account, patient=patient):
        consent_manager.eraseRecord(records.lab.id, sender=account)
    assert not consent_manager.isErased(records.lab.id)


# ============================================================================ views


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(ScopeKind), scope=st.binary(min_size=32, max_size=32))
def test_scope_key_of_equals_keccak_of_abi_encoded_kind_and_scope(
    consent_manager: Any, kind: ScopeKind, scope: bytes
) -> None:
    assert HexBytes(consent_manager.scopeKeyOf(kind, scope)) == scope_key(kind, scope)


def test_views_are_empty_for_unknown_accounts_and_records(
    consent_manager: Any,
    provider_registry: Any,
    patient: AccountAPI,
    stranger: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
) -> None:
    assert grant_of(consent_manager, patient, hospital, ALL_KEY) == NO_GRANT
    assert emergency_of(consent_manager, patient, ems) == NO_EMERGENCY
    assert emergency_of(consent_manager, stranger, stranger) == NO_EMERGENCY
    assert not provider_registry.isDelegate(patient, stranger)
    assert not consent_manager.isErased(UNKNOWN_RECORD)
    assert consent_manager.nonces(patient) == 0
    assert consent_manager.nonces(stranger) == 0


# ============================================================================ gas
# Printed with `-s`. Each figure is the receipt's gas used (calldata and the 21,000 base
# included); see test_has_access_gas_does_not_depend_on_the_number_of_grants for the views.


def report(rows: list[tuple[str, int]]) -> None:
    width = max(len(name) for name, _ in rows)
    print()
    for name, gas in rows:
        print(f"GAS  {name:<{width}}  {gas:>9,}")


class RawSender:
    """Sends many signed transactions straight to the node, skipping Ape's per-transaction
    work (gas estimate, trace, receipt decoding), for bulk set-up only."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.web3 = chain.provider.web3
        self.nonces: dict[str, int] = {}
        # Blocks of one transaction are far under target, so the base fee only falls from here.
        self.max_fee = 2 * self.web3.eth.get_block("latest")["baseFeePerGas"] + 10**9

    def send(
        self, account: Any, to: str, data: bytes = b"", value: int = 0, gas: int = 300_000
    ) -> Any:
        address = account.address
        if address not in self.nonces:
            self.nonces[address] = self.web3.eth.get_transaction_count(address)
        tx = {
            "to": to,
            "data": HexBytes(data),
            "value": value,
            "gas": gas,
            "maxFeePerGas": self.max_fee,
            "maxPriorityFeePerGas": 10**9,
            "nonce": self.nonces[address],
            "chainId": self.chain.chain_id,
            "type": 2,
        }
        self.nonces[address] += 1
        key = account.key if hasattr(account, "key") else account.private_key  # eth_account / Ape
        signed = Account.sign_transaction(tx, key)
        return self.web3.eth.send_raw_transaction(signed.raw_transaction)

    def check(self, tx_hash: Any) -> None:
        receipt = self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, receipt


def calldata(signature: str, types: list[str], args: list[Any]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, args)


def test_gas_of_state_changing_functions(
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    stranger: AccountAPI,
    delegate: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    make_revocation: Callable[..., dict[str, Any]],
    sign_revocation: Callable[..., HexBytes],
) -> None:
    consent = consent_manager
    rows: list[tuple[str, int]] = []

    def measure(name: str, receipt: ReceiptAPI) -> None:
        rows.append((name, receipt.gas_used))

    measure("grant (record scope)", grant_access(kind=ScopeKind.RECORD, scope=records.lab.id))
    measure("grant (all scope)", grant_access())
    measure("grant (all scope, by a delegate)", grant_access(grantee=stranger, sender=delegate))
    scope = as_scope(Category.LAB)
    request = make_request(scopeKind=int(ScopeKind.CATEGORY), scope=scope)
    signature = sign(patient, request)
    measure(
        "grantWithSignature (category scope)",
        consent.grantWithSignature(request, signature, sender=stranger),
    )
    measure("cancelSignatures", consent.cancelSignatures(patient, sender=patient))
    measure("revoke", consent.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=patient))
    revocation = make_revocation(scopeKind=int(ScopeKind.CATEGORY), scope=scope)
    measure(
        "revokeWithSignature (category scope)",
        consent.revokeWithSignature(
            revocation, sign_revocation(patient, revocation), sender=hospital
        ),
    )
    measure(
        "openEmergencyAccess",
        consent.openEmergencyAccess(patient, HOUR, "unconscious-on-arrival", sender=paramedic),
    )
    measure(
        "deliverKeys (grant, by the care hospital)",
        consent.deliverKeys(
            patient, hospital, ScopeKind.RECORD, records.lab.id, ENVELOPE, sender=hospital
        ),
    )
    measure(
        "deliverKeys (emergency opening)",
        consent.deliverKeys(patient, paramedic, ScopeKind.ALL, ZERO32, ENVELOPE, sender=hospital),
    )
    measure("logAccess (1 record, emergency)", consent.logAccess([records.lab.id], sender=ems))
    measure("closeEmergencyAccess", consent.closeEmergencyAccess(patient, ems, sender=patient))
    measure("eraseRecord", consent.eraseRecord(records.imaging.id, sender=patient))
    measure("logAccess (1 record)", consent.logAccess([records.lab.id], sender=hospital))
    measure(
        "logAccessFor (1 record, served to a grantee)",
        consent.logAccessFor(stranger, [records.lab.id], sender=hospital),
    )
    report(rows)


def test_gas_of_log_access_for_100_records(
    chain: Any,
    consent_manager: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    grant_access: Callable[..., ReceiptAPI],
) -> None:
    raw = RawSender(chain)
    ids, sent = [], []
    for n in range(100):
        fields = (digest(f"bulk-cid-{n}"), digest(f"bulk-commitment-{n}"), 1 + n % 16, bytes(32))
        data = calldata(
            "anchor(address,bytes32,bytes32,uint8,bytes32)",
            ["address", "bytes32", "bytes32", "uint8", "bytes32"],
            [patient.address, *fields],
        )
        sent.append(raw.send(hospital, record_registry.address, data))
        ids.append(
            record_id(
                chain.chain_id, record_registry.address, patient.address, hospital.address, *fields
            )
        )
    raw.check(sent[-1])
    assert record_registry.exists(ids[0]) and record_registry.exists(ids[-1])
    grant_access()

    tx = consent_manager.logAccess(ids, sender=hospital)

    assert [HexBytes(e.id) for e in tx.events] == ids
    grant_access(grantee=clinic)
    served = consent_manager.logAccessFor(clinic, ids, sender=hospital)
    assert [(HexBytes(e.id), e.reader, e.gateway) for e in served.events] == [
        (id_, clinic.address, hospital.address) for id_ in ids
    ]
    report(
        [
            ("logAccess (100 records)", tx.gas_used),
            ("logAccess (100 records), per record", tx.gas_used // 100),
            ("logAccessFor (100 records)", served.gas_used),
            ("logAccessFor (100 records), per record", served.gas_used // 100),
        ]
    )


def bulk_grantees(chain: Any) -> int:
    """Grantees (20 grants each) for the test below: 50, so 1,000 grants, on Anvil, where they
    take about 20 s to set up; 10, so 200 grants, on eth-tester, whose py-evm needs 50-70 ms for
    each grant transaction (1,000 would take a minute). ``CONSENT_GAS_GRANTEES`` overrides."""
    if override := os.environ.get("CONSENT_GAS_GRANTEES"):
        return int(override)
    return 50 if chain.provider.name == "foundry" else 10


def test_has_access_gas_does_not_depend_on_the_number_of_grants(
    chain: Any,
    consent_manager: Any,
    admin: AccountAPI,
    patient: AccountAPI,
    hospital: AccountAPI,
    paramedic: AccountAPI,
    records: Records,
    grant_access: Callable[..., ReceiptAPI],
    open_emergency: Callable[..., ReceiptAPI],
) -> None:
    """Grants of the same patient to other grantees (an All grant and 19 category grants
    each; 1,000 in all on Anvil) leave the cost of ``hasAccess`` for one reader unchanged: a
    reader with a grant, the patient, and a paramedic whom only an emergency opening admits."""
    consent = consent_manager
    grant_access(kind=ScopeKind.ALL)  # the reader's one grant: hasAccess reads all three slots
    open_emergency()  # the paramedic's service: three empty slots, then the service's opening

    def estimates() -> tuple[int, ...]:
        return (
            consent.hasAccess.estimate_gas_cost(hospital, records.imaging.id, sender=admin),
            consent.hasAccessFor.estimate_gas_cost(
                hospital, records.imaging.id, Purpose.TREATMENT, sender=admin
            ),
            consent.hasAccess.estimate_gas_cost(patient, records.imaging.id, sender=admin),
            consent.hasAccess.estimate_gas_cost(paramedic, records.imaging.id, sender=admin),
        )

    one_grant = estimates()

    started = time.monotonic()
    raw = RawSender(chain)
    count = bulk_grantees(chain)
    # A grantee needs no role nor key (grant checks neither), so these are bare addresses.
    grantees = [Account.from_key(keccak(text=f"consent-gas-grantee-{i}")) for i in range(count)]
    expires = int(chain.blocks.head.timestamp) + DAY
    grant_types = ["address", "address", "uint8", "bytes32", "uint8", "uint40", "bytes32"]
    last = None
    for g in grantees:
        for code in range(20):
            kind, scope = (
                (ScopeKind.ALL, ZERO32) if code == 0 else (ScopeKind.CATEGORY, as_scope(code))
            )
            args = [patient.address, g.address, kind, bytes(scope), Purpose.RESEARCH, expires]
            data = calldata(
                "grant(address,address,uint8,bytes32,uint8,uint40,bytes32)",
                grant_types,
                [*args, bytes(ENVELOPE)],
            )
            last = raw.send(patient, consent.address, data)
    raw.check(last)
    assert consent.hasAccessFor(grantees[-1].address, records.imaging.id, Purpose.RESEARCH)
    last_key = scope_key(ScopeKind.CATEGORY, as_scope(19))
    assert grant_of(consent, patient, grantees[-1].address, last_key)["expiresAt"] == expires
    setup = time.monotonic() - started

    many_grants = estimates()

    grants = f"{20 * count:,}"
    report(
        [
            ("hasAccess estimate, reader with 1 grant", one_grant[0]),
            (f"hasAccess estimate, + {grants} grants to others", many_grants[0]),
            ("hasAccessFor estimate, 1 grant", one_grant[1]),
            (f"hasAccessFor estimate, + {grants} grants to others", many_grants[1]),
            ("hasAccess estimate, the patient", one_grant[2]),
            (f"hasAccess estimate, the patient, + {grants} grants", many_grants[2]),
            ("hasAccess estimate, emergency opening", one_grant[3]),
            (f"hasAccess estimate, emergency opening, + {grants} grants", many_grants[3]),
        ]
    )
    print(f"({20 * count:,} set-up transactions in {setup:.1f} s)")
    assert many_grants == one_grant
