"""Fixtures for the contract suite: roles, deployed registries and factories.

Run on both networks::

    ape test tests/contracts --network ethereum:local:foundry   # Anvil (needs `anvil` on PATH)
    ape test tests/contracts --network ethereum:local:test      # eth-tester, in process
    ape test tests/contracts -m networks --network ethereum:local:test   # what `make test` runs
    ape test tests/contracts/gas_report.py --network ...        # the gas table

Roles are the ten test accounts (``admin``, three ``registrars``, ``hospital``, ``clinic``,
``patient``, ``other_patient``, ``doctor``, ``stranger``), and for the suites of the contracts
built on the registries (claims, trials) ``insurer``, ``laboratory`` and ``sponsor``: fresh
accounts per module (``funded_account``) that the module's world verifies. Factories
(``register_patient``, ``apply_institution``, ``approve``, ``suspend``,
``verified_institution``, ``add_practitioner``, ``authorize_care``, ``create_record``,
``anchor_batch``) send the transactions; the clock is ``now``, ``block_time``,
``advance_time`` and ``next_tx_at``; assertion helpers and enums live in ``support.py``.

Isolation: Ape takes a chain snapshot around every fixture scope and every test, so the
session-scoped deployments below are paid once and each test starts from them. Factories hold
no chain state; fixtures that change the chain are function-scoped, or module-scoped and
autouse for a whole module, so that no test sees state it did not ask for. Hypothesis tests,
which run many examples inside one test, take their own snapshots with :func:`isolated`. The
two networks differ in one way that matters here: see :func:`advance_time`.

Networks: ``make test`` runs the whole suite on Anvil and, on eth-tester, only the tests marked
``networks``: those whose outcome depends on what differs between the two, namely when the
next transaction runs after the head (every test that moves the clock, marked here by
:func:`pytest_collection_modifyitems`, and the tests of an expiry at the head's second, marked
in their modules) and how revert data reaches Python (``test_support.py``, the empty reverts
and the tests that read reverts through bare JSON-RPC, ``call_reverts``, marked in their
modules). Gas figures agree between the networks (to a dozen gas where calldata differs), so a
gas test runs on eth-tester only when it moves the clock.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hexbytes import HexBytes

from .support import (
    MAX_UINT40,
    NO_RECORD,
    THRESHOLD,
    Category,
    Kind,
    digest,
    indexed_tree,
    key_proof,
    new_key,
    record_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ape.api import AccountAPI, ReceiptAPI
    from ape.contracts import ContractInstance
    from ape.managers.chain import ChainManager


# ---------------------------------------------------------------------------- roles


@pytest.fixture(scope="session")
def admin(accounts: Any) -> AccountAPI:
    """Holder of DEFAULT_ADMIN_ROLE: manages registrars and the threshold."""
    return accounts[0]


@pytest.fixture(scope="session")
def registrars(accounts: Any) -> list[AccountAPI]:
    """The three registrars; two of them verify an institution."""
    return [accounts[1], accounts[2], accounts[3]]


@pytest.fixture(scope="session")
def hospital(accounts: Any) -> AccountAPI:
    return accounts[4]


@pytest.fixture(scope="session")
def clinic(accounts: Any) -> AccountAPI:
    return accounts[5]


@pytest.fixture(scope="session")
def patient(accounts: Any) -> AccountAPI:
    return accounts[6]


@pytest.fixture(scope="session")
def other_patient(accounts: Any) -> AccountAPI:
    return accounts[7]


@pytest.fixture(scope="session")
def doctor(accounts: Any) -> AccountAPI:
    return accounts[8]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> AccountAPI:
    """An account with no role anywhere."""
    return accounts[9]


@pytest.fixture(scope="module")
def funded_account(accounts: Any, admin: AccountAPI) -> Callable[[], AccountAPI]:
    """``funded_account()``: a new test account with no role, funded by ``admin`` (100 ETH)."""

    def make() -> AccountAPI:
        account = accounts.generate_test_account()
        admin.transfer(account, 10**20)
        return account

    return make


# Institutions beyond the ten accounts, for the suites of the contracts built on the registries
# (claims, trials): fresh accounts, one per module, that the module's world verifies.


@pytest.fixture(scope="module")
def insurer(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """An Insurer once the module's world verifies it (an institution that is never a study
    site nor a care provider)."""
    return funded_account()


@pytest.fixture(scope="module")
def laboratory(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A Laboratory once the module's world verifies it (a care provider and a valid study
    site)."""
    return funded_account()


