"""Insurance claims settled on chain: policies, their pools, and the claims made against them.

The ClaimsManager holds the money and the state; the medical evidence stays encrypted in IPFS
and is read only by the insurer the patient consented to (a live grant for the ``payment``
purpose, checked by the contract at submission). What goes on chain about a claim is its
amount, the salted hashes of its procedure codes, of its service period and of its identifier,
the ids of its evidence records and numeric reason codes: nothing a stranger can read medical
detail from.

Covered procedure codes are a Merkle root of salted code hashes
(``keccak256(abi.encode(salt, system, code))``): a code list of public codes would be easy to
recover from plain hashes, so the salt lives in the policy's *terms document*, sealed for the
insurer and the patient in IPFS. The patient hands the terms to a provider that submits claims
for them (``medledger policy show ID --terms --out terms.json``), just as they would show an
insurance card.

**A claim's id is its claim record's id** (a FHIR ``Claim`` anchored as a Financial record by
the care provider that gave the care, under a live care relationship), shown as ``0x`` and 64
hex digits; commands also accept the same number in decimal. A record backs one claim, and the
contract refuses the same care billed twice however it is re-encrypted, by two keys computed
here from the decrypted ``Claim`` and the policy's terms salt (so the insurer, who holds both,
can recompute them at any time):

* ``serviceKey = keccak256(abi.encode(bytes32 salt, string "medledger/claim-service/v1",
  string start, string end))``, where ``(start, end)`` is ``Claim.billablePeriod`` (a missing
  bound is the other one) or, without it, the earliest start and the latest end of the items'
  ``servicedDate`` (start and end both) and ``servicedPeriod``, compared as the canonical
  strings below. Each bound is canonical: a FHIR date (``2024``, ``2024-03``, ``2024-03-05``)
  as written; a dateTime as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (fractions of a second dropped, no
  offset read as UTC). A Claim with no service period is refused.
* ``identifierKey = keccak256(abi.encode(bytes32 salt, string "medledger/claim-identifier/v1",
  string system, string value))`` of ``Claim.identifier[0]`` (system ``""`` when absent), or
  zero when the Claim has no identifier (or the first has no value).

The contract keys the care as ``keccak256(abi.encode("care", patient, provider, serviceKey,
codeHashes))`` (``codeHashes``: the distinct code hashes in ascending order; not the amount: the
same care billed again at another amount is a duplicate) and the identifier as
``keccak256(abi.encode("identifier", provider, identifierKey))``, ``provider`` being the claim
record's writer's directory number; :func:`submit_claim` reads ``claimOfKey`` of both before
anything is written and refuses a duplicate naming the earlier claim. A patient's claim on a
record has its own id (:func:`patient_claim_id`) and takes its keys only once approved, so it
never blocks the provider's claim of the same record.

Amounts are :class:`~decimal.Decimal` in the token's unit (the devnet dollar has 6 decimals);
the chain holds integers of the smallest unit. An automatic settlement pays the payee at once;
the decisions of people (approval, resolution) credit it, and it withdraws
(``medledger claim withdraw-payment``).
"""

from __future__ import annotations

import json
import os
import re
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
    DuplicateClaim,
    FhirStructureError,
    NoKeyForReader,
    PolicyNotFound,
    PreconditionFailed,
    TransactionReverted,
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
SERVICE_TAG = "medledger/claim-service/v1"
IDENTIFIER_TAG = "medledger/claim-identifier/v1"
NO_IDENTIFIER = bytes(32)
DECISION_PERIOD = timedelta(days=30)
"""How long an insurer has to decide before the claimant may escalate (the contract's
``DECISION_PERIOD``)."""
MAX_INFO_REQUESTS = 3
"""Most requests for information per claim (the contract's ``MAX_INFO_REQUESTS``)."""
_HEX_CLAIM_ID = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
_FHIR_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")


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
    SUBMITTED_BY_PATIENT = 6
    INSURER_NOT_VERIFIED = 7

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


# --- claim ids -----------------------------------------------------------------------------------


