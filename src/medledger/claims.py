"""Insurance claims settled on chain: policies, their pools, and the claims made against them.

The ClaimsManager holds the money and the state; the medical evidence stays encrypted in IPFS
and is read only by the insurer the patient consented to (a live grant for the ``payment``
purpose, checked by the contract at submission). What goes on chain about a claim is its
amount, the salted hashes of its procedure codes, the ids of its evidence records and numeric
reason codes: nothing a stranger can read medical detail from.

Covered procedure codes are a Merkle root of salted code hashes
(``keccak256(abi.encode(salt, system, code))``): a code list of public codes would be easy to
recover from plain hashes, so the salt lives in the policy's *terms document*, sealed for the
insurer and the patient in IPFS. The patient hands the terms to a provider that submits claims
for them (``medledger policy show ID --terms --out terms.json``), just as they would show an
insurance card.

Amounts are :class:`~decimal.Decimal` in the token's unit (the devnet dollar has 6 decimals);
the chain holds integers of the smallest unit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from medledger import access, crypto, deployments, records, registry
from medledger.categories import Category
from medledger.errors import (
    ClaimNotFound,
    ConfigurationError,
    FhirStructureError,
    NoKeyForReader,
    PolicyNotFound,
    PreconditionFailed,
)
from medledger.ipfs.cid import Cid
from medledger.labels import Labelled
from medledger.merkle import MerkleTree

if TYPE_CHECKING:
    from collections.abc import Iterable

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import TxReceipt

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

TERMS_KIND = "medledger/policy-terms"
RESOLVER_ROLE = keccak(text="RESOLVER_ROLE")
BPS = 10_000


class ClaimState(IntEnum):
    """Where a claim stands (the contract's ``ClaimState``)."""

    NONE = 0
    SUBMITTED = 1
    INFO_REQUESTED = 2
    APPROVED = 3
    PARTIALLY_APPROVED = 4
    DENIED = 5
    DISPUTED = 6
    RESOLVED = 7

    @property
    def label(self) -> str:
        """Lower-case, dash-separated name."""
        return self.name.lower().replace("_", "-")


class ReviewReason(IntEnum):
    """Why a claim was left for a person (the contract's ``ReviewReason``)."""

    NONE = 0
    AUTO_SETTLE_DISABLED = 1
    ABOVE_AUTO_SETTLE_LIMIT = 2
    CODE_NOT_PROVEN = 3
    LIMIT_REACHED = 4
    POOL_INSUFFICIENT = 5

    @property
    def label(self) -> str:
        """Lower-case, dash-separated name."""
        return self.name.lower().replace("_", "-")


class ReasonCode(Labelled):
    """Published meanings of the numeric reason codes used in denials, requests and disputes.

    Loosely after the X12 claim adjustment reason groups; only the number goes on chain.
    """

    NOT_COVERED = 1
    POLICY_INACTIVE = 2
    DUPLICATE = 3
    DOCUMENTATION_MISSING = 4
    NOT_MEDICALLY_NECESSARY = 5
    LIMIT_REACHED = 6
    CODING_ERROR = 7
    AMOUNT_DISPUTED = 8
    DECISION_DISPUTED = 9
    OTHER = 99

    @classmethod
    def parse(cls, text: str) -> ReasonCode:
        """Parse a command-line name (or a number)."""
        if text.strip().isdigit():
            try:
                return cls(int(text))
            except ValueError:
                pass
        return cls.lookup(text, "--reason", "reason code")


def describe_reason(code: int) -> str:
    """The published meaning of a reason code (or its number when unknown)."""
    try:
        return ReasonCode(code).label
    except ValueError:
        return f"code {code}"


# --- amounts -------------------------------------------------------------------------------------


def token_contract(chain: Chain) -> Contract:
    """The stablecoin the ClaimsManager pays in."""
    address = chain.call("reading the token", manager(chain).functions.TOKEN())
    key = f"token:{address}"
    if key not in chain.cache:
        chain.cache[key] = chain.contract("DevStablecoin", address)
    found: Contract = chain.cache[key]
    return found


def decimals(chain: Chain) -> int:
    """The token's decimals (cached per connection)."""
    if "token-decimals" not in chain.cache:
        token = token_contract(chain)
        chain.cache["token-decimals"] = int(
            chain.call("reading decimals", token.functions.decimals())
        )
    return int(chain.cache["token-decimals"])


def to_units(chain: Chain, amount: Decimal | str | int, what: str = "amount") -> int:
    """Convert a decimal amount to the token's smallest unit; refuse fractions it cannot hold."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ConfigurationError(what, f"{amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigurationError(what, f"{amount} is not a non-negative amount")
    scaled = value.scaleb(decimals(chain))
    if scaled != scaled.to_integral_value():
        raise ConfigurationError(what, f"{amount} has more than {decimals(chain)} decimals")
    units = int(scaled)
    if units >= 2**96:
        raise ConfigurationError(what, f"{amount} is too large")
    return units


def from_units(chain: Chain, units: int) -> Decimal:
    """Convert smallest units to a decimal amount."""
    places = decimals(chain)
    return (Decimal(units).scaleb(-places)).quantize(Decimal(1).scaleb(-places))


# --- models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A procedure code: a coding system URI and a code (for example CPT ``99213``)."""

    system: str
    code: str

    @classmethod
    def parse(cls, text: str) -> Code:
        """Parse ``SYSTEM|CODE`` (FHIR token syntax), or a bare code (no system, which only
        matches claim codings that name no system either)."""
        system, _, code = text.rpartition("|")
        if not code.strip():
            raise ConfigurationError("--code", f"{text!r} is not SYSTEM|CODE")
        return cls(system.strip(), code.strip())

    def hashed(self, salt: bytes) -> bytes:
        """The salted hash that goes on chain."""
        return keccak(abi_encode(["bytes32", "string", "string"], [salt, self.system, self.code]))

    @property
    def token(self) -> str:
        """``system|code``."""
        return f"{self.system}|{self.code}"


CENT = Decimal("0.01")


@dataclass(frozen=True)
class Terms:
    """A policy's terms document (sealed in IPFS): currency, salt and covered codes."""

    salt: bytes
    codes: tuple[Code, ...]
    currency: str = "USD"
    plan: str = ""

    def tree(self) -> MerkleTree:
        """The Merkle tree of the covered codes' salted hashes."""
        return MerkleTree.build([c.hashed(self.salt) for c in self.codes])

    def proof(self, code: Code) -> list[bytes]:
        """The code's proof against the root, or ``[]`` when it is not covered."""
        hashed = code.hashed(self.salt)
        if code not in self.codes:
            return []
        return self.tree().proof(hashed)

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "kind": TERMS_KIND,
            "v": 1,
            "salt": "0x" + self.salt.hex(),
            "currency": self.currency,
            "plan": self.plan,
            "codes": [{"system": c.system, "code": c.code} for c in self.codes],
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "terms") -> Terms:
        """Read a terms document (as written by :meth:`to_json`)."""
        try:
            if data.get("kind") != TERMS_KIND:
                raise KeyError("kind")
            salt = bytes.fromhex(str(data["salt"]).removeprefix("0x"))
            codes = tuple(Code(str(c["system"]), str(c["code"])) for c in data["codes"])
            if len(salt) != 32 or not codes:
                raise ValueError("salt or codes")
            return cls(salt, codes, str(data.get("currency", "USD")), str(data.get("plan", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigurationError(source, "is not a MedLedger policy terms document") from None


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

    @property
    def pool(self) -> Decimal:
        """What the pool still holds."""
        return self.funded - self.paid

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.id,
            "insurer": self.insurer,
            "patient": self.patient,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "coverage": str(self.coverage),
            "deductible": str(self.deductible),
            "annual_limit": str(self.annual_limit),
            "auto_settle_limit": str(self.auto_settle_limit),
            "paid": str(self.paid),
            "deductible_met": str(self.deductible_met),
            "funded": str(self.funded),
            "pool": str(self.pool),
            "codes_root": "0x" + self.codes_root.hex(),
            "terms": str(self.terms_cid) if self.terms_cid else None,
        }


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
    """A claim as the chain holds it, with the facts its submission event recorded."""

    id: int
    policy_id: int
    submitter: str
    state: ClaimState
    pay_patient: bool
    billed: Decimal
    paid: Decimal
    deductible_applied: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    claim_record: bytes
    evidence: tuple[bytes, ...]
    code_hashes: tuple[bytes, ...]
    automatic: bool
    review: ReviewReason
    history: tuple[ClaimEvent, ...] = field(default=())

    @property
    def evidence_records(self) -> tuple[bytes, ...]:
        """The claim record followed by every evidence record (as submitted and provided)."""
        return (self.claim_record, *self.evidence)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "id": self.id,
            "policy": self.policy_id,
            "submitter": self.submitter,
            "state": self.state.label,
            "pay_to": "patient" if self.pay_patient else "provider",
            "billed": str(self.billed),
            "paid": str(self.paid),
            "deductible_applied": str(self.deductible_applied),
            "submitted_at": self.submitted_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "claim_record": "0x" + self.claim_record.hex(),
            "evidence": ["0x" + e.hex() for e in self.evidence],
            "code_hashes": ["0x" + c.hex() for c in self.code_hashes],
            "automatic": self.automatic,
            "review": self.review.label,
            "history": [
                {
                    "time": h.time.isoformat(),
                    "event": h.event,
                    "by": h.actor,
                    "detail": h.detail,
                    "transaction": h.transaction_hash,
                    "gas": h.gas_used,
                }
                for h in self.history
            ],
        }


# --- contracts -----------------------------------------------------------------------------------


def manager(chain: Chain) -> Contract:
    """The deployed ClaimsManager."""
    return deployments.contract(chain, "ClaimsManager")


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def _require_insurer(chain: Chain, account: str) -> str:
    institution = registry.verified_institution_of(chain, account)
    if (
        institution is None
        or registry.participant(chain, institution).kind is not registry.InstitutionKind.INSURER
    ):
        raise PreconditionFailed(f"{account} is not a verified insurer (or a practitioner of one)")
    return institution


# --- policies ------------------------------------------------------------------------------------


def issue_policy(
    chain: Chain,
    store: BlockStore,
    insurer: LocalAccount,
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
) -> Policy:
    """Issue a policy: seal its terms for insurer and patient in IPFS, then write it on chain."""
    patient = to_checksum_address(patient)
    institution = _require_insurer(chain, insurer.address)
    if registry.participant(chain, patient).role is not registry.Role.PATIENT:
        raise PreconditionFailed(f"{patient} is not a registered patient")
    if not Decimal(0) < coverage <= Decimal(1):
        raise ConfigurationError("--coverage", "must be more than 0 % and at most 100 %")
    if term <= timedelta(0) or term > timedelta(days=366):
        raise ConfigurationError("--term", "a policy runs for at most 366 days")
    code_list = tuple(dict.fromkeys(codes))
    if not code_list:
        raise ConfigurationError("--code", "a policy covers at least one procedure code")
    terms = Terms(os.urandom(32), code_list, currency, plan)
    start = valid_from or access.chain_now(chain)
    bps = int((coverage * BPS).to_integral_value(ROUND_DOWN))
    readers = [registry.encryption_key(chain, institution), registry.encryption_key(chain, patient)]
    document = json.dumps(terms.to_json(), separators=(",", ":"), sort_keys=True).encode()
    sealed = crypto.seal(
        document, _terms_aad(chain, institution, patient), readers, crypto.BodySecret.generate()
    )
    terms_cid = store.add_bytes(sealed, pin=True)
    units = {
        "deductible": to_units(chain, deductible, "--deductible"),
        "annual_limit": to_units(chain, annual_limit, "--limit"),
        "auto": to_units(chain, auto_settle_limit, "--auto-settle-limit"),
    }
    if units["annual_limit"] == 0:
        raise ConfigurationError("--limit", "must be more than zero")
    args = (
        patient,
        int(start.timestamp()),
        int((start + term).timestamp()),
        bps,
        units["deductible"],
        units["annual_limit"],
        units["auto"],
        terms.tree().root,
        terms_cid.digest,
    )
    receipt = chain.transact(
        "issuing the policy", insurer, manager(chain).functions.issuePolicy(args)
    )
    (event,) = manager(chain).events.PolicyIssued().process_receipt(receipt, errors=DISCARD)
    return get_policy(chain, int(event["args"]["policyId"]))


def _terms_aad(chain: Chain, insurer: str, patient: str) -> bytes:
    return f"{TERMS_KIND}:{chain.chain_id}:{manager(chain).address}:{insurer}:{patient}".encode()


def get_policy(chain: Chain, policy_id: int) -> Policy:
    """Read a policy (with its terms CID from the issuing event)."""
    contract = manager(chain)
    count = int(chain.call("reading policies", contract.functions.policyCount()))
    if not 1 <= policy_id <= count:
        raise PolicyNotFound(policy_id)
    p = chain.call("reading the policy", contract.functions.getPolicy(policy_id))
    (insurer, v_from, v_until, bps, patient, deductible, limit, paid, auto, met, funded, root) = p
    terms_cid = None
    events = contract.events.PolicyIssued().get_logs(
        from_block=_start_block(chain), argument_filters={"policyId": policy_id}
    )
    if events:
        terms_cid = Cid.from_digest_v0(bytes(events[0]["args"]["termsDigest"]))

    def u(value: int) -> Decimal:
        return from_units(chain, int(value))

    return Policy(
        id=policy_id,
        insurer=to_checksum_address(insurer),
        patient=to_checksum_address(patient),
        valid_from=_ts(v_from),
        valid_until=_ts(v_until),
        coverage=Decimal(bps) / BPS,
        deductible=u(deductible),
        annual_limit=u(limit),
        auto_settle_limit=u(auto),
        paid=u(paid),
        deductible_met=u(met),
        funded=u(funded),
        codes_root=bytes(root),
        terms_cid=terms_cid,
    )


def policies(chain: Chain, patient: str | None = None, insurer: str | None = None) -> list[Policy]:
    """Every policy, or those of a patient or insurer."""
    filters: dict[str, Any] = {}
    if patient:
        filters["patient"] = to_checksum_address(patient)
    if insurer:
        filters["insurer"] = to_checksum_address(insurer)
    events = (
        manager(chain)
        .events.PolicyIssued()
        .get_logs(from_block=_start_block(chain), argument_filters=filters)
    )
    return [get_policy(chain, int(e["args"]["policyId"])) for e in events]


def read_terms(chain: Chain, store: BlockStore, reader: LocalAccount, policy: Policy) -> Terms:
    """Decrypt a policy's terms (the insurer, its practitioners and the patient can)."""
    if policy.terms_cid is None:
        raise PreconditionFailed(f"policy {policy.id} has no terms document")
    sealed = store.cat(policy.terms_cid)
    try:
        secret = crypto.secret_for(sealed, reader.key)
    except NoKeyForReader:
        raise PreconditionFailed(
            f"{reader.address} cannot read the terms of policy {policy.id} (only the insurer and "
            "the patient hold its key; ask the patient for the terms file)"
        ) from None
    plain = crypto.open_sealed(sealed, _terms_aad(chain, policy.insurer, policy.patient), secret)
    return Terms.from_json(json.loads(plain), f"terms of policy {policy.id}")


def fund_policy(chain: Chain, funder: LocalAccount, policy_id: int, amount: Decimal) -> Policy:
    """Pay tokens into a policy's pool (approve, then fund); on a devnet, mint what is missing."""
    get_policy(chain, policy_id)  # unknown policy: a clear error before any token moves
    units = to_units(chain, amount, "amount")
    if units == 0:
        raise ConfigurationError("amount", "must be more than zero")
    token = token_contract(chain)
    contract = manager(chain)
    balance = int(chain.call("reading the balance", token.functions.balanceOf(funder.address)))
    if balance < units:
        if not chain.is_devnet:
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


def mint(chain: Chain, to: str, amount: Decimal) -> None:
    """Mint devnet dollars (the devnet deployer owns the token; refused elsewhere)."""
    if not chain.is_devnet:
        raise PreconditionFailed("tokens are minted only on a devnet")
    from medledger.accounts import dev_account

    owner = dev_account(0)
    units = to_units(chain, amount)
    chain.transact("minting devnet dollars", owner, token_contract(chain).functions.mint(to, units))


def balance_of(chain: Chain, account: str) -> Decimal:
    """An account's token balance."""
    token = token_contract(chain)
    return from_units(
        chain, int(chain.call("reading the balance", token.functions.balanceOf(account)))
    )


# --- claims --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimFacts:
    """What a FHIR ``Claim`` says that the chain needs: total, currency and procedure codes."""

    total: Decimal
    currency: str
    codes: tuple[Code, ...]
    patient_reference: str | None


def claim_facts(body: bytes, source: str = "claim") -> ClaimFacts:
    """Read the total and the procedure codes of a FHIR R4 ``Claim`` (refuse anything else).

    Codes come from each item's ``productOrService`` (its first coding); items without one
    (Synthea's information and diagnosis lines) carry no code. The billed amount is ``total``,
    or the sum of the items' ``net`` amounts; amounts are read as exact decimals and rounded to
    the currency's cents (exports such as Synthea's write binary floats like 410.20000000000005).
    STU3's ``Money.code`` is accepted for the currency.
    """
    from medledger import fhir

    ingest = fhir.load(body, source)
    if ingest.kind != "resource" or fhir.resource_type_of(body) != "Claim":
        raise FhirStructureError(source, "is not a FHIR Claim resource")
    resource = json.loads(body, parse_float=Decimal)
    codes: list[Code] = []
    item_total = Decimal(0)
    currencies: set[str] = set()
    for item in resource.get("item") or []:
        concept = item.get("productOrService") or item.get("service") or {}  # STU3: service
        coding = concept.get("coding") or []
        if coding and coding[0].get("code"):
            codes.append(Code(str(coding[0].get("system") or ""), str(coding[0]["code"])))
        net = item.get("net") or {}
        if "value" in net:
            item_total += Decimal(str(net["value"]))
            currencies.add(str(net.get("currency") or net.get("code") or "USD"))
    if not codes:
        raise FhirStructureError(
            source, "no item has a productOrService code, so no procedure can be checked"
        )
    total = resource.get("total") or {}
    if "value" in total:
        amount = Decimal(str(total["value"]))
        currencies.add(str(total.get("currency") or total.get("code") or "USD"))
    elif item_total > 0:
        amount = item_total
    else:
        raise FhirStructureError(source, "the Claim has no total and no item net amounts")
    if len(currencies) > 1:
        raise FhirStructureError(
            source, f"the Claim mixes currencies: {', '.join(sorted(currencies))}"
        )
    amount = amount.quantize(CENT, ROUND_HALF_UP)
    if amount <= 0:
        raise FhirStructureError(source, "the Claim's total must be more than zero")
    patient = (resource.get("patient") or {}).get("reference")
    return ClaimFacts(amount, currencies.pop() if currencies else "USD", tuple(codes), patient)


def submit_claim(
    chain: Chain,
    store: BlockStore,
    submitter: LocalAccount,
    policy_id: int,
    claim_body: bytes,
    *,
    evidence: Iterable[bytes] = (),
    terms: Terms | None = None,
    pay_patient: bool = False,
    source: str = "claim",
) -> Claim:
    """Anchor a FHIR ``Claim`` as an encrypted record and submit it against a policy.

    The insurer must already hold a live ``payment`` grant covering the claim record (a
    ``financial`` category grant, or ``all``) and each evidence record; a patient who submits
    their own claim gets record grants made for them. Returns the claim (settled at once when
    the policy's rules allow).
    """
    facts = claim_facts(claim_body, source)
    policy = get_policy(chain, policy_id)
    now = access.chain_now(chain)
    if not policy.valid_from <= now <= policy.valid_until:
        raise PreconditionFailed(
            f"policy {policy_id} covers {policy.valid_from:%F} to {policy.valid_until:%F}, "
            f"not {now:%F %H:%M}"
        )
    is_patient = submitter.address == policy.patient
    institution = registry.verified_institution_of(chain, submitter.address)
    if not is_patient:
        kind = registry.participant(chain, institution).kind if institution else None
        if kind not in (
            registry.InstitutionKind.HOSPITAL,
            registry.InstitutionKind.CLINIC,
            registry.InstitutionKind.LABORATORY,
        ):
            raise PreconditionFailed(
                f"{submitter.address} may not claim against policy {policy_id}: only the insured "
                "patient or a verified care provider can"
            )
    if terms is None:
        terms = read_terms(chain, store, submitter, policy)
    if terms.tree().root != policy.codes_root:
        raise PreconditionFailed(f"the terms given are not those of policy {policy_id}")
    if facts.currency != terms.currency:
        raise PreconditionFailed(
            f"the claim is in {facts.currency}, policy {policy_id} pays in {terms.currency}"
        )
    billed = to_units(chain, facts.total, "claim total")
    evidence_ids = [bytes(e) for e in evidence]
    for record_id in evidence_ids:
        record = records.get(chain, record_id, store)
        if record.patient != policy.patient:
            raise PreconditionFailed(f"evidence {record.hex_id} is another patient's record")
    if not is_patient:
        # Checked before anything is written: without consent the claim record would be
        # anchored for nothing.
        _require_consent(chain, policy, evidence_ids)
        _require_financial_consent(chain, policy)
    (claim_record,) = records.anchor(
        chain, store, submitter, policy.patient, [records.Draft(claim_body, Category.FINANCIAL)]
    )
    everything = [claim_record.id, *evidence_ids]
    if is_patient:
        _grant_payment(chain, store, submitter, policy, everything)
    _require_consent(chain, policy, everything)
    code_hashes = [c.hashed(terms.salt) for c in facts.codes]
    proofs = [terms.proof(c) for c in facts.codes]
    args = (policy_id, billed, pay_patient, claim_record.id, evidence_ids, code_hashes, proofs)
    receipt = chain.transact(
        "submitting the claim", submitter, manager(chain).functions.submitClaim(args)
    )
    (event,) = manager(chain).events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)
    return get_claim(chain, int(event["args"]["claimId"]))


