"""ProviderRegistry: a patient's delegates and care relationships, and who may write a
patient's records (``mayWriteFor``) or wrote them under a relationship (``hadCare``).

A patient (or a delegate) lets a verified hospital, clinic, laboratory or emergency service
write their records (``authorizeCare``, or a signed ``CareRequest`` that anyone submits) for a
period or until revoked; the patient, a delegate or the institution ends it (``revokeCare``);
the patient or a delegate burns the next nonce to cancel a signed request
(``cancelSignatures``).

Every test starts from the same world (module-scoped, rolled back by Ape after each test):

* ``patient`` and ``other_patient`` registered;
* ``hospital`` a verified hospital (number 1) and ``doctor`` its practitioner;
* ``clinic`` a verified clinic (number 2);
* ``guardian`` a funded account with no role (named delegate by the ``delegate`` fixture);
* ``stranger`` an account with no role.

Times: a view reads ``block.timestamp`` of the head block; a transaction runs no earlier
than the head (one second later on eth-tester, possibly in the same second on Anvil), so
times below are read from the receipts' blocks.
"""

from __future__ import annotations

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
    MAX_UINT40,
    ZERO_ADDRESS,
    Kind,
    assert_events,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

HOUR = 3600
DAY = 24 * HOUR
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
CARE_REQUEST_FIELDS = [
    {"name": "patient", "type": "address"},
    {"name": "institution", "type": "address"},
    {"name": "until", "type": "uint40"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
CARE_TYPE = "CareRequest(" + ",".join(f"{f['type']} {f['name']}" for f in CARE_REQUEST_FIELDS) + ")"
HOSPITAL_NUMBER = 1
CLINIC_NUMBER = 2


def care_digest(chain_id: int, registry: str, request: dict[str, Any]) -> HexBytes:
    """``careDigest(request)`` from the EIP-712 definition, hashed by hand (the oracle)."""
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=DOMAIN_TYPE),
                keccak(text="MedLedger ProviderRegistry"),
                keccak(text="1"),
                chain_id,
                registry,
            ],
        )
    )
    struct = keccak(
        encode(
            ["bytes32", *(f["type"] for f in CARE_REQUEST_FIELDS)],
            [keccak(text=CARE_TYPE), *(request[f["name"]] for f in CARE_REQUEST_FIELDS)],
        )
    )
    return HexBytes(keccak(b"\x19\x01" + domain + struct))


def typed_care(chain_id: int, registry: str, request: dict[str, Any]) -> Any:
    """The EIP-712 signable message of a care request (eth_account's encoder)."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "CareRequest": CARE_REQUEST_FIELDS,
            },
            "primaryType": "CareRequest",
            "domain": {
                "name": "MedLedger ProviderRegistry",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": registry,
            },
            "message": request,
        }
    )


def block_time(chain: Any, receipt: ReceiptAPI) -> int:
    return int(chain.blocks[receipt.block_number].timestamp)


def care_of(registry: Any, patient: Any, institution: Any) -> tuple[int, int]:
    care = registry.careOf(patient, institution)
    return (care.since, care.until)


def fund(admin: AccountAPI, account: AccountAPI) -> AccountAPI:
    admin.transfer(account, 10**20)
    return account


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def guardian(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A (funded) account with no role: the delegate, once the patient names it."""
    return fund(admin, accounts.generate_test_account())