def claim_hex(claim_id: int) -> str:
    """A claim id as MedLedger shows it: ``0x`` and 64 hex digits (its claim record's id)."""
    return f"0x{claim_id:064x}"


def parse_claim_id(text: str, setting: str = "CLAIM") -> int:
    """Parse a claim id: ``0x`` hex (the claim record's id, or a shorter hex number), a
    ``medledger://`` record URI, or the same number in decimal."""
    raw = text.strip()
    value = -1
    if _HEX_CLAIM_ID.match(raw):
        value = int(raw[2:], 16)
    elif raw.isdigit() and len(raw) <= 78:
        value = int(raw)
    elif raw.startswith("medledger://"):
        value = int.from_bytes(records.RecordRef.parse(raw).id, "big")
    if not 0 < value < 2**256:
        raise ConfigurationError(
            setting,
            f"{text!r} is not a claim id (0x and up to 64 hex digits, the claim record's id, or "
            "a decimal number)",
        )
    return value


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

    def service_key(self, start: str, end: str) -> bytes:
        """The salted key of a service period (canonical bounds: see the module's docs)."""
        return keccak(
            abi_encode(
                ["bytes32", "string", "string", "string"], [self.salt, SERVICE_TAG, start, end]
            )
        )

    def identifier_key(self, identifier: tuple[str, str] | None) -> bytes:
        """The salted key of a claim's ``(system, value)`` identifier; zero without one."""
        if identifier is None:
            return NO_IDENTIFIER
        system, value = identifier
        return keccak(
            abi_encode(
                ["bytes32", "string", "string", "string"],
                [self.salt, IDENTIFIER_TAG, system, value],
            )
        )

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
    open_claims: int = 0

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
            "open_claims": self.open_claims,
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
    """A claim as the chain holds it, with the facts its submission event recorded.

    ``id`` is the claim record's id as a number for a provider's claim; a patient's claim has
    its own id (:func:`patient_claim_id` of ``claim_record``).
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
        """A JSON-friendly view."""
        return {
            "id": self.hex_id,
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
            "info_requests": self.info_requests,
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
    terms = Terms(os.urandom(32), code_list, currency, plan)
    start = valid_from or access.chain_now(chain)
    readers = [registry.encryption_key(chain, institution), registry.encryption_key(chain, patient)]
    document = json.dumps(terms.to_json(), separators=(",", ":"), sort_keys=True).encode()
    sealed = crypto.seal(
        document, _terms_aad(chain, institution, patient), readers, crypto.BodySecret.generate()
    )
    terms_cid = store.add_bytes(sealed, pin=True)
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
        open_claims=int(
            chain.call("reading the policy", contract.functions.openClaimsOf(policy_id))
        ),
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


def reclaim_pool(chain: Chain, insurer: LocalAccount, policy_id: int) -> tuple[Decimal, TxReceipt]:
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
    if access.chain_now(chain) < until:
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
    (event,) = contract.events.PoolReclaimed().process_receipt(receipt, errors=DISCARD)
    return from_units(chain, int(event["args"]["amount"])), receipt


def dispute_window(chain: Chain) -> int:
    """How long after a decision it may be disputed, in seconds (fixed at deployment)."""
    if "claims-dispute-window" not in chain.cache:
        chain.cache["claims-dispute-window"] = int(
            chain.call("reading the window", manager(chain).functions.DISPUTE_WINDOW())
        )
    return int(chain.cache["claims-dispute-window"])


def last_decision_at(chain: Chain, policy_id: int) -> datetime | None:
    """When a person last made a decision that can be disputed (a partial approval or a denial)
    on a claim of the policy (what ``reclaimPool`` waits a dispute window after), from the
    events; None when nobody has."""
    contract = manager(chain)
    start = _start_block(chain)
    ids = [
        int(e["args"]["claimId"])
        for e in contract.events.ClaimSubmitted().get_logs(
            from_block=start, argument_filters={"policyId": policy_id}
        )
    ]
    if not ids:
        return None
    blocks = [
        int(e["blockNumber"])
        for name in ("ClaimApproved", "ClaimDenied")
        for e in getattr(contract.events, name)().get_logs(
            from_block=start, argument_filters={"claimId": ids}
        )
        if name == "ClaimDenied" or e["args"]["amount"] != e["args"]["allowed"]
    ]
    return chain.block_time(max(blocks)) if blocks else None


# --- claims --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimFacts:
    """What a FHIR ``Claim`` says that the chain needs: total, currency, procedure codes, the
    service period (canonical bounds) and the business identifier."""

    total: Decimal
    currency: str
    codes: tuple[Code, ...]
    patient_reference: str | None
    service: tuple[str, str] = ("", "")
    identifier: tuple[str, str] | None = None


@dataclass(frozen=True)
class ClaimKeys:
    """What a submission carries about the claim's content, all salted with the terms' salt:
    the distinct code hashes in ascending order with their proofs in the same order (``[]``
    for a code the policy does not cover), the service key and the identifier key."""

    code_hashes: tuple[bytes, ...]
    proofs: tuple[tuple[bytes, ...], ...]
    service_key: bytes
    identifier_key: bytes


def claim_keys(facts: ClaimFacts, terms: Terms) -> ClaimKeys:
    """The keys of a claim under a policy's terms (the insurer recomputes them the same way)."""
    by_hash = {c.hashed(terms.salt): c for c in facts.codes}
    ordered = sorted(by_hash)
    return ClaimKeys(
        code_hashes=tuple(ordered),
        proofs=tuple(tuple(terms.proof(by_hash[h])) for h in ordered),
        service_key=terms.service_key(*facts.service),
        identifier_key=terms.identifier_key(facts.identifier),
    )


