"""Who is calling the FHIR gateway: Sign-In with Ethereum, bearer tokens, SMART scopes cut
down to the caller's live standing on chain (``medledger.gateway``).

Every signature here is made as a wallet makes it: eth-account's ``encode_defunct`` and
``sign_message`` (EIP-191 ``personal_sign``) over the EIP-4361 text; the chain is the session's
Anvil devnet with the package fixtures (see ``conftest.py``). The gateway runs for the
hospital (dev:3); the doctor (dev:6) is a practitioner of another institution, the clinic, so
anything it sees it sees through the patient's grants.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import SiweMessage

from medledger import consent, providers, records
from medledger.accounts import dev_account
from medledger.categories import Category
from medledger.errors import Forbidden, InvalidScope, Unauthenticated
from medledger.gateway.auth import Authority
from medledger.gateway.scopes import Action, parse_scope, parse_scopes
from medledger.gateway.standing import STUDY_TYPES
from medledger.ipfs.local import LocalBlockStore

DOMAIN = "127.0.0.1:8080"
URI = "http://127.0.0.1:8080/fhir"
LAB_TYPES = {"Observation", "DiagnosticReport", "Specimen"}  # fhir._categorize's rule for lab
MONTH = timedelta(days=30)


class Clock:
    """The server's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def signature(account, message: str) -> str:
    """What a wallet answers to ``personal_sign`` of ``message``."""
    signed = Account.from_key(account.key).sign_message(encode_defunct(text=message))
    return "0x" + bytes(signed.signature).hex()


def lab_body(name: str) -> bytes:
    return json.dumps({"resourceType": "Observation", "id": name, "status": "final"}).encode()


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authority(chain, verified_institution, hospital, clock) -> Authority:
    """The hospital's gateway."""
    verified_institution(hospital)
    return Authority(chain, hospital.address, DOMAIN, URI, clock=clock)


@pytest.fixture
def sign_in(authority):
    """Factory: ``account`` asks for a challenge with ``scopes``, signs it, and signs in."""

    def run(account, scopes: str):
        message = authority.challenge(account.address, scopes)
        return authority.sign_in(message, signature(account, message))

    return run


@pytest.fixture
def store(tmp_path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "ipfs")


@pytest.fixture
def create_record(chain, store, authority, hospital, registered_patient, care):
    """Factory: the hospital (in care of the patient) anchors a record of a category."""
    care(registered_patient, hospital)

    def make(name: str, category: Category) -> records.Record:
        (record,) = records.anchor(
            chain, store, hospital, registered_patient.address,
            [records.Draft(lab_body(name), category)], readers=consent.readers_for(chain),
        )  # fmt: skip
        return record

    return make


@pytest.fixture
def give(chain, store, registered_patient):
    """Factory: the patient grants ``grantee`` a scope for a month."""

    def make(grantee, scope: consent.Scope) -> None:
        consent.grant(
            chain, store, registered_patient, registered_patient.address, grantee.address,
            scope, consent.Purpose.TREATMENT, MONTH,
        )  # fmt: skip

    return make


