"""Fixtures for the TrialRegistry tests: roles, the registry, participants and factories.

The world (module-scoped, autouse: set up once per module, rolled back by Ape after each test):

* ``sponsor`` a verified ResearchSponsor institution and ``investigator`` its practitioner;
  ``other_sponsor`` another verified ResearchSponsor (with no study of its own);
* ``sites``: ``hospital`` and ``clinic`` verified (the usual study sites), ``doctor`` a
  practitioner of the hospital; ``laboratory`` a verified Laboratory (a valid site that no
  study has added unless a test does); ``insurer`` a verified Insurer (never a valid site);
* ``monitor`` an account with no role, made a study monitor by tests that need one;
* ``stranger`` an account with no role anywhere;
* ``trial_registry`` deployed on the session's ProviderRegistry;
* ``participants``: four pseudonymous study keys made with ``eth_account`` (no role, no ETH:
  they only sign; ``wallet`` funds one when a test needs it to send a transaction itself).

Shared with the other suites, in the contract conftest: the accounts ``sponsor``,
``laboratory`` and ``insurer`` (fresh per module; the world above verifies them),
``funded_account`` and the clock: ``now`` and ``block_time`` (and ``advance_time``).

Factories: ``register_study``, ``consent_request``, ``sign_consent`` (checks the Python
EIP-712 digest against ``consentDigest`` before signing), ``withdrawal_request``,
``sign_withdrawal``, ``enrol`` (sign and relay by the site), ``submit_data``, ``build_batch``
and ``submit_batch`` (positional ``IndexedMerkle`` trees from ``support.indexed_tree``) and
``invite`` (an account an institution invited as practitioner, which has not accepted); see
each docstring.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from ape_test.accounts import TestAccount
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from ..support import ZERO_ADDRESS, Kind, digest, indexed_tree
from .helpers import (
    HOUR,
    READERS_ALL,
    ConsentPurpose,
    Protocol,
    batch_id,
    data_id,
    protocol_hash,
    signable_digest,
    typed_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI, ReceiptAPI
    from eth_account.signers.local import LocalAccount

PARTICIPANTS = 4
VISIT = digest("visit-baseline")


def address_of(account: Any) -> str:
    """The checksummed address of an account, a contract, a local key or a string."""
    return to_checksum_address(getattr(account, "address", account))


# ---------------------------------------------------------------------------- roles


@pytest.fixture(scope="module")
def investigator(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A practitioner of ``sponsor``: acts as the sponsor."""
    return funded_account()