def _grant_payment(
    chain: Chain, store: BlockStore, patient: LocalAccount, policy: Policy, ids: list[bytes]
) -> None:
    """The patient consents, record by record, to the insurer reading the claim's evidence."""
    contract = access.consent_contract(chain)
    for record_id in ids:
        if chain.call(
            "reading consent",
            contract.functions.hasAccessFor(policy.insurer, record_id, int(access.Purpose.PAYMENT)),
        ):
            continue
        access.grant(
            chain,
            store,
            patient,
            policy.patient,
            policy.insurer,
            access.Scope(access.ScopeKind.RECORD, record=record_id),
            access.Purpose.PAYMENT,
            timedelta(days=90),
        )


def _require_financial_consent(chain: Chain, policy: Policy) -> None:
    """The claim record does not exist yet: only a live ``payment`` grant of the financial
    category (or of all records) can cover it."""
    now = access.chain_now(chain)
    wide = (
        access.Scope(access.ScopeKind.ALL),
        access.Scope(access.ScopeKind.CATEGORY, category=Category.FINANCIAL),
    )
    for state in access.grants(chain, policy.patient, policy.insurer, wide):
        covers = state.scope.kind is access.ScopeKind.ALL or (
            state.scope.kind is access.ScopeKind.CATEGORY
            and state.scope.category is Category.FINANCIAL
        )
        if covers and state.purpose is access.Purpose.PAYMENT and state.live(now):
            return
    raise PreconditionFailed(
        f"the patient has not consented to insurer {policy.insurer} reading claims for payment: "
        f"the patient runs `medledger grant {policy.insurer} --purpose payment --scope "
        "category:financial` (or signs it with --sign-only and gives the file to the provider)"
    )


