"""Attacks on the trust core (issue #12), tried by an independent attacker against all five
contracts: ProviderRegistry, RecordRegistry, ConsentManager, ClaimsManager, TrialRegistry.

Each test is one attack on a rule of README "## Who may do what", tried by a hostile party (a
verified institution of each kind, a removed practitioner, a suspended institution, a delegate
turned hostile, a front-runner, a patient gaming claims), and asserts the *secure* outcome:
the exact refusal, or a protected state left as it was. A passing test documents a defence. An
attack that works is kept, marked ``xfail(strict=True)`` with the finding as its reason, so
that the test starts to fail (XPASS) the day the contracts fix it and its mark must go.
Only honest parties get set-up (a care relationship, a grant, an acceptance): the attacker
gets no help.

The world (module-scoped, rolled back by Ape after each test):

* ``patient`` and ``other_patient`` registered;
* ``hospital`` and ``clinic`` verified care providers, ``doctor`` a practitioner of the
  hospital; ``lab`` a LAB record of the patient written by the hospital (the patient opened
  a care relationship with the hospital for it);
* ``ems`` a verified emergency service and ``paramedic`` its practitioner;
* ``insurer`` a verified insurer with ``adjuster`` its practitioner, ``other_insurer`` another
  verified insurer; ``resolver`` holds ClaimsManager's RESOLVER_ROLE;
* ``sponsor`` a verified research sponsor with ``investigator`` its practitioner;
* ``consent_manager``, ``token`` (the devnet stablecoin), ``claims_manager`` (seven-day
  dispute window) and ``trial_registry`` deployed on the session's registries;
* ``stranger`` an account with no role anywhere.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from ape.exceptions import ContractLogicError
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from .claims.model import care_key, identifier_key, patient_claim_id
from .support import (
    MAX_UINT40,
    NO_RECORD,
    REGISTRAR_ROLE,
    THRESHOLD,
    ZERO_ADDRESS,
    Category,
    Kind,
    Status,
    assert_events,
    call_reverts,
    digest,
    indexed_tree,
    key_proof,
    merkle_tree,
    new_key,
    reverts,
    sign_digest,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from .conftest import Anchored, AnchoredBatch

HOUR = 3600
DAY = 24 * HOUR
ZERO32 = HexBytes(bytes(32))
ENVELOPE = digest("envelope")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# IConsentManager
TREATMENT, PAYMENT = 1, 2  # Purpose
EMERGENCY = 6  # Purpose.Emergency
SCOPE_RECORD, SCOPE_CATEGORY, SCOPE_ALL = 0, 1, 2  # ScopeKind
EMERGENCY_COOLDOWN = 7 * DAY

# IClaimsManager
USD = 10**6
DISPUTE_WINDOW = 7 * DAY
DECISION_PERIOD = 30 * DAY
RESOLVER_ROLE = HexBytes(keccak(text="RESOLVER_ROLE"))
DENIED, DISPUTED = 5, 6  # ClaimState
SUBMITTED_BY_PATIENT = 6  # ReviewReason
REASON = 7  # any non-zero reason code
CODES = sorted(HexBytes(keccak(text=f"salted-code-{c}")) for c in ("99213", "80053", "85025"))
CODES_ROOT, CODE_PROOFS = merkle_tree(CODES)

# ITrialRegistry
TRIAL_ONLY = 1  # ConsentPurpose
READERS_ALL = 3
VISIT = digest("visit-baseline")


# ============================================================================ helpers


def number_of(provider_registry: Any, institution: Any) -> int:
    """An institution's directory number: a record's ``writer``, a claim's provider."""
    return int(provider_registry.participant(institution).number)


def secret_of(account: Any) -> bytes:
    """The private key of a test account."""
    return bytes(HexBytes(account.private_key))


def recover(message_digest: bytes, signature: bytes) -> str:
    """The address that ``signature`` recovers to over ``message_digest``."""
    return to_checksum_address(Account._recover_hash(bytes(message_digest), signature=signature))


def malleable(signature: bytes) -> HexBytes:
    """The other valid ECDSA signature of the same digest: ``(r, n - s, v ^ 1)`` (high s)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return HexBytes(r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]))


def compact(signature: bytes) -> HexBytes:
    """The EIP-2098 64-byte form of a 65-byte signature: ``r || (v - 27) << 255 | s``."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return HexBytes(r + ((v - 27) << 255 | s).to_bytes(32, "big"))


def typed_digest(
    name: str, chain_id: int, contract: str, primary: str, fields: list[Any], message: dict
) -> HexBytes:
    """The EIP-712 digest of ``message`` under domain ``(name, "1", chain_id, contract)``."""
    signable = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: [{"name": n, "type": t} for n, t in fields],
            },
            "primaryType": primary,
            "domain": {
                "name": name,
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": contract,
            },
            "message": message,
        }
    )
    return HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