@pytest.fixture(scope="module")
def other_sponsor(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """Another verified ResearchSponsor, sponsor of no study unless a test registers one."""
    return funded_account()


@pytest.fixture(scope="module")
def monitor(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """An account with no role: a study monitor once the sponsor adds it."""
    return funded_account()


@pytest.fixture(scope="module")
def sites(hospital: AccountAPI, clinic: AccountAPI) -> list[AccountAPI]:
    """The usual study sites: the hospital and the clinic."""
    return [hospital, clinic]


@pytest.fixture(scope="module")
def participants() -> list[LocalAccount]:
    """Pseudonymous study keys (one per participant), deterministic, with no ETH and no role."""
    return [
        Account.from_key(keccak(text=f"medledger-trial-participant-{n}"))
        for n in range(PARTICIPANTS)
    ]


@pytest.fixture(scope="module")
def participant(participants: list[LocalAccount]) -> LocalAccount:
    return participants[0]


@pytest.fixture(scope="module")
def wallet(admin: AccountAPI) -> Callable[[LocalAccount], AccountAPI]:
    """``wallet(key)``: the participant's key as an Ape account, funded, to send transactions
    itself (a participant normally never does: the site relays their consent)."""

    indices = itertools.count(10_000)  # only Ape's alias uses it

    def make(key: LocalAccount) -> AccountAPI:
        account = TestAccount(
            index=next(indices), address_str=key.address, private_key=key.key.to_0x_hex()
        )
        admin.transfer(account, 10**18)
        return account

    return make


@pytest.fixture(scope="module")
def invite(
    funded_account: Callable[[], AccountAPI], provider_registry: Any
) -> Callable[[AccountAPI], AccountAPI]:
    """``invite(institution)``: a fresh funded account that ``institution`` invited as its
    practitioner and that has not accepted (so it acts for nobody)."""

    def make(institution: AccountAPI) -> AccountAPI:
        account = funded_account()
        provider_registry.addPractitioner(account, sender=institution)
        assert provider_registry.isInvited(institution, account)
        return account

    return make


# ---------------------------------------------------------------------------- contracts


@pytest.fixture(scope="module")
def trial_registry(project: Any, provider_registry: Any, admin: AccountAPI) -> Any:
    return project.TrialRegistry.deploy(provider_registry, sender=admin)


# ---------------------------------------------------------------------------- world


@pytest.fixture(scope="module")
def world_roles(
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    other_sponsor: AccountAPI,
    laboratory: AccountAPI,
    insurer: AccountAPI,
    monitor: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    verified_institution(Kind.LABORATORY, account=laboratory)
    verified_institution(Kind.INSURER, account=insurer)
    verified_institution(Kind.RESEARCH_SPONSOR, account=sponsor)
    verified_institution(Kind.RESEARCH_SPONSOR, account=other_sponsor)
    add_practitioner(hospital, doctor)
    add_practitioner(sponsor, investigator)


@pytest.fixture(scope="module", autouse=True)
def world(world_roles: None, trial_registry: Any, participants: list[LocalAccount]) -> None:
    """Sets up every module fixture before any test (see the contract conftest on isolation)."""


# ---------------------------------------------------------------------------- factories


@dataclass(frozen=True)
class Study:
    """A study registered by :func:`register_study`."""

    id: int
    receipt: ReceiptAPI
    sponsor: str
    protocol: Protocol
    sites: list[str]
    summary: HexBytes


@pytest.fixture(scope="module")
def register_study(
    trial_registry: Any, sponsor: AccountAPI, sites: list[AccountAPI]
) -> Callable[..., Study]:
    """``register_study(sender=sponsor, sites=[hospital, clinic], protocol=None, summary=None)``.

    Without ``protocol``, a fresh one (``Protocol.of("study-<n>")``); without ``summary``, a
    fresh summary digest. Returns the id the contract reported in ``StudyRegistered``.
    """
    counter = itertools.count(1)

    def register(
        sender: AccountAPI | None = None,
        sites: list[Any] | None = None,
        protocol: Protocol | None = None,
        summary: bytes | None = None,
    ) -> Study:
        n = next(counter)
        chosen = list(default_sites) if sites is None else list(sites)
        protocol = protocol or Protocol.of(f"study-{n}")
        summary = HexBytes(summary if summary is not None else digest(f"summary-{n}"))
        receipt = trial_registry.registerStudy(
            protocol.args, chosen, summary, sender=sender or sponsor
        )
        (log,) = trial_registry.StudyRegistered.from_receipt(receipt)
        return Study(
            int(log.studyId),
            receipt,
            address_of(log.sponsor),
            protocol,
            [address_of(s) for s in chosen],
            summary,
        )

    default_sites = sites
    return register


@pytest.fixture(scope="module")
def consent_request(
    trial_registry: Any, hospital: AccountAPI, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``consent_request(study_id, participant, **fields)``: a consent request for the version
    in force at the hospital, purpose TRIAL_ONLY, both reader bits, no delegate, the
    participant's next nonce and a deadline an hour from now; ``fields`` override any of them
    (accounts may be given for addresses)."""

    def make(study_id: int, participant: Any, **fields: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "studyId": study_id,
            "version": None,
            "protocolHash": None,
            "site": hospital,
            "participant": participant,
            "purpose": ConsentPurpose.TRIAL_ONLY,
            "readers": READERS_ALL,
            "delegate": ZERO_ADDRESS,
            "nonce": None,
            "deadline": now() + HOUR,
        }
        request.update(fields)
        for key in ("site", "participant", "delegate"):
            request[key] = address_of(request[key])
        request["purpose"] = int(request["purpose"])
        if request["version"] is None:
            request["version"] = int(trial_registry.getStudy(study_id).currentVersion)
        if request.get("protocolHash") is None:
            request["protocolHash"] = protocol_hash(trial_registry, study_id, request["version"])
        if request["nonce"] is None:
            request["nonce"] = int(trial_registry.nonces(request["participant"]))
        return request

    return make


@pytest.fixture(scope="module")
def sign_consent(chain: Any, trial_registry: Any) -> Callable[[Any, dict[str, Any]], HexBytes]:
    """``sign_consent(key, request)``: the key's EIP-712 signature over a consent request.

    Asserts first that the digest computed by ``eth_account`` equals ``consentDigest``.
    """

    def sign(key: Any, request: dict[str, Any]) -> HexBytes:
        signable = typed_message(chain.chain_id, trial_registry.address, "ConsentRequest", request)
        assert HexBytes(trial_registry.consentDigest(request)) == signable_digest(signable)
        return HexBytes(Account.sign_message(signable, _private_key(key)).signature)

    return sign


@pytest.fixture(scope="module")
def withdrawal_request(
    trial_registry: Any, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``withdrawal_request(study_id, participant, **fields)``: next nonce, deadline in an hour."""

    def make(study_id: int, participant: Any, **fields: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "studyId": study_id,
            "participant": address_of(participant),
            "nonce": None,
            "deadline": now() + HOUR,
        }
        request.update(fields)
        request["participant"] = address_of(request["participant"])
        if request["nonce"] is None:
            request["nonce"] = int(trial_registry.nonces(request["participant"]))
        return request

    return make


@pytest.fixture(scope="module")
def sign_withdrawal(chain: Any, trial_registry: Any) -> Callable[[Any, dict[str, Any]], HexBytes]:
    """``sign_withdrawal(key, request)``; asserts the digest equals ``withdrawalDigest`` first."""

    def sign(key: Any, request: dict[str, Any]) -> HexBytes:
        signable = typed_message(
            chain.chain_id, trial_registry.address, "WithdrawalRequest", request
        )
        assert HexBytes(trial_registry.withdrawalDigest(request)) == signable_digest(signable)
        return HexBytes(Account.sign_message(signable, _private_key(key)).signature)

    return sign


@dataclass(frozen=True)
class Consented:
    """A consent recorded by :func:`enrol`."""

    receipt: ReceiptAPI
    request: dict[str, Any]
    signature: HexBytes


@pytest.fixture(scope="module")
def enrol(
    trial_registry: Any,
    hospital: AccountAPI,
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[[Any, dict[str, Any]], HexBytes],
) -> Callable[..., Consented]:
    """``enrol(study_id, participant, sender=None, **fields)``: the participant signs a consent
    request (see ``consent_request``) and the site relays it; ``sender`` defaults to the named
    site. Also records a re-consent when the participant is already enrolled."""

    def consent(
        study_id: int, participant: LocalAccount, sender: Any = None, **fields: Any
    ) -> Consented:
        request = consent_request(study_id, participant, **fields)
        signature = sign_consent(participant, request)
        relayer = sender or fields.get("site", hospital)
        if not hasattr(relayer, "private_key"):
            raise TypeError("pass sender= (or the site as an account) to relay the consent")
        receipt = trial_registry.consent(request, signature, sender=relayer)
        return Consented(receipt, request, signature)

    return consent


@dataclass(frozen=True)
class Submitted:
    """A data body anchored by :func:`submit_data`."""

    id: HexBytes
    receipt: ReceiptAPI
    visit: HexBytes
    version: int
    cid_digest: HexBytes
    commitment: HexBytes


@pytest.fixture(scope="module")
def submit_data(chain: Any, trial_registry: Any, hospital: AccountAPI) -> Callable[..., Submitted]:
    """``submit_data(study_id, participant, sender=hospital, visit=VISIT, cid=None,
    commitment=None)``: anchors one body with fresh ``trial-cid-<n>`` values and checks that
    the returned id is the Python derivation under the version in force."""
    counter = itertools.count()

    def submit(
        study_id: int,
        participant: Any,
        sender: AccountAPI | None = None,
        visit: bytes = VISIT,
        cid: bytes | None = None,
        commitment: bytes | None = None,
    ) -> Submitted:
        n = next(counter)
        cid = HexBytes(cid if cid is not None else digest(f"trial-cid-{n}"))
        salted = HexBytes(commitment if commitment is not None else digest(f"trial-salt-{n}"))
        version = int(trial_registry.getStudy(study_id).currentVersion)
        args = (study_id, address_of(participant), visit, cid, salted)
        receipt = trial_registry.submitData(*args, sender=sender or hospital)
        expected = data_id(
            chain.chain_id, trial_registry.address, study_id, address_of(participant), visit,
            version, cid, salted,
        )  # fmt: skip
        (log,) = trial_registry.DataSubmitted.from_receipt(receipt)
        assert HexBytes(log.dataId) == expected
        return Submitted(expected, receipt, HexBytes(visit), version, cid, salted)

    return submit


@dataclass(frozen=True)
class Body:
    """One body of a batch: its fields, id, position in the tree and Merkle proof."""

    cid_digest: HexBytes
    commitment: HexBytes
    id: HexBytes
    index: int
    proof: list[HexBytes]


@dataclass(frozen=True)
class SubmittedBatch:
    """A batch anchored by :func:`submit_batch`."""

    id: HexBytes
    receipt: ReceiptAPI
    visit: HexBytes
    version: int
    root: HexBytes
    manifest: HexBytes
    bodies: list[Body]


@pytest.fixture(scope="module")
def build_batch(chain: Any, trial_registry: Any) -> Callable[..., tuple[HexBytes, list[Body]]]:
    """``build_batch(study_id, participant, size, version, visit=VISIT)``: fresh bodies, their
    ids under ``version`` and the positional ``IndexedMerkle`` tree over them (body ``n`` at
    position ``n``): ``(root, bodies)``."""
    counter = itertools.count()

    def build(
        study_id: int, participant: Any, size: int, version: int, visit: bytes = VISIT
    ) -> tuple[HexBytes, list[Body]]:
        fields = []
        for _ in range(size):
            n = next(counter)
            fields.append((digest(f"batch-body-cid-{n}"), digest(f"batch-body-salt-{n}")))
        registry, holder = trial_registry.address, address_of(participant)
        ids = [
            data_id(chain.chain_id, registry, study_id, holder, visit, version, c, m)
            for c, m in fields
        ]
        root, proofs = indexed_tree(ids)
        bodies = [
            Body(c, m, i, n, proofs[n])
            for n, ((c, m), i) in enumerate(zip(fields, ids, strict=True))
        ]
        return root, bodies

    return build


@pytest.fixture(scope="module")
def submit_batch(
    chain: Any,
    trial_registry: Any,
    hospital: AccountAPI,
    build_batch: Callable[..., tuple[HexBytes, list[Body]]],
) -> Callable[..., SubmittedBatch]:
    """``submit_batch(study_id, participant, size=3, sender=hospital, visit=VISIT, count=None)``:
    builds a batch of ``size`` bodies under the version in force and anchors its root
    (``count`` overrides the declared count: a site may declare fewer bodies than its tree
    holds, or more)."""

    def submit(
        study_id: int,
        participant: Any,
        size: int = 3,
        sender: AccountAPI | None = None,
        visit: bytes = VISIT,
        count: int | None = None,
    ) -> SubmittedBatch:
        version = int(trial_registry.getStudy(study_id).currentVersion)
        root, bodies = build_batch(study_id, participant, size, version, visit)
        manifest = digest(f"manifest-{root.to_0x_hex()}")
        declared = size if count is None else count
        receipt = trial_registry.submitDataBatch(
            study_id, address_of(participant), visit, root, manifest, declared,
            sender=sender or hospital,
        )  # fmt: skip
        expected = batch_id(
            chain.chain_id, trial_registry.address, study_id, address_of(participant), visit, root
        )
        (log,) = trial_registry.DataBatchSubmitted.from_receipt(receipt)
        assert HexBytes(log.batchId) == expected
        return SubmittedBatch(expected, receipt, HexBytes(visit), version, root, manifest, bodies)

    return submit


# ---------------------------------------------------------------------------- private


def _private_key(key: Any) -> Any:
    return key.key if hasattr(key, "key") else key.private_key  # eth_account or Ape