def _require_consent(chain: Chain, policy: Policy, ids: list[bytes]) -> None:
    contract = access.consent_contract(chain)
    for record_id in ids:
        allowed = chain.call(
            "reading consent",
            contract.functions.hasAccessFor(policy.insurer, record_id, int(access.Purpose.PAYMENT)),
        )
        if not allowed:
            raise PreconditionFailed(
                f"the patient has not consented to insurer {policy.insurer} reading record "
                f"0x{record_id.hex()} for payment: the patient runs `medledger grant "
                f"{policy.insurer} --purpose payment --scope category:financial` (and a scope "
                "covering the evidence), or signs one with --sign-only"
            )


def get_claim(chain: Chain, claim_id: int, with_history: bool = False) -> Claim:
    """Read a claim, the facts of its submission, and (optionally) every step of its life."""
    contract = manager(chain)
    count = int(chain.call("reading claims", contract.functions.claimCount()))
    if not 1 <= claim_id <= count:
        raise ClaimNotFound(claim_id)
    (
        submitter,
        policy_id,
        state,
        pay_patient,
        billed,
        paid,
        decided_at,
        deductible,
        submitted_at,
    ) = chain.call("reading the claim", contract.functions.getClaim(claim_id))
    start = _start_block(chain)
    by_claim = {"claimId": claim_id}
    (submitted,) = contract.events.ClaimSubmitted().get_logs(
        from_block=start, argument_filters=by_claim
    )
    a = submitted["args"]
    evidence = [bytes(e) for e in a["evidence"]]
    for e in contract.events.ClaimInfoProvided().get_logs(
        from_block=start, argument_filters=by_claim
    ):
        evidence.extend(bytes(x) for x in e["args"]["evidence"])

    def u(value: int) -> Decimal:
        return from_units(chain, int(value))

    return Claim(
        id=claim_id,
        policy_id=int(policy_id),
        submitter=to_checksum_address(submitter),
        state=ClaimState(state),
        pay_patient=bool(pay_patient),
        billed=u(billed),
        paid=u(paid),
        deductible_applied=u(deductible),
        submitted_at=_ts(submitted_at),
        decided_at=_ts(decided_at) if decided_at else None,
        claim_record=bytes(a["claimRecord"]),
        evidence=tuple(evidence),
        code_hashes=tuple(bytes(c) for c in a["codeHashes"]),
        automatic=bool(a["automatic"]),
        review=ReviewReason(a["review"]),
        history=tuple(claim_history(chain, claim_id)) if with_history else (),
    )