CARE_FIELDS = [
    ("patient", "address"),
    ("institution", "address"),
    ("until", "uint40"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]
GRANT_FIELDS = [
    ("patient", "address"),
    ("grantee", "address"),
    ("scopeKind", "uint8"),
    ("scope", "bytes32"),
    ("purpose", "uint8"),
    ("expiresAt", "uint40"),
    ("envelopeDigest", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
]


def submission(
    policy_id: int,
    billed: int,
    record: bytes,
    *,
    codes: list[bytes] | None = None,
    prove: bool = True,
    service: str = "service-1",
    identifier: str | None = None,
    evidence: tuple[bytes, ...] = (),
    pay_patient: bool = False,
) -> dict[str, Any]:
    """A claim submission; ``codes`` (default: the first covered code) are sent as given."""
    codes = [CODES[0]] if codes is None else codes
    return {
        "policyId": policy_id,
        "billed": billed,
        "payPatient": pay_patient,
        "claimRecord": HexBytes(record),
        "evidence": [HexBytes(e) for e in evidence],
        "codeHashes": codes,
        "codeProofs": [CODE_PROOFS[bytes(c)] for c in codes] if prove else [],
        "serviceKey": digest(service),
        "identifierKey": digest(identifier) if identifier else ZERO32,
    }


# ============================================================================ fixtures


def _funded_account(accounts: Any, admin: AccountAPI) -> AccountAPI:
    account = accounts.generate_test_account()
    admin.transfer(account, 10**20)
    return account


@pytest.fixture(scope="module")
def ems(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A verified emergency service."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def paramedic(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A practitioner of ``ems``."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def insurer(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A verified insurer."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def adjuster(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A practitioner of ``insurer``."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def other_insurer(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """Another verified insurer."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def sponsor(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A verified research sponsor."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def investigator(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """A practitioner of ``sponsor``."""
    return _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def resolver(accounts: Any, admin: AccountAPI) -> AccountAPI:
    """Holder of ClaimsManager's RESOLVER_ROLE."""
    return _funded_account(accounts, admin)


@pytest.fixture
def fresh_account(accounts: Any, admin: AccountAPI) -> Callable[[], AccountAPI]:
    """``fresh_account()``: a new funded account with no role."""
    return lambda: _funded_account(accounts, admin)


@pytest.fixture(scope="module")
def consent_manager(project: Any, provider_registry: Any, record_registry: Any, admin: Any) -> Any:
    return project.ConsentManager.deploy(provider_registry, record_registry, sender=admin)


@pytest.fixture(scope="module")
def token(project: Any, admin: AccountAPI) -> Any:
    """The devnet stablecoin, minted by ``admin``."""
    return project.DevStablecoin.deploy(admin, sender=admin)


@pytest.fixture(scope="module")
def claims_manager(
    project: Any,
    provider_registry: Any,
    record_registry: Any,
    consent_manager: Any,
    token: Any,
    admin: AccountAPI,
) -> Any:
    return project.ClaimsManager.deploy(
        provider_registry,
        record_registry,
        consent_manager,
        token,
        DISPUTE_WINDOW,
        admin,
        sender=admin,
    )


@pytest.fixture(scope="module")
def trial_registry(project: Any, provider_registry: Any, admin: AccountAPI) -> Any:
    return project.TrialRegistry.deploy(provider_registry, sender=admin)


@pytest.fixture(scope="module")
def world_roles(
    claims_manager: Any,
    admin: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    ems: AccountAPI,
    paramedic: AccountAPI,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    other_insurer: AccountAPI,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    resolver: AccountAPI,
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
    verified_institution(Kind.INSURER, account=other_insurer)
    verified_institution(Kind.RESEARCH_SPONSOR, account=sponsor)
    add_practitioner(hospital, doctor)
    add_practitioner(ems, paramedic)
    add_practitioner(insurer, adjuster)
    add_practitioner(sponsor, investigator)
    claims_manager.grantRole(RESOLVER_ROLE, resolver, sender=admin)


@pytest.fixture(scope="module")
def lab(
    world_roles: None,
    hospital: AccountAPI,
    patient: AccountAPI,
    create_record: Callable[..., Anchored],
) -> Anchored:
    """A LAB record of the patient, written by the hospital that treats them (the patient
    opened a care relationship with the hospital first)."""
    return create_record(hospital, patient, category=Category.LAB)


@pytest.fixture(scope="module", autouse=True)
def world(
    world_roles: None, consent_manager: Any, token: Any, trial_registry: Any, lab: Anchored
) -> None:
    """Sets up every module fixture before any test (see the contract conftest on isolation)."""


@pytest.fixture(scope="module")
def now(chain: Any) -> Callable[[], int]:
    """The head block's timestamp."""
    return lambda: int(chain.blocks.head.timestamp)


@pytest.fixture(scope="module")
def block_time(chain: Any) -> Callable[[ReceiptAPI], int]:
    """The timestamp of the block a receipt is in."""
    return lambda receipt: int(chain.blocks[receipt.block_number].timestamp)


@pytest.fixture(scope="module")
def next_tx_at(
    chain: Any, advance_time: Callable[[int], int], now: Callable[[], int]
) -> Callable[[int], int]:
    """``next_tx_at(t)``: makes the next transaction run at exactly ``t`` (as the claims
    conftest's fixture of that name: the head at ``t - 1``, and on Anvil the next block's
    timestamp pinned)."""

    def pin(t: int) -> int:
        if t - 1 < now() + 1:
            raise ValueError(f"{t} is not at least two seconds after the head ({now()})")
        advance_time(t - 1 - now())
        if chain.provider.name == "foundry":
            chain.provider.make_request("evm_setNextBlockTimestamp", [t])
        return t

    return pin


# ---------------------------------------------------------------------------- factories


@pytest.fixture(scope="module")
def sign_care(provider_registry: Any, now: Callable[[], int]) -> Callable[..., Any]:
    """``sign_care(signer, patient, institution, **fields)``: a care request (until revoked,
    the patient's next nonce, a deadline an hour ahead) and ``signer``'s signature of it."""

    def sign(signer: Any, patient: Any, institution: Any, **fields: Any) -> Any:
        request = {
            "patient": patient.address,
            "institution": institution.address,
            "until": MAX_UINT40,
            "nonce": int(provider_registry.nonces(patient)),
            "deadline": now() + HOUR,
        }
        request.update(fields)
        signature = sign_digest(secret_of(signer), provider_registry.careDigest(request))
        return request, signature

    return sign


@pytest.fixture(scope="module")
def sign_grant(consent_manager: Any, now: Callable[[], int]) -> Callable[..., Any]:
    """``sign_grant(signer, patient, grantee, **fields)``: a grant request (scope All, for
    treatment, a day long, the patient's next nonce, a deadline an hour ahead) and
    ``signer``'s signature of it."""

    def sign(signer: Any, patient: Any, grantee: Any, **fields: Any) -> Any:
        request = {
            "patient": patient.address,
            "grantee": grantee.address,
            "scopeKind": SCOPE_ALL,
            "scope": ZERO32,
            "purpose": TREATMENT,
            "expiresAt": now() + DAY,
            "envelopeDigest": ENVELOPE,
            "nonce": int(consent_manager.nonces(patient)),
            "deadline": now() + HOUR,
        }
        request.update(fields)
        signature = sign_digest(secret_of(signer), consent_manager.grantDigest(request))
        return request, signature

    return sign


@pytest.fixture(scope="module")
def financial_record(
    consent_manager: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    insurer: AccountAPI,
    create_record: Callable[..., Anchored],
    now: Callable[[], int],
) -> Callable[..., HexBytes]:
    """``financial_record(issuer=hospital, patient=patient, grantee=insurer)``: a FINANCIAL
    record (a FHIR Claim) the issuer writes for the patient, who grants the insurer access to
    it for payment."""

    def make(
        issuer: AccountAPI = hospital, patient: AccountAPI = patient, grantee: Any = insurer
    ) -> HexBytes:
        record = create_record(issuer, patient, category=Category.FINANCIAL).id
        consent_manager.grant(
            patient,
            grantee,
            SCOPE_RECORD,
            record,
            PAYMENT,
            now() + 365 * DAY,
            ENVELOPE,
            sender=patient,
        )
        return record

    return make


@pytest.fixture(scope="module")
def issue_policy(
    claims_manager: Any,
    token: Any,
    admin: AccountAPI,
    insurer: AccountAPI,
    patient: AccountAPI,
    now: Callable[[], int],
) -> Callable[..., int]:
    """``issue_policy(sender=insurer, funds=10_000 USD, **terms)``: issues and funds a policy
    of the patient (from a day ago for 60 days, 80 % above a 100 mUSD deductible, a 5,000 mUSD
    limit, automatic settlement up to 500 mUSD, the ``CODES`` list); returns its id."""

    def issue(sender: AccountAPI = insurer, funds: int = 10_000 * USD, **terms: Any) -> int:
        start = now() - DAY
        full = {
            "patient": patient.address,
            "validFrom": start,
            "validUntil": start + 60 * DAY,
            "coverageBps": 8_000,
            "deductible": 100 * USD,
            "annualLimit": 5_000 * USD,
            "autoSettleLimit": 500 * USD,
            "codesRoot": CODES_ROOT,
            "termsDigest": digest("terms"),
        }
        full.update(terms)
        receipt = claims_manager.issuePolicy(full, sender=sender)
        policy_id = int(claims_manager.PolicyIssued.from_receipt(receipt)[0].policyId)
        token.mint(sender, funds, sender=admin)
        token.approve(claims_manager, funds, sender=sender)
        claims_manager.fundPolicy(policy_id, funds, sender=sender)
        return policy_id

    return issue


@pytest.fixture(scope="module")
def study(
    world_roles: None, trial_registry: Any, sponsor: AccountAPI, hospital: Any, clinic: Any
) -> Callable[..., int]:
    """``study(outcomes="outcomes-v1")``: registers a study (sites: hospital, clinic) whose
    version 1 has the given primary outcomes; returns its id."""

    def register(outcomes: str = "outcomes-v1") -> int:
        protocol = (digest("protocol-v1"), False, digest(outcomes), ZERO32)
        receipt = trial_registry.registerStudy(
            protocol, [hospital, clinic], digest("summary"), sender=sponsor
        )
        return int(trial_registry.StudyRegistered.from_receipt(receipt)[0].studyId)

    return register


@pytest.fixture(scope="module")
def sign_consent(trial_registry: Any, hospital: AccountAPI, now: Callable[[], int]) -> Any:
    """``sign_consent(participant, study_id, **fields)``: a consent to the version in force at
    the hospital (trial only, both reader bits, no delegate, the next nonce, an hour) and the
    participant's signature of it."""

    def sign(participant: Any, study_id: int, **fields: Any) -> Any:
        request = {
            "studyId": study_id,
            "version": int(trial_registry.getStudy(study_id).currentVersion),
            "protocolHash": trial_registry.protocolHashOf(
                study_id, int(trial_registry.getStudy(study_id).currentVersion)
            ),
            "site": hospital.address,
            "participant": participant.address,
            "purpose": TRIAL_ONLY,
            "readers": READERS_ALL,
            "delegate": ZERO_ADDRESS,
            "nonce": int(trial_registry.nonces(participant)),
            "deadline": now() + HOUR,
        }
        request.update(fields)
        signature = sign_digest(secret_of(participant), trial_registry.consentDigest(request))
        return request, signature

    return sign


@pytest.fixture
def participant(fresh_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A pseudonymous study key (an account with ETH, so that it may send its own
    transactions when an attack needs it)."""
    return fresh_account()


@pytest.fixture
def enrolled(
    trial_registry: Any,
    hospital: AccountAPI,
    participant: AccountAPI,
    study: Callable[..., int],
    sign_consent: Callable[..., Any],
) -> int:
    """A study (version 1) in which ``participant`` consented at the hospital; its id."""
    study_id = study()
    trial_registry.consent(*sign_consent(participant, study_id), sender=hospital)
    return study_id


# ============================================================================ registrars


def test_removed_registrar_cannot_vote_itself_back_nor_approve(
    provider_registry: Any,
    registrars: list[AccountAPI],
    apply_institution: Callable[..., ReceiptAPI],
    fresh_account: Callable[[], AccountAPI],
) -> None:
    """A registrar voted out by the others votes to re-add itself, and approves an
    institution on its way out: neither counts, since it no longer holds REGISTRAR_ROLE."""
    ousted = registrars[0]
    for voter in registrars[1:]:
        provider_registry.voteRegistrar(ousted, False, sender=voter)
    applicant = fresh_account()
    apply_institution(applicant, Kind.CLINIC)

    for attempt in (
        lambda: provider_registry.voteRegistrar(ousted, True, sender=ousted),
        lambda: provider_registry.approveInstitution(applicant, sender=ousted),
    ):
        with reverts(
            provider_registry.AccessControlUnauthorizedAccount,
            account=ousted,
            neededRole=REGISTRAR_ROLE,
        ):
            attempt()

    assert not provider_registry.hasRole(REGISTRAR_ROLE, ousted)
    assert provider_registry.approvalsOf(applicant) == 0


def test_vote_cast_before_a_registrars_removal_does_not_count_after_its_return(
    provider_registry: Any,
    registrars: list[AccountAPI],
    fresh_account: Callable[[], AccountAPI],
) -> None:
    """A registrar votes to add a crony, is voted out and back in; then one more vote for the
    crony would reach the threshold if the old vote still counted. It belongs to an earlier
    term, so the crony has one vote of two."""
    crony = fresh_account()
    provider_registry.voteRegistrar(crony, True, sender=registrars[0])
    for add in (False, True):
        for voter in registrars[1:]:
            provider_registry.voteRegistrar(registrars[0], add, sender=voter)
    assert provider_registry.hasRole(REGISTRAR_ROLE, registrars[0])

    receipt = provider_registry.voteRegistrar(crony, True, sender=registrars[1])

    assert_events(
        receipt,
        provider_registry.RegistrarVoted(
            account=crony, add=True, registrar=registrars[1], votes=1, threshold=THRESHOLD
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, crony)


def test_threshold_vote_racing_a_removal_cannot_exceed_the_registrars_left(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    """A vote for a threshold of 3 is pending while a registrar is voted out; the second vote
    for 3 would make the threshold unreachable with the two registrars left."""
    provider_registry.voteThreshold(3, sender=registrars[1])
    for voter in registrars[1:]:
        provider_registry.voteRegistrar(registrars[0], False, sender=voter)

    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.voteThreshold(3, sender=registrars[2])

    assert provider_registry.approvalThreshold() == THRESHOLD


def test_removal_racing_a_raised_threshold_cannot_leave_it_unreachable(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    """The threshold was raised to 3 of 3; a removal that gathers its 3 votes (the last one
    the removed registrar's own) would leave 2 registrars for a threshold of 3."""
    for voter in registrars[1:]:
        provider_registry.voteThreshold(3, sender=voter)
    assert provider_registry.approvalThreshold() == 3
    for voter in registrars[1:]:
        provider_registry.voteRegistrar(registrars[0], False, sender=voter)

    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.voteRegistrar(registrars[0], False, sender=registrars[0])

    assert provider_registry.hasRole(REGISTRAR_ROLE, registrars[0])


def test_stale_threshold_vote_does_not_count_after_the_threshold_changed(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    """A registrar votes for a threshold of 1; the threshold then becomes 3; two registrars
    vote for 1 again, which with the stale vote would be the 3 needed."""
    provider_registry.voteThreshold(1, sender=registrars[0])
    for voter in registrars[1:]:
        provider_registry.voteThreshold(3, sender=voter)

    provider_registry.voteThreshold(1, sender=registrars[1])
    receipt = provider_registry.voteThreshold(1, sender=registrars[2])

    assert_events(
        receipt,
        provider_registry.ThresholdVoted(threshold=1, registrar=registrars[2], votes=2, needed=3),
    )
    assert provider_registry.approvalThreshold() == 3


def test_registrars_cannot_renounce_below_the_threshold(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    """Registrars walk out (``renounceRole``) to leave the registry without a quorum: the one
    whose leaving would make the threshold unreachable cannot."""
    provider_registry.renounceRole(REGISTRAR_ROLE, registrars[0], sender=registrars[0])

    with reverts(provider_registry.ProviderInvalidThreshold, threshold=THRESHOLD, registrars=1):
        provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])

    assert provider_registry.getRoleMemberCount(REGISTRAR_ROLE) == 2


def test_registrar_working_for_a_suspended_institution_cannot_approve_its_reinstatement(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    add_practitioner: Callable[..., ReceiptAPI],
    suspend: Callable[..., ReceiptAPI],
) -> None:
    """A registrar who is also the hospital's practitioner approves the suspended hospital's
    reinstatement."""
    insider = registrars[2]
    add_practitioner(hospital, insider)
    suspend(hospital)

    with reverts(provider_registry.ProviderSelfApproval, registrar=insider, institution=hospital):
        provider_registry.approveInstitution(hospital, sender=insider)

    assert provider_registry.approvalsOf(hospital) == 0


def test_registrar_cannot_leave_its_employer_for_a_moment_to_approve_its_reinstatement(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    add_practitioner: Callable[..., ReceiptAPI],
    suspend: Callable[..., ReceiptAPI],
) -> None:
    """The registrar of the test above resigns from the hospital, approves its reinstatement
    (one more registrar suffices), and the reinstated hospital hires it back."""
    insider = registrars[2]
    add_practitioner(hospital, insider)
    suspend(hospital)
    provider_registry.removePractitioner(insider, sender=insider)

    with contextlib.suppress(ContractLogicError):  # a refusal is the secure outcome
        provider_registry.approveInstitution(hospital, sender=insider)

    assert provider_registry.approvalsOf(hospital) == 0, "a former employee's approval counts"


# ============================================================================ practitioners, keys


def test_invitation_made_before_a_suspension_is_accepted_only_after_reinstatement(
    provider_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    suspend: Callable[..., ReceiptAPI],
    approve: Callable[..., Any],
) -> None:
    """A hospital invites an account and is suspended; the account accepts, to act for the
    hospital (now or the moment it is reinstated). Refused while the hospital is suspended;
    the invitation, the verified hospital's own act, stands once it is reinstated."""
    provider_registry.addPractitioner(stranger, sender=hospital)
    suspend(hospital)

    with reverts(
        provider_registry.ProviderInvalidStatus, institution=hospital, status=Status.SUSPENDED
    ):
        provider_registry.acceptPractitioner(hospital, sender=stranger)
    assert provider_registry.verifiedInstitutionOf(stranger) == ZERO_ADDRESS

    approve(hospital)
    provider_registry.acceptPractitioner(hospital, sender=stranger)
    assert provider_registry.verifiedInstitutionOf(stranger) == hospital.address


def test_institution_cannot_remove_or_poach_another_institutions_practitioner(
    provider_registry: Any, hospital: AccountAPI, clinic: AccountAPI, doctor: AccountAPI
) -> None:
    """The clinic removes the hospital's doctor, or invites her over her current role."""
    with reverts(provider_registry.ProviderNotPractitioner, institution=clinic, account=doctor):
        provider_registry.removePractitioner(doctor, sender=clinic)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=doctor):
        provider_registry.addPractitioner(doctor, sender=clinic)

    assert provider_registry.verifiedInstitutionOf(doctor) == hospital.address


def test_key_proof_signed_for_another_registry_is_refused(
    project: Any,
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
) -> None:
    """A key proof made for another deployment (another chain, or a registry redeployed) is
    replayed here: the EIP-712 domain names the registry, so it proves nothing here."""
    elsewhere = admin.deploy(project.ProviderRegistry, registrars, THRESHOLD)
    key = new_key()
    proof = key_proof(elsewhere, stranger, key)

    with reverts(provider_registry.ProviderKeyNotOwned, account=stranger, key=key):
        provider_registry.registerPatient(key, proof, sender=stranger)


@pytest.mark.parametrize("form", ["high-s", "compact"])
def test_key_proof_in_another_encoding_is_refused(
    provider_registry: Any, stranger: AccountAPI, form: str
) -> None:
    """A valid key proof re-encoded (the high-s twin, or EIP-2098's 64 bytes): the contract
    accepts only the canonical 65-byte form, so a signature has one encoding."""
    key = new_key()
    proof = key_proof(provider_registry, stranger, key)
    other = malleable(proof) if form == "high-s" else compact(proof)

    with reverts(provider_registry.ProviderKeyNotOwned, account=stranger, key=key):
        provider_registry.registerPatient(key, other, sender=stranger)


# ============================================================================ care relationships


def test_institution_cannot_open_a_care_relationship_for_itself(
    provider_registry: Any, clinic: AccountAPI, patient: AccountAPI
) -> None:
    """The clinic authorises care with the patient itself, to write their records."""
    with reverts(provider_registry.ProviderNotPatientOrDelegate, caller=clinic, patient=patient):
        provider_registry.authorizeCare(patient, clinic, MAX_UINT40, sender=clinic)

    assert provider_registry.careOf(patient, clinic).since == 0


def test_institution_cannot_end_another_institutions_care(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
) -> None:
    """The hospital ends the patient's care relationship with a competing clinic."""
    authorize_care(patient, clinic)

    with reverts(
        provider_registry.ProviderNotCareParty,
        caller=hospital,
        patient=patient,
        institution=clinic,
    ):
        provider_registry.revokeCare(patient, clinic, sender=hospital)

    assert provider_registry.mayWriteFor(clinic, patient)[0]


@pytest.mark.parametrize(
    "forgery",
    [
        "replayed",
        "cancelled",
        "high-s",
        "compact",
        "other-chain",
        "signed-by-institution",
        "signed-by-dropped-delegate",
        "grant-signature",
        "until-changed",
    ],
)
def test_forged_or_replayed_care_signature_is_refused(
    chain: Any,
    provider_registry: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    sign_care: Callable[..., Any],
    sign_grant: Callable[..., Any],
    now: Callable[[], int],
    forgery: str,
) -> None:
    """The clinic submits ``authorizeCareWithSignature`` with a signature the patient never
    gave for this request: one already used, one cancelled (``cancelSignatures``), the same
    signature re-encoded, one for another chain, its own, a dropped delegate's, the patient's
    signature of a *grant*, or the patient's signature with a later ``until``."""
    nonce = int(provider_registry.nonces(patient))
    until = now() + DAY if forgery == "until-changed" else MAX_UINT40
    request, signature = sign_care(patient, patient, clinic, until=until)
    if forgery == "replayed":
        provider_registry.authorizeCareWithSignature(request, signature, sender=clinic)
        provider_registry.revokeCare(patient, clinic, sender=patient)
    elif forgery == "cancelled":
        provider_registry.cancelSignatures(patient, sender=patient)
    elif forgery == "high-s":
        signature = malleable(signature)
    elif forgery == "compact":
        signature = compact(signature)
    elif forgery == "other-chain":
        here, elsewhere = (
            typed_digest(
                "MedLedger ProviderRegistry",
                chain_id,
                provider_registry.address,
                "CareRequest",
                CARE_FIELDS,
                request,
            )
            for chain_id in (chain.chain_id, chain.chain_id + 1)
        )
        assert here == HexBytes(provider_registry.careDigest(request))  # the digest is built right
        signature = sign_digest(secret_of(patient), elsewhere)
    elif forgery == "signed-by-institution":
        _, signature = sign_care(clinic, patient, clinic)
    elif forgery == "signed-by-dropped-delegate":
        provider_registry.setDelegate(stranger, True, sender=patient)
        _, signature = sign_care(stranger, patient, clinic)
        provider_registry.setDelegate(stranger, False, sender=patient)
    elif forgery == "grant-signature":
        _, signature = sign_grant(patient, patient, clinic, nonce=nonce)
    else:
        request = {**request, "until": MAX_UINT40}  # signed for a day, sent for ever

    if forgery in ("replayed", "cancelled"):
        error, inputs = (
            provider_registry.ProviderSignatureReplayed,
            {"patient": patient, "nonce": nonce, "expectedNonce": nonce + 1},
        )
    else:
        invalid = forgery in ("high-s", "compact")  # refused before recovery: no signer
        signer = (
            ZERO_ADDRESS if invalid else recover(provider_registry.careDigest(request), signature)
        )
        error, inputs = (
            provider_registry.ProviderInvalidSignature,
            {"signer": signer, "patient": patient},
        )
    with reverts(error, **inputs):
        provider_registry.authorizeCareWithSignature(request, signature, sender=clinic)

    assert not provider_registry.mayWriteFor(clinic, patient)[0]


def test_care_opened_after_a_batch_does_not_cover_it(
    record_registry: Any,
    provider_registry: Any,
    clinic: AccountAPI,
    patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
    anchor_batch: Callable[..., AnchoredBatch],
    advance_time: Callable[[int], int],
) -> None:
    """The clinic anchors a batch holding records of a patient it does not treat, hoping to
    register them once the patient (later) opens a care relationship with it."""
    batch = anchor_batch(clinic, [patient])
    advance_time(HOUR)
    authorize_care(patient, clinic)
    (entry,) = batch.entries

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=clinic, patient=patient):
        record_registry.registerFromBatch(*entry.args(batch), sender=clinic)

    assert provider_registry.careOf(patient, clinic).since > batch_time(record_registry, batch)


def test_renewing_an_ended_care_relationship_does_not_cover_a_batch_anchored_in_the_gap(
    record_registry: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
    anchor_batch: Callable[..., AnchoredBatch],
    advance_time: Callable[[int], int],
) -> None:
    """The patient ends their care relationship with the hospital; the hospital anchors a batch
    of their records anyway; the patient later renews the relationship. A renewal that kept
    the old ``since`` would cover the gap, and the batch."""
    first_since = int(provider_registry.careOf(patient, hospital).since)
    provider_registry.revokeCare(patient, hospital, sender=patient)
    advance_time(HOUR)
    batch = anchor_batch(hospital, [patient])
    advance_time(HOUR)
    authorize_care(patient, hospital)
    (entry,) = batch.entries

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=patient):
        record_registry.registerFromBatch(*entry.args(batch), sender=hospital)

    since = int(provider_registry.careOf(patient, hospital).since)
    assert since > batch_time(record_registry, batch) > first_since


def batch_time(record_registry: Any, batch: AnchoredBatch) -> int:
    return int(record_registry.getBatch(batch.id).anchoredAt)


@pytest.mark.parametrize("writer", ["service", "paramedic"])
def test_emergency_opening_does_not_let_the_service_write_records(
    record_registry: Any,
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    patient: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    writer: str,
) -> None:
    """The emergency service opens break-glass access (read-only) and writes a record for the
    patient, singly or through a batch."""
    account = ems if writer == "service" else paramedic
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=account)

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=account, patient=patient):
        record_registry.anchor(
            patient,
            digest("cid"),
            digest("commitment"),
            Category.CONDITION,
            NO_RECORD,
            sender=account,
        )
    batch = anchor_batch(account, [patient])
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=account, patient=patient):
        record_registry.registerFromBatch(*batch.entries[0].args(batch), sender=account)


def test_batch_cannot_supersede_a_record_another_institution_wrote(
    provider_registry: Any,
    record_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    lab: Anchored,
    authorize_care: Callable[..., ReceiptAPI],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    """The clinic, which treats the patient too, puts a "new version" of the hospital's lab
    record in a batch, to take its successor slot through ``registerFromBatch``."""
    authorize_care(patient, clinic)
    batch = anchor_batch(clinic, [patient], previous=[lab.id])

    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=lab.id,
        writer=number_of(provider_registry, clinic),
        previousWriter=number_of(provider_registry, hospital),
    ):
        record_registry.registerFromBatch(*batch.entries[0].args(batch), sender=clinic)

    assert not record_registry.getRecord(lab.id).superseded


def test_batch_entry_cannot_supersede_another_patients_record(
    record_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    lab: Anchored,
    authorize_care: Callable[..., ReceiptAPI],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    """The hospital treats both patients and batches a record of the other patient whose
    ``previous`` is the first patient's lab record."""
    authorize_care(other_patient, hospital)
    batch = anchor_batch(hospital, [other_patient], previous=[lab.id])

    with reverts(
        record_registry.RecordPatientMismatch,
        previous=lab.id,
        expected=patient,
        actual=other_patient,
    ):
        record_registry.registerFromBatch(*batch.entries[0].args(batch), sender=hospital)


@pytest.mark.parametrize("direction", ["patient-over-hospital", "hospital-over-patient"])
def test_patient_and_care_provider_cannot_supersede_each_others_records(
    provider_registry: Any,
    record_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    lab: Anchored,
    create_record: Callable[..., Anchored],
    direction: str,
) -> None:
    """The patient writes a "new version" of the hospital's lab result (to bury it), or the
    hospital, which treats the patient, writes one of a record the patient wrote themself."""
    hospital_number = number_of(provider_registry, hospital)
    if direction == "patient-over-hospital":
        writer, previous, writes_as, wrote_as = patient, lab.id, 0, hospital_number
    else:
        own = create_record(patient, patient, category=Category.ALLERGY)
        writer, previous, writes_as, wrote_as = hospital, own.id, hospital_number, 0

    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=previous,
        writer=writes_as,
        previousWriter=wrote_as,
    ):
        create_record(writer, patient, previous=previous)


def test_practitioner_who_moved_cannot_write_the_next_version_for_her_new_employer(
    provider_registry: Any,
    record_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
    create_record: Callable[..., Anchored],
) -> None:
    """The hospital's doctor writes a record, moves to the clinic (which also treats the
    patient) and writes its "next version" there, taking the hospital's successor slot."""
    note = create_record(doctor, patient, category=Category.CONDITION)
    provider_registry.removePractitioner(doctor, sender=doctor)
    provider_registry.addPractitioner(doctor, sender=clinic)
    provider_registry.acceptPractitioner(clinic, sender=doctor)
    authorize_care(patient, clinic)

    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=note.id,
        writer=number_of(provider_registry, clinic),
        previousWriter=number_of(provider_registry, hospital),
    ):
        create_record(doctor, patient, previous=note.id)


@pytest.mark.parametrize("standing", ["removed", "hospital-suspended"])
def test_practitioner_without_standing_cannot_write_or_batch(
    provider_registry: Any,
    record_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    suspend: Callable[..., ReceiptAPI],
    standing: str,
) -> None:
    """The hospital's doctor, removed (or her hospital suspended), keeps writing the patient's
    records, singly or as a batch."""
    if standing == "removed":
        provider_registry.removePractitioner(doctor, sender=hospital)
    else:
        suspend(hospital)

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=doctor, patient=patient):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD, sender=doctor
        )
    with reverts(record_registry.RecordBatchIssuerNotAuthorized, issuer=doctor):
        record_registry.anchorBatch(digest("root"), digest("manifest"), 1, sender=doctor)


