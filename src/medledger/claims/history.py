"""Reading claims: a claim as the chain holds it with the facts of its submission, every step
of its life from the events (with the gas each transaction used), claim listings, and what
deciding a claim now may credit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from medledger import documents
from medledger.addresses import parse_address
from medledger.chain import events
from medledger.chain.events import moment
from medledger.claims.contract import (
    CONTRACT,
    ClaimState,
    ReviewReason,
    claim_hex,
    describe_reason,
    manager,
)
from medledger.claims.money import from_units
from medledger.errors import ClaimNotFound, TransactionReverted

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from medledger.chain import Chain

_STEPS = (
    "ClaimSubmitted",
    "ClaimApproved",
    "ClaimDenied",
    "ClaimInfoRequested",
    "ClaimInfoProvided",
    "ClaimDisputed",
    "ClaimEscalated",
    "DisputeResolved",
)


@dataclass(frozen=True)
class ClaimEvent:
    """One step of a claim's life, from its events."""

    time: datetime
    block: int
    event: str
    actor: str
    detail: str
    transaction_hash: str
    gas_used: int | None = None


@dataclass(frozen=True)
class Claim:
    """A claim as the chain holds it, with the facts its submission event recorded.

    ``id`` is the claim record's id as a number for a provider's claim; a patient's claim has
    its own id (``patient_claim_id`` of ``claim_record``).
    """

    id: int
    policy_id: int
    claim_record: bytes
    submitter: str
    state: ClaimState
    pay_patient: bool
    billed: Decimal
    paid: Decimal
    deductible_applied: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    evidence: tuple[bytes, ...]
    code_hashes: tuple[bytes, ...]
    automatic: bool
    review: ReviewReason
    info_requests: int = 0
    answered_at: datetime | None = None
    """When information was last provided (the insurer's 30 days run from then)."""
    history: tuple[ClaimEvent, ...] = field(default=())

    @property
    def hex_id(self) -> str:
        """The id as MedLedger shows it (``0x`` and 64 hex digits)."""
        return claim_hex(self.id)

    @property
    def evidence_records(self) -> tuple[bytes, ...]:
        """The claim record followed by every evidence record (as submitted and provided)."""
        return (self.claim_record, *self.evidence)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the id in hex, ``policy``, ``pay_to``, the claim record and
        the history's steps with ``by``, ``transaction`` and ``gas``."""
        data = documents.to_data(self)
        return {
            "id": self.hex_id,
            "policy": self.policy_id,
            "submitter": data["submitter"],
            "state": self.state.label,
            "pay_to": "patient" if self.pay_patient else "provider",
            "billed": data["billed"],
            "paid": data["paid"],
            "deductible_applied": data["deductible_applied"],
            "submitted_at": data["submitted_at"],
            "decided_at": data["decided_at"],
            "claim_record": documents.to_data(self.claim_record),
            "evidence": data["evidence"],
            "code_hashes": data["code_hashes"],
            "automatic": data["automatic"],
            "review": self.review.label,
            "info_requests": data["info_requests"],
            "history": [
                {
                    "time": step["time"],
                    "event": step["event"],
                    "by": step["actor"],
                    "detail": step["detail"],
                    "transaction": step["transaction_hash"],
                    "gas": step["gas_used"],
                }
                for step in data["history"]
            ],
        }


def read_claim(chain: Chain, claim_id: int) -> Any:
    """The contract's ``getClaim`` of a claim (``ClaimNotFound`` when it was not submitted)."""
    if not 0 < claim_id < 2**256:
        raise ClaimNotFound(claim_id % 2**256)
    try:
        return chain.call("reading the claim", manager(chain).functions.getClaim(claim_id))
    except TransactionReverted as exc:
        if exc.error == "ClaimUnknownClaim":
            raise ClaimNotFound(claim_id) from None
        raise