def canonical_time(value: object, where: str, source: str = "claim") -> str:
    """A FHIR date as written, or a dateTime as UTC ``YYYY-MM-DDTHH:MM:SSZ`` (see the module)."""
    text = value.strip() if isinstance(value, str) else ""
    if _FHIR_DATE.match(text):
        return text
    try:
        if "T" not in text:
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FhirStructureError(
            source, f"{where} {value!r} is not a FHIR date or dateTime"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _service_period(resource: dict[str, Any], source: str) -> tuple[str, str]:
    billable = resource.get("billablePeriod")
    billable = billable if isinstance(billable, dict) else {}
    first, last = billable.get("start"), billable.get("end")
    if first or last:
        return (
            canonical_time(first or last, "billablePeriod.start", source),
            canonical_time(last or first, "billablePeriod.end", source),
        )
    starts: list[str] = []
    ends: list[str] = []
    for n, item in enumerate(resource.get("item") or []):
        if not isinstance(item, dict):
            continue
        if item.get("servicedDate"):
            day = canonical_time(item["servicedDate"], f"item[{n}].servicedDate", source)
            starts.append(day)
            ends.append(day)
        period = item.get("servicedPeriod")
        period = period if isinstance(period, dict) else {}
        first, last = period.get("start"), period.get("end")
        if first or last:
            starts.append(canonical_time(first or last, f"item[{n}].servicedPeriod", source))
            ends.append(canonical_time(last or first, f"item[{n}].servicedPeriod", source))
    if not starts:
        raise FhirStructureError(
            source,
            "the Claim has no service period (billablePeriod, or servicedDate or servicedPeriod "
            "on an item): without one the same care could be claimed twice",
        )
    return min(starts), max(ends)


def _identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    found = resource.get("identifier")
    first = (found[0] if found else None) if isinstance(found, list) else found
    if not isinstance(first, dict) or not str(first.get("value") or "").strip():
        return None
    return str(first.get("system") or ""), str(first["value"])


def claim_facts(body: bytes, source: str = "claim") -> ClaimFacts:
    """Read the total, the procedure codes, the service period and the identifier of a FHIR R4
    ``Claim`` (refuse anything else, and a Claim without a service period).

    Codes come from each item's ``productOrService`` (its first coding); items without one
    (Synthea's information and diagnosis lines) carry no code. The billed amount is ``total``,
    or the sum of the items' ``net`` amounts; amounts are read as exact decimals and rounded to
    the currency's cents (exports such as Synthea's write binary floats like 410.20000000000005).
    STU3's ``Money.code`` is accepted for the currency. The service period and the identifier
    are read as the module's docs say.
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
    return ClaimFacts(
        amount,
        currencies.pop() if currencies else "USD",
        tuple(codes),
        patient,
        _service_period(resource, source),
        _identifier(resource),
    )


def submit_claim(
    chain: Chain,
    store: BlockStore,
    submitter: LocalAccount,
    policy_id: int,
    claim_body: bytes | None = None,
    *,
    record: bytes | None = None,
    evidence: Iterable[bytes] = (),
    terms: Terms | None = None,
    pay_patient: bool = False,
    source: str = "claim",
) -> Claim:
    """Submit a FHIR ``Claim`` against a policy; return the claim (settled, and paid, at once
    when the policy's rules allow).

    A care provider (or its practitioner) gives ``claim_body``: it is anchored as the provider's
    Financial record for the patient (a live care relationship is needed) and submitted. Or an
    already anchored claim ``record`` is given: a Financial record of the insured patient
    written by a care provider; a provider submits only records its own institution wrote, and
    the insured patient submits one a provider wrote for them (the insurer always reviews a
    patient's claim). Every check, duplicates included, is made before anything is written.

    The insurer must already hold a live ``payment`` grant covering the claim record (a
    ``financial`` category grant, or ``all``) and each evidence record; a patient who submits
    gets record grants made for them.
    """
    if (claim_body is None) == (record is None):
        raise ConfigurationError(
            "claim", "give either a FHIR Claim to anchor or an anchored claim record, not both"
        )
    policy = get_policy(chain, policy_id)
    now = access.chain_now(chain)
    if not policy.valid_from <= now <= policy.valid_until:
        raise PreconditionFailed(
            f"policy {policy_id} covers {policy.valid_from:%F} to {policy.valid_until:%F}, "
            f"not {now:%F %H:%M}"
        )
    is_patient = submitter.address == policy.patient
    institution = None if is_patient else _care_provider(chain, submitter.address, policy_id)
    if record is not None:
        record_id = bytes(record)
        provider = _check_claim_record(chain, store, record_id, policy, institution)
        body = access.read(chain, store, submitter, record_id, log=False)
    elif is_patient:
        raise PreconditionFailed(
            "a claim record is written by the care provider, not the patient: the provider "
            "anchors the Claim (medledger write --category financial) and the patient submits "
            "that record (medledger claim submit --record ID)"
        )
    else:
        assert institution is not None and claim_body is not None
        registry.require_writer(chain, submitter.address, policy.patient)
        provider = registry.participant(chain, institution).number
        body = claim_body
    facts = claim_facts(body, source)
    if terms is None:
        terms = read_terms(chain, store, submitter, policy)
    if terms.tree().root != policy.codes_root:
        raise PreconditionFailed(f"the terms given are not those of policy {policy_id}")
    if facts.currency != terms.currency:
        raise PreconditionFailed(
            f"the claim is in {facts.currency}, policy {policy_id} pays in {terms.currency}"
        )
    billed = to_units(chain, facts.total, "claim total")
    keys = claim_keys(facts, terms)
    _require_new(chain, policy, provider, keys, facts)
    evidence_ids = [bytes(e) for e in evidence]
    for record_id in evidence_ids:
        found = records.get(chain, record_id, store)
        if found.patient != policy.patient:
            raise PreconditionFailed(f"evidence {found.hex_id} is another patient's record")
    if not is_patient:
        # Checked before anything is written: without consent the claim record would be
        # anchored for nothing.
        _require_consent(chain, policy, evidence_ids)
        if record is None:
            _require_financial_consent(chain, policy)
        else:
            _require_consent(chain, policy, [bytes(record)])
    if record is None:
        (anchored,) = records.anchor(
            chain, store, submitter, policy.patient, [records.Draft(body, Category.FINANCIAL)]
        )
        claim_record = anchored.id
    else:
        claim_record = bytes(record)
    everything = [claim_record, *evidence_ids]
    if is_patient:
        _grant_payment(chain, store, submitter, policy, everything)
    _require_consent(chain, policy, everything)
    args = (
        policy_id,
        billed,
        pay_patient,
        claim_record,
        evidence_ids,
        list(keys.code_hashes),
        [list(p) for p in keys.proofs],
        keys.service_key,
        keys.identifier_key,
    )
    receipt = chain.transact(
        "submitting the claim", submitter, manager(chain).functions.submitClaim(args)
    )
    (event,) = manager(chain).events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)
    return get_claim(chain, int(event["args"]["claimId"]))


def _care_provider(chain: Chain, account: str, policy_id: int) -> str:
    """The verified care institution ``account`` is or works for (or a one-line refusal)."""
    institution = registry.verified_institution_of(chain, account)
    if institution is None or not registry.participant(chain, institution).is_care_provider:
        raise PreconditionFailed(
            f"{account} may not claim against policy {policy_id}: only the insured patient or a "
            "verified care provider (hospital, clinic, laboratory, emergency service) can"
        )
    return institution


def _check_claim_record(
    chain: Chain, store: BlockStore, record_id: bytes, policy: Policy, institution: str | None
) -> int:
    """Check an anchored claim record; return its writer's directory number."""
    found = records.get(chain, record_id, store)
    if not found.registered:
        raise PreconditionFailed(
            f"record {found.hex_id} is only in a batch: a claim record is anchored on its own"
        )
    if found.patient != policy.patient:
        raise PreconditionFailed(
            f"record {found.hex_id} is another patient's, not {policy.patient}'s (policy "
            f"{policy.id})"
        )
    if found.category != Category.FINANCIAL:
        raise PreconditionFailed(
            f"record {found.hex_id} is in category {found.category_label}: a claim record is a "
            "financial record"
        )
    writer = records.writer_of(chain, record_id)
    if writer == 0:
        raise PreconditionFailed(
            f"record {found.hex_id} was written by the patient: a claim record is written by the "
            "care provider that gave the care"
        )
    if institution is not None and registry.participant(chain, institution).number != writer:
        raise PreconditionFailed(
            f"record {found.hex_id} was written by another provider: {institution} claims only "
            "for records it wrote"
        )
    own = patient_claim_id(record_id) if institution is None else int.from_bytes(record_id, "big")
    earlier = _existing_claim(chain, own)
    if not earlier and institution is not None:
        earlier = int(chain.call("reading duplicates", manager(chain).functions.claimOfKey(
            _key("record", ["bytes32"], [record_id])
        )))  # fmt: skip
    if earlier:
        raise DuplicateClaim(f"record {found.hex_id}", earlier)
    return writer


def patient_claim_id(record_id: bytes) -> int:
    """The id of the patient's claim on a claim record (``patientClaimIdOf``; a provider's
    claim on it has the record's own id)."""
    return int.from_bytes(_key("patient", ["bytes32"], [record_id]), "big")


def _key(tag: str, types: list[str], values: list[object]) -> bytes:
    """``keccak256(abi.encode(tag, ...values))``: the contract's duplicate keys and ids."""
    from eth_abi.abi import encode
    from eth_utils.crypto import keccak

    return keccak(encode(["string", *types], [tag, *values]))


def _existing_claim(chain: Chain, claim_id: int) -> int:
    """``claim_id`` when that claim exists, else 0."""
    try:
        _read_claim(chain, claim_id)
    except ClaimNotFound:
        return 0
    return claim_id


def _require_new(
    chain: Chain, policy: Policy, provider: int, keys: ClaimKeys, facts: ClaimFacts
) -> None:
    """Refuse the same care, or the same claim identifier from the same provider, claimed
    before (the contract's keys, derived as ``claimOfKey`` documents them)."""
    contract = manager(chain)
    care = _key(
        "care", ["address", "uint32", "bytes32", "bytes32[]"],
        [policy.patient, provider, keys.service_key, list(keys.code_hashes)],
    )  # fmt: skip
    earlier = int(chain.call("reading duplicates", contract.functions.claimOfKey(care)))
    if earlier:
        start, end = facts.service
        period = start if start == end else f"{start} to {end}"
        raise DuplicateClaim(
            f"the same care (this patient and provider, service {period}, the same codes; "
            "whatever the amount: dispute a denial rather than claim again)",
            earlier,
        )
    if keys.identifier_key != NO_IDENTIFIER:
        key = _key("identifier", ["uint32", "bytes32"], [provider, keys.identifier_key])
        earlier = int(chain.call("reading duplicates", contract.functions.claimOfKey(key)))
        if earlier:
            assert facts.identifier is not None
            system, value = facts.identifier
            raise DuplicateClaim(
                f"claim identifier {system + '|' if system else ''}{value} of this provider",
                earlier,
            )


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


def _read_claim(chain: Chain, claim_id: int) -> Any:
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
    contract = manager(chain)
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
    ) = _read_claim(chain, claim_id)
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
        claim_record=bytes(a["claimRecord"]),
        submitter=to_checksum_address(submitter),
        state=ClaimState(state),
        pay_patient=bool(pay_patient),
        billed=u(billed),
        paid=u(paid),
        deductible_applied=u(deductible),
        submitted_at=_ts(submitted_at),
        decided_at=_ts(decided_at) if decided_at else None,
        evidence=tuple(evidence),
        code_hashes=tuple(bytes(c) for c in a["codeHashes"]),
        automatic=bool(a["automatic"]),
        review=ReviewReason(a["review"]),
        info_requests=int(info_requests),
        answered_at=_ts(int(answered_at)) if answered_at else None,
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
        amount = from_units(chain, a["amount"])
        if not amount:
            paid = "nothing to pay: within the deductible"
        elif a["automatic"]:
            paid = f"paid to {a['payee']} at once"
        else:
            paid = f"credited to {a['payee']}"
        add(
            e,
            "approved",
            a["decider"],
            f"{amount} of {from_units(chain, a['allowed'])} allowed {how} "
            f"(deductible {from_units(chain, a['deductibleApplied'])}), {paid}",
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
    for e in logs("ClaimEscalated"):
        add(e, "escalated", e["args"]["by"], "left undecided: sent to a resolver")
    for e in logs("DisputeResolved"):
        a = e["args"]
        add(
            e,
            "dispute resolved",
            a["resolver"],
            f"award {from_units(chain, a['award'])} credited to {a['payee']}"
            if a["award"]
            else "no award",
        )
    found.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in found]


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
            f"{account} does not act for {policy.insurer}, the insurer of policy {policy.id} "
            "(or that insurer is not verified)"
        )


def _decidable(
    chain: Chain, insurer: LocalAccount, claim_id: int, states: tuple[ClaimState, ...]
) -> Claim:
    claim = get_claim(chain, claim_id)
    _require_policy_insurer(chain, insurer.address, get_policy(chain, claim.policy_id))
    if claim.state not in states:
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: it cannot be decided now"
        )
    return claim