def claim_history(chain: Chain, claim_id: int) -> list[ClaimEvent]:
    """Every event of a claim, oldest first, with the gas each transaction used."""
    contract = manager(chain)
    start = _start_block(chain)
    by_claim = {"claimId": claim_id}
    found: list[tuple[int, int, ClaimEvent]] = []

    def add(event: Any, name: str, actor: str, detail: str) -> None:
        tx = "0x" + bytes(event["transactionHash"]).hex()
        gas = int(chain.w3.eth.get_transaction_receipt(event["transactionHash"])["gasUsed"])
        when = chain.block_time(int(event["blockNumber"]))
        found.append(
            (
                int(event["blockNumber"]),
                int(event["logIndex"]),
                ClaimEvent(when, int(event["blockNumber"]), name, actor, detail, tx, gas),
            )
        )

    def logs(name: str) -> list[Any]:
        return list(
            getattr(contract.events, name)().get_logs(from_block=start, argument_filters=by_claim)
        )

    for e in logs("ClaimSubmitted"):
        a = e["args"]
        review = (
            "settled automatically"
            if a["automatic"]
            else f"for review: {ReviewReason(a['review']).label}"
        )
        add(e, "submitted", a["submitter"], f"billed {from_units(chain, a['billed'])}, {review}")
    for e in logs("ClaimApproved"):
        a = e["args"]
        how = "automatically" if a["automatic"] else "by the insurer"
        add(
            e,
            "approved",
            a["decider"],
            f"{from_units(chain, a['amount'])} of {from_units(chain, a['allowed'])} allowed {how} "
            f"(deductible {from_units(chain, a['deductibleApplied'])}) credited to {a['payee']}",
        )
    for e in logs("ClaimDenied"):
        add(e, "denied", e["args"]["decider"], describe_reason(e["args"]["reasonCode"]))
    for e in logs("ClaimInfoRequested"):
        add(
            e,
            "information requested",
            e["args"]["requester"],
            describe_reason(e["args"]["reasonCode"]),
        )
    for e in logs("ClaimInfoProvided"):
        add(
            e,
            "information provided",
            e["args"]["provider"],
            f"{len(e['args']['evidence'])} more evidence records",
        )
    for e in logs("ClaimDisputed"):
        add(e, "disputed", e["args"]["disputer"], describe_reason(e["args"]["reasonCode"]))
    for e in logs("DisputeResolved"):
        a = e["args"]
        add(
            e,
            "dispute resolved",
            a["resolver"],
            f"award {from_units(chain, a['award'])} to {a['payee']}"
            if a["award"]
            else "decision upheld",
        )
    found.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in found]