@pytest.fixture(scope="module", autouse=True)
def world(
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    guardian: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    add_practitioner(hospital, doctor)


@pytest.fixture
def delegate(provider_registry: Any, patient: AccountAPI, guardian: AccountAPI) -> AccountAPI:
    """``guardian``, named delegate of ``patient``."""
    provider_registry.setDelegate(guardian, True, sender=patient)
    return guardian


@pytest.fixture(scope="module")
def now(chain: Any) -> Callable[[], int]:
    return lambda: int(chain.blocks.head.timestamp)


@pytest.fixture
def make_request(
    provider_registry: Any, patient: AccountAPI, hospital: AccountAPI, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``make_request(**overrides)``: a care request of ``patient`` for ``hospital``, until
    revoked, with the patient's next nonce and a deadline an hour away."""

    def make(**overrides: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "patient": patient.address,
            "institution": hospital.address,
            "until": MAX_UINT40,
            "nonce": provider_registry.nonces(overrides.get("patient", patient)),
            "deadline": now() + HOUR,
        }
        request.update(overrides)
        for name in ("patient", "institution"):
            request[name] = to_checksum_address(getattr(request[name], "address", request[name]))
        return request

    return make


@pytest.fixture(scope="module")
def sign(provider_registry: Any, chain: Any) -> Callable[[Any, dict[str, Any]], HexBytes]:
    """``sign(account, request)``: the account's EIP-712 signature of the request."""

    def signed(account: Any, request: dict[str, Any]) -> HexBytes:
        signable = typed_care(chain.chain_id, provider_registry.address, request)
        return HexBytes(Account.sign_message(signable, account.private_key).signature)

    return signed


@pytest.fixture
def other_institution(
    provider_registry: Any,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
) -> Callable[[str], AccountAPI]:
    """``other_institution(state)``: ``stranger`` made an institution of a kind and status:
    ``insurer``, ``research-sponsor``, ``laboratory``, ``emergency-service`` (verified),
    ``pending-hospital`` or ``suspended-hospital``."""

    def make(state: str) -> AccountAPI:
        kind = {
            "insurer": Kind.INSURER,
            "research-sponsor": Kind.RESEARCH_SPONSOR,
            "laboratory": Kind.LABORATORY,
            "emergency-service": Kind.EMERGENCY_SERVICE,
        }.get(state, Kind.HOSPITAL)
        apply_institution(stranger, kind)
        if state != "pending-hospital":
            approve(stranger)
        if state == "suspended-hospital":
            suspend(stranger)
        return stranger

    return make


# ============================================================================ delegates


def test_set_delegate_names_and_drops_a_delegate(
    provider_registry: Any, patient: AccountAPI, guardian: AccountAPI
) -> None:
    assert not provider_registry.isDelegate(patient, guardian)
    assert not provider_registry.actsFor(guardian, patient)

    named = provider_registry.setDelegate(guardian, True, sender=patient)

    assert_events(
        named, provider_registry.DelegateChanged(patient=patient, delegate=guardian, allowed=True)
    )
    assert provider_registry.isDelegate(patient, guardian)
    assert provider_registry.actsFor(guardian, patient)

    dropped = provider_registry.setDelegate(guardian, False, sender=patient)

    assert_events(
        dropped,
        provider_registry.DelegateChanged(patient=patient, delegate=guardian, allowed=False),
    )
    assert not provider_registry.isDelegate(patient, guardian)
    assert not provider_registry.actsFor(guardian, patient)


def test_acts_for_is_true_for_the_patient_and_only_their_own_delegates(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    delegate: AccountAPI,
) -> None:
    assert provider_registry.actsFor(patient, patient)
    assert provider_registry.actsFor(delegate, patient)
    assert not provider_registry.actsFor(delegate, other_patient)
    assert not provider_registry.isDelegate(other_patient, delegate)
    assert not provider_registry.actsFor(patient, other_patient)
    assert not provider_registry.actsFor(stranger, patient)


@pytest.mark.parametrize("caller", ["no-role", "institution", "practitioner", "delegate"])
def test_set_delegate_reverts_when_caller_is_not_a_patient(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    other_patient: AccountAPI,
    delegate: AccountAPI,
    caller: str,
) -> None:
    # A delegate acts for the patient but does not name further delegates.
    sender = {
        "no-role": stranger,
        "institution": hospital,
        "practitioner": doctor,
        "delegate": delegate,
    }[caller]
    with reverts(provider_registry.ProviderNotPatient, account=sender):
        provider_registry.setDelegate(other_patient, True, sender=sender)


@pytest.mark.parametrize("target", ["zero", "patient-itself"])
def test_set_delegate_reverts_when_delegate_is_zero_or_the_patient(
    provider_registry: Any, patient: AccountAPI, target: str
) -> None:
    account = ZERO_ADDRESS if target == "zero" else patient.address
    for allowed in (True, False):
        with reverts(provider_registry.ProviderInvalidDelegate, delegate=account):
            provider_registry.setDelegate(account, allowed, sender=patient)


# ============================================================================ authorizeCare


@pytest.mark.parametrize("by", ["patient", "delegate"])
def test_authorize_care_lets_the_institution_and_its_practitioners_write(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    guardian: AccountAPI,
    now: Callable[[], int],
    by: str,
) -> None:
    sender = patient
    if by == "delegate":
        provider_registry.setDelegate(guardian, True, sender=patient)
        sender = guardian
    assert provider_registry.mayWriteFor(hospital, patient) == (False, HOSPITAL_NUMBER)
    until = now() + DAY

    tx = provider_registry.authorizeCare(patient, hospital, until, sender=sender)

    assert_events(
        tx,
        provider_registry.CareAuthorized(
            patient=patient, institution=hospital, until=until, by=sender
        ),
    )
    assert care_of(provider_registry, patient, hospital) == (block_time(chain, tx), until)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)
    assert provider_registry.mayWriteFor(doctor, patient) == (True, HOSPITAL_NUMBER)


@pytest.mark.parametrize("kind", ["laboratory", "emergency-service"])
def test_authorize_care_accepts_every_care_kind(
    provider_registry: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    other_institution: Callable[[str], AccountAPI],
    kind: str,
) -> None:
    for institution, number in ((clinic, CLINIC_NUMBER), (other_institution(kind), 3)):
        provider_registry.authorizeCare(patient, institution, MAX_UINT40, sender=patient)
        assert provider_registry.mayWriteFor(institution, patient) == (True, number)


def test_care_is_per_patient_and_per_institution(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    authorize_care: Callable[..., Any],
) -> None:
    authorize_care(patient, hospital)
    assert provider_registry.mayWriteFor(clinic, patient) == (False, CLINIC_NUMBER)
    assert provider_registry.mayWriteFor(hospital, other_patient) == (False, HOSPITAL_NUMBER)
    assert care_of(provider_registry, other_patient, hospital) == (0, 0)
    assert care_of(provider_registry, patient, clinic) == (0, 0)


@pytest.mark.parametrize(
    "caller",
    ["stranger", "the-institution", "its-practitioner", "other-patient", "dropped-delegate"],
)
def test_authorize_care_reverts_when_caller_does_not_act_for_the_patient(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    delegate: AccountAPI,
    caller: str,
) -> None:
    if caller == "dropped-delegate":
        provider_registry.setDelegate(delegate, False, sender=patient)
    sender = {
        "stranger": stranger,
        "the-institution": hospital,
        "its-practitioner": doctor,
        "other-patient": other_patient,
        "dropped-delegate": delegate,
    }[caller]
    with reverts(provider_registry.ProviderNotPatientOrDelegate, caller=sender, patient=patient):
        provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=sender)