@pytest.fixture(scope="module")
def sponsor(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    """A ResearchSponsor once the module's world verifies it (an institution that is neither
    insurer nor care provider; it registers the studies)."""
    return funded_account()


# ---------------------------------------------------------------------------- contracts


@pytest.fixture(scope="session")
def provider_registry(project: Any, admin: AccountAPI, registrars: list[AccountAPI]) -> Any:
    """ProviderRegistry with three registrars and a threshold of two (deployed by ``admin``,
    who holds no role in it)."""
    return admin.deploy(project.ProviderRegistry, registrars, THRESHOLD)


@pytest.fixture(scope="session")
def record_registry(project: Any, admin: AccountAPI, provider_registry: Any) -> Any:
    return admin.deploy(project.RecordRegistry, provider_registry)


# ---------------------------------------------------------------------------- factories


@pytest.fixture(scope="session")
def register_patient(provider_registry: ContractInstance) -> Callable[..., ReceiptAPI]:
    """``register_patient(account, key=None)``: self-registers ``account`` as a patient."""

    def register(account: AccountAPI, key: bytes | None = None) -> ReceiptAPI:
        key = key or new_key()
        proof = key_proof(provider_registry, account, key)
        return provider_registry.registerPatient(key, proof, sender=account)

    return register


@pytest.fixture(scope="session")
def apply_institution(provider_registry: ContractInstance) -> Callable[..., ReceiptAPI]:
    """``apply_institution(account, kind=HOSPITAL, name=None, key=None)``."""

    def apply(
        account: AccountAPI,
        kind: Kind = Kind.HOSPITAL,
        name: str | None = None,
        key: bytes | None = None,
    ) -> ReceiptAPI:
        name = name if name is not None else f"{kind.name.title()} {account.address[-4:]}"
        key = key or new_key()
        proof = key_proof(provider_registry, account, key)
        return provider_registry.applyAsInstitution(kind, name, key, proof, sender=account)

    return apply


@pytest.fixture(scope="session")
def approve(
    provider_registry: ContractInstance, registrars: list[AccountAPI]
) -> Callable[..., list[ReceiptAPI]]:
    """``approve(institution, count=THRESHOLD)``: the first ``count`` registrars approve."""

    def approve_by(institution: AccountAPI, count: int = THRESHOLD) -> list[ReceiptAPI]:
        return [
            provider_registry.approveInstitution(institution, sender=registrar)
            for registrar in registrars[:count]
        ]

    return approve_by


@pytest.fixture(scope="session")
def suspend(
    provider_registry: ContractInstance, registrars: list[AccountAPI]
) -> Callable[..., ReceiptAPI]:
    """``suspend(institution, reason="licence-lapsed")`` by the first registrar."""

    def suspend_by(institution: AccountAPI, reason: str = "licence-lapsed") -> ReceiptAPI:
        return provider_registry.suspendInstitution(
            institution, reason.encode().ljust(32, b"\0"), sender=registrars[0]
        )

    return suspend_by


@pytest.fixture(scope="session")
def verified_institution(
    hospital: AccountAPI,
    clinic: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., ReceiptAPI],
    approve: Callable[..., list[ReceiptAPI]],
) -> Callable[..., AccountAPI]:
    """``verified_institution(kind=HOSPITAL, account=None)``: applies and gathers the threshold.

    Without ``account``: a hospital is the ``hospital`` account, a clinic the ``clinic``
    account, any other kind the ``stranger`` account.
    """

    def verified(kind: Kind = Kind.HOSPITAL, account: AccountAPI | None = None) -> AccountAPI:
        if account is None:
            account = {Kind.HOSPITAL: hospital, Kind.CLINIC: clinic}.get(kind, stranger)
        apply_institution(account, kind)
        approve(account)
        return account

    return verified


@pytest.fixture(scope="session")
def add_practitioner(provider_registry: ContractInstance) -> Callable[..., ReceiptAPI]:
    """``add_practitioner(institution, practitioner)``: the institution invites, the
    practitioner accepts; returns the acceptance's receipt."""

    def add(institution: AccountAPI, practitioner: AccountAPI) -> ReceiptAPI:
        provider_registry.addPractitioner(practitioner, sender=institution)
        return provider_registry.acceptPractitioner(institution, sender=practitioner)

    return add


@pytest.fixture(scope="session")
def authorize_care(provider_registry: ContractInstance) -> Callable[..., ReceiptAPI]:
    """``authorize_care(patient, institution, until=MAX_UINT40)``: the patient lets the
    institution write their records."""

    def authorize(patient: AccountAPI, institution: Any, until: int = MAX_UINT40) -> ReceiptAPI:
        return provider_registry.authorizeCare(patient, institution, until, sender=patient)

    return authorize


@dataclass(frozen=True)
class Anchored:
    """A record anchored by :func:`create_record`, with the values it was anchored with."""

    id: HexBytes
    receipt: ReceiptAPI
    patient: str
    issuer: str
    cid_digest: HexBytes
    commitment: HexBytes
    category: int
    previous: HexBytes


