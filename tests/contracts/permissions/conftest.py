"""The world of the permission test: every caller of docs/permissions.md, set up once.

Built once per module on the session's ProviderRegistry and RecordRegistry (Ape rolls it back
after the module); each cell of the table then runs from a snapshot of it. What the world
holds is described in docs/permissions.md ("The world"); :class:`World` keeps the contracts,
the callers by column name and every id a call needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from ..support import MAX_UINT40, ZERO_ADDRESS, Category, Kind, digest, sign_digest

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

    from ..conftest import AnchoredBatch

DAY = 24 * 3600
USD = 10**6
DISPUTE_WINDOW = 7 * DAY
RESOLVER_ROLE = HexBytes(keccak(text="RESOLVER_ROLE"))

# IConsentManager enums
SCOPE_CATEGORY = 1
TREATMENT = 1
PAYMENT = 2
# ITrialRegistry.ConsentPurpose.TrialOnly, both reader bits
TRIAL_ONLY = 1
READERS_ALL = 3

BILLED = 100 * USD
VISIT = digest("visit-baseline")


def fresh_address(label: str) -> str:
    """A deterministic address nobody controls (for arguments only)."""
    return to_checksum_address(keccak(text=f"permissions-{label}")[-20:])


def category_scope(category: int) -> HexBytes:
    return HexBytes(int(category).to_bytes(32, "big"))


def protocol(label: str) -> tuple[HexBytes, bool, HexBytes, HexBytes]:
    """``ITrialRegistry.Protocol`` from a label."""
    return (
        digest(f"protocol-{label}"),
        False,
        digest(f"primary-{label}"),
        digest(f"secondary-{label}"),
    )


def secret_of(account: Any) -> bytes:
    """The private key of an Ape test account or an ``eth_account`` local account."""
    key = getattr(account, "private_key", None) or account.key
    return bytes(HexBytes(key))


@dataclass
class World:
    """Contracts, callers and the ids the calls of the table use."""

    contracts: dict[str, Any]
    actors: dict[str, AccountAPI]
    registrars: list[AccountAPI]
    other_patient: AccountAPI
    pending: AccountAPI
    lab_record: HexBytes
    batch: AnchoredBatch
    policy: int
    ended_policy: int
    claims: dict[str, int]
    new_claim_record: HexBytes
    info_evidence: HexBytes
    approve_amount: int
    study: int
    open_study: int
    participant_key: Any
    chain: Any

    def __getattr__(self, name: str) -> Any:  # actors by column name: world.hospital
        actors = self.__dict__.get("actors", {})
        if name in actors:
            return actors[name]
        raise AttributeError(name)

    def now(self) -> int:
        return int(self.chain.blocks.head.timestamp)

    def submission(self, claim_record: bytes, label: str, pay_patient: bool = False) -> dict:
        return {
            "policyId": self.policy,
            "billed": BILLED,
            "payPatient": pay_patient,
            "claimRecord": HexBytes(claim_record),
            "evidence": [],
            "codeHashes": [digest("code-99213")],
            "codeProofs": [],
            "serviceKey": digest(f"service-{label}"),
            "identifierKey": digest(f"identifier-{label}"),
        }

    def sign(self, account: Any, message_digest: bytes) -> HexBytes:
        return sign_digest(secret_of(account), message_digest)


def _funded(accounts: Any, admin: AccountAPI) -> AccountAPI:
    account = accounts.generate_test_account()
    admin.transfer(account, 10**20)
    return account


@pytest.fixture(scope="module")
def world(
    project: Any,
    chain: Any,
    accounts: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    provider_registry: Any,
    record_registry: Any,
    register_patient: Callable[..., Any],
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
    create_record: Callable[..., Any],
    anchor_batch: Callable[..., AnchoredBatch],
    advance_time: Callable[[int], int],
) -> World:
    if chain.provider.name != "foundry":
        pytest.skip("the permission walk runs on Anvil: --network ethereum:local:foundry")
    registry = provider_registry
    actors: dict[str, AccountAPI] = {
        "admin": admin,
        "registrar": registrars[0],
        "hospital": hospital,
        "clinic": clinic,
        "patient": patient,
        "practitioner": doctor,
        "stranger": stranger,
    }
    for name in ("laboratory", "insurer", "sponsor", "emergency", "removed", "delegate"):
        actors[name] = _funded(accounts, admin)
    for name in ("suspended", "resolver"):
        actors[name] = _funded(accounts, admin)
    pending = _funded(accounts, admin)
    a = actors

    # Institutions: six verified, one suspended, one pending.
    for account, kind in (
        (hospital, Kind.HOSPITAL),
        (clinic, Kind.CLINIC),
        (a["laboratory"], Kind.LABORATORY),
        (a["insurer"], Kind.INSURER),
        (a["sponsor"], Kind.RESEARCH_SPONSOR),
        (a["emergency"], Kind.EMERGENCY_SERVICE),
        (a["suspended"], Kind.HOSPITAL),
    ):
        apply_institution(account, kind)
        approve(account)
    apply_institution(pending, Kind.CLINIC)

    # The hospital invited the patient before the patient registered.
    registry.addPractitioner(patient, sender=hospital)
    register_patient(patient)
    register_patient(other_patient)

    # Practitioners: one active, one removed.
    add_practitioner(hospital, doctor)
    add_practitioner(hospital, a["removed"])
    registry.removePractitioner(a["removed"], sender=hospital)

    # The patient's delegate and care relationships (one with the hospital later suspended).
    registry.setDelegate(a["delegate"], True, sender=patient)
    # ... who is also the patient's one guardian (1 of 1, the shortest delay).
    recovery = project.PatientRecovery.at(registry.RECOVERY())
    recovery.setGuardians(patient, [a["delegate"]], 1, 3600, sender=patient)
    for institution in (hospital, clinic, a["suspended"]):
        authorize_care(patient, institution, MAX_UINT40)
    suspend(a["suspended"])

    # Standing invitations of the hospital: every caller without a role but the stranger.
    for name in ("admin", "registrar", "removed", "delegate", "resolver"):
        registry.addPractitioner(a[name], sender=hospital)

    # The other contracts, all deployed by the admin.
    consent = project.ConsentManager.deploy(registry, record_registry, sender=admin)
    token = project.DevStablecoin.deploy(admin, sender=admin)
    identity = project.IdentityRegistry.at(registry.IDENTITY())
    claims = project.ClaimsManager.deploy(
        registry, record_registry, consent, token, DISPUTE_WINDOW, admin, sender=admin
    )
    trials = project.TrialRegistry.deploy(registry, sender=admin)
    claims.grantRole(RESOLVER_ROLE, a["resolver"], sender=admin)

    # Records of the patient written by the hospital.
    lab_record = create_record(hospital, patient, category=Category.LAB).id
    financial = {
        label: create_record(hospital, patient, category=Category.FINANCIAL).id
        for label in (
            "overdue",
            "submitted",
            "info",
            "denied",
            "disputed",
            "approved",
            "by-patient",
            "new",
            "evidence",
        )
    }
    batch = anchor_batch(hospital, [patient, patient])

    # Grants: the clinic reads lab records; the insurer reads financial records for payment.
    year = chain.blocks.head.timestamp + 365 * DAY
    lab, fin = category_scope(Category.LAB), category_scope(Category.FINANCIAL)
    envelope = digest("envelope")
    consent.grant(patient, clinic, SCOPE_CATEGORY, lab, TREATMENT, year, envelope, sender=patient)
    consent.grant(
        patient, a["insurer"], SCOPE_CATEGORY, fin, PAYMENT, year, envelope, sender=patient
    )

    # Tokens: every caller holds 1,000 mUSD and approved the ClaimsManager; the patient
    # approved the delegate; the insurer funds its policies.
    for account in actors.values():
        token.mint(account, 1_000 * USD, sender=admin)
        token.approve(claims, 2**256 - 1, sender=account)
    token.approve(a["delegate"], 100 * USD, sender=patient)
    token.mint(a["insurer"], 20_000 * USD, sender=admin)

    # Policies: one in force for 300 days, one whose term ends tomorrow.
    start = chain.blocks.head.timestamp - DAY
    terms = {
        "patient": patient.address,
        "validFrom": start,
        "validUntil": start + 300 * DAY,
        "coverageBps": 8_000,
        "deductible": 0,
        "annualLimit": 100_000 * USD,
        "autoSettleLimit": 0,
        "codesRoot": digest("codes-root"),
        "termsDigest": digest("terms"),
    }
    claims.issuePolicy(terms, sender=a["insurer"])
    claims.issuePolicy({**terms, "validUntil": start + 2 * DAY}, sender=a["insurer"])
    policy, ended_policy = 1, 2
    claims.fundPolicy(policy, 10_000 * USD, sender=a["insurer"])
    claims.fundPolicy(ended_policy, 500 * USD, sender=a["insurer"])
    identity.attest(patient, start + 365 * DAY, bytes(32), sender=hospital)

    world = World(
        contracts={
            "ProviderRegistry": registry,
            "PatientRecovery": recovery,
            "RecordRegistry": record_registry,
            "ConsentManager": consent,
            "ClaimsManager": claims,
            "TrialRegistry": trials,
            "DevStablecoin": token,
            "IdentityRegistry": identity,
        },
        actors=actors,
        registrars=list(registrars),
        other_patient=other_patient,
        pending=pending,
        lab_record=HexBytes(lab_record),
        batch=batch,
        policy=policy,
        ended_policy=ended_policy,
        claims={},
        new_claim_record=HexBytes(financial["new"]),
        info_evidence=HexBytes(financial["evidence"]),
        approve_amount=0,
        study=0,
        open_study=0,
        participant_key=Account.from_key(keccak(text="permissions-new-participant")),
        chain=chain,
    )

    def submit(label: str, sender: Any = hospital, pay_patient: bool = False) -> int:
        """Submits a claim on the labelled record; returns its id from ``ClaimSubmitted`` (the
        record's id for a provider's claim, ``patientClaimIdOf(record)`` for the patient's)."""
        record = financial[label]
        receipt = claims.submitClaim(world.submission(record, label, pay_patient), sender=sender)
        (event,) = claims.ClaimSubmitted.from_receipt(receipt)
        expected = (
            claims.patientClaimIdOf(record)
            if sender == patient
            else int.from_bytes(bytes(record), "big")
        )
        assert int(event.claimId) == expected
        return expected

    # A claim left undecided for more than 30 days.
    world.claims["overdue"] = submit("overdue")
    advance_time(31 * DAY)

    # Claims in every state a decision needs.
    insurer = a["insurer"]
    c = world.claims
    c["submitted"] = submit("submitted")
    c["info"] = submit("info")
    claims.requestInfo(c["info"], 1, sender=insurer)
    c["denied"] = submit("denied")
    claims.denyClaim(c["denied"], 1, sender=insurer)
    c["disputed"] = submit("disputed")
    claims.denyClaim(c["disputed"], 1, sender=insurer)
    claims.disputeClaim(c["disputed"], 1, sender=hospital)
    approved = (("approved", hospital, False), ("by-patient", patient, True))
    for label, sender, pay_patient in approved:
        c[label] = submit(label, sender, pay_patient)
        allowed, _ = claims.allowedAmount(c[label])
        claims.approveClaim(c[label], allowed, sender=insurer)
    world.approve_amount = int(claims.allowedAmount(c["submitted"])[0])
    assert world.approve_amount > 0
    assert claims.creditOf(hospital) > 0 and claims.creditOf(patient) > 0

    # The emergency service's live opening for the patient.
    consent.openEmergencyAccess(patient, 12 * 3600, "unconscious on arrival", sender=a["emergency"])

    # The study: the hospital is its site; the patient's account enrolled under version 1 with
    # the delegate as trial delegate; version 2 (no re-consent) is in force.
    trials.registerStudy(protocol("v1"), [hospital], digest("summary"), sender=a["sponsor"])
    world.study = 1
    request = {
        "studyId": world.study,
        "version": 1,
        "protocolHash": trials.protocolHashOf(world.study, 1),
        "site": hospital.address,
        "participant": patient.address,
        "purpose": TRIAL_ONLY,
        "readers": READERS_ALL,
        "delegate": a["delegate"].address,
        "nonce": int(trials.nonces(patient)),
        "deadline": world.now() + DAY,
    }
    signature = world.sign(patient, trials.consentDigest(request))
    trials.consent(request, signature, sender=hospital)
    trials.amendProtocol(
        world.study, protocol("v2"), False, "dosing clarified", sender=a["sponsor"]
    )
    # A second study of the sponsor's, nobody enrolled yet.
    trials.registerStudy(protocol("open"), [hospital], digest("open"), sender=a["sponsor"])
    world.open_study = 2

    _check(world)
    return world


def _check(world: World) -> None:
    """The world is what docs/permissions.md says it is (a wrong world would test nothing)."""
    registry = world.contracts["ProviderRegistry"]
    consent = world.contracts["ConsentManager"]
    claims = world.contracts["ClaimsManager"]
    trials = world.contracts["TrialRegistry"]
    a = world.actors
    for name in ("hospital", "clinic", "laboratory", "insurer", "sponsor", "emergency"):
        assert registry.participant(a[name]).status == 2, name  # Verified
    assert registry.participant(a["suspended"]).status == 3
    assert registry.participant(world.pending).status == 1
    assert registry.participant(a["practitioner"]).employer == a["hospital"].address
    for name in ("admin", "registrar", "removed", "delegate", "resolver", "stranger"):
        assert registry.participant(a[name]).role == 0, name
    assert registry.isDelegate(a["patient"], a["delegate"])
    for name in ("hospital", "clinic"):
        assert registry.mayWriteFor(a[name], a["patient"])[0], name
    for name in ("laboratory", "emergency", "suspended"):
        assert not registry.mayWriteFor(a[name], a["patient"])[0], name
    opening = consent.emergencyOf(a["patient"], a["emergency"])
    assert opening.openedAt != 0 and opening.closedAt == 0
    states = {label: int(claims.getClaim(claim).state) for label, claim in world.claims.items()}
    assert states == {
        "overdue": 1,
        "submitted": 1,
        "info": 2,
        "denied": 5,
        "disputed": 6,
        "approved": 3,
        "by-patient": 3,
    }
    assert claims.openClaimsOf(world.ended_policy) == 0
    assert trials.getParticipation(world.study, a["patient"]).delegate == a["delegate"].address
    assert trials.getStudy(world.study).currentVersion == 2
    assert trials.getStudy(world.open_study).participants == 0
    assert ZERO_ADDRESS not in {account.address for account in a.values()}