def test_delegate_of_one_patient_cannot_authorize_care_for_another(
    provider_registry: Any, other_patient: AccountAPI, hospital: AccountAPI, delegate: AccountAPI
) -> None:
    with reverts(
        provider_registry.ProviderNotPatientOrDelegate, caller=delegate, patient=other_patient
    ):
        provider_registry.authorizeCare(other_patient, hospital, MAX_UINT40, sender=delegate)


@pytest.mark.parametrize("account", ["no-role", "institution", "practitioner"])
def test_authorize_care_reverts_when_the_account_is_not_a_patient(
    provider_registry: Any,
    clinic: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    account: str,
) -> None:
    sender = {"no-role": stranger, "institution": hospital, "practitioner": doctor}[account]
    with reverts(provider_registry.ProviderNotPatient, account=sender):
        provider_registry.authorizeCare(sender, clinic, MAX_UINT40, sender=sender)


@pytest.mark.parametrize(
    "target",
    [
        "insurer",
        "research-sponsor",
        "pending-hospital",
        "suspended-hospital",
        "practitioner-of-hospital",
        "patient",
        "no-role",
        "zero",
    ],
)
def test_authorize_care_reverts_when_institution_is_not_a_verified_care_provider(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    doctor: AccountAPI,
    guardian: AccountAPI,
    other_institution: Callable[[str], AccountAPI],
    target: str,
) -> None:
    fixed = {
        "practitioner-of-hospital": doctor.address,
        "patient": other_patient.address,
        "no-role": guardian.address,
        "zero": ZERO_ADDRESS,
    }
    institution = fixed.get(target) or other_institution(target).address
    with reverts(provider_registry.ProviderNotCareProvider, institution=institution):
        provider_registry.authorizeCare(patient, institution, MAX_UINT40, sender=patient)