@pytest.fixture(scope="session")
def create_record(
    record_registry: ContractInstance, provider_registry: ContractInstance
) -> Callable[..., Anchored]:
    """``create_record(issuer, patient=None, *, category=LAB, previous=NO_RECORD, care=True, ...)``.

    Anchors a record with fresh, readable pointer and commitment values (``cid-<n>``,
    ``commitment-<n>``) unless given; ``patient`` defaults to the issuer (a self-anchored
    record). With ``care`` (the default), a patient who has no live care relationship with
    the issuer's institution opens one first (the patient signs that transaction).
    """
    counter = itertools.count()

    def create(
        issuer: AccountAPI,
        patient: AccountAPI | None = None,
        *,
        category: int = Category.LAB,
        previous: bytes = NO_RECORD,
        cid_digest: bytes | None = None,
        commitment: bytes | None = None,
        care: bool = True,
    ) -> Anchored:
        n = next(counter)
        patient = patient or issuer
        if care and patient.address != issuer.address:
            institution = provider_registry.verifiedInstitutionOf(issuer)
            allowed, _ = provider_registry.mayWriteFor(issuer, patient)
            if institution != "0x" + "00" * 20 and not allowed:
                provider_registry.authorizeCare(patient, institution, MAX_UINT40, sender=patient)
        cid = HexBytes(cid_digest or digest(f"cid-{n}"))
        salted = HexBytes(commitment or digest(f"commitment-{n}"))
        receipt = record_registry.anchor(patient, cid, salted, category, previous, sender=issuer)
        (log,) = record_registry.RecordAnchored.from_receipt(receipt)
        return Anchored(
            id=HexBytes(log.id),
            receipt=receipt,
            patient=patient.address,
            issuer=issuer.address,
            cid_digest=cid,
            commitment=salted,
            category=int(category),
            previous=HexBytes(previous),
        )

    return create


@dataclass(frozen=True)
class BatchEntry:
    """One record of a batch: its fields, its id, its position and its Merkle proof."""

    patient: str
    cid_digest: HexBytes
    commitment: HexBytes
    category: int
    previous: HexBytes
    id: HexBytes
    index: int
    proof: list[HexBytes]

    @property
    def fields(self) -> tuple[str, HexBytes, HexBytes, int, HexBytes]:
        """``(patient, cidDigest, commitment, category, previous)``: the contract's ``Entry``."""
        return (self.patient, self.cid_digest, self.commitment, self.category, self.previous)

    def args(self, batch: AnchoredBatch) -> tuple[Any, ...]:
        """``(issuer, root, entry, index, proof)`` as ``registerFromBatch`` takes them."""
        return (batch.issuer, batch.root, self.fields, self.index, self.proof)


@dataclass(frozen=True)
class AnchoredBatch:
    """A batch anchored by :func:`anchor_batch`."""

    id: HexBytes  # as BatchAnchored reports it: keccak256(abi.encode(issuer, root))
    root: HexBytes
    receipt: ReceiptAPI
    issuer: str
    manifest_digest: HexBytes
    entries: list[BatchEntry]


@pytest.fixture(scope="session")
def anchor_batch(
    chain: ChainManager, record_registry: ContractInstance
) -> Callable[..., AnchoredBatch]:
    """``anchor_batch(issuer, patients, *, category=LAB, previous=None, count=None)``.

    Builds one record per entry of ``patients`` (fresh ``batch-cid-<n>`` pointers), the
    ``IndexedMerkle`` tree of their ids (issuer = ``issuer``) and anchors its root.
    ``previous`` optionally gives each record's previous version; ``count`` overrides the
    declared count.
    """
    counter = itertools.count()

    def anchor(
        issuer: AccountAPI,
        patients: list[AccountAPI],
        *,
        category: int = Category.LAB,
        previous: list[bytes] | None = None,
        count: int | None = None,
    ) -> AnchoredBatch:
        previous = previous or [NO_RECORD] * len(patients)
        fields = []
        for holder, before in zip(patients, previous, strict=True):
            n = next(counter)
            fields.append(
                (
                    holder.address,
                    digest(f"batch-cid-{n}"),
                    digest(f"batch-commitment-{n}"),
                    int(category),
                    HexBytes(before),
                )
            )
        ids = [
            record_id(chain.chain_id, record_registry.address, p, issuer.address, c, m, k, v)
            for p, c, m, k, v in fields
        ]
        root, proofs = indexed_tree(ids)
        manifest = digest(f"manifest-{root.hex()}")
        receipt = record_registry.anchorBatch(
            root, manifest, len(ids) if count is None else count, sender=issuer
        )
        entries = [
            BatchEntry(*f, id=i, index=n, proof=proofs[n])
            for n, (f, i) in enumerate(zip(fields, ids, strict=True))
        ]
        (event,) = record_registry.BatchAnchored.from_receipt(receipt)
        return AnchoredBatch(
            HexBytes(event.batchId), root, receipt, issuer.address, manifest, entries
        )

    return anchor