@pytest.mark.parametrize("kind", ["insurer", "sponsor", "adjuster"])
def test_non_care_parties_cannot_anchor_batches(
    record_registry: Any,
    insurer: AccountAPI,
    sponsor: AccountAPI,
    adjuster: AccountAPI,
    kind: str,
) -> None:
    """An insurer, a research sponsor or an insurer's practitioner anchors a batch (to
    register records from it later)."""
    caller = {"insurer": insurer, "sponsor": sponsor, "adjuster": adjuster}[kind]

    with reverts(record_registry.RecordBatchIssuerNotAuthorized, issuer=caller):
        record_registry.anchorBatch(digest("root"), digest("manifest"), 1, sender=caller)


def test_patients_batch_cannot_register_another_patients_record(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    """A patient (who may batch their own records) puts a record of another patient in it."""
    batch = anchor_batch(patient, [patient, other_patient])
    record_registry.registerFromBatch(*batch.entries[0].args(batch), sender=patient)

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=patient, patient=other_patient):
        record_registry.registerFromBatch(*batch.entries[1].args(batch), sender=patient)


def test_batch_proof_at_another_position_is_refused(
    record_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    """A record of a batch is proven at another position (its sibling's), as a sorted-pair
    tree would allow, to make one leaf count twice or sit where another should."""
    batch = anchor_batch(hospital, [patient, patient])
    entry = batch.entries[0]

    with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=entry.id):
        record_registry.registerFromBatch(
            batch.issuer, batch.root, entry.fields, 1, entry.proof, sender=hospital
        )