# --- SMART scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("patient/*.read", "patient/*.rs"),
        ("user/Observation.write", "user/Observation.cud"),
        ("system/*.*", "system/*.cruds"),
        ("patient/Consent.cd", "patient/Consent.cd"),
        ("user/Observation.rs", "user/Observation.rs"),
    ],
    ids=["v1-read", "v1-write", "v1-star", "v2-create-delete", "v2-read-search"],
)
def test_v1_and_v2_scopes_are_read_and_written_in_the_v2_form(text, written):
    assert str(parse_scope(text)) == written


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("patient/Observation.sr", "in order"),
        ("patient/Observation.x", "in order"),
        ("doctor/*.read", "context 'doctor'"),
        ("user/Observations.read", "not a FHIR R4 resource type"),
        ("patient/Observation.rs?category=laboratory", "granular"),
        ("openid", "<context>/<type>.<actions>"),
        ("", "no scope"),
    ],
    ids=["letters-out-of-order", "unknown-letter", "unknown-context", "unknown-type",
         "granular", "launch-scope", "empty"],
)  # fmt: skip
def test_a_malformed_scope_is_refused_in_one_line(text, problem):
    with pytest.raises(InvalidScope, match=problem) as refused:
        parse_scopes(text)
    assert "\n" not in str(refused.value)


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        ("patient/*.read", {"patient/*.rs"}),
        ("patient/*.cruds", {"patient/*.rs", "patient/Consent.cd"}),
        ("user/Observation.write user/Condition.rs", {"user/Condition.rs"}),
    ],
    ids=["read-all-own", "writes-cut-to-consent", "record-writes-dropped"],
)
def test_a_patient_signs_in_with_a_wallet_signature_and_keeps_own_scopes(
    sign_in, authority, registered_patient, clock, asked, granted
):
    token = sign_in(registered_patient, asked)
    assert set(token.scope.split()) == granted
    assert token.address == registered_patient.address and token.patient == token.address
    assert token.expires_at == clock.now + timedelta(minutes=15)
    principal = authority.authorize(f"Bearer {token.bearer}", "Condition", "search", None)
    assert principal.patient == registered_patient.address and principal.categories is None


def test_the_challenge_is_an_eip4361_message_naming_the_scopes(authority, chain, patient):
    message = SiweMessage.from_message(authority.challenge(patient.address, "user/Observation.rs"))
    assert (message.domain, message.uri, message.chain_id) == (DOMAIN, URI, chain.chain_id)
    assert message.address == patient.address and len(message.nonce) >= 8
    assert "MedLedger" in message.statement and "user/Observation.rs" in message.statement
    assert message.expiration_time._datetime - message.issued_at._datetime == timedelta(minutes=5)


def test_a_replayed_sign_in_is_refused_saying_the_nonce_was_used(authority, registered_patient):
    message = authority.challenge(registered_patient.address, "patient/*.rs")
    signed = signature(registered_patient, message)
    authority.sign_in(message, signed)
    with pytest.raises(Unauthenticated, match="used already"):
        authority.sign_in(message, signed)


def test_an_expired_sign_in_message_is_refused(authority, registered_patient, clock):
    message = authority.challenge(registered_patient.address, "patient/*.rs")
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthenticated, match="expired at"):
        authority.sign_in(message, signature(registered_patient, message))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("chain_id", 1, "is for chain 1; this gateway serves chain"),
        ("domain", "evil.example", "is for evil.example, not this gateway"),
        ("uri", "http://evil.example/fhir", "not the challenge this gateway issued"),
        ("statement", "Sign in to MedLedger with the scopes: system/*.cruds", "not the challenge"),
    ],
    ids=["another-chain", "another-domain", "another-uri", "scopes-changed"],
)
def test_a_signed_message_changed_from_the_challenge_is_refused(
    authority, registered_patient, field, value, reason
):
    """The account really signed the changed message (as a phishing site would have it
    sign): the signature is good, the message is not this gateway's challenge."""
    issued = SiweMessage.from_message(
        authority.challenge(registered_patient.address, "patient/*.rs")
    )
    changed = issued.model_copy(update={field: value}).prepare_message()
    with pytest.raises(Unauthenticated, match=reason):
        authority.sign_in(changed, signature(registered_patient, changed))


def test_a_signature_by_another_key_is_refused(authority, registered_patient, stranger):
    message = authority.challenge(registered_patient.address, "patient/*.rs")
    with pytest.raises(Unauthenticated, match="does not show that"):
        authority.sign_in(message, signature(stranger, message))
    token = authority.sign_in(message, signature(registered_patient, message))  # still unused
    assert token.address == registered_patient.address


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "not an EIP-4361 message"),
        ("hello", "not an EIP-4361 message"),
        ("127.0.0.1 wants you to sign in", "not an EIP-4361 message"),
        ("x" * 5000, "longer than 4096 characters"),
    ],
    ids=["empty", "text", "cut", "too-long"],
)
def test_a_message_that_is_not_eip4361_is_refused(authority, message, reason):
    with pytest.raises(Unauthenticated, match=reason):
        authority.sign_in(message, "0x" + "00" * 65)


