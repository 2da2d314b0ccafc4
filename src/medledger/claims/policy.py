"""Policies: issuing one (its terms sealed, its rules on chain), reading and listing them,
funding a policy's pool and taking back an ended policy's unspent pool."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from medledger import documents, providers
from medledger.addresses import parse_address
from medledger.chain import events
from medledger.chain.events import moment
from medledger.claims.amounts import is_currency
from medledger.claims.contract import BPS, CONTRACT, dispute_window, manager
from medledger.claims.money import (
    decimals,
    from_units,
    is_dev_token,
    mint,
    to_units,
    token_contract,
)
from medledger.claims.terms import Code, Terms, open_terms, seal_terms
from medledger.errors import ConfigurationError, PolicyNotFound, PreconditionFailed
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt
    from medledger.ipfs.blockstore import BlockStore


@dataclass(frozen=True)
class Policy:
    """A policy as the chain holds it, in decimal amounts."""

    id: int
    insurer: str
    patient: str
    valid_from: datetime
    valid_until: datetime
    coverage: Decimal  # a fraction, 0.8 for 80 %
    deductible: Decimal
    annual_limit: Decimal
    auto_settle_limit: Decimal
    paid: Decimal
    deductible_met: Decimal
    funded: Decimal
    codes_root: bytes
    terms_cid: Cid | None = None
    open_claims: int = 0
    #: Claims need the patient attested by the care provider that wrote the claim record.
    attestation_required: bool = False

    @property
    def pool(self) -> Decimal:
        """What the pool still holds."""
        return self.funded - self.paid

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the fields, with ``pool`` and ``terms`` (the terms' CID)."""
        view: dict[str, object] = {}
        for key, value in documents.to_data(self).items():
            if key == "codes_root":
                view["pool"] = documents.to_data(self.pool)
            view["terms" if key == "terms_cid" else key] = value
        return view


def _require_insurer(chain: Chain, account: str) -> str:
    institution = providers.verified_institution_of(chain, account)
    if (
        institution is None
        or providers.participant(chain, institution).kind is not providers.InstitutionKind.INSURER
    ):
        raise PreconditionFailed(f"{account} is not a verified insurer (or a practitioner of one)")
    return institution


def issue_policy(
    chain: Chain,
    store: BlockStore,
    insurer: Signer,
    patient: str,
    *,
    coverage: Decimal,
    deductible: Decimal,
    annual_limit: Decimal,
    auto_settle_limit: Decimal,
    codes: Iterable[Code],
    valid_from: datetime | None = None,
    term: timedelta = timedelta(days=365),
    currency: str = "USD",
    plan: str = "",
    require_attested: bool = False,
) -> Policy:
    """Issue a policy: seal its terms for insurer and patient in IPFS, then write it on chain;
    with ``require_attested``, claims then need the patient attested by the claim's care
    provider (fixed at issuance)."""
    patient = parse_address(patient, "--patient")
    if not Decimal(0) < coverage <= Decimal(1):
        raise ConfigurationError("--coverage", "must be more than 0 % and at most 100 %")
    if term <= timedelta(0) or term > timedelta(days=366):
        raise ConfigurationError("--term", "a policy runs for at most 366 days")
    code_list = tuple(c.require_system("--code") for c in dict.fromkeys(codes))
    if not code_list:
        raise ConfigurationError("--code", "a policy covers at least one procedure code")
    if not is_currency(currency):
        raise ConfigurationError("--currency", f"{currency!r} is not a three-letter ISO 4217 code")
    bps = int((coverage * BPS).to_integral_value(ROUND_DOWN))
    if bps == 0:
        raise ConfigurationError("--coverage", "must be at least 0.01 %")
    units = {
        "deductible": to_units(chain, deductible, "--deductible"),
        "annual_limit": to_units(chain, annual_limit, "--limit"),
        "auto": to_units(chain, auto_settle_limit, "--auto-settle-limit"),
    }
    if units["annual_limit"] == 0:
        raise ConfigurationError("--limit", "must be more than zero")
    if units["deductible"] > units["annual_limit"]:
        raise ConfigurationError(
            "--deductible", f"{deductible} is more than the annual limit of {annual_limit}"
        )
    # the inputs first (above), then what the chain says
    institution = _require_insurer(chain, insurer.address)
    if providers.participant(chain, patient).role is not providers.Role.PATIENT:
        raise PreconditionFailed(f"{patient} is not a registered patient")
    terms = Terms(os.urandom(32), code_list, currency, plan)
    start = valid_from or chain.now()
    stored = seal_terms(chain, store, institution, patient, terms)
    args = (
        patient,
        int(start.timestamp()),
        int((start + term).timestamp()),
        bps,
        units["deductible"],
        units["annual_limit"],
        units["auto"],
        terms.tree().root,
        stored.cid.digest,
    )
    contract = manager(chain)
    issue = (
        contract.functions.issuePolicyRequiringAttestation
        if require_attested
        else (contract.functions.issuePolicy)
    )
    receipt = chain.transact("issuing the policy", insurer, issue(args))
    (event,) = events.from_receipt(receipt, CONTRACT, "PolicyIssued", contract.address)
    return get_policy(chain, int(event["policyId"]))


