"""Enums, codes and the money rules of IClaimsManager, written in Python from its NatSpec.

The tests compare the contract against these functions, so they are kept independent of the
contract and of the SDK (``medledger.claims``): plain integers, floor division, the formulas
of ``allowedAmount`` as documented, the claim ids (``patientClaimIdOf``) and the duplicate keys
as ``claimOfKey`` documents them (and when a claim takes them), who is reviewed and why, when a
claim may be escalated, how a dispute is resolved, and when an insurer may take back a pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from eth_abi import encode as abi_encode
from eth_utils import keccak
from hexbytes import HexBytes

from ..support import merkle_tree

DAY = 24 * 3600
MAX_TERM = 366 * DAY
FULL_COVERAGE_BPS = 10_000
DISPUTE_WINDOW = 7 * DAY
DECISION_PERIOD = 30 * DAY
MAX_INFO_REQUESTS = 3
FINANCIAL = 13  # Category.FINANCIAL: the only category a claim record may have
USD = 10**6  # mUSD has six decimals


class ClaimState(IntEnum):
    """``IClaimsManager.ClaimState``."""

    NONE = 0
    SUBMITTED = 1
    INFO_REQUESTED = 2
    APPROVED = 3
    PARTIALLY_APPROVED = 4
    DENIED = 5
    DISPUTED = 6
    RESOLVED = 7


class ReviewReason(IntEnum):
    """``IClaimsManager.ReviewReason``."""

    NONE = 0
    AUTO_SETTLE_DISABLED = 1
    ABOVE_AUTO_SETTLE_LIMIT = 2
    CODE_NOT_PROVEN = 3
    LIMIT_REACHED = 4
    POOL_INSUFFICIENT = 5
    SUBMITTED_BY_PATIENT = 6
    INSURER_NOT_VERIFIED = 7


# ---------------------------------------------------------------------------- codes


def code_hash(code: str, salt: bytes = b"policy-salt") -> HexBytes:
    """A salted procedure-code hash (how the hash is made is the SDK's business: any bytes32)."""
    return HexBytes(keccak(salt + code.encode()))


@dataclass(frozen=True)
class CodeList:
    """The covered codes of a policy: their hashes, Merkle root and proofs (``support``'s
    tree: leaf ``keccak256(bytes.concat(keccak256(abi.encode(codeHash))))``, sorted pairs)."""

    hashes: dict[str, HexBytes]
    root: HexBytes
    proofs: dict[bytes, list[HexBytes]]

    @classmethod
    def of(cls, codes: list[str]) -> CodeList:
        hashes = {c: code_hash(c) for c in codes}
        root, proofs = merkle_tree(list(hashes.values()))
        return cls(hashes, root, proofs)

    def proof(self, code: str) -> list[HexBytes]:
        return self.proofs[bytes(self.hashes[code])]


COVERED = CodeList.of(["99213", "80053", "85025", "71046", "93000"])
"""Five covered codes (office visit, metabolic panel, blood count, chest X-ray, ECG)."""
UNCOVERED = code_hash("27447")  # total knee replacement: not on the list


# ---------------------------------------------------------------------------- money


@dataclass
class PolicyModel:
    """What a policy should hold."""

    insurer: str
    patient: str
    valid_from: int
    valid_until: int
    coverage_bps: int
    deductible: int
    annual_limit: int
    auto_settle_limit: int
    codes_root: HexBytes
    paid: int = 0
    deductible_met: int = 0
    funded: int = 0

    @property
    def pool(self) -> int:
        return self.funded - self.paid

    def as_dict(self) -> dict[str, object]:
        """As ``getPolicy`` returns it (``IClaimsManager.Policy``)."""
        return {
            "insurer": self.insurer,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "coverageBps": self.coverage_bps,
            "patient": self.patient,
            "deductible": self.deductible,
            "annualLimit": self.annual_limit,
            "paid": self.paid,
            "autoSettleLimit": self.auto_settle_limit,
            "deductibleMet": self.deductible_met,
            "funded": self.funded,
            "codesRoot": HexBytes(self.codes_root),
        }


@dataclass
class ClaimModel:
    """What a claim should hold."""

    submitter: str
    policy_id: int
    billed: int
    pay_patient: bool
    submitted_at: int
    state: ClaimState = ClaimState.SUBMITTED
    info_requests: int = 0
    paid: int = 0
    decided_at: int = 0
    deductible_applied: int = 0
    answered_at: int = 0
    credits: list[int] = field(default_factory=list)  # one entry per decision that paid

    def as_dict(self) -> dict[str, object]:
        """As ``getClaim`` returns it (``IClaimsManager.Claim``)."""
        return {
            "submitter": self.submitter,
            "policyId": self.policy_id,
            "state": int(self.state),
            "payPatient": self.pay_patient,
            "infoRequests": self.info_requests,
            "billed": self.billed,
            "paid": self.paid,
            "decidedAt": self.decided_at,
            "deductibleApplied": self.deductible_applied,
            "submittedAt": self.submitted_at,
            "answeredAt": self.answered_at,
        }


def deductible_for(policy: PolicyModel, billed: int) -> int:
    """``min(billed, policy deductible left)``."""
    return min(billed, policy.deductible - policy.deductible_met)


def coverage(policy: PolicyModel, billed: int, deductible: int) -> int:
    """``(billed - deductible) * coverageBps / 10_000``, rounded down."""
    return (billed - deductible) * policy.coverage_bps // FULL_COVERAGE_BPS


def allowed_now(policy: PolicyModel, billed: int) -> tuple[int, int]:
    """``(allowed, deductible)`` for a Submitted or InfoRequested claim."""
    deductible = deductible_for(policy, billed)
    return min(coverage(policy, billed, deductible), policy.annual_limit - policy.paid), deductible


def allowed_amount(policy: PolicyModel, claim: ClaimModel) -> tuple[int, int]:
    """``allowedAmount(claimId)`` as documented, for any state."""
    if claim.state in (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED):
        return allowed_now(policy, claim.billed)
    if claim.state is ClaimState.DISPUTED:
        if claim.paid == 0:  # denied before: the deductible left now
            return allowed_now(policy, claim.billed)
        deductible = claim.deductible_applied
        left = coverage(policy, claim.billed, deductible) - claim.paid
        return min(left, policy.annual_limit - policy.paid), deductible
    return 0, 0


def review_reason(
    policy: PolicyModel,
    billed: int,
    proven: bool,
    *,
    by_patient: bool = False,
    insurer_verified: bool = True,
) -> ReviewReason:
    """Why a submission is left for review (``NONE``: it settles at once), in the order the
    NatSpec gives: a patient's claim is always reviewed; then the policy's automatic limit,
    the proofs, a claim the policy would pay nothing (the annual limit used up, or the coverage
    rounding to zero: only a claim wholly within the deductible settles for zero, and counts
    toward it), the pool, the insurer's standing."""
    if by_patient:
        return ReviewReason.SUBMITTED_BY_PATIENT
    if policy.auto_settle_limit == 0:
        return ReviewReason.AUTO_SETTLE_DISABLED
    if billed > policy.auto_settle_limit:
        return ReviewReason.ABOVE_AUTO_SETTLE_LIMIT
    if not proven:
        return ReviewReason.CODE_NOT_PROVEN
    allowed, deductible = allowed_now(policy, billed)
    if allowed == 0 and deductible != billed:
        return ReviewReason.LIMIT_REACHED
    if policy.pool < allowed:
        return ReviewReason.POOL_INSUFFICIENT
    if not insurer_verified:
        return ReviewReason.INSURER_NOT_VERIFIED
    return ReviewReason.NONE


def may_approve_zero(policy: PolicyModel, billed: int) -> bool:
    """``approveClaim(id, 0)`` is accepted only when the whole claim falls within the
    deductible (``deductible == billed``, which then counts toward it); a claim owed nothing
    for another reason (the limit used up, the coverage rounding to zero) is denied."""
    return deductible_for(policy, billed) == billed


def is_disputable_decision(amount: int, allowed: int) -> bool:
    """An approval of ``amount`` out of ``allowed`` can be disputed (and so keeps the pool
    for a dispute window) only when partial; a denial always can."""
    return amount != allowed


def escalation_until(claim: ClaimModel) -> int:
    """The ``until`` of ``ClaimNotOverdue``: ``DECISION_PERIOD`` after the later of the
    submission and the last answer to a request for information."""
    return max(claim.submitted_at, claim.answered_at) + DECISION_PERIOD


def escalation_refusal(claim: ClaimModel, insurer_verified: bool, now: int) -> str | None:
    """Why ``escalateClaim`` is refused to a party (``None``: accepted): ``"state"``
    (``ClaimInvalidState``) unless the claim awaits the insurer (Submitted), or is
    InfoRequested on a policy whose insurer is no longer verified; ``"not-overdue"``
    (``ClaimNotOverdue``) while the verified insurer's decision period runs."""
    if claim.state is not ClaimState.SUBMITTED and (
        claim.state is not ClaimState.INFO_REQUESTED or insurer_verified
    ):
        return "state"
    if insurer_verified and now < escalation_until(claim):
        return "not-overdue"
    return None


def resolution_takes_keys(claim: ClaimModel, award: int, covered: bool) -> bool:
    """Whether a resolution takes the duplicate keys a patient's claim left waiting: when it
    awards something, or finds a claim paid nothing so far covered."""
    return award != 0 or (claim.paid == 0 and covered)


def resolution(policy: PolicyModel, claim: ClaimModel, covered: bool) -> tuple[int, int]:
    """``(most the resolver may award, deductible the resolution applies)`` for a Disputed
    claim. A claim paid nothing so far (denied or escalated) is decided as if now when
    ``covered`` (the deductible left applies; within it, the award is zero) and gets nothing
    and applies no deductible when not; after a partial approval ``covered`` is ignored and
    nothing more is applied."""
    allowed, deductible = allowed_amount(policy, claim)
    if claim.paid == 0:
        return (allowed, deductible) if covered else (0, 0)
    return allowed, 0


def reclaim_until(policy: PolicyModel, open_claims: int, last_decision_at: int) -> int:
    """The ``until`` of ``ClaimPolicyNotSettled``: zero while a claim is open, else the later
    of the second after the term and the end of the dispute window of the last decision that
    can be disputed (a partial approval or a denial; ``last_decision_at`` is zero before one):
    a full approval, an automatic settlement or a resolution does not restart the wait."""
    if open_claims:
        return 0
    return max(policy.valid_until + 1, last_decision_at + DISPUTE_WINDOW)


# ---------------------------------------------------------------------------- duplicate keys


def care_key(patient: str, provider: int, service_key: bytes, code_hashes: list[bytes]) -> HexBytes:
    """``keccak256(abi.encode("care", patient, provider, serviceKey, codeHashes))``: not the
    amount (the same care billed at another amount is the same care)."""
    types = ["string", "address", "uint32", "bytes32", "bytes32[]"]
    values = ["care", patient, provider, bytes(service_key), [bytes(h) for h in code_hashes]]
    return HexBytes(keccak(abi_encode(types, values)))


def identifier_key(provider: int, key: bytes) -> HexBytes:
    """``keccak256(abi.encode("identifier", provider, identifierKey))``."""
    return HexBytes(
        keccak(abi_encode(["string", "uint32", "bytes32"], ["identifier", provider, key]))
    )


def record_key(record: bytes) -> HexBytes:
    """``keccak256(abi.encode("record", claimRecord))``: the key a patient's claim takes on its
    claim record when approved (a provider's claim on that record is then a duplicate)."""
    return HexBytes(keccak(abi_encode(["string", "bytes32"], ["record", bytes(record)])))


# ---------------------------------------------------------------------------- claim ids


def provider_claim_id(record: bytes) -> int:
    """A provider's claim on a record has the record's id: ``uint256(claimRecord)``."""
    return int.from_bytes(bytes(record), "big")


def patient_claim_id(record: bytes) -> int:
    """``patientClaimIdOf(record)``: ``uint256(keccak256(abi.encode("patient", record)))``, so
    that the patient's claim never takes the id of the provider's claim on the same record."""
    encoded = abi_encode(["string", "bytes32"], ["patient", bytes(record)])
    return int.from_bytes(keccak(encoded), "big")


def settled_for_nothing(state: ClaimState, paid: int, deductible_applied: int) -> bool:
    """Whether the provider's claim on a record lets the patient's claim on it be approved: it
    does not exist (``NONE``), was denied, or was resolved paying nothing and applying no
    deductible. Any other state (open, approved even for zero, awarded) makes approving the
    patient's claim a ``ClaimDuplicate`` naming the provider's claim."""
    return state in (ClaimState.NONE, ClaimState.DENIED) or (
        state is ClaimState.RESOLVED and paid == 0 and deductible_applied == 0
    )
