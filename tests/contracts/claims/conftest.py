"""Fixtures for the ClaimsManager tests: roles, the token, the manager and factories.

The world (module-scoped, autouse: set up once per module, rolled back by Ape after each test):

* ``patient`` and ``other_patient`` registered;
* ``hospital`` and ``clinic`` verified (care providers), ``laboratory`` a verified laboratory,
  ``doctor`` a practitioner of the clinic (a claim she submits is the clinic's);
  ``other_clinic`` another verified clinic that never treated anyone here, with
  ``other_doctor`` its practitioner;
* ``insurer`` a verified Insurer with ``adjuster`` its practitioner, ``other_insurer`` another
  verified Insurer, ``sponsor`` a verified research sponsor (an institution that is neither);
* ``resolver`` holds ``RESOLVER_ROLE``; ``admin`` deployed everything and owns the token;
* ``token`` the devnet stablecoin (mUSD, six decimals); ``claims_manager`` deployed with the
  session's ProviderRegistry and RecordRegistry, this module's ConsentManager, the token and
  a seven-day dispute window.

Factories: ``issue_policy``, ``fund``, ``consent_payment``, ``claim_evidence`` and
``submit_claim``; readers ``policy_of`` and ``claim_of`` (the views as dicts) and
``number_of`` (an institution's directory number). See each one's docstring. Amounts are token
units (``USD`` is one mUSD). Money rules, enums and codes written from the NatSpec are in
``model.py``.

Shared with the other suites, in the contract conftest: the accounts ``insurer``,
``laboratory`` and ``sponsor`` (fresh per module; the world above verifies them),
``funded_account`` and the clock: ``now``, ``block_time`` and ``next_tx_at``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from eth_utils import keccak
from hexbytes import HexBytes

from ..support import Category, Kind, digest
from .model import COVERED, DAY, DISPUTE_WINDOW, USD, CodeList, PolicyModel

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI

    from ..conftest import Anchored

RESOLVER_ROLE = HexBytes(keccak(text="RESOLVER_ROLE"))
ENVELOPE = digest("envelope")
TERMS_DIGEST = digest("terms-document")
PAYMENT = 2  # IConsentManager.Purpose.Payment
RECORD_SCOPE = 0  # IConsentManager.ScopeKind.Record


# ---------------------------------------------------------------------------- roles


@pytest.fixture(scope="module")
def adjuster(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A practitioner of ``insurer``: acts as the insurer."""
    return funded_account()