def test_a_caller_with_no_standing_gets_no_token(sign_in, stranger):
    with pytest.raises(Forbidden, match="no live grant"):
        sign_in(stranger, "user/*.rs patient/Observation.read")


def test_the_institution_running_the_gateway_keeps_system_scopes(
    sign_in, authority, hospital, registered_patient
):
    token = sign_in(hospital, "system/*.cruds")
    assert token.scope == "system/*.cruds" and token.patient is None
    principal = authority.authorize(
        token.bearer, "Observation", Action.CREATE, registered_patient.address
    )
    assert principal.institution and principal.categories is None


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bearer", [None, "", "  "], ids=["none", "empty", "blank"])
def test_a_request_without_a_token_is_unauthenticated(authority, bearer):
    with pytest.raises(Unauthenticated, match="no bearer token") as refused:
        authority.authorize(bearer, "Observation", "read", None)
    assert refused.value.http_status == 401


def test_a_tampered_token_is_refused(sign_in, authority, registered_patient):
    token = sign_in(registered_patient, "patient/*.rs")
    header, payload, mac = token.bearer.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "system/*.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="not issued by this gateway"):
        authority.authorize(f"{header}.{forged}.{mac}", "Observation", "create", None)
    with pytest.raises(Unauthenticated, match="not a token of this gateway"):
        authority.authorize("not-a-token", "Observation", "read", None)


def test_an_expired_token_is_refused(sign_in, authority, registered_patient, clock):
    token = sign_in(registered_patient, "patient/*.rs")
    clock.advance(timedelta(minutes=14, seconds=59))
    authority.authorize(token.bearer, "Observation", "read", None)
    clock.advance(timedelta(seconds=1))
    stale = f"expired at {token.expires_at:%Y-%m-%d %H:%M:%S}Z: sign in again"
    with pytest.raises(Unauthenticated, match=stale):
        authority.authorize(token.bearer, "Observation", "read", None)


def test_a_token_of_another_authority_is_refused_after_a_restart(
    sign_in, chain, hospital, registered_patient, clock
):
    token = sign_in(registered_patient, "patient/*.rs")
    restarted = Authority(chain, hospital.address, DOMAIN, URI, clock=clock)
    with pytest.raises(Unauthenticated, match="restarted"):
        restarted.authorize(token.bearer, "Observation", "read", None)


# --- scopes against the grants ---------------------------------------------------------------


def test_scopes_beyond_the_grants_are_cut_down(sign_in, give, doctor_with_key):
    give(doctor_with_key, consent.Scope(consent.ScopeKind.CATEGORY, category=Category.LAB))
    token = sign_in(
        doctor_with_key, "user/*.cruds user/Condition.rs patient/Observation.read system/*.rs"
    )
    kept = {(s.context.value, s.resource_type, s.actions) for s in token.scopes}
    reads = frozenset({Action.READ, Action.SEARCH})
    studies = {("user", t, reads) for t in STUDY_TYPES}  # any verified institution's (the clinic)
    assert (
        kept
        == {("user", t, reads) for t in LAB_TYPES} | {("patient", "Observation", reads)} | studies
    )
    assert token.patient is None


