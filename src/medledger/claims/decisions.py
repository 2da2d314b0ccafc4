"""Decisions on claims: the insurer reviews the evidence and approves, denies or asks for
information; a party to the claim answers, disputes a decision or escalates a claim left
undecided; a resolver resolves the dispute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from medledger import consent, providers, records
from medledger.addresses import parse_address
from medledger.claims.contract import (
    DECISION_PERIOD,
    MAX_INFO_REQUESTS,
    RESOLVER_ROLE,
    ClaimState,
    ReasonCode,
    dispute_window,
    manager,
)
from medledger.claims.evidence import grant_payment, require_consent, require_patients
from medledger.claims.history import Claim, allowed_amount, get_claim
from medledger.claims.money import to_units
from medledger.claims.policy import Policy, get_policy
from medledger.errors import ConfigurationError, PreconditionFailed

if TYPE_CHECKING:
    from decimal import Decimal

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore


@dataclass(frozen=True)
class Evidence:
    """One evidence record the insurer opened during review."""

    record: records.Record
    body: bytes


def review(
    chain: Chain, store: BlockStore, insurer: Signer, claim_id: int
) -> tuple[Claim, list[Evidence]]:
    """Fetch, verify and decrypt a claim's evidence as the insurer (refused without consent)."""
    claim = get_claim(chain, claim_id, with_history=True)
    policy = get_policy(chain, claim.policy_id)
    _require_policy_insurer(chain, insurer.address, policy)
    opened = []
    for record_id in claim.evidence_records:
        body = consent.read(chain, store, insurer, record_id, log=False)
        opened.append(Evidence(records.get(chain, record_id, store), body))
    consent.log_reads(chain, insurer, list(claim.evidence_records))
    return claim, opened


def _require_policy_insurer(chain: Chain, account: str, policy: Policy) -> None:
    if providers.verified_institution_of(chain, account) != policy.insurer:
        raise PreconditionFailed(
            f"{account} does not act for {policy.insurer}, the insurer of policy {policy.id} "
            "(or that insurer is not verified)"
        )


def _decidable(
    chain: Chain, insurer: Signer, claim_id: int, states: tuple[ClaimState, ...]
) -> Claim:
    claim = get_claim(chain, claim_id)
    _require_policy_insurer(chain, insurer.address, get_policy(chain, claim.policy_id))
    if claim.state not in states:
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: it cannot be decided now"
        )
    return claim


def approve(chain: Chain, insurer: Signer, claim_id: int, amount: Decimal | None = None) -> Claim:
    """Approve a claim in full (``amount`` None: what the policy allows) or in part.

    Approving zero is allowed only for a claim that falls entirely within the deductible
    (the policy allows nothing and the deductible applies): it then counts toward the
    deductible. Otherwise paying nothing is a denial.
    """
    claim = _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED))
    allowed, deductible = allowed_amount(chain, claim_id)
    chosen = allowed if amount is None else amount
    if chosen > allowed:
        raise PreconditionFailed(
            f"claim {claim.hex_id}: {chosen} is more than the {allowed} the policy allows"
        )
    if chosen < 0:
        raise ConfigurationError("--amount", f"{chosen} is negative")
    if chosen == 0 and deductible != claim.billed:
        raise PreconditionFailed(
            f"claim {claim.hex_id}: approving 0 is only for a claim wholly within the deductible "
            f"(this one leaves {claim.billed - deductible} above it): approve an amount or deny it"
        )
    policy = get_policy(chain, claim.policy_id)
    if policy.pool < chosen:
        raise PreconditionFailed(
            f"policy {policy.id}'s pool holds {policy.pool}, less than {chosen}"
        )
    units = to_units(chain, chosen)
    chain.transact(
        "approving the claim", insurer, manager(chain).functions.approveClaim(claim_id, units)
    )
    return get_claim(chain, claim_id)


def deny(chain: Chain, insurer: Signer, claim_id: int, reason: ReasonCode) -> Claim:
    """Deny a claim with a reason code."""
    _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED))
    chain.transact(
        "denying the claim", insurer, manager(chain).functions.denyClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def request_info(chain: Chain, insurer: Signer, claim_id: int, reason: ReasonCode) -> Claim:
    """Ask the submitter for more information (at most ``MAX_INFO_REQUESTS`` times a claim)."""
    claim = _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED,))
    if claim.info_requests >= MAX_INFO_REQUESTS:
        raise PreconditionFailed(
            f"claim {claim.hex_id}: information was asked for {claim.info_requests} times, the "
            f"most allowed ({MAX_INFO_REQUESTS}): approve or deny it"
        )
    chain.transact(
        "requesting information",
        insurer,
        manager(chain).functions.requestInfo(claim_id, int(reason)),
    )
    return get_claim(chain, claim_id)


def _require_party(chain: Chain, account: str, claim: Claim) -> Policy:
    """The claim's policy, once ``account`` is a party: the submitter (or its practitioners),
    the patient, or the provider that wrote the claim record of a claim the patient submitted."""
    policy = get_policy(chain, claim.policy_id)
    # The patient acts through its controller (its new key after a recovery); its id, the
    # submitter of its own claims, no longer acts once replaced.
    controller = providers.controller_of(chain, policy.patient)
    if account == controller or (account == claim.submitter != policy.patient):
        return policy
    institution = providers.verified_institution_of(chain, account)
    if institution is not None and institution == claim.submitter:
        return policy
    writer = records.writer_of(chain, claim.claim_record)
    if institution is not None and writer and providers.writer_number(chain, account) == writer:
        return policy
    raise PreconditionFailed(
        f"{account} is neither the submitter of claim {claim.hex_id}, the patient, nor the "
        "provider that wrote its claim record"
    )