def claims(
    chain: Chain,
    policy_id: int | None = None,
    submitter: str | None = None,
    state: ClaimState | None = None,
) -> list[Claim]:
    """Claims, filtered by policy, submitter or state."""
    filters: dict[str, Any] = {}
    if policy_id is not None:
        filters["policyId"] = policy_id
    if submitter:
        filters["submitter"] = to_checksum_address(submitter)
    events = (
        manager(chain)
        .events.ClaimSubmitted()
        .get_logs(from_block=_start_block(chain), argument_filters=filters)
    )
    found = [get_claim(chain, int(e["args"]["claimId"])) for e in events]
    return [c for c in found if state is None or c.state is state]


def allowed_amount(chain: Chain, claim_id: int) -> tuple[Decimal, Decimal]:
    """What deciding the claim now may credit at most, and the deductible it would apply."""
    allowed, deductible = chain.call(
        "reading the allowed amount", manager(chain).functions.allowedAmount(claim_id)
    )
    return from_units(chain, int(allowed)), from_units(chain, int(deductible))


@dataclass(frozen=True)
class Evidence:
    """One evidence record the insurer opened during review."""

    record: records.Record
    body: bytes


def review(
    chain: Chain, store: BlockStore, insurer: LocalAccount, claim_id: int
) -> tuple[Claim, list[Evidence]]:
    """Fetch, verify and decrypt a claim's evidence as the insurer (refused without consent)."""
    claim = get_claim(chain, claim_id, with_history=True)
    policy = get_policy(chain, claim.policy_id)
    _require_policy_insurer(chain, insurer.address, policy)
    opened = []
    for record_id in claim.evidence_records:
        body = access.read(chain, store, insurer, record_id, log=False)
        opened.append(Evidence(records.get(chain, record_id, store), body))
    access.log_reads(chain, insurer, list(claim.evidence_records))
    return claim, opened