def test_a_grantees_token_allows_only_the_granted_records_category(
    sign_in, authority, give, doctor_with_key, create_record, registered_patient
):
    lab, other_lab = create_record("lab-1", Category.LAB), create_record("lab-2", Category.LAB)
    vitals = create_record("vitals", Category.VITALS)
    give(doctor_with_key, consent.Scope(consent.ScopeKind.RECORD, record=lab.id))
    token = sign_in(doctor_with_key, "user/*.read")
    assert {s.resource_type for s in token.scopes} == LAB_TYPES | STUDY_TYPES

    principal = authority.authorize(
        token.bearer, "Observation", "search", registered_patient.address
    )
    assert [principal.covers(r) for r in (lab, other_lab, vitals)] == [True, False, False]
    with pytest.raises(Forbidden, match="do not allow read of Condition"):
        authority.authorize(token.bearer, "Condition", "read", registered_patient.address)
    with pytest.raises(Forbidden, match="name the patient"):
        authority.authorize(token.bearer, "Observation", "search", None)


def test_a_revoked_grant_is_refused_on_the_next_authorize(
    chain, sign_in, authority, give, doctor_with_key, registered_patient
):
    everything = consent.Scope(consent.ScopeKind.ALL)
    give(doctor_with_key, everything)
    token = sign_in(doctor_with_key, "patient/*.rs")
    assert token.scope == "patient/*.rs"
    authority.authorize(token.bearer, "Condition", "read", registered_patient.address)
    consent.revoke(
        chain, registered_patient, registered_patient.address, doctor_with_key.address, everything
    )
    with pytest.raises(Forbidden, match="revoked the grant") as refused:
        authority.authorize(token.bearer, "Condition", "read", registered_patient.address)
    assert refused.value.http_status == 403


def test_a_patient_token_does_not_reach_another_patient(
    sign_in, authority, registered_patient, doctor
):
    token = sign_in(registered_patient, "patient/*.rs")
    with pytest.raises(Forbidden, match="no live grant"):
        authority.authorize(token.bearer, "Observation", "read", doctor.address)


def test_an_emergency_service_reads_only_while_its_opening_is_live(
    chain, sign_in, authority, verified_institution, create_record, registered_patient
):
    service = verified_institution(
        dev_account(7), providers.InstitutionKind.EMERGENCY_SERVICE, "City Ambulance"
    )
    vitals = create_record("vitals", Category.VITALS)
    token = sign_in(service, "user/*.rs")
    assert token.scope == "user/*.rs"  # it may open access to anyone's records
    patient = registered_patient.address
    with pytest.raises(Forbidden, match="no live grant"):
        authority.authorize(token.bearer, "Observation", "read", patient)
    consent.open_emergency_access(chain, service, patient, timedelta(hours=2), "ER 4")
    principal = authority.authorize(token.bearer, "Observation", "read", patient)
    assert principal.covers(vitals)
    consent.close_emergency_access(chain, registered_patient, patient, service.address)
    with pytest.raises(Forbidden, match="no live grant"):
        authority.authorize(token.bearer, "Observation", "read", patient)


def test_a_recovered_patients_new_key_signs_in_as_the_patient_and_the_old_key_cannot(
    chain, sign_in, authority, registered_patient
):
    """After guardians move control to a new key, the token of the new key is about the
    patient's id (records and grants stay keyed by it): no ``?patient=`` needed."""
    from medledger.providers import recovery

    guardians, new_key = [dev_account(16), dev_account(17)], dev_account(19)
    patient = registered_patient
    recovery.set_guardians(chain, patient, [g.address for g in guardians], 2, timedelta(days=1))
    for guardian in guardians:
        recovery.approve_recovery(chain, guardian, patient.address, new_key.address)
    chain.w3.provider.make_request("evm_increaseTime", [86_401])
    chain.w3.provider.make_request("evm_mine", [])
    recovery.complete_recovery(chain, guardians[0], patient.address)
    token = sign_in(new_key, "patient/*.rs")
    assert token.address == new_key.address and token.patient == patient.address
    principal = authority.authorize(f"Bearer {token.bearer}", "Condition", "search", None)
    assert principal.patient == patient.address and principal.categories is None
    with pytest.raises(Forbidden):
        sign_in(patient, "patient/*.rs")
