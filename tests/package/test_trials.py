"""Scenarios for clinical trials: registered protocols, signed consent and re-consent, withdrawal,
sealed trial data (single and Merkle batches), reading under consent, the audit, identity links,
FHIR ResearchStudy/ResearchSubject and the ``medledger trial`` verbs.

Every scenario starts from the session's freshly deployed Anvil devnet plus its own world steps
(see ``conftest.py`` and ``chain_worlds.py``: the verified roles, the monitor and the ``study``
are built once and restored from snapshots). Roles: the sponsor is dev:13 (``sponsor`` in
conftest), the sites are the hospital (dev:3) and the clinic (dev:4), the monitor is dev:14 (a
pending institution, which is enough to have a published key); participants are fresh keys with
no ETH (pseudonymous study addresses) whose consent and withdrawal are signed off chain and
submitted by the site or anyone.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chain_worlds import world_step
from eth_account import Account
from eth_utils.crypto import keccak
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medledger import crypto, fhir, providers, trials
from medledger.accounts import dev_account
from medledger.chain import events
from medledger.chain.pipeline import Pipeline
from medledger.crypto import eip712, merkle
from medledger.errors import (
    AccessRefused,
    ConfigurationError,
    FhirParseError,
    FhirStructureError,
    IntegrityError,
    PreconditionFailed,
    StudyNotFound,
    TransactionReverted,
)
from medledger.ipfs.cid import Cid
from medledger.ipfs.local import tamper_with_block
from medledger.ipfs.stores import open_store
from medledger.sealed import manifest as manifests

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-samples"
OBJECTIVE_TYPE = "http://terminology.hl7.org/CodeSystem/research-study-objective-type"
DAY = 24 * 3600


def protocol(
    primary: str = "Time to first stroke or systemic embolism",
    secondary: tuple[str, ...] = ("Major bleeding",),
    title: str = "AF-ABLATE: anticoagulation after catheter ablation",
) -> bytes:
    """A FHIR R4 ResearchStudy with one primary and some secondary objectives."""

    def objective(name: str, kind: str) -> dict:
        return {"name": name, "type": {"coding": [{"system": OBJECTIVE_TYPE, "code": kind}]}}

    return json.dumps(
        {
            "resourceType": "ResearchStudy",
            "id": "af-ablate",
            "title": title,
            "status": "active",
            "phase": {"text": "phase-3"},
            "objective": [objective(primary, "primary")]
            + [objective(s, "secondary") for s in secondary],
        }
    ).encode()


def observation(name: str, value: float = 5.4) -> bytes:
    """A small FHIR Observation (HbA1c), distinct per name."""
    return json.dumps(
        {
            "resourceType": "Observation",
            "id": name,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": value, "unit": "%"},
        }
    ).encode()


def questionnaire_response(name: str) -> bytes:
    return json.dumps(
        {"resourceType": "QuestionnaireResponse", "id": name, "status": "completed"}
    ).encode()


def advance(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


def last_gas(chain) -> int:
    """The gas of the newest transaction (Anvil mines one block per transaction)."""
    block = chain.w3.eth.get_block("latest")
    return int(chain.w3.eth.get_transaction_receipt(block["transactions"][-1])["gasUsed"])


def test_the_package_exports_its_api_and_no_export_is_shadowed_by_a_submodule():
    """``trials.audit`` is the function, never the module: no submodule shares an export's name
    (importing a submodule rebinds the package attribute of its name)."""
    for module in pkgutil.iter_modules(trials.__path__):
        importlib.import_module(f"medledger.trials.{module.name}")
        assert module.name not in trials.__all__, module.name
    for name in trials.__all__:
        assert not isinstance(getattr(trials, name), types.ModuleType), name


# ---------------------------------------------------------------------------- roles and factories


@pytest.fixture
def store(settings):
    return open_store(settings)


@pytest.fixture
def hospital_site(chain, verified_institution, hospital):
    return verified_institution(hospital, providers.InstitutionKind.HOSPITAL, "St Mary")


@pytest.fixture
def clinic_site(chain, verified_institution, clinic):
    return verified_institution(clinic, providers.InstitutionKind.CLINIC, "Riverside")


@pytest.fixture
@world_step
def monitor(chain):
    """An independent monitor with a published key (it applied as an institution)."""
    account = dev_account(14)
    providers.apply_institution(chain, account, providers.InstitutionKind.RESEARCH_SPONSOR, "CRO")
    return account


@pytest.fixture
def second_participant():
    return Account.create()


@pytest.fixture
@world_step
def study(chain, store, sponsor, hospital_site, clinic_site, monitor):
    """A public-protocol study at the hospital and the clinic, with a monitor."""
    registered = trials.register_study(
        chain, store, sponsor, protocol(), [hospital_site.address, clinic_site.address]
    )
    return trials.set_monitor(chain, sponsor, registered.id, monitor.address)


@pytest.fixture
def enrol(chain, study, hospital_site):
    """Factory: the participant signs consent, the hospital (or ``site``) submits it."""

    def make(participant, site=None, **options):
        chosen = site or hospital_site
        document = trials.sign_consent(chain, participant, study.id, chosen.address, **options)
        return trials.submit_consent(chain, chosen, document)

    return make


@pytest.fixture
def enrolled(enrol, participant):
    return enrol(participant)


# ---------------------------------------------------------------------------- the lifecycle


def test_a_trial_runs_from_registration_to_a_clean_audit(
    chain, store, study, sponsor, hospital_site, monitor, participant, second_participant, enrol
):
    first = enrol(participant)
    enrol(second_participant, sponsor_reads=False)
    assert first.standing is trials.Standing.ACTIVE and first.consented_version == 1
    assert chain.w3.eth.get_balance(participant.address) == 0  # participants never need ETH

    sealed_so_far: list[int] = []
    single = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline",
        [observation("a1"), questionnaire_response("q1")], progress=sealed_so_far.append,
    )  # fmt: skip
    assert sum(sealed_so_far) == 2  # both bodies sealed, then sent together
    batched = trials.submit_data(
        chain, store, hospital_site, study.id, second_participant.address, "baseline",
        [observation(f"b{i}") for i in range(5)], batch=True,
    )  # fmt: skip
    assert len(single.items) == 2 and single.batch is None and len(single.transactions) == 2
    assert len(batched.items) == 5 and batched.batch is not None and len(batched.transactions) == 1
    assert all(i.batch == batched.batch for i in batched.items)

    version = trials.amend(
        chain, store, sponsor, study.id, protocol(secondary=("Major bleeding", "Death")),
        requires_reconsent=True, reason="add all-cause death as a secondary outcome",
    )  # fmt: skip
    assert version.version == 2 and version.requires_reconsent
    stale = trials.participation(chain, study.id, participant.address)
    assert stale.standing is trials.Standing.STALE
    with pytest.raises(PreconditionFailed, match="consent is stale: they consented to version 1"):
        trials.submit_data(
            chain, store, hospital_site, study.id, participant.address, "week-4",
            [observation("a2")],
        )  # fmt: skip

    again = enrol(participant)
    assert again.consented_version == 2 and again.consents == 2
    assert again.standing is trials.Standing.ACTIVE
    later = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "week-4", [observation("a2")]
    )
    assert later.items[0].version == 2

    document = trials.sign_withdrawal(chain, second_participant, study.id)
    gone = trials.submit_withdrawal(chain, hospital_site, document)
    assert gone.standing is trials.Standing.WITHDRAWN
    with pytest.raises(PreconditionFailed, match="has already withdrawn"):
        trials.submit_withdrawal(chain, hospital_site, document)
    for batch in (False, True):
        with pytest.raises(PreconditionFailed, match=f"{second_participant.address} withdrew"):
            trials.submit_data(
                chain, store, hospital_site, study.id, second_participant.address, "week-4",
                [observation("b9")], batch=batch,
            )  # fmt: skip

    report = trials.audit(chain, store, study.id, reader=sponsor)
    assert report.ok, report.violations
    # version 1; 3 consents; 4 submissions; 1 batch + 8 bodies; 2 outcome definitions, of which
    # 1 (version 2's, the same primary outcome) compared with its previous version's
    assert [c.checked for c in report.checks] == [1, 3, 4, 1 + 8, 2, 1, 0]
    assert not report.checks[5].notes  # the amendment kept the primary outcome
    assert "3 of 8 bodies decrypted" in report.checks[3].notes[0]  # the sponsor may read 3
    shown = trials.get_study(chain, study.id)
    assert (shown.participants, shown.data_count, shown.current_version) == (2, 8, 2)
    assert [d.id for d in trials.data(chain, store, study.id)] == [
        i.id for i in (*single.items, *batched.items, *later.items)
    ]

    # Data collected before the withdrawal stays readable by whom the last consent allowed.
    body = trials.read_data(chain, store, second_participant, study.id, batched.items[0].hex_id)
    assert body == observation("b0")
    assert trials.read_data(chain, store, monitor, study.id, batched.items[1].id) == (
        observation("b1")
    )
    with pytest.raises(AccessRefused, match="not among its readers"):
        trials.read_data(chain, store, sponsor, study.id, batched.items[1].id)


def test_an_amendment_without_reconsent_keeps_participants_current(
    chain, store, study, sponsor, hospital_site, participant, enrolled
):
    trials.amend(chain, store, sponsor, study.id, protocol(title="typo fixed"),
                 requires_reconsent=False, reason="typo")  # fmt: skip
    current = trials.participation(chain, study.id, participant.address)
    assert current.standing is trials.Standing.ACTIVE and current.consented_version == 1
    done = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "week-2", [observation("w")]
    )
    assert done.items[0].version == 2 and trials.audit(chain, store, study.id).ok
    # Consenting to the new version is still possible (voluntary), once.
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    assert trials.submit_consent(chain, hospital_site, document).consented_version == 2
    with pytest.raises(PreconditionFailed, match="already consented to version 2"):
        trials.sign_consent(chain, participant, study.id, hospital_site.address)


def test_the_first_data_freezes_a_version_nobody_consented_to(
    chain, store, study, sponsor, hospital_site, participant, enrolled
):
    first = trials.protocol_version(chain, study.id, 1)
    assert first.outcomes_frozen_at is not None  # by the enrolment
    amended = trials.amend(chain, store, sponsor, study.id, protocol(title="editorial"),
                           requires_reconsent=False, reason="editorial")  # fmt: skip
    assert amended.outcomes_frozen_at is None and amended.as_dict()["outcomes_frozen_at"] is None
    (item,) = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "week-2", [observation("f")]
    ).items
    frozen = trials.protocol_version(chain, study.id, 2).outcomes_frozen_at
    assert item.version == 2 and frozen == item.submitted_at  # by the data, with no consent to v2
    trials.check_anchored(chain, item)
    with pytest.raises(IntegrityError, match="is not anchored in study"):
        trials.check_anchored(chain, dataclasses.replace(item, version=1))
    contract = trials.trial_registry(chain)
    with pytest.raises(TransactionReverted) as refused:
        chain.transact("redefining", sponsor, contract.functions.setOutcomes(
            study.id, 2, keccak(text="a more flattering outcome"), bytes(32)))  # fmt: skip
    assert refused.value.error == "TrialOutcomesFrozen"
    assert refused.value.error_args == {"studyId": study.id, "version": 2}


def test_an_amendment_that_switches_the_primary_outcome_after_data_fails_the_audit(
    chain, store, medledger, study, sponsor, hospital_site, participant, enrolled
):
    """Outcome switching: amend without re-consent (nobody consents to the new version), collect
    data under it, then amend again with another primary outcome. The contract allows a new
    version; the audit names the switch and the versions."""
    trials.amend(chain, store, sponsor, study.id, protocol(title="editorial"),
                 requires_reconsent=False, reason="editorial")  # fmt: skip
    trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "week-4", [observation("s")]
    )
    before = trials.audit(chain, store, study.id)
    assert before.ok, before.violations
    switched = trials.amend(
        chain, store, sponsor, study.id, protocol(primary="Time to any hospital admission"),
        requires_reconsent=False, reason="a more achievable endpoint",
    )  # fmt: skip
    assert switched.version == 3
    report = trials.audit(chain, store, study.id)
    assert [c.ok for c in report.checks] == [True, True, True, True, True, False, True]
    (violation,) = report.violations
    assert violation.startswith(trials.RULE_NO_SWITCHING + ": version 3 (0x")
    assert "other primary outcomes than version 2, defined after data collection began" in violation
    outcome = medledger("trial", "audit", str(study.id))
    one_line_error(outcome, f"study {study.id} audit failed with 1 violation(s)")
    assert "version 3" in outcome.stderr and "version 2" in outcome.stderr
    assert "outcome definitions unchanged" not in outcome.stdout + outcome.stderr
    assert f"FAIL  {trials.RULE_NO_SWITCHING}" in outcome.stdout


def test_primary_outcomes_set_on_a_new_version_after_data_are_outcome_switching(
    chain, store, study, sponsor, hospital_site, participant, enrolled
):
    """The contract lets the sponsor set a version's outcomes until its first consent or data;
    doing so for a new version after data was collected under the old one is still a switch."""
    trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline", [observation("o")]
    )
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=True,
                 reason="clarification")  # fmt: skip
    contract = trials.trial_registry(chain)
    chain.transact("redefining", sponsor, contract.functions.setOutcomes(
        study.id, 2, keccak(text="a more flattering outcome"), bytes(32)))  # fmt: skip
    report = trials.audit(chain, store, study.id)
    assert [c.ok for c in report.checks] == [True, True, True, True, False, False, True]
    switch = [v for v in report.violations if v.startswith(trials.RULE_NO_SWITCHING)]
    assert len(switch) == 1 and "version 2 (0x" in switch[0] and "than version 1" in switch[0]
    assert any("version 2: the protocol's objectives do not hash" in v for v in report.violations)


def test_the_outcome_replay_trusts_no_contract_rule(chain, study):
    """Histories the contract refuses still fail the replay: outcomes redefined after the data
    that froze them, and a change of primary outcome before any data is only a note."""
    a, b = keccak(text="primary a"), keccak(text="primary b")

    def outcomes(block, version, primary):
        return trials.ReplayStep((block, 0), "outcomes", version=version, label=f"0xtx{block}",
                                 primary_outcomes=primary)  # fmt: skip

    steps = [
        _version(1, 1),
        outcomes(1, 1, a),
        _version(2, 2),
        outcomes(2, 2, b),  # before any data: a note
        _data(3, "0xP", 2, "data 0xd3"),
        outcomes(4, 2, a),  # after data under version 2: frozen (the contract would refuse)
        _version(5, 3),
        outcomes(5, 3, b),  # a switch back to b after data
    ]
    frozen, switching = trials.outcome_checks(steps)
    assert frozen.checked == 4 and switching.checked == 3
    assert frozen.violations == [
        "version 2's outcomes were redefined in 0xtx4, after its first data (data 0xd3) in block "
        "3 froze them"
    ]
    assert switching.notes == [
        "version 2 (0xtx2) has other primary outcomes than version 1, defined before any data "
        "was collected"
    ]
    assert switching.violations == [
        "version 3 (0xtx5) has other primary outcomes than version 2, defined after data "
        "collection began (data 0xd3 in block 3)"
    ]
    clean = [_version(1, 1), outcomes(1, 1, a), _data(2, "0xP", 1), _version(3, 2),
             outcomes(3, 2, a)]  # fmt: skip
    assert all(c.ok and not c.notes for c in trials.outcome_checks(clean))


def test_every_reader_the_consent_allows_reads_and_no_one_else(
    chain, store, study, sponsor, hospital_site, clinic_site, monitor, participant, enrol, stranger
):
    enrol(participant)
    (item,) = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline", [observation("x")]
    ).items
    for reader in (participant, hospital_site, sponsor, monitor):
        assert trials.read_data(chain, store, reader, study.id, item.hex_id) == observation("x")
    for outsider in (clinic_site, stranger):
        with pytest.raises(AccessRefused):
            trials.read_data(chain, store, outsider, study.id, item.hex_id)


def test_a_participant_who_keeps_monitors_out_is_not_sealed_for_them(
    chain, store, study, hospital_site, monitor, participant, enrol
):
    enrol(participant, monitors_read=False)
    (item,) = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline", [observation("m")]
    ).items
    assert crypto.public_key(monitor.key) not in crypto.readers(store.cat(item.cid))
    with pytest.raises(AccessRefused):
        trials.read_data(chain, store, monitor, study.id, item.hex_id)


def test_the_sponsor_and_its_practitioners_cannot_be_monitors(chain, sponsor, study):
    investigator = dev_account(15)
    providers.add_practitioner(chain, sponsor, investigator.address)
    providers.accept_practitioner(chain, investigator, sponsor.address)
    for account in (sponsor, investigator):
        with pytest.raises(PreconditionFailed, match="a monitor must be independent"):
            trials.set_monitor(chain, sponsor, study.id, account.address)
    assert trials.get_study(chain, study.id).monitors == study.monitors


def test_the_participant_key_is_recovered_from_the_consent_signature(
    chain, enrolled, participant, study
):
    assert trials.participant_key(chain, study.id, participant.address) == crypto.public_key(
        participant.key
    )


def test_a_tampered_data_block_fails_the_audit_naming_the_data_id(
    chain, store, study, hospital_site, participant, enrolled
):
    (item,) = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline", [observation("t")]
    ).items
    assert trials.audit(chain, store, study.id).ok
    original = store.get_block(item.cid)
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    tamper_with_block(store, item.cid, bytes(altered))  # an attacker with disk access
    try:
        report = trials.audit(chain, store, study.id)
    finally:
        tamper_with_block(store, item.cid, original)
    assert not report.ok
    (violation,) = report.violations
    assert item.hex_id in violation and "does not match its CID" in violation
    assert violation.startswith("every anchored data body present and unaltered")
    assert trials.audit(chain, store, study.id).ok


def test_a_missing_batch_manifest_fails_the_audit_and_hides_the_batch(
    chain, store, study, hospital_site, participant, enrolled
):
    done = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline",
        [observation("m1"), observation("m2")], batch=True,
    )  # fmt: skip
    assert done.manifest is not None
    original = store.get_block(done.manifest)
    tamper_with_block(store, done.manifest, None)
    try:
        report = trials.audit(chain, store, study.id)
        listed = trials.data(chain, store, study.id)
    finally:
        tamper_with_block(store, done.manifest, original)
    assert not report.ok and listed == []
    (violation,) = report.violations
    assert f"0x{done.batch.hex()}" in violation or str(done.manifest) in violation
    assert trials.audit(chain, store, study.id).ok


def test_an_altered_public_protocol_fails_the_outcome_check(chain, store, study):
    version = trials.protocol_version(chain, study.id)
    original = store.get_block(version.protocol)
    altered = original.replace(b"Major bleeding", b"Minor bleeding")
    tamper_with_block(store, version.protocol, altered)
    try:
        report = trials.audit(chain, store, study.id)
    finally:
        tamper_with_block(store, version.protocol, original)
    assert [c.ok for c in report.checks] == [True, True, True, True, False, True, True]
    assert "version 1: protocol document" in report.violations[0]


def test_batch_leaves_verify_on_chain_with_python_proofs(
    chain, store, study, hospital_site, participant, enrolled
):
    bodies = [observation(f"leaf{i}") for i in range(7)]  # 7 of 8 positions: one zero leaf
    done = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "week-8", bodies, batch=True
    )
    tree = merkle.IndexedTree.build([i.id for i in done.items])  # the manifest's order
    raw = json.loads(store.cat(done.manifest))
    assert (raw["kind"], raw["v"]) == (manifests.KIND, manifests.VERSION)  # the one batch format
    assert (raw["chain"], raw["contract"], raw["issuer"]) == (
        chain.chain_id, trials.trial_registry(chain).address, hospital_site.address,
    )  # fmt: skip
    visit = "0x" + trials.visit_id("week-8").hex()
    context = {"study": study.id, "participant": participant.address, "visit": visit, "version": 1}
    assert raw["context"] == context
    manifest = manifests.parse(store.cat(done.manifest))
    assert manifest.root == tree.root and manifest.ids() == [i.id for i in done.items]
    contract = trials.trial_registry(chain)
    for index, item in enumerate(done.items):
        assert item.position == trials.BatchPosition(tree.root, 7, index, tuple(tree.proof(index)))
        assert merkle.verify_indexed(tree.proof(index), tree.root, item.id, index, 7)
        proven = contract.functions.verifyBatchData(
            study.id, participant.address, item.visit, tree.root, item.cid.digest,
            item.commitment, index, tree.proof(index),
        ).call()  # fmt: skip
        assert bytes(proven) == item.id
        trials.check_anchored(chain, item)
        assert trials.find_data(chain, store, study.id, item.hex_id) == item
    # A leaf's proof holds at its own position only, on chain as off chain.
    first = done.items[0]
    assert not merkle.verify_indexed(tree.proof(0), tree.root, first.id, 1, 7)
    moved = dataclasses.replace(first, position=dataclasses.replace(first.position, index=1))
    with pytest.raises(IntegrityError, match=f"{first.hex_id} is not proven at position 1"):
        trials.check_anchored(chain, moved)  # the contract's verifyBatchData refused it
    batch = contract.functions.getDataBatch(done.batch).call()
    assert batch[-1] == 7  # count
    assert trials.read_data(chain, store, participant, study.id, done.items[6].id) == bodies[6]


def _sealed_bodies(store, count: int) -> list[tuple[object, bytes]]:
    """Stored stand-ins for sealed bodies: (CID, commitment) pairs; the audit checks presence."""
    return [
        (store.add_bytes(f"sealed body {i}".encode(), pin=True), keccak(text=f"commitment {i}"))
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("listed", "tree_over", "count", "problem"),
    [
        (4, 4, 3, "its manifest lists 4 bodies but the chain counts 3"),  # tree over all listed
        (4, 3, 3, "its manifest lists 4 bodies but the chain counts 3"),  # an extra row only
        (3, 3, 4, "the chain counts 4 bodies but its manifest lists only 3"),  # count overstated
    ],
    ids=["tree-of-more-than-count", "row-beyond-the-tree", "count-beyond-the-manifest"],
)
def test_a_batch_proves_no_more_bodies_than_its_count(
    chain, store, study, hospital_site, participant, enrolled, listed, tree_over, count, problem
):
    """A site that lists more bodies than it declares (or declares more than it lists) anchors
    only what its count and root prove: the audit names the batch, the study lists the bodies
    the contract proves, and no proof of a body past the count verifies on chain."""
    contract = trials.trial_registry(chain)
    visit = trials.visit_id("week-12")
    bodies = _sealed_bodies(store, listed)
    raw, manifest = trials.batch_manifest(
        chain.chain_id, contract.address, hospital_site.address, study.id, participant.address,
        visit, 1, bodies,
    )  # fmt: skip
    tree = manifest.tree
    if tree_over != listed:  # the site's tree leaves out the manifest's last row
        tree = merkle.IndexedTree.build(manifest.ids()[:tree_over])
    digest = store.add_bytes(raw, pin=True).digest
    chain.transact("a site that bypasses the client", hospital_site,
                   contract.functions.submitDataBatch(study.id, participant.address, visit,
                                                      tree.root, digest, count))  # fmt: skip
    ids = manifest.ids()
    anchored = min(listed, count)
    for index, identifier in enumerate(ids):
        cid, commitment = bodies[index]
        call = contract.functions.verifyBatchData(
            study.id, participant.address, visit, tree.root, cid.digest, commitment, index,
            tree.proof(index) if index < tree.count else [],
        )  # fmt: skip
        if index < anchored:
            assert bytes(call.call()) == identifier
            continue
        with pytest.raises(TransactionReverted) as refused:  # past the count: never proven
            chain.call("verifying", call)
        assert refused.value.error == "TrialDataNotInBatch"
        if index < tree.count:  # the site's own tree proves it, but not under its count
            assert merkle.verify_indexed(tree.proof(index), tree.root, identifier, index, listed)
            assert not merkle.verify_indexed(tree.proof(index), tree.root, identifier, index, count)
    listed_items = trials.data(chain, store, study.id)
    assert [i.id for i in listed_items] == ids[:anchored]
    assert [i.position.index for i in listed_items] == list(range(anchored))
    for item in listed_items:
        trials.check_anchored(chain, item)
    assert trials.get_study(chain, study.id).data_count == count  # the chain counts its count
    report = trials.audit(chain, store, study.id)
    assert [c.ok for c in report.checks] == [True, True, True, False, True, True, True]
    batch = trials.batch_id(chain.chain_id, contract.address, study.id, participant.address,
                            visit, tree.root)  # fmt: skip
    assert report.violations == [
        f"every anchored data body present and unaltered: batch 0x{batch.hex()}: {problem}"
        + (f": the bodies past position {count - 1} are not anchored" if listed > count else "")
    ]


# ------------------------------------------------------------------------- refused before sending


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("not-a-sponsor", PreconditionFailed, "is not a verified research sponsor"),
        ("site-not-care", PreconditionFailed, "is not a verified hospital, clinic or laboratory"),
        ("site-twice", ConfigurationError, "a site is named twice"),
        ("not-research-study", FhirStructureError, "is not a FHIR ResearchStudy"),
        ("no-primary-objective", FhirStructureError, "defines no primary objective"),
        ("not-json", FhirParseError, "not valid JSON"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_registration_is_refused_before_sending(
    chain, store, sponsor, hospital_site, monitor, case, error, message
):
    signer, sites, body = sponsor, [hospital_site.address], protocol()
    if case == "not-a-sponsor":
        signer = hospital_site
    elif case == "site-not-care":
        sites = [monitor.address]
    elif case == "site-twice":
        sites = [hospital_site.address, hospital_site.address.lower()]
    elif case == "not-research-study":
        body = observation("o")
    elif case == "no-primary-objective":
        if not SAMPLES.is_dir():
            pytest.skip("shared/fhir-samples is not beside the checkout")
        body = (SAMPLES / "ResearchStudy-example.json").read_bytes()  # HL7's example has none
    else:
        body = b"{not json"
    before = chain.w3.eth.block_number
    with pytest.raises(error, match=message):
        trials.register_study(chain, store, signer, body, sites)
    assert chain.w3.eth.block_number == before  # nothing was sent


def test_outcome_hashes_are_of_the_canonical_primary_and_secondary_objectives():
    document = json.loads(protocol(secondary=("Major bleeding", "Death")))
    primary, secondary = trials.outcomes_of(document)
    primaries = [o for o in document["objective"] if o["type"]["coding"][0]["code"] == "primary"]
    others = [o for o in document["objective"] if o not in primaries]
    canonical = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode()  # noqa: E731
    assert primary == keccak(canonical(primaries)) and secondary == keccak(canonical(others))
    assert trials.outcomes_of(json.loads(protocol(secondary=())))[1] == bytes(32)
    reordered = {**document, "title": "another title", "status": "completed"}
    assert trials.outcomes_of(reordered) == (primary, secondary)  # only objectives count


def test_unknown_study_is_a_clear_error(chain):
    with pytest.raises(StudyNotFound, match="study 42 is not registered"):
        trials.get_study(chain, 42)


def test_consent_signed_for_a_superseded_version_is_refused(
    chain, store, study, sponsor, hospital_site, participant
):
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=False,
                 reason="typo in the schedule")  # fmt: skip
    with pytest.raises(
        PreconditionFailed, match="version 2 is in force: the participant must sign"
    ):
        trials.submit_consent(chain, hospital_site, document)


def redefine_outcomes(chain, sponsor, study_id: int, version: int, label: str) -> bytes:
    """The sponsor redefines a version's primary outcome on chain (allowed until the version's
    first consent or data; the client has no verb for it); returns the new outcome hash."""
    primary = keccak(text=label)
    chain.transact("redefining", sponsor, trials.trial_registry(chain).functions.setOutcomes(
        study_id, version, primary, bytes(32)))  # fmt: skip
    return primary


STALE_PROTOCOL = (
    "version 1's protocol or outcome definitions changed after the participant signed: the "
    "participant must sign again"
)


def test_a_consent_signed_before_the_outcomes_changed_is_refused_in_one_line_before_sending(
    chain, study, sponsor, hospital_site, participant
):
    """The participant signs for version 1 as shown; the sponsor then redefines its primary
    outcome. The client refuses the document before sending, a client that skipped the check
    meets ``TrialProtocolChanged``, and a fresh signature (over the new hash) enrols."""
    contract = trials.trial_registry(chain)
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    signed = bytes(contract.functions.protocolHashOf(study.id, 1).call())
    assert document["request"]["protocolHash"] == "0x" + signed.hex()
    redefine_outcomes(chain, sponsor, study.id, 1, "a more achievable endpoint")
    current = bytes(contract.functions.protocolHashOf(study.id, 1).call())
    assert current != signed
    assert trials.protocol_hash(trials.protocol_version(chain, study.id, 1)) == current

    before = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed) as refused:
        trials.submit_consent(chain, hospital_site, document)
    assert str(refused.value) == STALE_PROTOCOL
    assert chain.w3.eth.block_number == before

    request = trials.ConsentRequest.from_message(document["request"])
    signature = bytes.fromhex(document["signature"].removeprefix("0x"))
    with pytest.raises(TransactionReverted) as reverted:
        chain.transact("recording consent", hospital_site,
                       contract.functions.consent(request.args(), signature))  # fmt: skip
    assert reverted.value.error == "TrialProtocolChanged"
    assert reverted.value.error_args == {
        "studyId": study.id, "version": 1, "signed": signed, "current": current,
    }  # fmt: skip
    assert contract.functions.nonces(participant.address).call() == 0

    fresh = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    assert fresh["request"]["protocolHash"] == "0x" + current.hex()
    standing = trials.submit_consent(chain, hospital_site, fresh)
    assert (standing.consented_version, standing.standing) == (1, trials.Standing.ACTIVE)
    assert trials.protocol_version(chain, study.id, 1).outcomes_frozen_at is not None


def test_cli_refuses_a_stale_consent_in_one_line_before_sending(
    chain, medledger, tmp_path, monkeypatch, study, sponsor, hospital_site, participant
):
    monkeypatch.setenv("P1_KEY", "0x" + bytes(participant.key).hex())
    signed = tmp_path / "consent.json"
    assert medledger("trial", "consent", str(study.id), "--site", hospital_site.address,
                     "--sign-only", "--out", str(signed),
                     "--account", "env:P1_KEY").exit_code == 0  # fmt: skip
    redefine_outcomes(chain, sponsor, study.id, 1, "a more achievable endpoint")
    before = chain.w3.eth.block_number
    one_line_error(medledger("trial", "consent", "--submit", str(signed), "--account", "dev:3"),
                   STALE_PROTOCOL)  # fmt: skip
    assert chain.w3.eth.block_number == before


MISSING = object()
NOT_HEX32 = "protocolHash is not 32 bytes in 0x hex"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (MISSING, "names no protocolHash (the protocol and outcomes it was signed for): the "
                  "participant must sign again"),
        (None, NOT_HEX32),
        ("", NOT_HEX32),
        ("0x12", NOT_HEX32),
        ("11" * 32, NOT_HEX32),
        ("0x" + "11" * 33, NOT_HEX32),
        ("0x" + "zz" * 32, NOT_HEX32),
        ("0x" + "11" * 31 + "  ", NOT_HEX32),
        (int("11" * 32, 16), NOT_HEX32),
        (["0x" + "11" * 32], NOT_HEX32),
    ],
    ids=["missing", "null", "empty", "short", "no-0x", "33-bytes", "not-hex", "spaced",
         "number", "list"],
)  # fmt: skip
def test_a_consent_without_a_well_formed_protocol_hash_is_refused_before_sending(
    chain, study, hospital_site, participant, value, message
):
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    if value is MISSING:
        del document["request"]["protocolHash"]
    else:
        document["request"]["protocolHash"] = value
    before = chain.w3.eth.block_number
    with pytest.raises(ConfigurationError) as refused:
        trials.submit_consent(chain, hospital_site, document)
    assert str(refused.value) == f"consent: {message}"
    assert chain.w3.eth.block_number == before


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other-site-submits", "does not act for"),
        ("expired", "the signature expired"),
        ("replayed", "already used or superseded"),
        ("forged", "was not made by"),
        ("other-protocol", "was not made by"),
        ("other-registry", "not this one"),
    ],
)
def test_signed_consent_is_checked_before_sending(
    chain, study, hospital_site, clinic_site, participant, case, message
):
    document = trials.sign_consent(
        chain, participant, study.id, hospital_site.address, valid_for=timedelta(days=1)
    )
    submitter = hospital_site
    if case == "other-site-submits":
        submitter = clinic_site
    elif case == "expired":
        advance(chain, 2 * DAY)
    elif case == "replayed":
        trials.submit_consent(chain, hospital_site, document)
    elif case == "forged":
        document["request"]["participant"] = Account.create().address
    elif case == "other-protocol":  # a site substitutes the hash of outcomes changed since
        document["request"]["protocolHash"] = "0x" + keccak(text="other outcomes").hex()
    else:
        document["trial_registry"] = "0x" + "11" * 20
    before = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match=message):
        trials.submit_consent(chain, submitter, document)
    assert chain.w3.eth.block_number == before


def test_a_file_that_is_not_a_consent_is_refused(chain, study, hospital_site):
    with pytest.raises(ConfigurationError, match="is not a MedLedger medledger/trial-consent"):
        trials.submit_consent(chain, hospital_site, {"kind": "medledger/signed-grant"})


def test_sign_consent_refuses_a_site_of_no_concern_and_a_final_withdrawal(
    chain, store, study, sponsor, hospital_site, clinic_site, participant, enrolled, stranger
):
    with pytest.raises(PreconditionFailed, match="is not a site of study"):
        trials.sign_consent(chain, participant, study.id, stranger.address)
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=True,
                 reason="new safety data")  # fmt: skip
    with pytest.raises(PreconditionFailed, match="a re-consent is recorded by the enrolling site"):
        trials.sign_consent(chain, participant, study.id, clinic_site.address)
    trials.submit_withdrawal(chain, stranger, trials.sign_withdrawal(chain, participant, study.id))
    with pytest.raises(PreconditionFailed, match="withdrawal is final"):
        trials.sign_consent(chain, participant, study.id, hospital_site.address)


def test_stale_and_withdrawn_submissions_are_refused_by_the_contract_too(
    chain, store, study, sponsor, hospital_site, participant, enrolled
):
    """The client refuses first; a client that skipped the check meets the contract's error."""
    contract = trials.trial_registry(chain)
    raw = contract.functions.submitData(
        study.id, participant.address, trials.visit_id("v"), b"\x01" * 32, b"\x02" * 32
    )
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=True,
                 reason="new safety data")  # fmt: skip
    with pytest.raises(TransactionReverted) as stale:
        chain.transact("submitting", hospital_site, raw)
    assert stale.value.error == "TrialConsentStale"
    trials.submit_withdrawal(
        chain, hospital_site, trials.sign_withdrawal(chain, participant, study.id)
    )
    with pytest.raises(TransactionReverted) as withdrawn:
        chain.transact("submitting", hospital_site, raw)
    assert withdrawn.value.error == "TrialParticipantWithdrawn"