@pytest.mark.networks  # the head's second: Anvil may run the transaction in it
@pytest.mark.parametrize("until", ["zero", "one", "now", "an-hour-ago"])
def test_authorize_care_reverts_when_it_would_end_in_the_past(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    now: Callable[[], int],
    until: str,
) -> None:
    # The transaction runs at or after the head's time, so "now" is already over.
    at = {"zero": 0, "one": 1, "now": now(), "an-hour-ago": now() - HOUR}[until]
    with reverts(provider_registry.ProviderInvalidCareExpiry, until=at):
        provider_registry.authorizeCare(patient, hospital, at, sender=patient)


def test_renewing_a_live_relationship_keeps_its_start(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    delegate: AccountAPI,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    first = provider_registry.authorizeCare(patient, hospital, now() + DAY, sender=patient)
    since = block_time(chain, first)
    advance_time(HOUR)

    longer = provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=delegate)
    assert_events(
        longer,
        provider_registry.CareAuthorized(
            patient=patient, institution=hospital, until=MAX_UINT40, by=delegate
        ),
    )
    assert care_of(provider_registry, patient, hospital) == (since, MAX_UINT40)

    shorter = now() + 2 * HOUR
    provider_registry.authorizeCare(patient, hospital, shorter, sender=patient)
    assert care_of(provider_registry, patient, hospital) == (since, shorter)


def test_opening_again_after_the_end_starts_a_new_relationship(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    first = provider_registry.authorizeCare(patient, hospital, now() + HOUR, sender=patient)
    first_since = block_time(chain, first)
    advance_time(2 * HOUR)
    assert provider_registry.mayWriteFor(hospital, patient) == (False, HOSPITAL_NUMBER)

    again = provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=patient)

    since = block_time(chain, again)
    assert since > first_since + HOUR
    assert care_of(provider_registry, patient, hospital) == (since, MAX_UINT40)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)


def test_care_lapses_at_its_end_without_a_transaction(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    until = now() + HOUR
    provider_registry.authorizeCare(patient, hospital, until, sender=patient)
    advance_time(until - now() - 1)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)
    advance_time(1)
    assert chain.blocks.head.timestamp == until
    assert provider_registry.mayWriteFor(hospital, patient) == (False, HOSPITAL_NUMBER)
    assert provider_registry.mayWriteFor(doctor, patient) == (False, HOSPITAL_NUMBER)


def test_suspension_stops_a_live_relationship_and_reinstatement_resumes_it(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    authorize_care: Callable[..., Any],
    suspend: Callable[..., Any],
    approve: Callable[..., Any],
) -> None:
    authorize_care(patient, hospital)
    suspend(hospital)
    assert provider_registry.mayWriteFor(hospital, patient) == (False, 0)
    assert provider_registry.mayWriteFor(doctor, patient) == (False, 0)
    approve(hospital)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)
    assert provider_registry.mayWriteFor(doctor, patient) == (True, HOSPITAL_NUMBER)


# ============================================================================ revokeCare


@pytest.mark.parametrize("by", ["patient", "delegate", "institution"])
def test_revoke_care_ends_the_relationship_at_once(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    guardian: AccountAPI,
    advance_time: Callable[[int], int],
    by: str,
) -> None:
    provider_registry.setDelegate(guardian, True, sender=patient)
    opened = provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=patient)
    since = block_time(chain, opened)
    advance_time(HOUR)
    sender = {"patient": patient, "delegate": guardian, "institution": hospital}[by]

    tx = provider_registry.revokeCare(patient, hospital, sender=sender)

    ended = block_time(chain, tx)
    assert_events(
        tx, provider_registry.CareRevoked(patient=patient, institution=hospital, by=sender)
    )
    assert care_of(provider_registry, patient, hospital) == (since, ended)
    assert provider_registry.mayWriteFor(hospital, patient) == (False, HOSPITAL_NUMBER)
    assert provider_registry.mayWriteFor(doctor, patient) == (False, HOSPITAL_NUMBER)
    assert provider_registry.hadCare(patient, HOSPITAL_NUMBER, ended - 1)
    assert not provider_registry.hadCare(patient, HOSPITAL_NUMBER, ended)