# ============================================================================ delegates


@pytest.mark.parametrize(
    "action",
    [
        "authorize-care",
        "revoke-care",
        "cancel-care-signatures",
        "grant",
        "revoke-grant",
        "cancel-grant-signatures",
        "close-emergency",
        "erase",
    ],
)
def test_dropped_delegate_can_no_longer_act_for_the_patient(
    provider_registry: Any,
    consent_manager: Any,
    clinic: AccountAPI,
    hospital: AccountAPI,
    ems: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    lab: Anchored,
    now: Callable[[], int],
    action: str,
) -> None:
    """A guardian turned hostile is dropped by the patient, then tries what a delegate may
    do: open or end care, burn the patient's nonces, grant or revoke, close an emergency
    opening, erase a record."""
    consent_manager.grant(
        patient, hospital, SCOPE_ALL, ZERO32, TREATMENT, now() + DAY, ENVELOPE, sender=patient
    )
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=ems)
    provider_registry.setDelegate(stranger, True, sender=patient)
    provider_registry.setDelegate(stranger, False, sender=patient)
    registry_actions = {
        "authorize-care": lambda: provider_registry.authorizeCare(
            patient, clinic, MAX_UINT40, sender=stranger
        ),
        "revoke-care": lambda: provider_registry.revokeCare(patient, hospital, sender=stranger),
        "cancel-care-signatures": lambda: provider_registry.cancelSignatures(
            patient, sender=stranger
        ),
    }
    consent_actions = {
        "grant": lambda: consent_manager.grant(
            patient,
            stranger,
            SCOPE_ALL,
            ZERO32,
            TREATMENT,
            now() + DAY,
            ENVELOPE,
            sender=stranger,
        ),
        "revoke-grant": lambda: consent_manager.revoke(
            patient, hospital, SCOPE_ALL, ZERO32, sender=stranger
        ),
        "cancel-grant-signatures": lambda: consent_manager.cancelSignatures(
            patient, sender=stranger
        ),
        "close-emergency": lambda: consent_manager.closeEmergencyAccess(
            patient, ems, sender=stranger
        ),
        "erase": lambda: consent_manager.eraseRecord(lab.id, sender=stranger),
    }
    inputs: dict[str, Any] = {"caller": stranger, "patient": patient}
    if action == "revoke-care":  # the patient, a delegate or the institution ends care
        error, attack = provider_registry.ProviderNotCareParty, registry_actions[action]
        inputs["institution"] = hospital
    elif action in registry_actions:
        error, attack = provider_registry.ProviderNotPatientOrDelegate, registry_actions[action]
    else:
        error, attack = consent_manager.ConsentNotPatientOrDelegate, consent_actions[action]

    with reverts(error, **inputs):
        attack()

    assert consent_manager.hasAccess(hospital, lab.id)
    assert not consent_manager.isErased(lab.id)
    assert provider_registry.mayWriteFor(hospital, patient)[0]