def test_only_the_enrolling_site_submits_data(
    chain, store, study, clinic_site, participant, enrolled
):
    with pytest.raises(PreconditionFailed, match="the participant's enrolling site"):
        trials.submit_data(
            chain, store, clinic_site, study.id, participant.address, "baseline", [observation("x")]
        )


def test_data_bodies_must_be_fhir(chain, store, study, hospital_site, participant, enrolled):
    with pytest.raises(FhirStructureError):
        trials.submit_data(
            chain, store, hospital_site, study.id, participant.address, "baseline", [b"[1, 2]"]
        )


# ---------------------------------------------------------------------------- withdrawal


def test_the_delegate_withdraws_directly_and_a_stranger_cannot(
    chain, study, participant, enrol, stranger
):
    delegate = dev_account(15)
    enrol(
        participant,
        delegate=delegate.address,
        purpose=trials.ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH,
    )
    with pytest.raises(PreconditionFailed, match="neither"):
        trials.withdraw(chain, stranger, study.id, participant.address)
    gone = trials.withdraw(chain, delegate, study.id, participant.address)
    assert gone.standing is trials.Standing.WITHDRAWN
    assert gone.purpose is trials.ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH
    (event,) = events.logs(chain, "TrialRegistry", "ParticipantWithdrawn")
    assert event["by"] == delegate.address
    with pytest.raises(PreconditionFailed, match="has already withdrawn"):
        trials.withdraw(chain, delegate, study.id, participant.address)
    with pytest.raises(PreconditionFailed, match="has already withdrawn"):
        trials.sign_withdrawal(chain, participant, study.id)