def _require_policy_insurer(chain: Chain, account: str, policy: Policy) -> None:
    if registry.verified_institution_of(chain, account) != policy.insurer:
        raise PreconditionFailed(
            f"{account} does not act for {policy.insurer}, the insurer of policy {policy.id}"
        )


def _decidable(
    chain: Chain, insurer: LocalAccount, claim_id: int, states: tuple[ClaimState, ...]
) -> Claim:
    claim = get_claim(chain, claim_id)
    _require_policy_insurer(chain, insurer.address, get_policy(chain, claim.policy_id))
    if claim.state not in states:
        raise PreconditionFailed(
            f"claim {claim_id} is {claim.state.label}: it cannot be decided now"
        )
    return claim


def approve(
    chain: Chain, insurer: LocalAccount, claim_id: int, amount: Decimal | None = None
) -> Claim:
    """Approve a claim in full (``amount`` None: what the policy allows) or in part."""
    _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED))
    allowed, _ = allowed_amount(chain, claim_id)
    chosen = allowed if amount is None else amount
    if chosen > allowed:
        raise PreconditionFailed(
            f"claim {claim_id}: {chosen} is more than the {allowed} the policy allows"
        )
    if chosen <= 0:
        raise PreconditionFailed(f"claim {claim_id}: nothing to approve (use deny)")
    policy = get_policy(chain, get_claim(chain, claim_id).policy_id)
    if policy.pool < chosen:
        raise PreconditionFailed(
            f"policy {policy.id}'s pool holds {policy.pool}, less than {chosen}"
        )
    units = to_units(chain, chosen)
    chain.transact(
        "approving the claim", insurer, manager(chain).functions.approveClaim(claim_id, units)
    )
    return get_claim(chain, claim_id)