@pytest.mark.parametrize("by", ["patient", "suspended-institution"])
def test_revoke_care_works_while_the_institution_is_suspended(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    authorize_care: Callable[..., Any],
    suspend: Callable[..., Any],
    by: str,
) -> None:
    authorize_care(patient, hospital)
    suspend(hospital)
    sender = patient if by == "patient" else hospital
    tx = provider_registry.revokeCare(patient, hospital, sender=sender)
    assert_events(
        tx, provider_registry.CareRevoked(patient=patient, institution=hospital, by=sender)
    )


@pytest.mark.parametrize(
    "caller",
    ["stranger", "practitioner-of-the-institution", "other-institution", "other-patient"],
)
def test_revoke_care_reverts_when_caller_is_not_a_party(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    authorize_care: Callable[..., Any],
    caller: str,
) -> None:
    authorize_care(patient, hospital)
    sender = {
        "stranger": stranger,
        "practitioner-of-the-institution": doctor,
        "other-institution": clinic,
        "other-patient": other_patient,
    }[caller]
    with reverts(
        provider_registry.ProviderNotCareParty,
        caller=sender,
        patient=patient,
        institution=hospital,
    ):
        provider_registry.revokeCare(patient, hospital, sender=sender)


def test_revoke_care_reverts_when_caller_is_a_dropped_delegate(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    delegate: AccountAPI,
    authorize_care: Callable[..., Any],
) -> None:
    authorize_care(patient, hospital)
    provider_registry.setDelegate(delegate, False, sender=patient)
    with reverts(
        provider_registry.ProviderNotCareParty,
        caller=delegate,
        patient=patient,
        institution=hospital,
    ):
        provider_registry.revokeCare(patient, hospital, sender=delegate)


@pytest.mark.parametrize(
    "case", ["never-opened", "already-revoked", "expired", "not-an-institution"]
)
def test_revoke_care_reverts_when_no_relationship_is_live(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
    case: str,
) -> None:
    institution = hospital
    if case == "already-revoked":
        provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=patient)
        provider_registry.revokeCare(patient, hospital, sender=patient)
    elif case == "expired":
        provider_registry.authorizeCare(patient, hospital, now() + HOUR, sender=patient)
        advance_time(2 * HOUR)
    elif case == "not-an-institution":
        institution = stranger
    for sender in (patient, institution):
        with reverts(provider_registry.ProviderNoCare, patient=patient, institution=institution):
            provider_registry.revokeCare(patient, institution, sender=sender)


# ============================================================================ hadCare


def test_had_care_is_true_exactly_inside_the_relationship(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    now: Callable[[], int],
) -> None:
    until = now() + DAY
    tx = provider_registry.authorizeCare(patient, hospital, until, sender=patient)
    since = block_time(chain, tx)

    def had(at: int, writer: int = HOSPITAL_NUMBER, holder: Any = patient) -> bool:
        return provider_registry.hadCare(holder, writer, at)

    assert [had(t) for t in (0, since - 1, since, until - 1, until, MAX_UINT40)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]
    assert not had(since, writer=0)  # the patient's own records need no relationship
    assert not had(since, writer=CLINIC_NUMBER)
    assert not had(since, writer=3)  # no such institution
    assert not had(since, holder=other_patient)


def test_had_care_until_revoked_holds_for_all_later_times(
    chain: Any, provider_registry: Any, patient: AccountAPI, hospital: AccountAPI
) -> None:
    tx = provider_registry.authorizeCare(patient, hospital, MAX_UINT40, sender=patient)
    since = block_time(chain, tx)
    assert provider_registry.hadCare(patient, HOSPITAL_NUMBER, since)
    assert provider_registry.hadCare(patient, HOSPITAL_NUMBER, MAX_UINT40 - 1)
    assert not provider_registry.hadCare(patient, HOSPITAL_NUMBER, MAX_UINT40)


def test_had_care_is_false_for_every_time_without_a_relationship(
    provider_registry: Any, patient: AccountAPI, now: Callable[[], int]
) -> None:
    for at in (0, now(), MAX_UINT40):
        assert not provider_registry.hadCare(patient, HOSPITAL_NUMBER, at)