def test_a_signed_withdrawal_is_checked_before_sending(
    chain, study, participant, enrolled, stranger
):
    document = trials.sign_withdrawal(chain, participant, study.id, timedelta(hours=1))
    advance(chain, 2 * 3600)
    with pytest.raises(PreconditionFailed, match="the signature expired"):
        trials.submit_withdrawal(chain, stranger, document)


# ---------------------------------------------------------------------------- cancelled signatures


def test_a_cancelled_consent_can_never_be_submitted(
    chain, study, hospital_site, participant, second_participant
):
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    before = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match="has no ETH: cancelling is the participant's own"):
        trials.cancel_signatures(chain, participant, document)
    other = trials.sign_consent(chain, second_participant, study.id, hospital_site.address)
    with pytest.raises(PreconditionFailed, match="only its signer can cancel it"):
        trials.cancel_signatures(chain, participant, other)
    with pytest.raises(ConfigurationError, match="not a MedLedger trial consent or withdrawal"):
        trials.cancel_signatures(chain, participant, {"kind": "medledger/signed-grant"})
    assert chain.w3.eth.block_number == before  # nothing was sent
    fund(chain, participant.address)
    assert trials.cancel_signatures(chain, participant, document) == 0
    (event,) = events.logs(chain, "TrialRegistry", "SignaturesCancelled", from_block=before)
    assert (event["participant"], event["nonce"]) == (participant.address, 0)
    sent = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match=r"nonce 0 .* already used or superseded"):
        trials.submit_consent(chain, hospital_site, document)
    with pytest.raises(PreconditionFailed, match="already used or cancelled: there is nothing"):
        trials.cancel_signatures(chain, participant, document)
    assert chain.w3.eth.block_number == sent
    with pytest.raises(TransactionReverted) as replayed:  # a client that skips the checks
        chain.transact("recording consent", hospital_site, trials.trial_registry(chain).functions
                       .consent(trials.ConsentRequest.from_message(document["request"]).args(),
                                bytes.fromhex(document["signature"][2:])))  # fmt: skip
    assert replayed.value.error == "TrialSignatureReplayed"
    again = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    assert again["request"]["nonce"] == 1
    assert trials.submit_consent(chain, hospital_site, again).standing is trials.Standing.ACTIVE