# ---------------------------------------------------------------------------- chain helpers


@pytest.fixture(scope="session")
def isolated(chain: ChainManager) -> Callable[[], Any]:
    """``with isolated():`` runs a block between a chain snapshot and its restore.

    For hypothesis, whose examples all run inside one test and so inside one Ape snapshot.
    Not ``chain.isolate()``: in Ape 0.8 that context manager swallows every exception raised
    inside it (``except Exception: pass``), so a failing example would pass.
    """

    @contextmanager
    def block() -> Iterator[None]:
        snapshot = chain.snapshot()
        try:
            yield
        finally:
            chain.restore(snapshot)

    return block


@pytest.fixture(scope="session")
def advance_time(chain: ChainManager) -> Callable[[int], int]:
    """``advance_time(seconds)``: mines a block ``seconds`` after the latest one.

    Counts from the latest block's timestamp, the one reference both networks agree on after
    a snapshot restore. The networks differ in blocks, not in time: on eth-tester, setting the
    next timestamp already mines a block, so this mines two blocks there and one on Anvil; tests
    must not count blocks around it. Returns the new head's timestamp.
    """

    def advance(seconds: int) -> int:
        target = chain.blocks.head.timestamp + seconds
        chain.mine(timestamp=target)
        return chain.blocks.head.timestamp

    return advance


@pytest.fixture(scope="module")
def now(chain: ChainManager) -> Callable[[], int]:
    """``now()``: the head block's timestamp (what a view sees)."""
    return lambda: int(chain.blocks.head.timestamp)


@pytest.fixture(scope="module")
def block_time(chain: ChainManager) -> Callable[[ReceiptAPI], int]:
    """``block_time(receipt)``: the timestamp of the block a receipt is in (what the
    transaction saw)."""
    return lambda receipt: int(chain.blocks[receipt.block_number].timestamp)


@pytest.fixture(scope="module")
def next_tx_at(
    chain: ChainManager, advance_time: Callable[[int], int], now: Callable[[], int]
) -> Callable[[int], int]:
    """``next_tx_at(t)``: makes the next transaction run at exactly ``t``; returns ``t``.

    Mines the head at ``t - 1``, unless it is there already (Anvil mines a reverted
    transaction, so a test may pin the second after a refusal pinned at ``t - 1``). eth-tester
    then runs the next block one second after its head, as long as the chain is ahead of the
    wall clock (py-evm takes the later of the two), which it is once a test has advanced by a
    day or more. Anvil follows the wall clock from
    the head, so the second may tick before the transaction; the next block's timestamp is
    therefore pinned there (``evm_setNextBlockTimestamp``, which its gas estimate honours too).
    """

    def pin(t: int) -> int:
        if t - 1 < now():
            raise ValueError(f"{t} is not after the head ({now()})")
        if t - 1 > now():  # else the head is already there (a reverted transaction on Anvil)
            advance_time(t - 1 - now())
        if chain.provider.name == "foundry":
            chain.provider.make_request("evm_setNextBlockTimestamp", [t])
        return t

    return pin


@pytest.fixture(scope="session", autouse=True)
def _session_fixtures_first(
    provider_registry: Any,
    record_registry: Any,
    register_patient: Any,
    apply_institution: Any,
    approve: Any,
    suspend: Any,
    verified_institution: Any,
    add_practitioner: Any,
    authorize_care: Any,
    create_record: Any,
    anchor_batch: Any,
    isolated: Any,
    advance_time: Any,
) -> None:
    """Sets up every session fixture before any narrower one.

    Ape snapshots the chain per scope and warns (``InvalidIsolationWarning``), then replays
    ("rebases") fixtures, when a session fixture is first requested after a module or function
    fixture has run. The factories hold no chain state, but Ape cannot know that.
    """


# ---------------------------------------------------------------------------- networks

# The fixtures that move the chain's clock (see ``advance_time`` on how the networks differ).
CLOCK_FIXTURES = frozenset({"advance_time", "next_tx_at"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks ``networks`` every contract test that moves the clock.

    A test moves it when it requests ``advance_time`` or ``next_tx_at``, itself or through a
    function-scoped fixture (a module's world that moves the clock while it is set up does not
    make its tests depend on the network: they all start from that world).
    """
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and _moves_the_clock(item):
            item.add_marker(pytest.mark.networks)


def _moves_the_clock(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    seen: set[str] = set()
    todo = list(info.argnames)
    while todo:
        name = todo.pop()
        if name in CLOCK_FIXTURES:
            return True
        if name in seen:
            continue
        seen.add(name)
        for fixturedef in info.name2fixturedefs.get(name, ()):
            if fixturedef.scope == "function":
                todo.extend(fixturedef.argnames)
    return False