# ============================================================================ mayWriteFor


# (issuer, may write, writer)
MAY_WRITE = [
    pytest.param("patient-itself", True, 0, id="patient-itself"),
    pytest.param("other-patient", False, 0, id="other-patient"),
    pytest.param("delegate", False, 0, id="delegate-of-the-patient"),
    pytest.param("delegate-who-is-a-patient", False, 0, id="delegate-who-is-a-patient"),
    pytest.param("stranger", False, 0, id="stranger"),
    pytest.param("hospital-with-care", True, 1, id="hospital-with-care"),
    pytest.param("hospital-without-care", False, 1, id="hospital-without-care"),
    pytest.param("practitioner-with-care", True, 1, id="practitioner-with-care"),
    pytest.param("practitioner-without-care", False, 1, id="practitioner-without-care"),
    pytest.param("other-institution", False, 2, id="clinic-while-hospital-has-care"),
    pytest.param("suspended-with-care", False, 0, id="suspended-hospital-with-care"),
    pytest.param(
        "practitioner-of-suspended-with-care", False, 0, id="practitioner-of-suspended-with-care"
    ),
    pytest.param("removed-practitioner-with-care", False, 0, id="removed-practitioner"),
    pytest.param("hospital-care-revoked", False, 1, id="hospital-care-revoked"),
    pytest.param("insurer", False, 0, id="insurer"),
    pytest.param("practitioner-of-insurer", False, 0, id="practitioner-of-insurer"),
    pytest.param("research-sponsor", False, 0, id="research-sponsor"),
]


@pytest.mark.parametrize(("issuer", "may_write", "writer"), MAY_WRITE)
def test_may_write_for_needs_the_patient_or_a_care_provider_with_a_live_relationship(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    guardian: AccountAPI,
    stranger: AccountAPI,
    authorize_care: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    other_institution: Callable[[str], AccountAPI],
    suspend: Callable[..., Any],
    issuer: str,
    may_write: bool,
    writer: int,
) -> None:
    if not issuer.endswith("without-care"):
        authorize_care(patient, hospital)
    account: Any = {
        "patient-itself": patient,
        "other-patient": other_patient,
        "delegate": guardian,
        "delegate-who-is-a-patient": other_patient,
        "stranger": stranger,
        "other-institution": clinic,
        "hospital-with-care": hospital,
        "hospital-without-care": hospital,
        "suspended-with-care": hospital,
        "hospital-care-revoked": hospital,
        "practitioner-with-care": doctor,
        "practitioner-without-care": doctor,
        "practitioner-of-suspended-with-care": doctor,
        "removed-practitioner-with-care": doctor,
    }.get(issuer)
    if issuer.startswith("delegate"):
        provider_registry.setDelegate(account, True, sender=patient)
    elif "suspended" in issuer:
        suspend(hospital)
    elif issuer == "removed-practitioner-with-care":
        provider_registry.removePractitioner(doctor, sender=hospital)
    elif issuer == "hospital-care-revoked":
        provider_registry.revokeCare(patient, hospital, sender=hospital)
    elif issuer in ("insurer", "research-sponsor"):
        account = other_institution(issuer)
    elif issuer == "practitioner-of-insurer":
        add_practitioner(other_institution("insurer"), guardian)
        account = guardian

    assert provider_registry.mayWriteFor(account, patient) == (may_write, writer)


def test_nobody_writes_for_an_unregistered_account(
    provider_registry: Any, hospital: AccountAPI, doctor: AccountAPI, stranger: AccountAPI
) -> None:
    # Only a registered patient opens a care relationship, and only a patient writes its own.
    assert provider_registry.mayWriteFor(stranger, stranger) == (False, 0)
    assert provider_registry.mayWriteFor(hospital, stranger) == (False, HOSPITAL_NUMBER)
    assert provider_registry.mayWriteFor(doctor, stranger) == (False, HOSPITAL_NUMBER)


# ============================================================================ signed care