def test_a_cancelled_withdrawal_is_refused_and_the_participant_stays(
    chain, study, participant, enrolled, stranger
):
    fund(chain, participant.address)
    document = trials.sign_withdrawal(chain, participant, study.id, timedelta(hours=1))
    later = trials.sign_withdrawal(chain, participant, study.id)  # the same nonce
    assert trials.cancel_signatures(chain, participant) == 1  # the enrolment used nonce 0
    for signed in (document, later):
        with pytest.raises(PreconditionFailed, match="already used or superseded"):
            trials.submit_withdrawal(chain, stranger, signed)
    current = trials.participation(chain, study.id, participant.address)
    assert current.standing is trials.Standing.ACTIVE
    future = trials.sign_withdrawal(chain, participant, study.id, timedelta(hours=1))
    future["request"]["nonce"] = 5
    with pytest.raises(PreconditionFailed, match=r"next nonce of .* is 2: cancelling burns only"):
        trials.cancel_signatures(chain, participant, future)
    expired = trials.sign_withdrawal(chain, participant, study.id, timedelta(hours=1))
    advance(chain, 2 * 3600)
    with pytest.raises(PreconditionFailed, match=r"expired at .* nothing to cancel"):
        trials.cancel_signatures(chain, participant, expired)


# ---------------------------------------------------------------------------- practitioners


