"""Enums, codes and the money rules of IClaimsManager, written in Python from its NatSpec.

The tests compare the contract against these functions, so they are kept independent of the
contract and of the SDK (``medledger.claims``): plain integers, floor division, the formulas
of ``allowedAmount`` as documented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from eth_utils import keccak
from hexbytes import HexBytes

from ..support import merkle_tree

DAY = 24 * 3600
MAX_TERM = 366 * DAY
FULL_COVERAGE_BPS = 10_000
DISPUTE_WINDOW = 7 * DAY
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
    paid: int = 0
    decided_at: int = 0
    deductible_applied: int = 0
    credits: list[int] = field(default_factory=list)  # one entry per decision that paid

    def as_dict(self) -> dict[str, object]:
        """As ``getClaim`` returns it (``IClaimsManager.Claim``)."""
        return {
            "submitter": self.submitter,
            "policyId": self.policy_id,
            "state": int(self.state),
            "payPatient": self.pay_patient,
            "billed": self.billed,
            "paid": self.paid,
            "decidedAt": self.decided_at,
            "deductibleApplied": self.deductible_applied,
            "submittedAt": self.submitted_at,
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


def review_reason(policy: PolicyModel, billed: int, proven: bool) -> ReviewReason:
    """Why a submission is left for review (``NONE``: it settles at once)."""
    if policy.auto_settle_limit == 0:
        return ReviewReason.AUTO_SETTLE_DISABLED
    if billed > policy.auto_settle_limit:
        return ReviewReason.ABOVE_AUTO_SETTLE_LIMIT
    if not proven:
        return ReviewReason.CODE_NOT_PROVEN
    allowed, _ = allowed_now(policy, billed)
    if allowed == 0:
        return ReviewReason.LIMIT_REACHED
    if policy.pool < allowed:
        return ReviewReason.POOL_INSUFFICIENT
    return ReviewReason.NONE
