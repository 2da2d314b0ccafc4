"""Client of the ClaimsManager: insurance policies, their pools, and the claims made against them.

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

Amounts are :class:`~decimal.Decimal` in the token's unit (the decimals the token reports: the
token is chosen at deploy time, 6 or 18); the chain holds integers of the smallest unit. An
automatic settlement pays the payee at once; the decisions of people (approval, resolution)
credit it, and it withdraws (``medledger claim withdraw-payment``).

Modules: :mod:`~medledger.claims.contract` (the contract handle, states, reason codes, claim
ids), :mod:`~medledger.claims.money` (units, balances, credit, withdrawal),
:mod:`~medledger.claims.terms` (codes, the sealed terms document, salted keys),
:mod:`~medledger.claims.policy` (issue, read, list, fund, reclaim),
:mod:`~medledger.claims.facts` (what a FHIR Claim says, its keys),
:mod:`~medledger.claims.evidence` (the patient's records, the insurer's payment consent),
:mod:`~medledger.claims.submission` (submit), :mod:`~medledger.claims.history` (a claim, its
steps, listings), :mod:`~medledger.claims.decisions` (review, decide, answer, dispute,
escalate, resolve), :mod:`~medledger.claims.responses` (ClaimResponse and EOB),
:mod:`~medledger.claims.fhir_coverage` (policies as FHIR Coverage) and
:mod:`~medledger.claims.fhir_claims` (a FHIR Claim submitted, its responses as the FHIR server
serves them).
"""

from medledger.claims.contract import (
    BPS,
    DECISION_PERIOD,
    MAX_INFO_REQUESTS,
    RESOLVER_ROLE,
    ClaimState,
    ReasonCode,
    ReviewReason,
    claim_hex,
    describe_reason,
    dispute_window,
    manager,
    parse_claim_id,
)
from medledger.claims.decisions import (
    Evidence,
    add_resolver,
    approve,
    deny,
    dispute,
    escalate,
    provide_info,
    request_info,
    resolve,
    review,
)
from medledger.claims.facts import ClaimFacts, ClaimKeys, canonical_time, claim_facts, claim_keys
from medledger.claims.fhir_claims import (
    claim_views,
    claims_of_patient,
    fhir_claim_id,
    parse_fhir_claim_id,
    submit_fhir_claim,
)
from medledger.claims.fhir_coverage import POLICY_SYSTEM, coverage_resource, coverages, policy_of
from medledger.claims.history import (
    Claim,
    ClaimEvent,
    allowed_amount,
    claim_history,
    claims,
    get_claim,
)
from medledger.claims.money import (
    CENT,
    balance_of,
    credit_of,
    decimals,
    from_units,
    mint,
    to_units,
    token_contract,
    withdraw,
    withdrawable,
)
from medledger.claims.policy import (
    Policy,
    fund_policy,
    get_policy,
    issue_policy,
    last_decision_at,
    policies,
    read_terms,
    reclaim_pool,
)
from medledger.claims.responses import decision_of, fhir_documents
from medledger.claims.submission import patient_claim_id, submit_claim, submitted_before
from medledger.claims.terms import (
    IDENTIFIER_TAG,
    NO_IDENTIFIER,
    SERVICE_TAG,
    TERMS_KIND,
    Code,
    Terms,
)

__all__ = [
    "BPS",
    "CENT",
    "DECISION_PERIOD",
    "IDENTIFIER_TAG",
    "MAX_INFO_REQUESTS",
    "NO_IDENTIFIER",
    "POLICY_SYSTEM",
    "RESOLVER_ROLE",
    "SERVICE_TAG",
    "TERMS_KIND",
    "Claim",
    "ClaimEvent",
    "ClaimFacts",
    "ClaimKeys",
    "ClaimState",
    "Code",
    "Evidence",
    "Policy",
    "ReasonCode",
    "ReviewReason",
    "Terms",
    "add_resolver",
    "allowed_amount",
    "approve",
    "balance_of",
    "canonical_time",
    "claim_facts",
    "claim_hex",
    "claim_history",
    "claim_keys",
    "claim_views",
    "claims",
    "claims_of_patient",
    "coverage_resource",
    "coverages",
    "credit_of",
    "decimals",
    "decision_of",
    "deny",
    "describe_reason",
    "dispute",
    "dispute_window",
    "escalate",
    "fhir_claim_id",
    "fhir_documents",
    "from_units",
    "fund_policy",
    "get_claim",
    "get_policy",
    "issue_policy",
    "last_decision_at",
    "manager",
    "mint",
    "parse_claim_id",
    "parse_fhir_claim_id",
    "patient_claim_id",
    "policies",
    "policy_of",
    "provide_info",
    "read_terms",
    "reclaim_pool",
    "request_info",
    "resolve",
    "review",
    "submit_claim",
    "submit_fhir_claim",
    "submitted_before",
    "to_units",
    "token_contract",
    "withdraw",
    "withdrawable",
]