def get_policy(chain: Chain, policy_id: int) -> Policy:
    """Read a policy (with its terms CID from the issuing event)."""
    contract = manager(chain)
    count = int(chain.call("reading policies", contract.functions.policyCount()))
    if not 1 <= policy_id <= count:
        raise PolicyNotFound(policy_id)
    p = chain.call("reading the policy", contract.functions.getPolicy(policy_id))
    (insurer, v_from, v_until, bps, patient, deductible, limit, paid, auto, met, funded, root) = p
    terms_cid = None
    issued = events.logs(chain, CONTRACT, "PolicyIssued", {"policyId": policy_id})
    if issued:
        terms_cid = Cid.from_digest_v0(issued[0]["termsDigest"])

    def u(value: int) -> Decimal:
        return from_units(chain, int(value))

    return Policy(
        id=policy_id,
        insurer=to_checksum_address(insurer),
        patient=to_checksum_address(patient),
        valid_from=moment(v_from),
        valid_until=moment(v_until),
        coverage=Decimal(bps) / BPS,
        deductible=u(deductible),
        annual_limit=u(limit),
        auto_settle_limit=u(auto),
        paid=u(paid),
        deductible_met=u(met),
        funded=u(funded),
        codes_root=bytes(root),
        terms_cid=terms_cid,
        open_claims=int(
            chain.call("reading the policy", contract.functions.openClaimsOf(policy_id))
        ),
        attestation_required=bool(
            events.logs(chain, CONTRACT, "PolicyAttestationRequired", {"policyId": policy_id})
        ),
    )


def policies(chain: Chain, patient: str | None = None, insurer: str | None = None) -> list[Policy]:
    """Every policy, or those of a patient or insurer."""
    filters: dict[str, Any] = {}
    if patient:
        filters["patient"] = parse_address(patient)
    if insurer:
        filters["insurer"] = parse_address(insurer)
    issued = events.logs(chain, CONTRACT, "PolicyIssued", filters)
    return [get_policy(chain, int(e["policyId"])) for e in issued]


def read_terms(chain: Chain, store: BlockStore, reader: Signer, policy: Policy) -> Terms:
    """Decrypt a policy's terms (the insurer, its practitioners and the patient can)."""
    if policy.terms_cid is None:
        raise PreconditionFailed(f"policy {policy.id} has no terms document")
    return open_terms(
        chain, store, reader, policy.terms_cid, policy.insurer, policy.patient, policy.id
    )


def fund_policy(chain: Chain, funder: Signer, policy_id: int, amount: Decimal) -> Policy:
    """Pay tokens into a policy's pool (approve, then fund); on a devnet paying in the
    DevStablecoin, mint what is missing."""
    get_policy(chain, policy_id)  # unknown policy: a clear error before any token moves
    units = to_units(chain, amount, "amount")
    if units == 0:
        raise ConfigurationError("amount", "must be more than zero")
    token = token_contract(chain)
    contract = manager(chain)
    balance = int(chain.call("reading the balance", token.functions.balanceOf(funder.address)))
    if balance < units:
        if not is_dev_token(chain):
            raise PreconditionFailed(
                f"{funder.address} holds {from_units(chain, balance)} tokens, less than {amount}"
            )
        mint(chain, funder.address, Decimal(units - balance).scaleb(-decimals(chain)))
    allowance = int(
        chain.call(
            "reading the allowance", token.functions.allowance(funder.address, contract.address)
        )
    )
    if allowance < units:
        chain.transact(
            "approving the tokens", funder, token.functions.approve(contract.address, units)
        )
    chain.transact("funding the policy", funder, contract.functions.fundPolicy(policy_id, units))
    return get_policy(chain, policy_id)


def reclaim_pool(chain: Chain, insurer: Signer, policy_id: int) -> tuple[Decimal, Receipt]:
    """Take back an ended policy's unspent pool (the insurer's own account, verified or not).

    Possible once the term has ended, no claim of the policy is open and the dispute window
    of its last decision is over; each refusal says when it becomes possible.
    """
    policy = get_policy(chain, policy_id)
    if insurer.address != policy.insurer:
        raise PreconditionFailed(
            f"only the insurer's own account {policy.insurer} takes back the pool of policy "
            f"{policy_id}, not {insurer.address}"
        )
    if policy.open_claims:
        raise PreconditionFailed(
            f"policy {policy_id} has {policy.open_claims} open claim(s): its pool can be taken "
            "back once they are decided (or resolved) and the dispute window of the last "
            "decision is over"
        )
    window = timedelta(seconds=dispute_window(chain))
    last = last_decision_at(chain, policy_id)
    until = policy.valid_until + timedelta(seconds=1)
    if last is not None:
        until = max(until, last + window)
    if chain.now() < until:
        raise PreconditionFailed(
            f"the pool of policy {policy_id} can be taken back from {until:%F %H:%M:%S}Z (after "
            "its term and the dispute window of its last decision)"
        )
    if policy.pool <= 0:
        raise PreconditionFailed(f"the pool of policy {policy_id} is empty: nothing to take back")
    contract = manager(chain)
    receipt = chain.transact(
        "taking back the pool", insurer, contract.functions.reclaimPool(policy_id)
    )
    (event,) = events.from_receipt(receipt, CONTRACT, "PoolReclaimed", contract.address)
    return from_units(chain, int(event["amount"])), receipt


def last_decision_at(chain: Chain, policy_id: int) -> datetime | None:
    """When a person last made a decision that can be disputed (a partial approval or a denial)
    on a claim of the policy (what ``reclaimPool`` waits a dispute window after), from the
    events; None when nobody has."""
    submitted = events.logs(chain, CONTRACT, "ClaimSubmitted", {"policyId": policy_id})
    ids = [int(e["claimId"]) for e in submitted]
    if not ids:
        return None
    decisions = [
        e
        for e in events.many(chain, CONTRACT, ("ClaimApproved", "ClaimDenied"), {"claimId": ids})
        if e.event == "ClaimDenied" or e["amount"] != e["allowed"]
    ]
    return decisions[-1].time(chain) if decisions else None