def test_practitioners_act_for_their_institution_only_once_they_accept(
    chain, store, sponsor, hospital_site, participant
):
    """A sponsor's practitioner registers the study; a site's invited practitioner records
    nothing until it accepts, then records consent and data for the site."""
    coordinator, nurse = dev_account(10), dev_account(6)
    providers.add_practitioner(chain, sponsor, coordinator.address)
    with pytest.raises(PreconditionFailed, match="is not a verified research sponsor"):
        trials.register_study(chain, store, coordinator, protocol(), [hospital_site.address])
    providers.accept_practitioner(chain, coordinator, sponsor.address)
    study = trials.register_study(chain, store, coordinator, protocol(), [hospital_site.address])
    assert study.sponsor == sponsor.address
    providers.add_practitioner(chain, hospital_site, nurse.address)
    document = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    with pytest.raises(PreconditionFailed, match=f"{nurse.address} does not act for"):
        trials.submit_consent(chain, nurse, document)
    providers.accept_practitioner(chain, nurse, hospital_site.address)
    assert trials.submit_consent(chain, nurse, document).site == hospital_site.address
    (item,) = trials.submit_data(
        chain, store, nurse, study.id, participant.address, "baseline", [observation("n")]
    ).items
    assert item.site == hospital_site.address
    assert trials.read_data(chain, store, nurse, study.id, item.id) == observation("n")
    providers.remove_practitioner(chain, hospital_site, nurse.address)
    with pytest.raises(PreconditionFailed, match="the participant's enrolling site"):
        trials.submit_data(
            chain, store, nurse, study.id, participant.address, "week-2", [observation("m")]
        )


# ---------------------------------------------------------------------------- encrypted protocols


def test_an_encrypted_protocol_is_read_by_sponsor_and_sites_only(
    chain, store, sponsor, hospital_site, clinic_site, stranger
):
    study = trials.register_study(
        chain, store, sponsor, protocol(), [hospital_site.address], encrypt=True
    )
    version = trials.protocol_version(chain, study.id)
    assert version.encrypted and store.cat(version.protocol)[:4] == crypto.MAGIC
    for reader in (sponsor, hospital_site):
        assert trials.read_protocol(chain, store, study.id, reader=reader) == protocol()
    with pytest.raises(PreconditionFailed, match="holds no key"):
        trials.read_protocol(chain, store, study.id, reader=stranger)
    with pytest.raises(PreconditionFailed, match="is encrypted"):
        trials.read_protocol(chain, store, study.id)
    blind = trials.audit(chain, store, study.id)
    assert blind.ok and "objectives not checked" in blind.checks[4].notes[0]
    seeing = trials.audit(chain, store, study.id, reader=sponsor)
    assert seeing.ok and not seeing.checks[4].notes
    amended = trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=False,
                           reason="clarification")  # fmt: skip
    assert amended.encrypted  # the default follows the version in force


# ---------------------------------------------------------------------------- the audit's replay


def _consent(chain, account, study_id, version, site, *, signer=None, deadline=None, block=0):
    request = trials.ConsentRequest(
        study_id=study_id, version=version, protocol_hash=keccak(text=f"protocol v{version}"),
        site=site, participant=account.address,
        purpose=trials.ConsentPurpose.TRIAL_ONLY, readers=3, delegate=None, nonce=0,
        deadline=deadline or 2**40,
    )  # fmt: skip
    registry_address = trials.trial_registry(chain).address
    typed = trials.typed_data(chain.chain_id, registry_address, request)
    signature = eip712.sign((signer or account).key, typed)
    recorded = trials.RecordedConsent(
        study_id=study_id, participant=account.address, site=site, version=version,
        purpose=1, readers=3, delegate=None, enrolment=True, signature=bytes(signature),
        block=block, log_index=0, transaction_hash=f"0xtx{block}", request=request,
    )  # fmt: skip
    return trials.ReplayStep(
        (block, 0), "consent", participant=account.address, version=version, consent=recorded,
        block_time=datetime.fromtimestamp(1_000_000, tz=UTC),
    )  # fmt: skip


def _version(block, number, reconsent=False):
    return trials.ReplayStep((block, 0), "version", version=number, requires_reconsent=reconsent)


def _data(block, who, version, label="data 0xd"):
    return trials.ReplayStep((block, 0), "data", participant=who, version=version, label=label)


def test_the_replay_names_every_kind_of_violation(chain, study):
    site = study.sites[0]
    a, b, c, d = (Account.create() for _ in range(4))
    registry_address = trials.trial_registry(chain).address
    steps = [
        _consent(chain, a, study.id, 1, site, block=1),  # before version 1 exists
        _version(2, 1),
        _consent(chain, b, study.id, 1, site, block=3),
        _consent(chain, c, study.id, 1, site, signer=d, block=4),  # not c's signature
        _consent(chain, d, study.id, 1, site, deadline=999, block=5),  # after its deadline
        trials.ReplayStep((6, 0), "withdrawal", participant=b.address),
        _data(7, b.address, 1, "data 0xafter-withdrawal"),
        _data(8, Account.create().address, 1, "data 0xnobody"),
        _version(9, 2, reconsent=True),
        _data(10, a.address, 2, "batch 0xstale"),
        _data(11, d.address, 1, "data 0xold-version"),
        _consent(chain, b, study.id, 2, site, block=12),  # after withdrawal
    ]
    first, consents, submissions = trials.replay(chain.chain_id, registry_address, steps)
    assert first.violations == [f"{a.address} enrolled (block 1) before protocol version 1"]
    assert len(consents.violations) == 4
    text = " | ".join(consents.violations)
    assert f"consent of {a.address}" in text and "while 0 was in force" in text
    assert f"recovers to {d.address}, not the participant" in text
    assert "recorded after its deadline" in text
    assert "recorded after the participant withdrew" in text
    assert submissions.violations == [
        f"data 0xafter-withdrawal from {b.address} after they withdrew",
        f"data 0xnobody from {steps[7].participant}, who never enrolled",
        f"batch 0xstale from {a.address}, whose consent to version 1 was stale (version 2 "
        "required re-consent)",
        f"data 0xold-version from {d.address}, whose consent to version 1 was stale (version 2 "
        "required re-consent)",
        "data 0xold-version is marked version 1 while 2 was in force",
    ]


def test_the_replay_accepts_a_clean_history(chain, study):
    site = study.sites[0]
    a = Account.create()
    steps = [
        _version(1, 1),
        _consent(chain, a, study.id, 1, site, block=2),
        _data(3, a.address, 1),
        _version(4, 2),  # no re-consent needed
        _data(5, a.address, 2),
    ]
    checks = trials.replay(chain.chain_id, trials.trial_registry(chain).address, steps)
    assert all(c.ok for c in checks) and [c.checked for c in checks] == [1, 1, 2]


# ---------------------------------------------------------------------------- Python = Solidity


ADDRESSES = st.binary(min_size=20, max_size=20).map(
    lambda b: Account.from_key(b"\x01" * 12 + b).address
)
BYTES32 = st.binary(min_size=32, max_size=32)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    study_id=st.integers(0, 2**64 - 1), participant=ADDRESSES, visit=BYTES32,
    version=st.integers(0, 2**32 - 1), cid=BYTES32, commitment=BYTES32,
)  # fmt: skip
def test_python_data_id_equals_the_contracts(
    chain, study_id, participant, visit, version, cid, commitment
):
    contract = trials.trial_registry(chain)
    expected = contract.functions.dataIdOf(
        study_id, participant, visit, version, cid, commitment
    ).call()
    assert trials.data_id(
        chain.chain_id, contract.address, study_id, participant, visit, version, cid, commitment
    ) == bytes(expected)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    study_id=st.integers(0, 2**64 - 1), version=st.integers(0, 2**32 - 1),
    protocol_hash=BYTES32, site=ADDRESSES, participant=ADDRESSES,
    purpose=st.sampled_from(list(trials.ConsentPurpose)), readers=st.integers(0, 255),
    delegate=st.one_of(st.none(), ADDRESSES), nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)  # fmt: skip
def test_python_consent_and_withdrawal_digests_equal_the_contracts(
    chain, study_id, version, protocol_hash, site, participant, purpose, readers, delegate, nonce,
    deadline,
):  # fmt: skip
    contract = trials.trial_registry(chain)
    consent = trials.ConsentRequest(study_id, version, protocol_hash, site, participant, purpose,
                                    readers, delegate, nonce, deadline)  # fmt: skip
    withdrawal = trials.WithdrawalRequest(study_id, participant, nonce, deadline)
    assert trials.request_digest(chain.chain_id, contract.address, consent) == bytes(
        contract.functions.consentDigest(consent.args()).call()
    )
    assert trials.request_digest(chain.chain_id, contract.address, withdrawal) == bytes(
        contract.functions.withdrawalDigest(withdrawal.args()).call()
    )


OBJECTIVES = st.from_regex(r"[A-Za-z0-9]{1,8}( [A-Za-z0-9]{1,8}){0,2}", fullmatch=True)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    primary=OBJECTIVES, secondary=st.lists(OBJECTIVES, max_size=2, unique=True),
    redefined=st.one_of(st.none(), BYTES32.filter(any)), encrypt=st.booleans(),
)  # fmt: skip
def test_python_protocol_hash_equals_the_contracts(
    chain, store, sponsor, hospital_site, primary, secondary, redefined, encrypt
):
    """Random protocols (no secondary objectives included, public or sealed), maybe with the
    primary outcome redefined on chain: ``protocol_hash`` of the version as read is
    ``protocolHashOf``, and the concatenation of the three hashes' keccak computed here."""
    document = protocol(primary=primary, secondary=tuple(secondary))
    registered = trials.register_study(
        chain, store, sponsor, document, [hospital_site.address], encrypt=encrypt
    )
    if redefined is not None:
        chain.transact("redefining", sponsor, trials.trial_registry(chain).functions.setOutcomes(
            registered.id, 1, redefined, bytes(32)))  # fmt: skip
    version = trials.protocol_version(chain, registered.id, 1)
    outcomes = trials.outcomes_of(json.loads(document))
    expected_outcomes = outcomes if redefined is None else (redefined, bytes(32))
    secondary_hash = version.secondary_outcomes or bytes(32)
    assert (version.primary_outcomes, secondary_hash) == expected_outcomes
    independent = keccak(version.protocol.digest + b"".join(expected_outcomes))
    on_chain = trials.trial_registry(chain).functions.protocolHashOf(registered.id, 1).call()
    assert trials.protocol_hash(version) == bytes(on_chain) == independent