def approve(
    chain: Chain, insurer: LocalAccount, claim_id: int, amount: Decimal | None = None
) -> Claim:
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


def deny(chain: Chain, insurer: LocalAccount, claim_id: int, reason: ReasonCode) -> Claim:
    """Deny a claim with a reason code."""
    _decidable(chain, insurer, claim_id, (ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED))
    chain.transact(
        "denying the claim", insurer, manager(chain).functions.denyClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def request_info(chain: Chain, insurer: LocalAccount, claim_id: int, reason: ReasonCode) -> Claim:
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
    if account in (policy.patient, claim.submitter):
        return policy
    institution = registry.verified_institution_of(chain, account)
    if institution is not None and institution == claim.submitter:
        return policy
    writer = records.writer_of(chain, claim.claim_record)
    if institution is not None and writer and registry.writer_number(chain, account) == writer:
        return policy
    raise PreconditionFailed(
        f"{account} is neither the submitter of claim {claim.hex_id}, the patient, nor the "
        "provider that wrote its claim record"
    )


def provide_info(
    chain: Chain, store: BlockStore, account: LocalAccount, claim_id: int, evidence: list[bytes]
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
    for record_id in evidence:
        found = records.get(chain, record_id, store)
        if found.patient != policy.patient:
            raise PreconditionFailed(f"evidence {found.hex_id} is another patient's record")
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
            f"claim {claim.hex_id} is {claim.state.label}: only a partial approval or a denial "
            "can be disputed"
        )
    assert claim.decided_at is not None
    closes = claim.decided_at + timedelta(seconds=dispute_window(chain))
    if access.chain_now(chain) >= closes:
        raise PreconditionFailed(
            f"the dispute window of claim {claim.hex_id} closed at {closes:%F %H:%M}Z"
        )
    chain.transact(
        "disputing the claim", account, manager(chain).functions.disputeClaim(claim_id, int(reason))
    )
    return get_claim(chain, claim_id)


def escalate(chain: Chain, account: LocalAccount, claim_id: int) -> Claim:
    """Send a claim its insurer left undecided to a resolver (submitter or patient).

    Possible ``DECISION_PERIOD`` after submission (or after the last answer to a request for
    information), while the claim awaits the insurer; at once, also while information is asked
    for, when the policy's insurer is no longer verified.
    """
    claim = get_claim(chain, claim_id)
    policy = _require_party(chain, account.address, claim)
    insurer = registry.participant(chain, policy.insurer)
    verified = insurer.status is registry.Status.VERIFIED
    waiting = (ClaimState.SUBMITTED,) if verified else (
        ClaimState.SUBMITTED, ClaimState.INFO_REQUESTED
    )
    if claim.state not in waiting:
        raise PreconditionFailed(
            f"claim {claim.hex_id} is {claim.state.label}: only a claim awaiting the insurer's "
            "decision can be escalated (answer a request for information first)"
        )
    since = max(claim.submitted_at, claim.answered_at or claim.submitted_at)
    until = since + DECISION_PERIOD
    if verified and access.chain_now(chain) < until:
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
    chain: Chain, resolver: LocalAccount, claim_id: int, award: Decimal, covered: bool = True
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


def add_resolver(chain: Chain, admin: LocalAccount, resolver: str) -> None:
    """Give an account the resolver role (the ClaimsManager's admin only)."""
    contract = manager(chain)
    chain.transact(
        "adding a resolver",
        admin,
        contract.functions.grantRole(RESOLVER_ROLE, to_checksum_address(resolver)),
    )


def credit_of(chain: Chain, payee: str) -> Decimal:
    """What a payee can withdraw (the decisions of people; automatic settlements are paid at
    once)."""
    value = chain.call(
        "reading the credit", manager(chain).functions.creditOf(to_checksum_address(payee))
    )
    return from_units(chain, int(value))


def withdraw(chain: Chain, account: LocalAccount) -> tuple[Decimal, TxReceipt]:
    """Withdraw everything credited to the account's institution (or to the patient)."""
    if credit_of(chain, account.address) == 0:
        raise PreconditionFailed(
            f"nothing is credited to {account.address} (automatic settlements are paid at once)"
        )
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
        if step.event in ("denied", "information requested", "disputed", "escalated"):
            reason = step.detail
    return fhir.Decision(
        identifier=f"eip155:{chain.chain_id}/{manager(chain).address}/{claim.hex_id}",
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
    facts = claim_facts(body, f"claim {claim.hex_id}")
    decision = decision_of(chain, claim, facts.currency)
    documents = {"ClaimResponse": fhir.claim_response(body, decision)}
    if claim.paid > 0:
        documents["ExplanationOfBenefit"] = fhir.explanation_of_benefit(body, decision)
    return documents


def _start_block(chain: Chain) -> int:
    return deployments.require(chain).contracts["ClaimsManager"].block