def deny(chain: Chain, insurer: LocalAccount, claim_id: int, reason: ReasonCode) -> Claim:
    """Deny a claim with a reason code."""
    _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED))
    chain.transact(
        "denying the claim", insurer, manager(chain).functions.denyClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def request_info(chain: Chain, insurer: LocalAccount, claim_id: int, reason: ReasonCode) -> Claim:
    """Ask the submitter for more information."""
    _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED,))
    chain.transact(
        "requesting information",
        insurer,
        manager(chain).functions.requestInfo(claim_id, int(reason)),
    )
    return get_claim(chain, claim_id)


def _require_party(chain: Chain, account: str, claim: Claim) -> None:
    policy = get_policy(chain, claim.policy_id)
    if (
        account != policy.patient
        and registry.verified_institution_of(chain, account) != claim.submitter
    ):
        raise PreconditionFailed(
            f"{account} is neither the submitter of claim {claim.id} nor the patient"
        )


def provide_info(
    chain: Chain, store: BlockStore, account: LocalAccount, claim_id: int, evidence: list[bytes]
) -> Claim:
    """Answer a request for information with more (consented) evidence records."""
    claim = get_claim(chain, claim_id)
    _require_party(chain, account.address, claim)
    if claim.state is not ClaimState.INFO_REQUESTED:
        raise PreconditionFailed(
            f"claim {claim_id} is {claim.state.label}: no information was asked for"
        )
    if not evidence:
        raise ConfigurationError("--evidence", "give at least one record")
    policy = get_policy(chain, claim.policy_id)
    if account.address == policy.patient:
        _grant_payment(chain, store, account, policy, evidence)
    _require_consent(chain, policy, evidence)
    chain.transact(
        "providing information", account, manager(chain).functions.provideInfo(claim_id, evidence)
    )
    return get_claim(chain, claim_id)