def test_the_eip712_domain_type_hashes_and_reader_bits_are_the_contracts(chain):
    contract = trials.trial_registry(chain)
    _fields, name, version, chain_id, verifying, _salt, _ext = (
        contract.functions.eip712Domain().call()
    )
    assert (name, version, chain_id, verifying) == (
        "MedLedger TrialRegistry", "1", chain.chain_id, contract.address,
    )  # fmt: skip
    for primary, fields, constant in (
        ("ConsentRequest", trials.CONSENT_FIELDS, "CONSENT_TYPEHASH"),
        ("WithdrawalRequest", trials.WITHDRAWAL_FIELDS, "WITHDRAWAL_TYPEHASH"),
    ):
        signature = f"{primary}({','.join(f'{kind} {name}' for name, kind in fields)})"
        assert keccak(text=signature) == bytes(getattr(contract.functions, constant)().call())
    assert keccak(
        text="ConsentRequest(uint64 studyId,uint32 version,bytes32 protocolHash,address site,"
        "address participant,uint8 purpose,uint8 readers,address delegate,uint256 nonce,"
        "uint256 deadline)"
    ) == bytes(contract.functions.CONSENT_TYPEHASH().call())  # the documented type string
    assert contract.functions.READER_SPONSOR().call() == trials.READER_SPONSOR
    assert contract.functions.READER_MONITORS().call() == trials.READER_MONITORS


@settings(max_examples=25, deadline=None)
@given(digest=BYTES32, key=st.integers(1, 2**255).map(lambda n: n.to_bytes(32, "big")))
def test_the_signer_key_is_recovered_compressed_from_any_signature(digest, key):
    account = Account.from_key(key)
    signature = bytes(Account.unsafe_sign_hash(digest, key).signature)
    recovered = trials.recover_public_key(digest, signature)
    assert recovered == crypto.public_key(key)
    assert trials.address_of_key(recovered) == account.address


# ---------------------------------------------------------------------------- identity links


def test_an_identity_link_is_signed_by_both_keys_and_checked_offline(
    chain, study, participant, patient
):
    proof = trials.link_proof(chain, study.id, participant, patient)
    assert trials.verify_link(proof)
    assert trials.verify_link(json.loads(json.dumps(proof)))  # as read back from a file
    swapped = {**proof, "participant_signature": proof["record_signature"],
               "record_signature": proof["participant_signature"]}  # fmt: skip
    other = {**proof, "record_address": dev_account(8).address}
    restated = {**proof, "statement": proof["statement"].replace("same person", "same people")}
    broken = {**proof, "record_signature": "0x1234"}
    assert not any(trials.verify_link(d) for d in (swapped, other, restated, broken, {}))
    with pytest.raises(ConfigurationError, match="participant's own study account"):
        trials.link_proof(chain, study.id, participant, participant)


# ---------------------------------------------------------------------------- FHIR


def test_the_study_is_a_valid_research_study_that_names_it_on_chain(chain, store, study):
    resource = json.loads(trials.research_study(chain, store, study))
    ResearchStudy.model_validate(resource)
    assert resource["title"].startswith("AF-ABLATE") and len(resource["objective"]) == 2
    ref = fhir.study_ref_of(resource)
    assert (ref.chain_id, ref.registry, ref.study_id) == (chain.chain_id, study.registry, study.id)
    facts = fhir.study_facts_of(resource)
    assert facts.sites == study.sites and facts.sponsor == study.sponsor
    assert facts.protocol_version == 1 and facts.registered_at == study.registered_at


def test_an_encrypted_protocol_gives_the_chains_view_only(chain, store, sponsor, hospital_site):
    study = trials.register_study(chain, store, sponsor, protocol(), [hospital_site.address],
                                  encrypt=True)  # fmt: skip
    blind = json.loads(trials.research_study(chain, store, study))
    ResearchStudy.model_validate(blind)
    assert "title" not in blind and blind["status"] == "active"
    seen = json.loads(trials.research_study(chain, store, study, reader=hospital_site))
    assert seen["title"].startswith("AF-ABLATE")


def test_participations_are_valid_research_subjects_and_round_trip(
    chain, store, study, participant, enrol, sponsor
):
    enrol(participant)
    on_study = json.loads(
        trials.research_subject(chain, trials.participation(chain, study.id, participant.address))
    )
    ResearchSubject.model_validate(on_study)
    assert on_study["status"] == "on-study"
    assert on_study["individual"]["identifier"]["value"] == participant.address
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=True,
                 reason="new safety data")  # fmt: skip
    trials.submit_withdrawal(chain, sponsor, trials.sign_withdrawal(chain, participant, study.id))
    standing = trials.participation(chain, study.id, participant.address)
    withdrawn = json.loads(trials.research_subject(chain, standing))
    ResearchSubject.model_validate(withdrawn)
    facts = fhir.subject_facts_of(withdrawn)
    assert facts.status == "withdrawn" and facts.end == standing.withdrawn_at
    assert (facts.participant, facts.site, facts.consented_version) == (
        participant.address, standing.site, 1,
    )  # fmt: skip
    assert fhir.study_ref_of(withdrawn).study_id == study.id