def get_claim(chain: Chain, claim_id: int, with_history: bool = False) -> Claim:
    """Read a claim, the facts of its submission, and (optionally) every step of its life."""
    (
        submitter,
        policy_id,
        state,
        pay_patient,
        info_requests,
        billed,
        paid,
        decided_at,
        deductible,
        submitted_at,
        answered_at,
    ) = read_claim(chain, claim_id)
    by_claim = {"claimId": claim_id}
    (submitted,) = events.logs(chain, CONTRACT, "ClaimSubmitted", by_claim)
    evidence = [bytes(e) for e in submitted["evidence"]]
    for provided in events.logs(chain, CONTRACT, "ClaimInfoProvided", by_claim):
        evidence.extend(bytes(x) for x in provided["evidence"])

    def u(value: int) -> Decimal:
        return from_units(chain, int(value))

    return Claim(
        id=claim_id,
        policy_id=int(policy_id),
        claim_record=bytes(submitted["claimRecord"]),
        submitter=to_checksum_address(submitter),
        state=ClaimState(state),
        pay_patient=bool(pay_patient),
        billed=u(billed),
        paid=u(paid),
        deductible_applied=u(deductible),
        submitted_at=moment(submitted_at),
        decided_at=moment(decided_at) if decided_at else None,
        evidence=tuple(evidence),
        code_hashes=tuple(bytes(c) for c in submitted["codeHashes"]),
        automatic=bool(submitted["automatic"]),
        review=ReviewReason(submitted["review"]),
        info_requests=int(info_requests),
        answered_at=moment(int(answered_at)) if answered_at else None,
        history=tuple(claim_history(chain, claim_id)) if with_history else (),
    )


def _step(chain: Chain, log: events.Log) -> tuple[str, str, str]:
    """A claim event as (step, actor, detail)."""
    a = log.args
    if log.event == "ClaimSubmitted":
        review = (
            "settled automatically"
            if a["automatic"]
            else f"for review: {ReviewReason(a['review']).label}"
        )
        return "submitted", a["submitter"], f"billed {from_units(chain, a['billed'])}, {review}"
    if log.event == "ClaimApproved":
        how = "automatically" if a["automatic"] else "by the insurer"
        amount = from_units(chain, a["amount"])
        if not amount:
            paid = "nothing to pay: within the deductible"
        elif a["automatic"]:
            paid = f"paid to {a['payee']} at once"
        else:
            paid = f"credited to {a['payee']}"
        detail = (
            f"{amount} of {from_units(chain, a['allowed'])} allowed {how} "
            f"(deductible {from_units(chain, a['deductibleApplied'])}), {paid}"
        )
        return "approved", a["decider"], detail
    if log.event == "ClaimDenied":
        return "denied", a["decider"], describe_reason(a["reasonCode"])
    if log.event == "ClaimInfoRequested":
        return "information requested", a["requester"], describe_reason(a["reasonCode"])
    if log.event == "ClaimInfoProvided":
        return "information provided", a["provider"], f"{len(a['evidence'])} more evidence records"
    if log.event == "ClaimDisputed":
        return "disputed", a["disputer"], describe_reason(a["reasonCode"])
    if log.event == "ClaimEscalated":
        return "escalated", a["by"], "left undecided: sent to a resolver"
    award = (
        f"award {from_units(chain, a['award'])} credited to {a['payee']}"
        if a["award"]
        else "no award"
    )
    return "dispute resolved", a["resolver"], award


def claim_history(chain: Chain, claim_id: int) -> list[ClaimEvent]:
    """Every event of a claim, oldest first, with the gas each transaction used."""
    gas: dict[str, int] = {}
    found: list[ClaimEvent] = []
    for log in events.many(chain, CONTRACT, _STEPS, {"claimId": claim_id}):
        if log.transaction_hash not in gas:
            receipt = chain.w3.eth.get_transaction_receipt(HexStr(log.transaction_hash))
            gas[log.transaction_hash] = int(receipt["gasUsed"])
        name, actor, detail = _step(chain, log)
        found.append(
            ClaimEvent(
                log.time(chain),
                log.block,
                name,
                actor,
                detail,
                log.transaction_hash,
                gas[log.transaction_hash],
            )
        )
    return found


def claims(
    chain: Chain,
    policy_id: int | None = None,
    submitter: str | None = None,
    state: ClaimState | None = None,
) -> list[Claim]:
    """Claims (from their submission events), filtered by policy, submitter or state."""
    filters: dict[str, Any] = {}
    if policy_id is not None:
        filters["policyId"] = policy_id
    if submitter:
        filters["submitter"] = parse_address(submitter)
    submitted = events.logs(chain, CONTRACT, "ClaimSubmitted", filters)
    found = [get_claim(chain, int(e["claimId"])) for e in submitted]
    return [c for c in found if state is None or c.state is state]


def allowed_amount(chain: Chain, claim_id: int) -> tuple[Decimal, Decimal]:
    """What deciding the claim now may credit at most, and the deductible it would apply."""
    allowed, deductible = chain.call(
        "reading the allowed amount", manager(chain).functions.allowedAmount(claim_id)
    )
    return from_units(chain, int(allowed)), from_units(chain, int(deductible))