def test_delegate_cannot_name_delegates_for_the_patient(
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    stranger: AccountAPI,
) -> None:
    """A delegate who is a registered patient too (a parent) names an accomplice: that only
    ever names a delegate of its own, never of the patient it acts for; a delegate with no
    role cannot name anyone."""
    provider_registry.setDelegate(other_patient, True, sender=patient)
    provider_registry.setDelegate(stranger, True, sender=other_patient)
    assert not provider_registry.isDelegate(patient, stranger)

    provider_registry.setDelegate(stranger, True, sender=patient)
    with reverts(provider_registry.ProviderNotPatient, account=stranger):
        provider_registry.setDelegate(other_patient, True, sender=stranger)


# ============================================================================ emergency access


@pytest.mark.parametrize("second", ["service", "other-paramedic"])
def test_second_account_of_the_service_cannot_bypass_the_cooldown(
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    patient: AccountAPI,
    fresh_account: Callable[[], AccountAPI],
    add_practitioner: Callable[..., ReceiptAPI],
    second: str,
) -> None:
    """A paramedic opens emergency access; the service itself, or a colleague, opens again
    for the same patient to extend it past 24 hours."""
    if second == "service":
        other = ems
    else:
        other = fresh_account()
        add_practitioner(ems, other)
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)
    expires_at = int(consent_manager.emergencyOf(patient, ems).expiresAt)

    with reverts(
        consent_manager.ConsentEmergencyCoolingDown,
        patient=patient,
        institution=ems,
        until=expires_at + EMERGENCY_COOLDOWN,
    ):
        consent_manager.openEmergencyAccess(patient, HOUR, "still unconscious", sender=other)


def test_closing_does_not_let_the_service_open_again_at_once(
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    patient: AccountAPI,
    block_time: Callable[[ReceiptAPI], int],
) -> None:
    """The patient closes an emergency opening; the service opens again right away. Nor can
    the service close its own opening to restart the clock."""
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=ems, patient=patient):
        consent_manager.closeEmergencyAccess(patient, ems, sender=ems)
    closed = consent_manager.closeEmergencyAccess(patient, ems, sender=patient)

    with reverts(
        consent_manager.ConsentEmergencyCoolingDown,
        patient=patient,
        institution=ems,
        until=block_time(closed) + EMERGENCY_COOLDOWN,
    ):
        consent_manager.openEmergencyAccess(patient, HOUR, "again", sender=paramedic)


@pytest.mark.parametrize("standing", ["removed", "service-suspended"])
def test_paramedic_without_standing_cannot_open_emergency_access(
    provider_registry: Any,
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    patient: AccountAPI,
    suspend: Callable[..., ReceiptAPI],
    standing: str,
) -> None:
    """A removed paramedic, or one of a suspended service, breaks the glass."""
    if standing == "removed":
        provider_registry.removePractitioner(paramedic, sender=paramedic)
    else:
        suspend(ems)

    with reverts(consent_manager.ConsentNotEmergencyService, caller=paramedic):
        consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)


def test_emergency_opening_reads_only_for_the_emergency(
    consent_manager: Any, paramedic: AccountAPI, patient: AccountAPI, lab: Anchored
) -> None:
    """The service uses its opening as a grant for other purposes (treatment, payment)."""
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)

    assert consent_manager.hasAccessFor(paramedic, lab.id, EMERGENCY)
    assert not consent_manager.hasAccessFor(paramedic, lab.id, TREATMENT)
    assert not consent_manager.hasAccessFor(paramedic, lab.id, PAYMENT)


def test_emergency_opening_does_not_come_back_when_a_suspended_service_is_reinstated(
    consent_manager: Any,
    ems: AccountAPI,
    paramedic: AccountAPI,
    patient: AccountAPI,
    lab: Anchored,
    suspend: Callable[..., ReceiptAPI],
    approve: Callable[..., Any],
) -> None:
    """The paramedic breaks the glass for 24 hours; the service is suspended an hour later
    (its licence lapsed) and reinstated the same day: the opening is live again."""
    consent_manager.openEmergencyAccess(patient, 24 * HOUR, "unconscious", sender=paramedic)
    suspend(ems)
    assert not consent_manager.hasAccess(paramedic, lab.id)
    approve(ems)

    assert not consent_manager.hasAccess(paramedic, lab.id), "the opening came back"


# ============================================================================ keys and grants


@pytest.mark.parametrize("deliverer", ["paramedic", "suspended-hospital", "care-ended"])
def test_key_delivery_needs_a_current_key_holder(
    provider_registry: Any,
    consent_manager: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    paramedic: AccountAPI,
    insurer: AccountAPI,
    patient: AccountAPI,
    suspend: Callable[..., ReceiptAPI],
    now: Callable[[], int],
    deliverer: str,
) -> None:
    """Keys for the insurer's live grant are "delivered" (a forged envelope) by a paramedic
    with a live emergency opening, by a doctor of a suspended hospital, or by the hospital
    after the patient ended its care relationship."""
    consent_manager.grant(
        patient, insurer, SCOPE_ALL, ZERO32, PAYMENT, now() + DAY, ENVELOPE, sender=patient
    )
    if deliverer == "paramedic":
        caller = paramedic
        consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)
    elif deliverer == "suspended-hospital":
        caller = doctor
        suspend(hospital)
    else:
        caller = hospital
        provider_registry.revokeCare(patient, hospital, sender=patient)

    with reverts(consent_manager.ConsentNotKeyHolder, caller=caller, patient=patient):
        consent_manager.deliverKeys(
            patient, insurer, SCOPE_ALL, ZERO32, digest("forged"), sender=caller
        )


def test_emergency_opening_takes_keys_only_in_scope_all(
    consent_manager: Any, hospital: AccountAPI, paramedic: AccountAPI, patient: AccountAPI
) -> None:
    """Keys for an emergency opening are delivered in a narrower scope (a category) that no
    grant backs, to leave a record-level trail that outlives the opening."""
    consent_manager.openEmergencyAccess(patient, HOUR, "unconscious", sender=paramedic)
    lab_scope = HexBytes(int(Category.LAB).to_bytes(32, "big"))

    with reverts(consent_manager.ConsentNoLiveAccess, patient=patient, grantee=paramedic):
        consent_manager.deliverKeys(
            patient, paramedic, SCOPE_CATEGORY, lab_scope, digest("envelope"), sender=hospital
        )


def test_grant_of_another_patients_record_opens_nothing(
    consent_manager: Any,
    other_patient: AccountAPI,
    stranger: AccountAPI,
    lab: Anchored,
    now: Callable[[], int],
) -> None:
    """Another patient grants an accomplice access to the first patient's lab record (a
    record scope is not checked against the granting patient)."""
    consent_manager.grant(
        other_patient,
        stranger,
        SCOPE_RECORD,
        lab.id,
        TREATMENT,
        now() + DAY,
        ENVELOPE,
        sender=other_patient,
    )

    assert not consent_manager.hasAccess(stranger, lab.id)
    with reverts(consent_manager.ConsentAccessDenied, reader=stranger, id=lab.id):
        consent_manager.logAccess([lab.id], sender=stranger)


