"""Submitting a claim: a FHIR ``Claim`` anchored as the care provider's Financial record (or
an anchored claim record), checked against the policy, its terms, the duplicate keys and the
patient's consent before anything is written, then submitted.

A record backs one claim of its provider (under the record's id) and one of the patient (under
:func:`patient_claim_id`), and at most one of them is paid. The contract refuses the same care
billed twice however it is re-encrypted: the care is keyed as ``keccak256(abi.encode("care",
patient, provider, serviceKey, codeHashes))`` (not the amount: a corrected invoice of the same
care is a duplicate) and the identifier as ``keccak256(abi.encode("identifier", provider,
identifierKey))`` (``provider`` being the claim record's writer's directory number);
:func:`submit_claim` reads ``claimOfKey`` of both before anything is written and refuses a
duplicate naming the earlier claim. A patient's claim takes its keys only once approved, so it
never blocks the provider's claim of the same record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from medledger import consent, identity, providers, records
from medledger.categories import Category
from medledger.chain import events
from medledger.claims.contract import CONTRACT, manager
from medledger.claims.evidence import (
    grant_payment,
    require_consent,
    require_financial_consent,
    require_patients,
)
from medledger.claims.facts import ClaimFacts, ClaimKeys, claim_facts, claim_keys
from medledger.claims.history import Claim, get_claim, read_claim
from medledger.claims.money import to_units
from medledger.claims.policy import Policy, get_policy, read_terms
from medledger.claims.terms import NO_IDENTIFIER, Terms
from medledger.errors import (
    ClaimNotFound,
    ConfigurationError,
    DuplicateClaim,
    PreconditionFailed,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore


def submit_claim(
    chain: Chain,
    store: BlockStore,
    submitter: Signer,
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

    At least one ``evidence`` record (the care the claim bills) is required; a claim without
    evidence is refused before anything is written.

    The insurer must already hold a live ``payment`` grant covering the claim record (a
    ``financial`` category grant, or ``all``) and each evidence record; a patient who submits
    gets record grants made for them.
    """
    if (claim_body is None) == (record is None):
        raise ConfigurationError(
            "claim", "give either a FHIR Claim to anchor or an anchored claim record, not both"
        )
    early = claim_facts(claim_body, source) if claim_body is not None else None  # input first
    policy = get_policy(chain, policy_id)
    now = chain.now()
    if not policy.valid_from <= now <= policy.valid_until:
        raise PreconditionFailed(
            f"policy {policy_id} covers {policy.valid_from:%F} to {policy.valid_until:%F}, "
            f"not {now:%F %H:%M}"
        )
    is_patient = submitter.address == providers.controller_of(chain, policy.patient)
    institution = None if is_patient else _care_provider(chain, submitter.address, policy_id)
    if claim_body is not None and not is_patient:
        earlier = submitted_before(chain, store, submitter, policy, claim_body)
        if earlier is not None:  # a re-run: this very Claim is on chain, nothing is written
            return earlier
    if record is not None:
        record_id = bytes(record)
        provider = _check_claim_record(chain, store, record_id, policy, institution)
        body = consent.read(chain, store, submitter, record_id, log=False)
    elif is_patient:
        raise PreconditionFailed(
            "a claim record is written by the care provider, not the patient: the provider "
            "anchors the Claim (medledger write --category financial) and the patient submits "
            "that record (medledger claim submit --record ID)"
        )
    else:
        assert institution is not None and claim_body is not None
        providers.require_writer(chain, submitter.address, policy.patient)
        provider = providers.participant(chain, institution).number
        body = claim_body
    facts = early or claim_facts(body, source)
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
    if policy.attestation_required and not identity.is_attested(chain, policy.patient, provider):
        raise PreconditionFailed(
            f"policy {policy_id} requires an attested patient, and the care provider (directory "
            f"number {provider}) does not attest {policy.patient} now: the provider attests the "
            "patient first (medledger patient attest --patient ADDRESS)"
        )
    evidence_ids = [bytes(e) for e in evidence]
    if not evidence_ids:
        raise PreconditionFailed(
            "a claim needs evidence: name at least one record of the care it bills (the "
            "visit, procedure or report) with --evidence RECORD_ID"
        )
    require_patients(chain, store, policy, evidence_ids)
    if not is_patient:
        # Checked before anything is written: without consent the claim record would be
        # anchored for nothing.
        require_consent(chain, policy, evidence_ids)
        if record is None:
            require_financial_consent(chain, policy)
        else:
            require_consent(chain, policy, [bytes(record)])
    if record is None:
        (anchored,) = records.anchor(
            chain,
            store,
            submitter,
            policy.patient,
            [records.Draft(body, Category.FINANCIAL)],
            readers=consent.readers_for(chain),
        )
        claim_record = anchored.id
    else:
        claim_record = bytes(record)
    everything = [claim_record, *evidence_ids]
    if is_patient:
        grant_payment(chain, store, submitter, policy, everything)
    require_consent(chain, policy, everything)
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
    contract = manager(chain)
    receipt = chain.transact(
        "submitting the claim", submitter, contract.functions.submitClaim(args)
    )
    (event,) = events.from_receipt(receipt, CONTRACT, "ClaimSubmitted", contract.address)
    return get_claim(chain, int(event["claimId"]))


def submitted_before(
    chain: Chain, store: BlockStore, submitter: Signer, policy: Policy, claim_body: bytes
) -> Claim | None:
    """The claim this very FHIR Claim already made when ``submitter`` submitted it before
    (its body anchored once, as a record, and that record claimed), or None."""
    prior = records.already_anchored(chain, store, submitter, policy.patient, claim_body)
    if prior is None:
        return None
    claim_id = _existing_claim(chain, int.from_bytes(prior.id, "big"))
    return get_claim(chain, claim_id) if claim_id else None


def _care_provider(chain: Chain, account: str, policy_id: int) -> str:
    """The verified care institution ``account`` is or works for (or a one-line refusal)."""
    institution = providers.verified_institution_of(chain, account)
    if institution is None or not providers.participant(chain, institution).is_care_provider:
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
    if institution is not None and providers.participant(chain, institution).number != writer:
        raise PreconditionFailed(
            f"record {found.hex_id} was written by another provider: {institution} claims only "
            "for records it wrote"
        )
    own = patient_claim_id(record_id) if institution is None else int.from_bytes(record_id, "big")
    earlier = _existing_claim(chain, own)
    if not earlier and institution is not None:  # the patient's approved claim took the record
        record_key = _key("record", ["bytes32"], [record_id])
        earlier = int(
            chain.call("reading duplicates", manager(chain).functions.claimOfKey(record_key))
        )
    if earlier:
        raise DuplicateClaim(f"record {found.hex_id}", earlier)
    return writer


def patient_claim_id(record_id: bytes) -> int:
    """The id of the patient's claim on a claim record (``patientClaimIdOf``; a provider's
    claim on it has the record's own id)."""
    return int.from_bytes(_key("patient", ["bytes32"], [record_id]), "big")


def _key(tag: str, types: list[str], values: list[object]) -> bytes:
    """``keccak256(abi.encode(tag, ...values))``: the contract's duplicate keys and ids."""
    return keccak(abi_encode(["string", *types], [tag, *values]))


def _existing_claim(chain: Chain, claim_id: int) -> int:
    """``claim_id`` when that claim exists, else 0."""
    try:
        read_claim(chain, claim_id)
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