def test_the_json_views_keep_their_shapes():
    """``as_dict`` is what ``--json`` prints: built on ``documents.to_data``, in these shapes."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    iso = when.isoformat()
    cid = Cid.from_digest_v0(b"\x11" * 32)
    study = trials.Study(1, 31337, "0x" + "ab" * 20, "0x" + "cd" * 20, 2, 2, 3, when, None, 5,
                         ("0xS",), ("0xM",), cid)  # fmt: skip
    assert study.as_dict() == {
        "id": 1, "identifier": f"eip155:31337/0x{'ab' * 20}/1", "sponsor": "0x" + "cd" * 20,
        "current_version": 2, "reconsent_version": 2, "participants": 3, "registered_at": iso,
        "first_enrolment_at": None, "data_count": 5, "sites": ["0xS"], "monitors": ["0xM"],
        "summary": str(cid), "attested_participants": False,
    }  # fmt: skip
    assert list(study.as_dict())[:2] == ["id", "identifier"]
    version = trials.ProtocolVersion(1, 2, cid, True, b"\x01" * 32, None, True, "why", when,
                                     None, 7)  # fmt: skip
    assert version.as_dict() == {
        "version": 2, "protocol": str(cid), "encrypted": True,
        "primary_outcomes": "0x" + "01" * 32, "secondary_outcomes": None,
        "requires_reconsent": True, "reason": "why", "registered_at": iso,
        "outcomes_frozen_at": None, "block": 7,
    }  # fmt: skip
    standing = trials.Participation(1, "0xP", "0xS", 1, when,
                                    trials.ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH, 1, when,
                                    "0xD", 1, 2)  # fmt: skip
    assert standing.as_dict() == {
        "study": 1, "participant": "0xP", "site": "0xS", "standing": "withdrawn",
        "consented_version": 1, "required_version": 2, "enrolled_at": iso,
        "purpose": "trial-and-future-research", "sponsor_reads": True, "monitors_read": False,
        "withdrawn_at": iso, "delegate": "0xD", "consents": 1,
    }  # fmt: skip
    position = trials.BatchPosition(b"\x03" * 32, 3, 1, (b"\x04" * 32,))
    item = trials.DataItem(b"\x05" * 32, 1, "0xP", b"\x06" * 32, 2, cid, b"\x07" * 32, "0xS",
                           when, 9, 0, "0xtx", b"\x08" * 32, position)  # fmt: skip
    shown = {
        "id": "0x" + "05" * 32, "participant": "0xP", "visit": "0x" + "06" * 32, "version": 2,
        "cid": str(cid), "commitment": "0x" + "07" * 32, "site": "0xS", "submitted_at": iso,
        "block": 9, "transaction": "0xtx", "batch": "0x" + "08" * 32, "index": 1,
    }  # fmt: skip
    assert item.as_dict() == shown
    assert trials.Submission((item,), ("0xa",), 100, b"\x08" * 32, cid).as_dict() == {
        "items": [shown], "transactions": ["0xa"], "gas_used": 100,
        "batch": "0x" + "08" * 32, "manifest": str(cid), "skipped": [],
    }  # fmt: skip
    assert trials.TrialEvent(when, 1, 2, "data", "0xA", "d", "0xtx", 5).as_dict() == {
        "time": iso, "block": 1, "event": "data", "by": "0xA", "detail": "d",
        "transaction": "0xtx", "gas": 5,
    }  # fmt: skip


def test_fhir_facts_round_trip_exactly():
    ref = fhir.StudyRef(31337, "0x" + "ab" * 20, 7)
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    study = fhir.StudyFacts(ref, "0x" + "01" * 20, ("0x" + "02" * 20,), 3, when)
    assert fhir.study_facts_of(json.loads(fhir.research_study(study))) == study
    for withdrawn in (False, True):
        end = when + timedelta(days=9) if withdrawn else None
        subject = fhir.SubjectFacts(ref, "0x" + "03" * 20, "0x" + "02" * 20, withdrawn, when,
                                    end, 2, True)  # fmt: skip
        assert fhir.subject_facts_of(json.loads(fhir.research_subject(subject))) == subject


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared/fhir-samples is not beside the checkout")
def test_resources_that_name_no_medledger_study_are_refused():
    example = json.loads((SAMPLES / "ResearchSubject-example.json").read_bytes())
    with pytest.raises(FhirStructureError, match="names no urn:medledger:study"):
        fhir.study_ref_of(example)
    with pytest.raises(FhirStructureError, match="not a study identifier"):
        fhir.StudyRef.parse("eip155:1/0x12/3")


# ---------------------------------------------------------------------------- gas


GAS_BUDGETS = {  # measured on Anvil (see the test's output) plus about 15 %
    "registerStudy (2 sites)": 300_000,
    "setMonitor": 63_000,
    "addSite": 70_000,
    "publishSummary": 37_000,
    "consent (enrolment)": 150_000,
    "submitData": 80_000,
    "submitDataBatch (10 bodies)": 107_000,
    "submitDataBatch (100 bodies)": 107_000,
    "amendProtocol (re-consent)": 150_000,
    "consent (re-consent)": 83_000,
    "withdrawWithSignature": 53_000,
    "withdraw (delegate)": 39_000,
}


def test_gas_of_each_trial_step_stays_within_budget(
    chain, store, sponsor, hospital_site, clinic_site, monitor, verified_institution,
    participant, second_participant,
):  # fmt: skip
    gas: dict[str, int] = {}
    lab = verified_institution(dev_account(7), providers.InstitutionKind.LABORATORY, "Lab")
    study = trials.register_study(
        chain, store, sponsor, protocol(), [hospital_site.address, clinic_site.address]
    )
    gas["registerStudy (2 sites)"] = last_gas(chain)
    trials.set_monitor(chain, sponsor, study.id, monitor.address)
    gas["setMonitor"] = last_gas(chain)
    trials.add_site(chain, sponsor, study.id, lab.address)
    gas["addSite"] = last_gas(chain)
    trials.publish_summary(chain, store, sponsor, study.id, b"lay summary")
    gas["publishSummary"] = last_gas(chain)
    delegate = dev_account(15)
    for who in (participant, second_participant):
        signed = trials.sign_consent(chain, who, study.id, hospital_site.address,
                                     delegate=delegate.address)  # fmt: skip
        trials.submit_consent(chain, hospital_site, signed)
        gas.setdefault("consent (enrolment)", last_gas(chain))
    one = trials.submit_data(chain, store, hospital_site, study.id, participant.address, "v1",
                             [observation("g")])  # fmt: skip
    gas["submitData"] = one.gas_used
    for count in (10, 100):
        many = trials.submit_data(
            chain, store, hospital_site, study.id, participant.address, f"v{count}",
            [observation(f"g{i}") for i in range(count)], batch=True,
        )  # fmt: skip
        gas[f"submitDataBatch ({count} bodies)"] = many.gas_used
    trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=True,
                 reason="new safety data")  # fmt: skip
    gas["amendProtocol (re-consent)"] = last_gas(chain)
    signed = trials.sign_consent(chain, participant, study.id, hospital_site.address)
    trials.submit_consent(chain, hospital_site, signed)
    gas["consent (re-consent)"] = last_gas(chain)
    trials.submit_withdrawal(
        chain, hospital_site, trials.sign_withdrawal(chain, participant, study.id)
    )
    gas["withdrawWithSignature"] = last_gas(chain)
    trials.withdraw(chain, delegate, study.id, second_participant.address)
    gas["withdraw (delegate)"] = last_gas(chain)
    width = max(map(len, gas))
    for name, used in gas.items():
        print(f"GAS  {name:<{width}}  {used:>9,}")
    assert set(gas) == set(GAS_BUDGETS)
    over = {name: used for name, used in gas.items() if used > GAS_BUDGETS[name]}
    assert not over, over
    # a batch costs the same whatever its size: the bodies are off chain, the root on chain
    assert abs(gas["submitDataBatch (100 bodies)"] - gas["submitDataBatch (10 bodies)"]) < 1_000
    steps = trials.history(chain, study.id)
    expected = {"study registered", "enrolment", "re-consent", "data", "data batch", "withdrawal",
                "site added"}  # fmt: skip
    assert {s.event for s in steps} >= expected
    assert all(s.gas_used > 21_000 for s in steps)


# ---------------------------------------------------------------------------- CLI


def fund(chain, address: str, wei: int = 10**17) -> None:
    """Give a participant a little ETH (only a direct withdrawal needs any)."""
    Pipeline(chain, dev_account(0)).send("funding", address, [b""], 21_000, value=wei)


def one_line_error(outcome, message: str) -> None:
    assert outcome.exit_code != 0, outcome.stdout
    assert message in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr


def test_cli_runs_a_study_from_registration_to_a_clean_audit(
    chain, medledger, tmp_path, monkeypatch, sponsor, hospital_site, clinic_site, monitor,
    participant, second_participant, verified_institution,
):  # fmt: skip
    lab = verified_institution(dev_account(7), providers.InstitutionKind.LABORATORY, "Lab")
    (tmp_path / "v1.json").write_bytes(protocol())
    (tmp_path / "v2.json").write_bytes(protocol(secondary=("Major bleeding", "Death")))
    for name in ("a", "b", "c", "d"):
        (tmp_path / f"{name}.json").write_bytes(observation(name))
    p1, p2 = participant.address, second_participant.address
    sign = ("--account", "env:P1_KEY")
    one_line_error(  # no key in the environment yet
        medledger("trial", "consent", "1", "--site", hospital_site.address, "--sign-only",
                  "--out", str(tmp_path / "c.json"), *sign),
        "environment variable P1_KEY is not set",
    )  # fmt: skip
    monkeypatch.setenv("P1_KEY", "0x" + bytes(participant.key).hex())
    monkeypatch.setenv("P2_KEY", "0x" + bytes(second_participant.key).hex())

    registered = medledger(
        "trial", "register", str(tmp_path / "v1.json"), "--site", hospital_site.address,
        "--site", clinic_site.address, "--account", "dev:13", "--json",
    )  # fmt: skip
    assert registered.exit_code == 0, registered.stderr
    study_id = str(registered.json()["id"])
    assert registered.json()["sites"] == [hospital_site.address, clinic_site.address]
    added = medledger("trial", "add-site", study_id, lab.address, "--account", "dev:13")
    assert added.exit_code == 0 and lab.address in added.stdout
    monitored = medledger("trial", "add-monitor", study_id, monitor.address, "--account", "dev:13",
                          "--json")  # fmt: skip
    assert monitored.json()["monitors"] == [monitor.address]
    summary = tmp_path / "summary.txt"
    summary.write_text("A study of anticoagulation after ablation.")
    assert medledger("trial", "publish-summary", study_id, str(summary),
                     "--account", "dev:13").exit_code == 0  # fmt: skip
    listed = medledger("trial", "list", "--json")
    assert [s["id"] for s in listed.json()] == [int(study_id)] and listed.json()[0]["summary"]

    for key, extra in (("P1_KEY", ()), ("P2_KEY", ("--no-sponsor", "--purpose",
                                                     "trial-and-future-research"))):  # fmt: skip
        signed = medledger("trial", "consent", study_id, "--site", hospital_site.address,
                           "--sign-only", "--out", str(tmp_path / f"{key}.json"), *extra,
                           "--account", f"env:{key}")  # fmt: skip
        assert signed.exit_code == 0, signed.stderr
        submitted = medledger("trial", "consent", "--submit", str(tmp_path / f"{key}.json"),
                              "--account", "dev:3", "--json")  # fmt: skip
        assert submitted.exit_code == 0, submitted.stderr
        assert submitted.json()["standing"] == "active"
    assert chain.w3.eth.get_balance(p1) == chain.w3.eth.get_balance(p2) == 0

    single = medledger("trial", "submit-data", study_id, str(tmp_path / "a.json"),
                       str(tmp_path / "b.json"), "--participant", p1, "--visit", "baseline",
                       "--account", "dev:3", "--json")  # fmt: skip
    assert single.exit_code == 0, single.stderr
    batch = medledger("trial", "submit-data", study_id, str(tmp_path / "c.json"),
                      str(tmp_path / "d.json"), "--participant", p2, "--visit", "baseline",
                      "--batch", "--account", "dev:3")  # fmt: skip
    assert batch.exit_code == 0 and "2 bodies anchored in batch 0x" in batch.stdout
    listed = medledger("trial", "data", study_id, "--json")
    assert len(listed.json()) == 4 and sum(bool(d["batch"]) for d in listed.json()) == 2
    first_id = single.json()["items"][0]["id"]
    read = medledger("trial", "read", study_id, first_id, *sign)
    assert read.exit_code == 0 and json.loads(read.stdout)["id"] == "a"
    one_line_error(medledger("trial", "read", study_id, first_id, "--account", "dev:9"),
                   "access to record")  # fmt: skip

    amended = medledger("trial", "amend", study_id, str(tmp_path / "v2.json"), "--reconsent",
                        "--reason", "add death", "--account", "dev:13")  # fmt: skip
    assert amended.exit_code == 0 and "every participant must re-consent" in amended.stdout
    one_line_error(
        medledger("trial", "submit-data", study_id, str(tmp_path / "a.json"), "--participant", p1,
                  "--visit", "week-4", "--account", "dev:3"),
        "consent is stale",
    )  # fmt: skip
    resigned = medledger("trial", "consent", study_id, "--site", hospital_site.address,
                         "--sign-only", "--out", str(tmp_path / "again.json"), *sign)  # fmt: skip
    assert resigned.exit_code == 0, resigned.stderr
    assert medledger("trial", "consent", "--submit", str(tmp_path / "again.json"),
                     "--account", "dev:3").exit_code == 0  # fmt: skip

    withdrawal = tmp_path / "withdraw.json"
    assert medledger("trial", "withdraw", study_id, "--sign-only", "--out", str(withdrawal),
                     "--account", "env:P2_KEY").exit_code == 0  # fmt: skip
    relayed = medledger("trial", "withdraw", "--submit", str(withdrawal), "--account", "dev:9")
    assert relayed.exit_code == 0 and "withdrawn" in relayed.stdout
    one_line_error(
        medledger("trial", "submit-data", study_id, str(tmp_path / "c.json"), "--participant", p2,
                  "--visit", "week-4", "--account", "dev:3"),
        f"{p2} withdrew",
    )  # fmt: skip
    fund(chain, p1)
    direct = medledger("trial", "withdraw", study_id, *sign, "--json")
    assert direct.exit_code == 0 and direct.json()["standing"] == "withdrawn"

    shown = medledger("trial", "show", study_id)
    assert shown.exit_code == 0 and "gas" in shown.stdout and "re-consent" in shown.stdout
    detail = medledger("trial", "show", study_id, "--json").json()
    assert [p["standing"] for p in detail["participants_detail"]] == ["withdrawn", "withdrawn"]
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    study_fhir = medledger("trial", "show", study_id, "--fhir")
    ResearchStudy.model_validate(json.loads(study_fhir.stdout))
    subject = medledger("trial", "show", study_id, "--participant", p2, "--fhir")
    ResearchSubject.model_validate(json.loads(subject.stdout))
    assert json.loads(subject.stdout)["status"] == "withdrawn"
    standing = medledger("trial", "show", study_id, "--participant", p1)
    assert standing.exit_code == 0 and "withdrawn" in standing.stdout
    document = medledger("trial", "show", study_id, "--protocol", "--version", "1")
    assert document.stdout.encode() == protocol()

    audited = medledger("trial", "audit", study_id, "--account", "dev:13")
    assert audited.exit_code == 0 and "audit: passed" in audited.stdout, audited.stdout

    link = tmp_path / "link.json"
    linked = medledger("trial", "link-proof", study_id, "--record-account", "dev:5",
                       "--out", str(link), *sign)  # fmt: skip
    assert linked.exit_code == 0, linked.stderr
    assert link.stat().st_mode & 0o077 == 0  # it links two identities: kept private
    checked = medledger("trial", "verify-link", str(link), "--json")
    assert checked.exit_code == 0 and checked.json()["record_address"] == dev_account(5).address
    forged = json.loads(link.read_text())
    forged["record_address"] = dev_account(6).address
    link.write_text(json.dumps(forged))
    one_line_error(medledger("trial", "verify-link", str(link)), "not a valid identity link")


def test_cli_cancels_a_signed_consent_in_one_line(
    chain, medledger, tmp_path, monkeypatch, study, hospital_site, participant
):
    monkeypatch.setenv("P1_KEY", "0x" + bytes(participant.key).hex())
    signed = tmp_path / "consent.json"
    assert medledger("trial", "consent", str(study.id), "--site", hospital_site.address,
                     "--sign-only", "--out", str(signed),
                     "--account", "env:P1_KEY").exit_code == 0  # fmt: skip
    one_line_error(medledger("trial", "cancel-signatures", "--signed", str(signed),
                             "--account", "env:P1_KEY"), "has no ETH")  # fmt: skip
    fund(chain, participant.address)
    cancelled = medledger("trial", "cancel-signatures", "--signed", str(signed),
                          "--account", "env:P1_KEY")  # fmt: skip
    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.stdout.strip().splitlines() == [
        f"consents and withdrawals {participant.address} signed with nonce 0 can no longer be "
        "submitted"
    ]
    one_line_error(medledger("trial", "cancel-signatures", "--signed", str(signed),
                             "--account", "env:P1_KEY"), "there is nothing to cancel")  # fmt: skip
    one_line_error(medledger("trial", "consent", "--submit", str(signed), "--account", "dev:3"),
                   "already used or superseded")  # fmt: skip
    again = medledger("trial", "cancel-signatures", "--account", "env:P1_KEY", "--json")
    assert again.exit_code == 0 and again.json() == {
        "participant": participant.address, "cancelled_nonce": 1,
    }  # fmt: skip


def test_cli_audit_exits_non_zero_naming_the_altered_body(
    chain, store, medledger, study, hospital_site, participant, enrolled
):
    (item,) = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline", [observation("z")]
    ).items
    original = store.get_block(item.cid)
    tamper_with_block(store, item.cid, original[:-1] + bytes([original[-1] ^ 0xFF]))
    try:
        outcome = medledger("trial", "audit", str(study.id))
    finally:
        tamper_with_block(store, item.cid, original)
    one_line_error(outcome, f"study {study.id} audit failed with 1 violation(s)")
    assert item.hex_id in outcome.stderr and "FAIL" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trial", "show", "9"], "study 9 is not registered"),
        (["trial", "audit", "3"], "study 3 is not registered"),
        (["trial", "consent", "1"], "the participant signs (--sign-only --out FILE)"),
        (["trial", "consent", "1", "--sign-only"], "--sign-only writes the signed document"),
        (["trial", "read", "1", "0x12"], "is not a 0x-prefixed 32-byte id"),
        (["trial", "withdraw"], "name the STUDY_ID"),
        (
            f"trial consent 1 --site 0x{'0' * 40} --sign-only --out x --purpose forever".split(),
            "unknown consent purpose 'forever'",
        ),
        (["trial", "register", "pyproject.toml", "--account", "dev:13"], "not valid JSON"),
    ],
    ids=[
        "unknown-study",
        "audit-unknown",
        "consent-how",
        "sign-without-out",
        "bad-data-id",
        "withdraw-what",
        "bad-purpose",
        "protocol-not-json",
    ],
)
def test_cli_errors_are_one_line_with_a_non_zero_exit(
    medledger, sponsor, args, message, monkeypatch
):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    one_line_error(medledger(*args), message)


# ---------------------------------------------------------------------------- stateful


@pytest.fixture
def trial_world(chain, store, study, hospital_site, sponsor):
    """The study of ``study`` and three pseudonymous participants; examples revert to it."""
    chain.forget_blocks()
    return {
        "chain": chain, "store": store, "study": study, "site": hospital_site,
        "sponsor": sponsor, "people": [Account.create() for _ in range(3)],
    }  # fmt: skip


def make_trial_machine(world: dict) -> type:
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

    chain, store, study = world["chain"], world["store"], world["study"]
    site, sponsor, people = world["site"], world["sponsor"], world["people"]
    contract = trials.trial_registry(chain)

    def rpc(method: str, params: list) -> object:
        return chain.w3.provider.make_request(method, params)["result"]

    class TrialMachine(RuleBasedStateMachine):
        """A model of versions, consents, withdrawals and data; the chain must agree."""

        def __init__(self) -> None:
            super().__init__()
            self.snapshot = rpc("evm_snapshot", [])
            chain.forget_blocks()
            self.version, self.required, self.data = 1, 1, 0
            self.consented: dict[str, int] = {}
            self.withdrawn: set[str] = set()

        def teardown(self) -> None:
            try:
                report = trials.audit(chain, store, study.id, reader=site)
                assert report.ok, report.violations
            finally:
                rpc("evm_revert", [self.snapshot])
                chain.forget_blocks()

        @initialize()
        def two_enrol(self) -> None:
            for who in people[:2]:  # the third starts out of the study
                trials.submit_consent(chain, site, trials.sign_consent(chain, who, study.id,
                                                                       site.address))  # fmt: skip
                self.consented[who.address] = 1

        def active(self, who: str) -> bool:
            return (
                who in self.consented
                and who not in self.withdrawn
                and self.consented[who] >= self.required
            )

        @rule(index=st.integers(0, 2))
        def consent(self, index: int) -> None:
            who = people[index]
            allowed = who.address not in self.withdrawn and (
                self.consented.get(who.address, 0) < self.version
            )
            if not allowed:
                with pytest.raises(PreconditionFailed):
                    trials.sign_consent(chain, who, study.id, site.address)
                return
            document = trials.sign_consent(chain, who, study.id, site.address)
            trials.submit_consent(chain, site, document)
            self.consented[who.address] = self.version

        @rule(reconsent=st.booleans())
        def amend(self, reconsent: bool) -> None:
            trials.amend(chain, store, sponsor, study.id, protocol(), requires_reconsent=reconsent,
                         reason="amendment")  # fmt: skip
            self.version += 1
            if reconsent:
                self.required = self.version

        @rule(index=st.integers(0, 2), signed=st.booleans())
        def withdraw(self, index: int, signed: bool) -> None:
            who = people[index]
            if who.address not in self.consented or who.address in self.withdrawn:
                with pytest.raises(PreconditionFailed):
                    trials.sign_withdrawal(chain, who, study.id)
                return
            trials.submit_withdrawal(chain, sponsor, trials.sign_withdrawal(chain, who, study.id))
            self.withdrawn.add(who.address)

        @rule(index=st.integers(0, 2), count=st.integers(1, 3), batch=st.booleans())
        def submit(self, index: int, count: int, batch: bool) -> None:
            who = people[index].address
            bodies = [observation(f"s{self.data}-{i}") for i in range(count)]
            if not self.active(who):
                with pytest.raises(PreconditionFailed):
                    trials.submit_data(chain, store, site, study.id, who, "visit", bodies,
                                       batch=batch)  # fmt: skip
                return
            done = trials.submit_data(chain, store, site, study.id, who, "visit", bodies,
                                      batch=batch)  # fmt: skip
            assert [i.version for i in done.items] == [self.version] * count
            self.data += count

        @invariant()
        def the_chain_agrees_with_the_model(self) -> None:
            current = trials.get_study(chain, study.id)
            assert (current.current_version, current.reconsent_version) == (
                self.version, self.required,
            )  # fmt: skip
            assert current.data_count == self.data
            for who in people:
                live = contract.functions.isConsentCurrent(study.id, who.address).call()
                assert live == self.active(who.address), who.address

    return TrialMachine


@pytest.mark.slow  # runs in `make test`; kept out of `make test-fast` (seconds)
def test_trial_lifecycle_agrees_with_the_model(trial_world):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        make_trial_machine(trial_world),
        settings=settings(
            max_examples=6, stateful_step_count=10, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )  # fmt: skip


@pytest.mark.parametrize("batch", [False, True])
def test_data_submitted_again_is_reported_and_written_once(
    chain, store, study, hospital_site, participant, enrolled, batch
):
    first = trials.submit_data(
        chain, store, hospital_site, study.id, participant.address, "baseline",
        [observation("x1"), observation("x2")], batch=batch,
    )  # fmt: skip
    head = chain.w3.eth.block_number
    again = trials.submit_data(  # a re-run, with one body named twice and one new
        chain, store, hospital_site, study.id, participant.address, "baseline",
        [observation("x1"), observation("x2"), observation("x1"), observation("x3")], batch=batch,
    )  # fmt: skip
    assert [i.id for i in again.items[:3]] == [*(i.id for i in first.items), first.items[0].id]
    assert again.skipped == (0, 1, 2)
    assert chain.w3.eth.block_number == head + 1  # only x3 was written
    ids = [i.id for i in trials.data(chain, store, study.id, participant.address)]
    assert len(ids) == len(set(ids)) == 3