def test_eip712_care_type_hash_is_the_documented_one(provider_registry: Any) -> None:
    assert HexBytes(provider_registry.CARE_TYPEHASH()) == HexBytes(keccak(text=CARE_TYPE))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    patient_address=st.binary(min_size=20, max_size=20),
    institution_address=st.binary(min_size=20, max_size=20),
    until=st.integers(0, MAX_UINT40),
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_eip712_digest_equals_care_digest(
    chain: Any,
    provider_registry: Any,
    patient_address: bytes,
    institution_address: bytes,
    until: int,
    nonce: int,
    deadline: int,
) -> None:
    request = {
        "patient": to_checksum_address(patient_address),
        "institution": to_checksum_address(institution_address),
        "until": until,
        "nonce": nonce,
        "deadline": deadline,
    }
    expected = care_digest(chain.chain_id, provider_registry.address, request)
    signable = typed_care(chain.chain_id, provider_registry.address, request)
    assert HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body)) == (
        expected
    )
    assert HexBytes(provider_registry.careDigest(request)) == expected


@pytest.mark.parametrize("signer", ["patient", "delegate"])
@pytest.mark.parametrize("relayer", ["institution", "stranger"])
def test_signed_care_submitted_by_anyone_opens_the_relationship_and_uses_the_nonce(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    guardian: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    now: Callable[[], int],
    signer: str,
    relayer: str,
) -> None:
    account = patient
    if signer == "delegate":
        provider_registry.setDelegate(guardian, True, sender=patient)
        account = guardian
    until = now() + DAY
    request = make_request(until=until)
    assert request["nonce"] == 0
    sender = hospital if relayer == "institution" else stranger

    tx = provider_registry.authorizeCareWithSignature(
        request, sign(account, request), sender=sender
    )

    assert_events(
        tx,
        provider_registry.CareAuthorized(
            patient=patient, institution=hospital, until=until, by=account
        ),
    )
    assert provider_registry.nonces(patient) == 1
    assert care_of(provider_registry, patient, hospital) == (block_time(chain, tx), until)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)


def test_signed_care_reverts_after_its_deadline(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    now: Callable[[], int],
) -> None:
    request = make_request(deadline=now() - 1)
    with reverts(provider_registry.ProviderSignatureExpired, deadline=request["deadline"]):
        provider_registry.authorizeCareWithSignature(
            request, sign(patient, request), sender=hospital
        )
    assert provider_registry.nonces(patient) == 0