def dispute(chain: Chain, account: LocalAccount, claim_id: int, reason: ReasonCode) -> Claim:
    """Dispute a partial approval or denial within the dispute window."""
    claim = get_claim(chain, claim_id)
    _require_party(chain, account.address, claim)
    if claim.state not in (ClaimState.PARTIALLY_APPROVED, ClaimState.DENIED):
        raise PreconditionFailed(
            f"claim {claim_id} is {claim.state.label}: only a partial approval or a denial can "
            "be disputed"
        )
    window = int(chain.call("reading the window", manager(chain).functions.DISPUTE_WINDOW()))
    assert claim.decided_at is not None
    closes = claim.decided_at + timedelta(seconds=window)
    if access.chain_now(chain) > closes:
        raise PreconditionFailed(
            f"the dispute window of claim {claim_id} closed at {closes:%F %H:%M}Z"
        )
    chain.transact(
        "disputing the claim", account, manager(chain).functions.disputeClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def resolve(chain: Chain, resolver: LocalAccount, claim_id: int, award: Decimal) -> Claim:
    """Resolve a dispute with an award on top of what was approved (zero upholds)."""
    contract = manager(chain)
    if not chain.call("reading roles", contract.functions.hasRole(RESOLVER_ROLE, resolver.address)):
        raise PreconditionFailed(f"{resolver.address} is not a resolver")
    claim = get_claim(chain, claim_id)
    if claim.state is not ClaimState.DISPUTED:
        raise PreconditionFailed(f"claim {claim_id} is {claim.state.label}, not disputed")
    allowed, _ = allowed_amount(chain, claim_id)
    if award > allowed:
        raise PreconditionFailed(
            f"claim {claim_id}: an award of {award} is more than the {allowed} allowed"
        )
    chain.transact(
        "resolving the dispute",
        resolver,
        contract.functions.resolveDispute(claim_id, to_units(chain, award)),
    )
    return get_claim(chain, claim_id)


def add_resolver(chain: Chain, admin: LocalAccount, resolver: str) -> None:
    """Give an account the resolver role (the ClaimsManager's admin only)."""
    contract = manager(chain)
    chain.transact(
        "adding a resolver",
        admin,
        contract.functions.grantRole(RESOLVER_ROLE, to_checksum_address(resolver)),
    )


def credit_of(chain: Chain, payee: str) -> Decimal:
    """What a payee can withdraw."""
    value = chain.call(
        "reading the credit", manager(chain).functions.creditOf(to_checksum_address(payee))
    )
    return from_units(chain, int(value))


def withdraw(chain: Chain, account: LocalAccount) -> tuple[Decimal, TxReceipt]:
    """Withdraw everything credited to the account's institution (or to the patient)."""
    if credit_of(chain, account.address) == 0:
        raise PreconditionFailed(f"nothing is credited to {account.address}")
    receipt = chain.transact(
        "withdrawing the payment", account, manager(chain).functions.withdrawPayment()
    )
    (event,) = manager(chain).events.PaymentWithdrawn().process_receipt(receipt, errors=DISCARD)
    return from_units(chain, int(event["args"]["amount"])), receipt


def decision_of(chain: Chain, claim: Claim, currency: str = "USD") -> Any:
    """The claim's chain state as a :class:`medledger.fhir.Decision`."""
    from medledger import fhir

    reason = None
    for step in claim_history(chain, claim.id):
        if step.event in ("denied", "information requested", "disputed"):
            reason = step.detail
    return fhir.Decision(
        identifier=f"eip155:{chain.chain_id}/{manager(chain).address}/{claim.id}",
        state=claim.state.label,
        billed=claim.billed,
        paid=claim.paid,
        deductible=claim.deductible_applied,
        submitted_at=claim.submitted_at,
        decided_at=claim.decided_at,
        currency=currency,
        reason=reason,
        automatic=claim.automatic,
    )


def fhir_documents(
    chain: Chain, store: BlockStore, reader: LocalAccount, claim_id: int
) -> dict[str, bytes]:
    """The FHIR ``ClaimResponse`` (and ``ExplanationOfBenefit`` once paid) of a claim.

    The reader must be able to open the claim record (submitter, patient, or the consented
    insurer): the responses copy its patient, provider and insurer references.
    """
    from medledger import fhir

    claim = get_claim(chain, claim_id)
    body = access.read(chain, store, reader, claim.claim_record, log=False)
    facts = claim_facts(body, f"claim {claim_id}")
    decision = decision_of(chain, claim, facts.currency)
    documents = {"ClaimResponse": fhir.claim_response(body, decision)}
    if claim.paid > 0:
        documents["ExplanationOfBenefit"] = fhir.explanation_of_benefit(body, decision)
    return documents


def _start_block(chain: Chain) -> int:
    return deployments.require(chain).contracts["ClaimsManager"].block