def provide_info(
    chain: Chain, store: BlockStore, account: Signer, claim_id: int, evidence: list[bytes]
) -> Claim:
    """Answer a request for information with more (consented) evidence records."""
    claim = get_claim(chain, claim_id)
    policy = _require_party(chain, account.address, claim)
    if claim.state is not ClaimState.INFO_REQUESTED:
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: no information was asked for"
        )
    if not evidence:
        raise ConfigurationError("--evidence", "give at least one record")
    require_patients(chain, store, policy, evidence)
    if account.address == providers.controller_of(chain, policy.patient):
        grant_payment(chain, store, account, policy, evidence)
    require_consent(chain, policy, evidence)
    chain.transact(
        "providing information", account, manager(chain).functions.provideInfo(claim_id, evidence)
    )
    return get_claim(chain, claim_id)


def dispute(chain: Chain, account: Signer, claim_id: int, reason: ReasonCode) -> Claim:
    """Dispute a partial approval or denial within the dispute window."""
    claim = get_claim(chain, claim_id)
    _require_party(chain, account.address, claim)
    if claim.state not in (ClaimState.PARTIALLY_APPROVED, ClaimState.DENIED):
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: only a partial approval or a denial "
            "can be disputed"
        )
    assert claim.decided_at is not None
    closes = claim.decided_at + timedelta(seconds=dispute_window(chain))
    if chain.now() >= closes:
        raise PreconditionFailed(
            f"the dispute window of claim {claim.hex_id} closed at {closes:%F %H:%M}Z"
        )
    chain.transact(
        "disputing the claim", account, manager(chain).functions.disputeClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def escalate(chain: Chain, account: Signer, claim_id: int) -> Claim:
    """Send a claim its insurer left undecided to a resolver (submitter or patient).

    Possible ``DECISION_PERIOD`` after submission (or after the last answer to a request for
    information), while the claim awaits the insurer; at once, also while information is asked
    for, when the policy's insurer is no longer verified.
    """
    claim = get_claim(chain, claim_id)
    policy = _require_party(chain, account.address, claim)
    insurer = providers.participant(chain, policy.insurer)
    verified = insurer.status is providers.Status.VERIFIED
    waiting = (
        (ClaimState.SUBMITTED,) if verified else (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED)
    )
    if claim.state not in waiting:
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: only a claim awaiting the insurer's "
            "decision can be escalated (answer a request for information first)"
        )
    since = max(claim.submitted_at, claim.answered_at or claim.submitted_at)
    until = since + DECISION_PERIOD
    if verified and chain.now() < until:
        raise PreconditionFailed(
            f"claim {claim.hex_id} can be escalated from {until:%F %H:%M:%S}Z (30 days after "
            f"submission or the last answer), or at once if insurer {policy.insurer} is no "
            "longer verified"
        )
    chain.transact(
        "escalating the claim", account, manager(chain).functions.escalateClaim(claim_id)
    )
    return get_claim(chain, claim_id)


def resolve(
    chain: Chain, resolver: Signer, claim_id: int, award: Decimal, covered: bool = True
) -> Claim:
    """Resolve a dispute with an award on top of what was approved (zero upholds).

    For a claim paid nothing so far (denied or escalated), ``covered`` says whether the care is
    covered: the deductible then applies; an uncovered claim gets no award and applies none.
    """
    contract = manager(chain)
    if not chain.call("reading roles", contract.functions.hasRole(RESOLVER_ROLE, resolver.address)):
        raise PreconditionFailed(f"{resolver.address} is not a resolver")
    claim = get_claim(chain, claim_id)
    if claim.state is not ClaimState.DISPUTED:
        raise PreconditionFailed(f"claim {claim.hex_id} is {claim.state.label}, not disputed")
    if not covered and claim.paid > 0:
        raise PreconditionFailed(
            f"claim {claim.hex_id} was approved in part, so it is covered: --uncovered is for a "
            "claim paid nothing"
        )
    if not covered and award != 0:
        raise PreconditionFailed(
            f"claim {claim.hex_id}: an uncovered claim gets no award (award 0, or resolve it as "
            "covered)"
        )
    allowed, _ = allowed_amount(chain, claim_id)
    if award > allowed:
        raise PreconditionFailed(
            f"claim {claim.hex_id}: an award of {award} is more than the {allowed} allowed"
        )
    policy = get_policy(chain, claim.policy_id)
    if policy.pool < award:
        raise PreconditionFailed(
            f"policy {policy.id}'s pool holds {policy.pool}, less than {award}"
        )
    chain.transact(
        "resolving the dispute",
        resolver,
        contract.functions.resolveDispute(claim_id, to_units(chain, award, "--award"), covered),
    )
    return get_claim(chain, claim_id)


def add_resolver(chain: Chain, admin: Signer, resolver: str) -> None:
    """Give an account the resolver role (the ClaimsManager's admin only)."""
    contract = manager(chain)
    chain.transact(
        "adding a resolver",
        admin,
        contract.functions.grantRole(RESOLVER_ROLE, parse_address(resolver)),
    )