def test_signed_care_reverts_when_submitted_twice(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request()
    signature = sign(patient, request)
    provider_registry.authorizeCareWithSignature(request, signature, sender=hospital)
    with reverts(
        provider_registry.ProviderSignatureReplayed, patient=patient, nonce=0, expectedNonce=1
    ):
        provider_registry.authorizeCareWithSignature(request, signature, sender=hospital)


def test_signed_care_reverts_when_nonce_is_ahead(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request(nonce=1)
    with reverts(
        provider_registry.ProviderSignatureReplayed, patient=patient, nonce=1, expectedNonce=0
    ):
        provider_registry.authorizeCareWithSignature(
            request, sign(patient, request), sender=hospital
        )


@pytest.mark.parametrize(
    "signer", ["stranger", "the-institution", "other-patient", "dropped-delegate"]
)
def test_signed_care_reverts_when_signer_does_not_act_for_the_patient(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    delegate: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    signer: str,
) -> None:
    if signer == "dropped-delegate":
        provider_registry.setDelegate(delegate, False, sender=patient)
    account = {
        "stranger": stranger,
        "the-institution": hospital,
        "other-patient": other_patient,
        "dropped-delegate": delegate,
    }[signer]
    request = make_request()
    with reverts(provider_registry.ProviderInvalidSignature, signer=account, patient=patient):
        provider_registry.authorizeCareWithSignature(
            request, sign(account, request), sender=hospital
        )
    assert provider_registry.nonces(patient) == 0


@pytest.mark.parametrize("field", ["patient", "institution", "until", "deadline"])
def test_signature_over_a_different_request_recovers_another_signer_and_reverts(
    chain: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    field: str,
) -> None:
    request = make_request()
    signature = sign(patient, request)
    changes = {
        "patient": other_patient.address,
        "institution": clinic.address,
        "until": request["until"] - 1,
        "deadline": request["deadline"] + 1,
    }
    forged = request | {field: changes[field]}
    recovered = Account.recover_message(
        typed_care(chain.chain_id, provider_registry.address, forged), signature=signature
    )
    assert recovered not in (patient.address, other_patient.address)
    with reverts(
        provider_registry.ProviderInvalidSignature, signer=recovered, patient=forged["patient"]
    ):
        provider_registry.authorizeCareWithSignature(forged, signature, sender=hospital)


@pytest.mark.parametrize("signature", ["empty", "64-bytes", "high-s-twin", "v-not-27-or-28"])
def test_malformed_signature_reverts_with_zero_signer(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
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
        "high-s-twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
        "v-not-27-or-28": r + good[32:64] + bytes([v + 2]),
    }[signature]
    with reverts(provider_registry.ProviderInvalidSignature, signer=ZERO_ADDRESS, patient=patient):
        provider_registry.authorizeCareWithSignature(request, bad, sender=hospital)


def test_signature_for_another_registry_reverts(
    project: Any,
    chain: Any,
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    patient: AccountAPI,
    hospital: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
) -> None:
    twin = admin.deploy(project.ProviderRegistry, registrars, 2)
    request = make_request()
    signable = typed_care(chain.chain_id, twin.address, request)
    signature = Account.sign_message(signable, patient.private_key).signature
    recovered = Account.recover_message(
        typed_care(chain.chain_id, provider_registry.address, request), signature=signature
    )
    with reverts(provider_registry.ProviderInvalidSignature, signer=recovered, patient=patient):
        provider_registry.authorizeCareWithSignature(request, signature, sender=hospital)


@pytest.mark.parametrize("target", ["insurer", "suspended-hospital"])
def test_signed_care_obeys_the_care_rules_and_keeps_the_nonce_on_failure(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    other_institution: Callable[[str], AccountAPI],
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    target: str,
) -> None:
    institution = other_institution(target)
    request = make_request(institution=institution)
    with reverts(provider_registry.ProviderNotCareProvider, institution=institution):
        provider_registry.authorizeCareWithSignature(
            request, sign(patient, request), sender=hospital
        )
    assert provider_registry.nonces(patient) == 0
    past = make_request(until=1)
    with reverts(provider_registry.ProviderInvalidCareExpiry, until=1):
        provider_registry.authorizeCareWithSignature(past, sign(patient, past), sender=hospital)


def test_signed_care_reverts_when_the_signer_is_not_a_registered_patient(
    provider_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
) -> None:
    request = make_request(patient=stranger)
    with reverts(provider_registry.ProviderNotPatient, account=stranger):
        provider_registry.authorizeCareWithSignature(
            request, sign(stranger, request), sender=hospital
        )


# ============================================================================ cancelSignatures


@pytest.mark.parametrize("by", ["patient", "delegate"])
def test_cancel_signatures_burns_the_nonce_so_the_signed_request_is_replayed(
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    guardian: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    by: str,
) -> None:
    provider_registry.setDelegate(guardian, True, sender=patient)
    request = make_request()
    signature = sign(patient, request)
    sender = patient if by == "patient" else guardian

    tx = provider_registry.cancelSignatures(patient, sender=sender)

    assert_events(tx, provider_registry.SignaturesCancelled(patient=patient, nonce=0, by=sender))
    assert provider_registry.nonces(patient) == 1
    with reverts(
        provider_registry.ProviderSignatureReplayed, patient=patient, nonce=0, expectedNonce=1
    ):
        provider_registry.authorizeCareWithSignature(request, signature, sender=hospital)
    assert care_of(provider_registry, patient, hospital) == (0, 0)

    # A request signed with the next nonce still works.
    fresh = make_request()
    assert fresh["nonce"] == 1
    provider_registry.authorizeCareWithSignature(fresh, sign(patient, fresh), sender=hospital)
    assert provider_registry.mayWriteFor(hospital, patient) == (True, HOSPITAL_NUMBER)


@pytest.mark.parametrize("caller", ["stranger", "institution", "other-patient"])
def test_cancel_signatures_reverts_when_caller_does_not_act_for_the_patient(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    caller: str,
) -> None:
    sender = {"stranger": stranger, "institution": hospital, "other-patient": other_patient}[caller]
    with reverts(provider_registry.ProviderNotPatientOrDelegate, caller=sender, patient=patient):
        provider_registry.cancelSignatures(patient, sender=sender)
    assert provider_registry.nonces(patient) == 0