@pytest.mark.parametrize(
    "forgery",
    ["replayed", "high-s", "compact", "other-chain", "care-signature", "dropped-delegate"],
)
def test_forged_or_replayed_grant_signature_is_refused(
    chain: Any,
    provider_registry: Any,
    consent_manager: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    sign_grant: Callable[..., Any],
    sign_care: Callable[..., Any],
    lab: Anchored,
    forgery: str,
) -> None:
    """The clinic relays a grant to itself with a signature the patient never gave for it:
    one already used (then revoked), a re-encoded one, one for another chain, the patient's
    *care* signature (same nonce value, other contract), or a dropped delegate's."""
    nonce = int(consent_manager.nonces(patient))
    request, signature = sign_grant(patient, patient, clinic)
    if forgery == "replayed":
        consent_manager.grantWithSignature(request, signature, sender=clinic)
        consent_manager.revoke(patient, clinic, SCOPE_ALL, ZERO32, sender=patient)
    elif forgery == "high-s":
        signature = malleable(signature)
    elif forgery == "compact":
        signature = compact(signature)
    elif forgery == "other-chain":
        here, elsewhere = (
            typed_digest(
                "MedLedger ConsentManager",
                chain_id,
                consent_manager.address,
                "GrantRequest",
                GRANT_FIELDS,
                request,
            )
            for chain_id in (chain.chain_id, chain.chain_id + 1)
        )
        assert here == HexBytes(consent_manager.grantDigest(request))  # the digest is built right
        signature = sign_digest(secret_of(patient), elsewhere)
    elif forgery == "care-signature":
        assert int(provider_registry.nonces(patient)) == nonce
        _, signature = sign_care(patient, patient, clinic)
    else:
        provider_registry.setDelegate(stranger, True, sender=patient)
        _, signature = sign_grant(stranger, patient, clinic)
        provider_registry.setDelegate(stranger, False, sender=patient)

    if forgery == "replayed":
        error, inputs = (
            consent_manager.ConsentSignatureReplayed,
            {"patient": patient, "nonce": nonce, "expectedNonce": nonce + 1},
        )
    else:
        invalid = forgery in ("high-s", "compact")
        signer = (
            ZERO_ADDRESS if invalid else recover(consent_manager.grantDigest(request), signature)
        )
        error, inputs = (
            consent_manager.ConsentInvalidSignature,
            {"signer": signer, "patient": patient},
        )
    with reverts(error, **inputs):
        consent_manager.grantWithSignature(request, signature, sender=clinic)
    assert not consent_manager.hasAccess(clinic, lab.id)


# ============================================================================ claims


def test_claim_record_of_another_patient_does_not_bill_this_policy(
    claims_manager: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
) -> None:
    """The hospital bills the patient's policy with a claim record it wrote for another
    patient (who consented to the insurer reading it)."""
    policy_id = issue_policy()
    authorize_care(other_patient, hospital)
    record = financial_record(patient=other_patient)

    with reverts(claims_manager.ClaimRecordNotProviders, record=record):
        claims_manager.submitClaim(submission(policy_id, 50 * USD, record), sender=hospital)


def test_another_patients_record_is_not_evidence(
    claims_manager: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    authorize_care: Callable[..., ReceiptAPI],
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
) -> None:
    """The hospital backs a claim with a record of another patient as evidence."""
    policy_id = issue_policy()
    record = financial_record()
    authorize_care(other_patient, hospital)
    borrowed = financial_record(patient=other_patient)

    with reverts(claims_manager.ClaimEvidenceNotPatients, record=borrowed, patient=patient):
        claims_manager.submitClaim(
            submission(policy_id, 50 * USD, record, evidence=(borrowed,)), sender=hospital
        )


def test_claim_on_a_record_another_provider_wrote_is_refused(
    claims_manager: Any,
    clinic: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
) -> None:
    """The clinic submits (and would be paid for) the hospital's claim record."""
    policy_id = issue_policy()
    record = financial_record()

    with reverts(claims_manager.ClaimNotRecordWriter, caller=clinic, record=record):
        claims_manager.submitClaim(submission(policy_id, 50 * USD, record), sender=clinic)


def test_patients_own_financial_record_does_not_back_a_claim(
    consent_manager: Any,
    claims_manager: Any,
    patient: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., int],
    create_record: Callable[..., Anchored],
    now: Callable[[], int],
) -> None:
    """The patient writes their own "invoice" and claims on it."""
    policy_id = issue_policy()
    record = create_record(patient, patient, category=Category.FINANCIAL).id
    consent_manager.grant(
        patient, insurer, SCOPE_RECORD, record, PAYMENT, now() + DAY, ENVELOPE, sender=patient
    )

    with reverts(claims_manager.ClaimRecordNotProviders, record=record):
        claims_manager.submitClaim(submission(policy_id, 50 * USD, record), sender=patient)


@pytest.mark.parametrize("standing", ["removed", "hospital-suspended"])
def test_practitioner_without_standing_cannot_submit_claims(
    provider_registry: Any,
    claims_manager: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    suspend: Callable[..., ReceiptAPI],
    standing: str,
) -> None:
    """The hospital's doctor, removed (or her hospital suspended), submits the hospital's
    claim."""
    policy_id = issue_policy()
    record = financial_record()
    if standing == "removed":
        provider_registry.removePractitioner(doctor, sender=hospital)
    else:
        suspend(hospital)

    with reverts(claims_manager.ClaimNotProviderOrPatient, caller=doctor, policyId=policy_id):
        claims_manager.submitClaim(submission(policy_id, 50 * USD, record), sender=doctor)


def test_patients_claim_is_never_paid_automatically(
    claims_manager: Any,
    token: Any,
    patient: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
) -> None:
    """The patient submits the hospital's claim record themself, small and with every code
    proven, asking to be paid: had it settled automatically, the patient would pocket the
    hospital's payment."""
    policy_id = issue_policy()
    record = financial_record()
    sent = submission(policy_id, 200 * USD, record, pay_patient=True)
    balance = token.balanceOf(patient)

    receipt = claims_manager.submitClaim(sent, sender=patient)

    assert_events(
        receipt,
        claims_manager.ClaimSubmitted(
            claimId=patient_claim_id(record),  # a patient's claim has its own id
            policyId=policy_id,
            submitter=patient,
            claimRecord=record,
            billed=200 * USD,
            payPatient=True,
            evidence=[],
            codeHashes=sent["codeHashes"],
            automatic=False,
            review=SUBMITTED_BY_PATIENT,
        ),
    )
    assert token.balanceOf(patient) == balance
    assert claims_manager.getPolicy(policy_id).paid == 0


@pytest.mark.parametrize("codes", ["reversed", "repeated"])
def test_same_codes_in_another_order_or_repeated_are_refused(
    claims_manager: Any,
    hospital: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    codes: str,
) -> None:
    """The hospital lists the codes of a claim it already made in another order (or one code
    twice), so that the care key differs and the same care is paid again."""
    policy_id = issue_policy()
    listed = list(reversed(CODES[:2])) if codes == "reversed" else [CODES[0], CODES[0]]

    with reverts(claims_manager.ClaimInvalidCodes, codes=2, proofs=2):
        claims_manager.submitClaim(
            submission(policy_id, 50 * USD, financial_record(), codes=listed), sender=hospital
        )


@pytest.mark.parametrize("change", ["proofs-dropped", "new-service-same-identifier", "by-patient"])
def test_same_care_claimed_again_is_a_duplicate(
    claims_manager: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    change: str,
) -> None:
    """The hospital's claim was paid automatically; the same care is claimed again with a new,
    re-encrypted claim record: without the code proofs (so that it goes to review instead of
    being caught), with another service key but the same claim identifier, or by the patient
    (whose claims the insurer reviews, with its own record of the same provider)."""
    policy_id = issue_policy()
    first = claims_manager.submitClaim(
        submission(policy_id, 200 * USD, financial_record(), identifier="claim-1"),
        sender=hospital,
    )
    first_id = int(claims_manager.ClaimSubmitted.from_receipt(first)[0].claimId)
    again = {
        "proofs-dropped": {"prove": False, "identifier": "claim-1"},
        "new-service-same-identifier": {"service": "service-2", "identifier": "claim-1"},
        "by-patient": {"identifier": None},
    }[change]
    sender = patient if change == "by-patient" else hospital

    with reverts(claims_manager.ClaimDuplicate, claimId=first_id):
        claims_manager.submitClaim(
            submission(policy_id, 200 * USD, financial_record(), **again), sender=sender
        )


def test_same_claim_record_cannot_bill_a_second_insurer(
    claims_manager: Any,
    consent_manager: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    other_insurer: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    now: Callable[[], int],
) -> None:
    """The patient holds two policies; the hospital bills one claim record to both."""
    first_policy = issue_policy()
    second_policy = issue_policy(sender=other_insurer)
    record = financial_record()
    consent_manager.grant(
        patient,
        other_insurer,
        SCOPE_RECORD,
        record,
        PAYMENT,
        now() + DAY,
        ENVELOPE,
        sender=patient,
    )
    claims_manager.submitClaim(submission(first_policy, 200 * USD, record), sender=hospital)

    with reverts(claims_manager.ClaimDuplicate, claimId=int.from_bytes(record, "big")):
        claims_manager.submitClaim(submission(second_policy, 200 * USD, record), sender=hospital)


def test_patient_cannot_block_the_providers_claim_by_claiming_its_keys_first(
    provider_registry: Any,
    claims_manager: Any,
    hospital: AccountAPI,
    insurer: AccountAPI,
    patient: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
) -> None:
    """The patient reads the hospital's new claim (it is their own record), and before the
    hospital submits it, submits a claim on an older financial record of the hospital (an
    invoice they paid themself, never claimed) carrying the new claim's service key, codes,
    amount and identifier. The insurer, reviewing, denies it. The patient's claim only
    checked the keys (it would take them if approved): the hospital's real claim is accepted,
    takes them, and is paid."""
    policy_id = issue_policy()
    old_invoice = financial_record()
    real_claim = financial_record()
    keys = {"service": "service-2024-05-01", "identifier": "hospital-claim-17"}
    squat = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, old_invoice, **keys), sender=patient
    )
    squat_id = int(claims_manager.ClaimSubmitted.from_receipt(squat)[0].claimId)
    claims_manager.denyClaim(squat_id, REASON, sender=insurer)

    real = submission(policy_id, 900 * USD, real_claim, **keys)
    provider = number_of(provider_registry, hospital)
    key_claims = [
        care_key(patient.address, provider, real["serviceKey"], real["codeHashes"]),
        identifier_key(provider, real["identifierKey"]),
    ]
    assert [claims_manager.claimOfKey(k) for k in key_claims] == [0, 0], "the patient holds keys"

    receipt = claims_manager.submitClaim(real, sender=hospital)

    real_id = int.from_bytes(bytes(real_claim), "big")
    assert int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId) == real_id
    assert [claims_manager.claimOfKey(k) for k in key_claims] == [real_id, real_id]
    claims_manager.approveClaim(real_id, 640 * USD, sender=insurer)  # 80 % above the deductible
    assert claims_manager.creditOf(hospital) == 640 * USD