@pytest.fixture(scope="module")
def other_insurer(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """Another verified Insurer, with no policy of its own."""
    return funded_account()


@pytest.fixture(scope="module")
def other_clinic(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A verified clinic with no care relationship with anyone: it can write no record of the
    patient, so it has no claim of its own to make."""
    return funded_account()


@pytest.fixture(scope="module")
def other_doctor(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A practitioner of ``other_clinic``."""
    return funded_account()


@pytest.fixture(scope="module")
def resolver(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """Holder of ``RESOLVER_ROLE``."""
    return funded_account()


# ---------------------------------------------------------------------------- contracts


@pytest.fixture(scope="module")
def consent_manager(
    project: Any, provider_registry: Any, record_registry: Any, admin: AccountAPI
) -> Any:
    return project.ConsentManager.deploy(provider_registry, record_registry, sender=admin)


@pytest.fixture(scope="module")
def token(project: Any, admin: AccountAPI) -> Any:
    """The devnet stablecoin, owned (and minted) by ``admin``."""
    return project.DevStablecoin.deploy(admin, sender=admin)


@pytest.fixture(scope="module")
def deploy_claims_manager(
    project: Any,
    provider_registry: Any,
    record_registry: Any,
    consent_manager: Any,
    admin: AccountAPI,
) -> Callable[..., Any]:
    """``deploy_claims_manager(token, window=DISPUTE_WINDOW)``: a ClaimsManager on the world's
    registries."""


    def deploy(token: Any, window: int = DISPUTE_WINDOW) -> Any:
        return project.ClaimsManager.deploy(
            provider_registry, record_registry, consent_manager, token, window, admin, sender=admin
        )

    return deploy


@pytest.fixture(scope="module")
def claims_manager(deploy_claims_manager: Callable[..., Any], token: Any) -> Any:
    return deploy_claims_manager(token)


# ---------------------------------------------------------------------------- world


@pytest.fixture(scope="module")
def world_roles(
    provider_registry: Any,
    claims_manager: Any,
    admin: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    insurer: AccountAPI,
    adjuster: AccountAPI,
    other_insurer: AccountAPI,
    laboratory: AccountAPI,
    other_clinic: AccountAPI,
    other_doctor: AccountAPI,
    sponsor: AccountAPI,
    resolver: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    verified_institution(Kind.LABORATORY, account=laboratory)
    verified_institution(Kind.CLINIC, account=other_clinic)
    verified_institution(Kind.INSURER, account=insurer)
    verified_institution(Kind.INSURER, account=other_insurer)
    verified_institution(Kind.RESEARCH_SPONSOR, account=sponsor)
    add_practitioner(clinic, doctor)
    add_practitioner(other_clinic, other_doctor)
    add_practitioner(insurer, adjuster)
    claims_manager.grantRole(RESOLVER_ROLE, resolver, sender=admin)


@pytest.fixture(scope="module", autouse=True)
def world(world_roles: None, token: Any, consent_manager: Any, claims_manager: Any) -> None:
    """Sets up every module fixture before any test (see the contract conftest on isolation)."""


# ---------------------------------------------------------------------------- factories


@pytest.fixture(scope="module")
def number_of(provider_registry: Any) -> Callable[[Any], int]:
    """``number_of(account)``: the directory number of an institution (a record's ``writer``,
    the ``provider`` of the duplicate keys); 0 for anyone else."""
    return lambda account: int(provider_registry.participant(account).number)


@dataclass(frozen=True)
class IssuedPolicy:
    """A policy issued by :func:`issue_policy`, with the model of what it should hold."""

    id: int
    receipt: ReceiptAPI
    terms: dict[str, Any]
    model: PolicyModel


@pytest.fixture(scope="module")
def issue_policy(
    claims_manager: Any, insurer: AccountAPI, patient: AccountAPI, now: Callable[[], int]
) -> Callable[..., IssuedPolicy]:
    """``issue_policy(sender=insurer, **terms)``: issues a policy; unspecified terms are

    ``patient``, cover from a day ago for 365 days, 80 % coverage, a 100 mUSD deductible, a
    5,000 mUSD annual limit, automatic settlement up to 500 mUSD, the ``COVERED`` code list.
    """

    def issue(sender: AccountAPI | None = None, **overrides: Any) -> IssuedPolicy:
        start = now() - DAY
        terms: dict[str, Any] = {
            "patient": patient.address,
            "validFrom": start,
            "validUntil": start + 365 * DAY,
            "coverageBps": 8_000,
            "deductible": 100 * USD,
            "annualLimit": 5_000 * USD,
            "autoSettleLimit": 500 * USD,
            "codesRoot": COVERED.root,
            "termsDigest": TERMS_DIGEST,
        }
        terms.update(overrides)
        terms["patient"] = getattr(terms["patient"], "address", terms["patient"])
        receipt = claims_manager.issuePolicy(terms, sender=sender or insurer)
        (event,) = claims_manager.PolicyIssued.from_receipt(receipt)
        model = PolicyModel(
            insurer=event.insurer,
            patient=terms["patient"],
            valid_from=terms["validFrom"],
            valid_until=terms["validUntil"],
            coverage_bps=terms["coverageBps"],
            deductible=terms["deductible"],
            annual_limit=terms["annualLimit"],
            auto_settle_limit=terms["autoSettleLimit"],
            codes_root=HexBytes(terms["codesRoot"]),
        )
        return IssuedPolicy(int(event.policyId), receipt, terms, model)

    return issue


@pytest.fixture(scope="module")
def fund(
    claims_manager: Any, token: Any, admin: AccountAPI, insurer: AccountAPI
) -> Callable[..., ReceiptAPI]:
    """``fund(policy_id, amount, funder=insurer)``: mints ``amount`` to the funder, approves
    the manager and funds the policy. Returns the ``fundPolicy`` receipt."""

    def fund_policy(policy_id: int, amount: int, funder: AccountAPI | None = None) -> ReceiptAPI:
        funder = funder or insurer
        token.mint(funder, amount, sender=admin)
        token.approve(claims_manager, amount, sender=funder)
        return claims_manager.fundPolicy(policy_id, amount, sender=funder)

    return fund_policy


@pytest.fixture(scope="module")
def consent_payment(
    consent_manager: Any, insurer: AccountAPI, patient: AccountAPI, now: Callable[[], int]
) -> Callable[..., ReceiptAPI]:
    """``consent_payment(record_id, grantee=insurer, patient=patient, purpose=PAYMENT)``: the
    patient grants the grantee access to one record for payment, for 90 days."""

    def grant(
        record_id: bytes,
        grantee: AccountAPI | None = None,
        patient: AccountAPI = patient,
        purpose: int = PAYMENT,
    ) -> ReceiptAPI:
        return consent_manager.grant(
            patient,
            grantee or insurer,
            RECORD_SCOPE,
            record_id,
            purpose,
            now() + 90 * DAY,
            ENVELOPE,
            sender=patient,
        )

    return grant


@dataclass(frozen=True)
class Evidence:
    """The records of a claim: the FHIR Claim's record and further evidence records."""

    claim_record: HexBytes
    evidence: list[HexBytes]

    @property
    def all(self) -> list[HexBytes]:
        return [self.claim_record, *self.evidence]


@pytest.fixture(scope="module")
def claim_evidence(
    clinic: AccountAPI,
    patient: AccountAPI,
    create_record: Callable[..., Anchored],
    consent_payment: Callable[..., ReceiptAPI],
) -> Callable[..., Evidence]:
    """``claim_evidence(evidence=1, issuer=clinic, patient=patient, consent=True)``: anchors a
    FINANCIAL claim record and ``evidence`` LAB records of the patient, and (``consent``) grants
    the insurer payment access to each."""

    def make(
        evidence: int = 1,
        issuer: AccountAPI = clinic,
        patient: AccountAPI = patient,
        consent: bool = True,
    ) -> Evidence:
        claim_record = create_record(issuer, patient, category=Category.FINANCIAL).id
        others = [create_record(issuer, patient, category=Category.LAB).id for _ in range(evidence)]
        made = Evidence(claim_record, others)
        if consent:
            for record_id in made.all:
                consent_payment(record_id, patient=patient)
        return made

    return make


@dataclass(frozen=True)
class SubmittedClaim:
    """A claim submitted by :func:`submit_claim`."""

    id: int
    receipt: ReceiptAPI
    submission: dict[str, Any]
    records: Evidence = field(repr=False)


@pytest.fixture(scope="module")
def submit_claim(
    claims_manager: Any, clinic: AccountAPI, claim_evidence: Callable[..., Evidence]
) -> Callable[..., SubmittedClaim]:
    """``submit_claim(policy_id, billed, *, sender=clinic, codes=("99213",), prove=True, ...)``.

    Anchors fresh, consented records (``claim_evidence(evidence)``) unless ``records`` is given,
    hashes ``codes`` (from ``COVERED``, or raw 32-byte hashes; sent in ascending order of hash,
    as the contract requires, unless ``sort`` is false), proves them against ``code_list`` when
    ``prove`` (``proofs`` overrides the proofs), and submits. ``service`` and ``identifier``
    label the salted service and identifier keys: fresh ones per call unless given
    (``identifier=None`` sends a zero identifier key). ``overrides`` replaces fields of the
    submission as sent (for values the other arguments cannot make, such as a zero service
    key).
    """
    counter = itertools.count()

    def submit(
        policy_id: int,
        billed: int,
        *,
        sender: AccountAPI | None = None,
        codes: tuple[str | bytes, ...] = ("99213",),
        prove: bool = True,
        proofs: list[list[bytes]] | None = None,
        code_list: CodeList = COVERED,
        evidence: int = 1,
        records: Evidence | None = None,
        pay_patient: bool = False,
        service: str | None = None,
        identifier: str | None = "",
        sort: bool = True,
        overrides: dict[str, Any] | None = None,
    ) -> SubmittedClaim:
        n = next(counter)
        records = records or claim_evidence(evidence)
        hashes = [code_list.hashes[c] if isinstance(c, str) else HexBytes(c) for c in codes]
        if sort:
            hashes.sort()
        if proofs is None:
            proofs = [code_list.proofs.get(bytes(h), []) for h in hashes] if prove else []
        submission = {
            "policyId": policy_id,
            "billed": billed,
            "payPatient": pay_patient,
            "claimRecord": records.claim_record,
            "evidence": records.evidence,
            "codeHashes": hashes,
            "codeProofs": proofs,
            "serviceKey": digest(service if service is not None else f"service-{n}"),
            "identifierKey": (
                b"\0" * 32 if identifier is None else digest(identifier or f"identifier-{n}")
            ),
        }
        submission.update(overrides or {})
        receipt = claims_manager.submitClaim(submission, sender=sender or clinic)
        (event,) = claims_manager.ClaimSubmitted.from_receipt(receipt)
        return SubmittedClaim(int(event.claimId), receipt, submission, records)

    return submit


@pytest.fixture(scope="module")
def policy_of(claims_manager: Any) -> Callable[[int], dict[str, Any]]:
    """``policy_of(id)``: ``getPolicy`` as a dict of its fields."""

    def read(policy_id: int) -> dict[str, Any]:
        return _normalised(dict(claims_manager.getPolicy(policy_id).items()))

    return read


@pytest.fixture(scope="module")
def claim_of(claims_manager: Any) -> Callable[[int], dict[str, Any]]:
    """``claim_of(id)``: ``getClaim`` as a dict of its fields."""

    def read(claim_id: int) -> dict[str, Any]:
        return _normalised(dict(claims_manager.getClaim(claim_id).items()))

    return read


def _normalised(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: HexBytes(v) if isinstance(v, bytes) else int(v) if isinstance(v, int) else v
        for k, v in fields.items()
    }