def test_escalation_needs_a_party_an_overdue_claim_and_an_open_claim(
    provider_registry: Any,
    claims_manager: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    insurer: AccountAPI,
    other_patient: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    advance_time: Callable[[int], int],
) -> None:
    """A claimant escalates before the insurer's 30 days are up; outsiders (another provider,
    another patient, the hospital's doctor once removed) escalate someone else's claim; the
    claimant escalates a claim the insurer already denied."""
    policy_id = issue_policy()
    receipt = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, financial_record()), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    submitted_at = int(claims_manager.getClaim(claim_id).submittedAt)

    with reverts(
        claims_manager.ClaimNotOverdue, claimId=claim_id, until=submitted_at + DECISION_PERIOD
    ):
        claims_manager.escalateClaim(claim_id, sender=hospital)
    advance_time(DECISION_PERIOD)
    provider_registry.removePractitioner(doctor, sender=hospital)
    for outsider in (clinic, other_patient, doctor):
        with reverts(claims_manager.ClaimNotSubmitterOrPatient, caller=outsider, claimId=claim_id):
            claims_manager.escalateClaim(claim_id, sender=outsider)
    claims_manager.denyClaim(claim_id, REASON, sender=insurer)
    with reverts(claims_manager.ClaimInvalidState, claimId=claim_id, state=DENIED):
        claims_manager.escalateClaim(claim_id, sender=hospital)


@pytest.mark.parametrize("decider", ["removed-adjuster", "other-insurer", "suspended-insurer"])
def test_only_the_policys_verified_insurer_decides(
    provider_registry: Any,
    claims_manager: Any,
    hospital: AccountAPI,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    other_insurer: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    suspend: Callable[..., ReceiptAPI],
    decider: str,
) -> None:
    """A removed adjuster, another insurer, or the suspended insurer itself denies a claim
    (to close it before the claimant can escalate to a resolver)."""
    policy_id = issue_policy()
    receipt = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, financial_record()), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    if decider == "removed-adjuster":
        caller = adjuster
        provider_registry.removePractitioner(adjuster, sender=insurer)
    elif decider == "other-insurer":
        caller = other_insurer
    else:
        caller = insurer
        suspend(insurer)

    with reverts(claims_manager.ClaimNotPolicyInsurer, caller=caller, policyId=policy_id):
        claims_manager.denyClaim(claim_id, REASON, sender=caller)


def test_resolver_cannot_award_above_what_the_policy_allows_after_escalation(
    claims_manager: Any,
    hospital: AccountAPI,
    resolver: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    advance_time: Callable[[int], int],
) -> None:
    """A claim of 1,000 mUSD waits 30 days and is escalated; meanwhile another claim used 320
    of the 1,000 mUSD limit. The resolver awards the claim's full 80 % (800), or awards
    something while ruling it not covered."""
    policy_id = issue_policy(annualLimit=1_000 * USD)
    receipt = claims_manager.submitClaim(
        submission(policy_id, 1_000 * USD, financial_record(), prove=False), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    claims_manager.submitClaim(  # settled at once: (500 - 100) * 80 % = 320
        submission(policy_id, 500 * USD, financial_record(), service="service-2"),
        sender=hospital,
    )
    advance_time(DECISION_PERIOD)
    claims_manager.escalateClaim(claim_id, sender=hospital)
    assert claims_manager.allowedAmount(claim_id) == (680 * USD, 0)

    with reverts(claims_manager.ClaimAmountExceedsAllowed, amount=800 * USD, allowed=680 * USD):
        claims_manager.resolveDispute(claim_id, 800 * USD, True, sender=resolver)
    with reverts(claims_manager.ClaimInvalidAmount, amount=1):
        claims_manager.resolveDispute(claim_id, 1, False, sender=resolver)

    claims_manager.resolveDispute(claim_id, 680 * USD, True, sender=resolver)
    policy = claims_manager.getPolicy(policy_id)
    assert policy.paid == policy.annualLimit == 1_000 * USD


def test_resolver_cannot_pay_a_claim_out_of_another_policys_pool(
    claims_manager: Any,
    token: Any,
    hospital: AccountAPI,
    resolver: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    advance_time: Callable[[int], int],
) -> None:
    """A policy funded with 100 mUSD has an escalated claim worth 640 mUSD; the contract holds
    far more (another policy's 10,000 mUSD), and the resolver awards the 640."""
    issue_policy()  # the other policy, whose pool must stay whole
    policy_id = issue_policy(funds=100 * USD)
    receipt = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, financial_record()), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    advance_time(DECISION_PERIOD)
    claims_manager.escalateClaim(claim_id, sender=hospital)
    assert token.balanceOf(claims_manager) == 10_100 * USD

    with reverts(
        claims_manager.ClaimPoolInsufficient,
        policyId=policy_id,
        needed=640 * USD,
        available=100 * USD,
    ):
        claims_manager.resolveDispute(claim_id, 640 * USD, True, sender=resolver)


def test_pool_is_not_reclaimed_while_a_claim_awaits_the_insurer_or_a_resolver(
    claims_manager: Any,
    hospital: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    advance_time: Callable[[int], int],
) -> None:
    """The insurer lets a claim sit past the end of the policy's term and takes the pool back,
    before the claimant escalates it, and again once it is escalated."""
    policy_id = issue_policy()
    receipt = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, financial_record()), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    advance_time(60 * DAY)

    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=policy_id, until=0):
        claims_manager.reclaimPool(policy_id, sender=insurer)
    claims_manager.escalateClaim(claim_id, sender=hospital)
    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=policy_id, until=0):
        claims_manager.reclaimPool(policy_id, sender=insurer)


@pytest.mark.parametrize("when", ["last-second-of-the-window", "window-closed"])
def test_reclaim_and_a_dispute_never_both_pass(
    claims_manager: Any,
    hospital: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    block_time: Callable[[ReceiptAPI], int],
    next_tx_at: Callable[[int], int],
    now: Callable[[], int],
    when: str,
) -> None:
    """The insurer denies a claim on the policy's last day and races the claimant's dispute
    with ``reclaimPool`` (a front-run): at the window's last second the dispute wins and the
    pool stays; from the second the window closes, the dispute is refused."""
    policy_id = issue_policy(validUntil=now() + DAY)
    receipt = claims_manager.submitClaim(
        submission(policy_id, 900 * USD, financial_record()), sender=hospital
    )
    claim_id = int(claims_manager.ClaimSubmitted.from_receipt(receipt)[0].claimId)
    closes = block_time(claims_manager.denyClaim(claim_id, REASON, sender=insurer)) + DISPUTE_WINDOW

    with reverts(claims_manager.ClaimPolicyNotSettled, policyId=policy_id, until=closes):
        claims_manager.reclaimPool(policy_id, sender=insurer)

    if when == "last-second-of-the-window":
        next_tx_at(closes - 1)
        disputed = claims_manager.disputeClaim(claim_id, REASON, sender=hospital)
        assert block_time(disputed) == closes - 1
        assert claims_manager.getClaim(claim_id).state == DISPUTED
        with reverts(claims_manager.ClaimPolicyNotSettled, policyId=policy_id, until=0):
            claims_manager.reclaimPool(policy_id, sender=insurer)
    else:
        next_tx_at(closes)
        with reverts(claims_manager.ClaimDisputeWindowClosed, claimId=claim_id, closedAt=closes):
            claims_manager.disputeClaim(claim_id, REASON, sender=hospital)
        claims_manager.reclaimPool(policy_id, sender=insurer)
        assert claims_manager.getClaim(claim_id).state == DENIED


@pytest.mark.parametrize("when", ["last-second-of-cover", "cover-ended"])
def test_reclaim_and_a_new_claim_never_both_pass(
    claims_manager: Any,
    hospital: AccountAPI,
    insurer: AccountAPI,
    issue_policy: Callable[..., int],
    financial_record: Callable[..., HexBytes],
    next_tx_at: Callable[[int], int],
    now: Callable[[], int],
    when: str,
) -> None:
    """The insurer takes the pool back the moment the term ends, racing a claim submitted at
    the last second of cover."""
    valid_until = now() + DAY
    policy_id = issue_policy(validUntil=valid_until)
    record = financial_record()

    if when == "last-second-of-cover":
        next_tx_at(valid_until)
        claims_manager.submitClaim(submission(policy_id, 900 * USD, record), sender=hospital)
        next_tx_at(valid_until + 2)
        with reverts(claims_manager.ClaimPolicyNotSettled, policyId=policy_id, until=0):
            claims_manager.reclaimPool(policy_id, sender=insurer)
    else:
        next_tx_at(valid_until + 1)
        with reverts(claims_manager.ClaimPolicyNotActive, policyId=policy_id, at=valid_until + 1):
            claims_manager.submitClaim(submission(policy_id, 900 * USD, record), sender=hospital)
        claims_manager.reclaimPool(policy_id, sender=insurer)


# ============================================================================ trials


def test_sponsor_cannot_change_the_outcomes_a_participant_signed_for(
    trial_registry: Any,
    sponsor: AccountAPI,
    hospital: AccountAPI,
    participant: AccountAPI,
    study: Callable[..., int],
    sign_consent: Callable[..., Any],
) -> None:
    """The participant reads version 1 (primary outcome A) and signs their consent at the
    hospital; before the hospital relays it (the first consent: version 1 is not frozen yet),
    the sponsor switches version 1's primary outcome to B. The consent names the protocol hash
    it was signed for, so it is refused; the hospital cannot put B's hash in its place without
    breaking the signature; nothing froze, nobody is enrolled and the nonce is unused."""
    from eth_abi import encode  # what protocolHashOf documents, computed here

    study_id = study(outcomes="outcome-A")
    request, signature = sign_consent(participant, study_id)
    signed = HexBytes(request["protocolHash"])
    trial_registry.setOutcomes(study_id, 1, digest("outcome-B"), ZERO32, sender=sponsor)
    current = HexBytes(trial_registry.protocolHashOf(study_id, 1))
    for outcome, protocol_hash in (("outcome-A", signed), ("outcome-B", current)):
        fields = [digest("protocol-v1"), digest(outcome), ZERO32]
        assert protocol_hash == HexBytes(keccak(encode(["bytes32"] * 3, fields)))

    with reverts(
        trial_registry.TrialProtocolChanged,
        studyId=study_id,
        version=1,
        signed=signed,
        current=current,
    ):
        trial_registry.consent(request, signature, sender=hospital)

    relabelled = request | {"protocolHash": current}
    with reverts(
        trial_registry.TrialInvalidSignature,
        signer=recover(trial_registry.consentDigest(relabelled), signature),
        participant=participant.address,
    ):
        trial_registry.consent(relabelled, signature, sender=hospital)
    assert trial_registry.getParticipation(study_id, participant).site == ZERO_ADDRESS
    assert trial_registry.getProtocolVersion(study_id, 1).outcomesFrozenAt == 0
    assert trial_registry.nonces(participant) == 0


@pytest.mark.parametrize("data", ["single", "batch"])
def test_outcomes_of_a_version_with_data_cannot_change(
    trial_registry: Any,
    sponsor: AccountAPI,
    hospital: AccountAPI,
    participant: AccountAPI,
    enrolled: int,
    data: str,
) -> None:
    """The sponsor amends the protocol (no re-consent needed, so nobody consents to version
    2), the site collects data under version 2, and the sponsor then rewrites version 2's
    outcomes to fit the data."""
    protocol = (digest("protocol-v2"), False, digest("outcome-v2"), ZERO32)
    trial_registry.amendProtocol(enrolled, protocol, False, "dose change", sender=sponsor)
    if data == "single":
        trial_registry.submitData(
            enrolled, participant, VISIT, digest("cid"), digest("commitment"), sender=hospital
        )
    else:
        trial_registry.submitDataBatch(
            enrolled, participant, VISIT, digest("root"), digest("manifest"), 3, sender=hospital
        )

    with reverts(trial_registry.TrialOutcomesFrozen, studyId=enrolled, version=2):
        trial_registry.setOutcomes(enrolled, 2, digest("outcome-fitted"), ZERO32, sender=sponsor)


@pytest.mark.parametrize("submitter", ["other-site", "doctor-of-suspended-site"])
def test_only_the_enrolling_site_in_good_standing_submits_data(
    trial_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    participant: AccountAPI,
    enrolled: int,
    suspend: Callable[..., ReceiptAPI],
    submitter: str,
) -> None:
    """Another site of the study (or the enrolling hospital's doctor once the hospital is
    suspended) anchors data for the hospital's participant."""
    caller = clinic if submitter == "other-site" else doctor
    if submitter != "other-site":
        suspend(hospital)

    with reverts(trial_registry.TrialNotParticipantSite, caller=caller, site=hospital):
        trial_registry.submitData(
            enrolled, participant, VISIT, digest("cid"), digest("commitment"), sender=caller
        )


@pytest.mark.parametrize("forgery", ["other-study", "other-site", "high-s", "cancelled"])
def test_consent_signature_is_bound_to_its_study_site_and_nonce(
    trial_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    participant: AccountAPI,
    study: Callable[..., int],
    sign_consent: Callable[..., Any],
    forgery: str,
) -> None:
    """A consent signed for one study (at the hospital) is used to enrol the participant in
    another study, or by another site (the clinic changes the site to itself), or in its
    high-s form; or after the participant cancelled it."""
    first, second = study(), study()
    request, signature = sign_consent(participant, first)
    nonce = request["nonce"]
    sender = hospital
    if forgery == "other-study":
        request = {**request, "studyId": second}
    elif forgery == "other-site":
        request, sender = {**request, "site": clinic.address}, clinic
    elif forgery == "high-s":
        signature = malleable(signature)
    else:
        trial_registry.cancelSignatures(sender=participant)

    if forgery == "cancelled":
        error, inputs = (
            trial_registry.TrialSignatureReplayed,
            {"participant": participant, "nonce": nonce, "expectedNonce": nonce + 1},
        )
    else:
        invalid = forgery == "high-s"
        signer = (
            ZERO_ADDRESS if invalid else recover(trial_registry.consentDigest(request), signature)
        )
        error, inputs = (
            trial_registry.TrialInvalidSignature,
            {"signer": signer, "participant": participant},
        )
    with reverts(error, **inputs):
        trial_registry.consent(request, signature, sender=sender)

    assert not trial_registry.isConsentCurrent(request["studyId"], participant)


def test_withdrawal_signature_is_bound_to_its_study(
    trial_registry: Any,
    clinic: AccountAPI,
    hospital: AccountAPI,
    participant: AccountAPI,
    study: Callable[..., int],
    sign_consent: Callable[..., Any],
    now: Callable[[], int],
) -> None:
    """The participant is in two studies and signs a withdrawal from the first; a relayer
    submits it as a withdrawal from the second (to end the participant's part in it)."""
    first, second = study(), study()
    for study_id in (first, second):
        trial_registry.consent(*sign_consent(participant, study_id), sender=hospital)
    request = {
        "studyId": first,
        "participant": participant.address,
        "nonce": int(trial_registry.nonces(participant)),
        "deadline": now() + HOUR,
    }
    signature = sign_digest(secret_of(participant), trial_registry.withdrawalDigest(request))
    forged = {**request, "studyId": second}

    with reverts(
        trial_registry.TrialInvalidSignature,
        signer=recover(trial_registry.withdrawalDigest(forged), signature),
        participant=participant,
    ):
        trial_registry.withdrawWithSignature(forged, signature, sender=clinic)

    assert trial_registry.isConsentCurrent(second, participant)


def test_other_site_cannot_relay_a_consent_signed_for_the_hospital(
    trial_registry: Any,
    clinic: AccountAPI,
    participant: AccountAPI,
    study: Callable[..., int],
    sign_consent: Callable[..., Any],
) -> None:
    """The clinic picks the hospital's signed consent from the mempool and relays it first,
    to become the participant's site (or just to burn it)."""
    study_id = study()
    request, signature = sign_consent(participant, study_id)

    with reverts(trial_registry.TrialNotStudySite, caller=clinic, studyId=study_id):
        trial_registry.consent(request, signature, sender=clinic)


def test_stale_consent_blocks_data_batches_too(
    trial_registry: Any,
    sponsor: AccountAPI,
    hospital: AccountAPI,
    participant: AccountAPI,
    enrolled: int,
) -> None:
    """After an amendment that needs re-consent, the site keeps anchoring the participant's
    data, as a batch."""
    protocol = (digest("protocol-v2"), False, digest("outcome-v2"), ZERO32)
    trial_registry.amendProtocol(enrolled, protocol, True, "new risk", sender=sponsor)

    with reverts(
        trial_registry.TrialConsentStale,
        studyId=enrolled,
        participant=participant,
        consentedVersion=1,
        requiredVersion=2,
    ):
        trial_registry.submitDataBatch(
            enrolled, participant, VISIT, digest("root"), digest("manifest"), 1, sender=hospital
        )


@pytest.mark.networks  # call_reverts: eth-tester raises where Anvil answers with an error
def test_data_batch_proves_no_more_bodies_than_declared(
    trial_registry: Any,
    hospital: AccountAPI,
    participant: AccountAPI,
    enrolled: int,
) -> None:
    """The site builds a tree of four bodies, declares three, and later proves the fourth."""
    bodies = [(digest(f"cid-{n}"), digest(f"commitment-{n}")) for n in range(4)]
    ids = [trial_registry.dataIdOf(enrolled, participant, VISIT, 1, c, m) for c, m in bodies]
    root, proofs = indexed_tree(ids)
    receipt = trial_registry.submitDataBatch(
        enrolled, participant, VISIT, root, digest("manifest"), 3, sender=hospital
    )
    (event,) = trial_registry.DataBatchSubmitted.from_receipt(receipt)
    for n in range(3):
        assert HexBytes(
            trial_registry.verifyBatchData(
                enrolled, participant, VISIT, root, *bodies[n], n, proofs[n]
            )
        ) == HexBytes(ids[n])

    call_reverts(
        trial_registry.verifyBatchData,
        enrolled,
        participant,
        VISIT,
        root,
        *bodies[3],
        3,
        proofs[3],
        sender=hospital,
        error=trial_registry.TrialDataNotInBatch,
        batchId=event.batchId,
        dataId=ids[3],
    )


def test_removed_investigator_cannot_amend_or_set_outcomes(
    provider_registry: Any,
    trial_registry: Any,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    study: Callable[..., int],
) -> None:
    """The sponsor's investigator, removed, amends the protocol or rewrites the outcomes of
    a version nobody consented to yet."""
    study_id = study()
    provider_registry.removePractitioner(investigator, sender=sponsor)
    protocol = (digest("protocol-v2"), False, digest("outcome-v2"), ZERO32)

    for attack in (
        lambda: trial_registry.amendProtocol(study_id, protocol, False, "x", sender=investigator),
        lambda: trial_registry.setOutcomes(
            study_id, 1, digest("outcome-x"), ZERO32, sender=investigator
        ),
    ):
        with reverts(trial_registry.TrialNotStudySponsor, caller=investigator, studyId=study_id):
            attack()
