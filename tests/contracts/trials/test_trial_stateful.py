"""Stateful test of a study's lifecycle against a Python model.

Hypothesis enrols and re-consents participants (at either site, for the version in force or a
stale one, with valid or unknown reader bits; or signed earlier and relayed later, after the
outcomes they were signed for may have changed or their nonce was used), amends the protocol
(with or without re-consent, sometimes editing the new version's outcomes between a signature
and its relay), edits outcome definitions, lets the sponsor (or its practitioner) try to switch
the outcomes of any version (known or not, with or without a primary outcome), withdraws
participants (signed and relayed, by their delegate, or by someone who may not), submits data
(single bodies, duplicates, positional Merkle batches, each proven at its position and refused
beyond the declared count; from the enrolling site, its practitioner or the other site) and
lets time pass, in random order. Every step checks the exact events the model predicts, or the exact
custom error with all its arguments; a rejected move is checked with ``support.call_reverts``
(an ``eth_call`` of the same transaction). The model freezes a version's outcomes at its first
consent or first data, and predicts ``TrialOutcomesFrozen`` exactly for those versions; a
consent carries the model's protocol hash of its version when signed, and the model predicts
``TrialProtocolChanged`` exactly when that version's outcomes changed since.

After every step that mined a block, the invariants check that:

* every accepted data point's participant was active and current at submission, both in the
  model and as the chain's own event log tells it (consents, withdrawals and re-consent
  amendments before the data event);
* no outcome definition of a version with a consent or data ever changes (no
  ``OutcomesDefined`` after the version's first ``ConsentRecorded``, ``DataSubmitted`` or
  ``DataBatchSubmitted``), the stored outcomes are the model's, ``protocolHashOf`` each
  version is the hash of the model's protocol digest and outcomes, and each version's
  ``outcomesFrozenAt`` is the block time of that first event (zero before it), read both from
  the model and from the chain's own log;
* each participant's consent history read from the events (and their stored standing) is the
  model's, and the study's counters are the model's.

Each example runs between a chain snapshot and its restore, so examples start from the same
chain: the world of ``conftest.py`` and one registered study.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi import decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ..support import ZERO_ADDRESS, assert_events, call_reverts, digest, indexed_tree
from .helpers import (
    HOUR,
    READERS_ALL,
    ZERO32,
    ConsentPurpose,
    Protocol,
    as_dict,
    batch_id,
    data_id,
    hash_protocol,
    typed_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI
    from eth_account.signers.local import LocalAccount

    from .conftest import Study


MAX_VERSIONS = 5  # amendments stop there, so that an example spends its steps elsewhere too
MAX_PENDING = 3  # consents signed and not yet relayed
VISITS = [digest("visit-baseline"), digest("visit-week-4")]


def examples(chain: Any) -> int:
    """8 examples of 25 steps on eth-tester (30-40 s measured), 10 on Anvil (40-65 s, where
    every transaction goes over HTTP); ``TRIAL_STATEFUL_EXAMPLES`` overrides both."""
    if override := os.environ.get("TRIAL_STATEFUL_EXAMPLES"):
        return int(override)
    return 10 if chain.provider.name == "foundry" else 8


def topic(signature: str) -> HexBytes:
    return HexBytes(keccak(text=signature))


CONSENT_RECORDED = topic(
    "ConsentRecorded(uint64,address,address,uint32,uint8,uint8,address,bool,bytes)"
)
PARTICIPANT_WITHDRAWN = topic("ParticipantWithdrawn(uint64,address,address)")
VERSION_REGISTERED = topic("ProtocolVersionRegistered(uint64,uint32,bytes32,bool,bool,string)")
OUTCOMES_DEFINED = topic("OutcomesDefined(uint64,uint32,bytes32,bytes32)")
DATA_SUBMITTED = topic(
    "DataSubmitted(uint64,address,bytes32,bytes32,uint32,bytes32,bytes32,address)"
)
BATCH_SUBMITTED = topic(
    "DataBatchSubmitted(uint64,address,bytes32,bytes32,uint32,bytes32,bytes32,uint32,address)"
)


# ---------------------------------------------------------------------------- model


@dataclass
class ModelParticipant:
    site: str = ZERO_ADDRESS
    consented: int = 0
    enrolled_at: int = 0
    purpose: int = 0
    readers: int = 0
    delegate: str = ZERO_ADDRESS
    withdrawn_at: int = 0
    history: list[tuple[int, str, int, int, str, bool]] = field(default_factory=list)
    withdrawals: list[str] = field(default_factory=list)

    @property
    def enrolled(self) -> bool:
        return self.site != ZERO_ADDRESS


@dataclass
class ModelVersion:
    primary: HexBytes
    secondary: HexBytes
    requires_reconsent: bool
    protocol_digest: HexBytes
    frozen_at: int = 0  # block time of the version's first consent or first data

    @property
    def frozen(self) -> bool:
        return self.frozen_at != 0

    @property
    def hash(self) -> HexBytes:
        """What a consent to the version, signed now, carries as its ``protocolHash``."""
        return hash_protocol(self.protocol_digest, self.primary, self.secondary)

    def freeze(self, at: int) -> None:
        """The first consent or data freezes; later ones leave the time as it was."""
        if not self.frozen_at:
            self.frozen_at = at


@dataclass
class Model:
    """What the TrialRegistry should hold for the study."""

    versions: dict[int, ModelVersion]
    participants: dict[str, ModelParticipant]
    current: int = 1
    reconsent: int = 1
    data_count: int = 0
    nonces: dict[str, int] = field(default_factory=dict)
    accepted: list[tuple[str, bool]] = field(default_factory=list)  # (participant, current?)
    singles: dict[tuple[str, int], list[tuple[HexBytes, HexBytes, HexBytes]]] = field(
        default_factory=dict
    )

    def is_current(self, who: str) -> bool:
        p = self.participants[who]
        return p.enrolled and p.withdrawn_at == 0 and p.consented >= self.reconsent


# ---------------------------------------------------------------------------- the test


def test_study_lifecycle_follows_the_model(
    chain: Any,
    trial_registry: Any,
    register_study: Callable[..., Study],
    participants: list[LocalAccount],
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    sponsor: AccountAPI,
    investigator: AccountAPI,
    monitor: AccountAPI,
    stranger: AccountAPI,
    isolated: Callable[[], Any],
    advance_time: Callable[[int], int],
) -> None:
    registry = trial_registry
    study = register_study(sites=[hospital, clinic])  # rolled back by Ape after the test
    sid = study.id
    # Three participants, so that each meets many moves in 25 steps; when an example begins the
    # first is enrolled at the hospital and the second at the clinic (the third not at all), so
    # that data moves have someone to act on. Data moves favour the first two.
    keys = {p.address: p for p in participants[:3]}
    addresses = list(keys)
    institution_of = {hospital.address: hospital.address, doctor.address: hospital.address}
    institution_of[clinic.address] = clinic.address
    web3 = chain.provider.web3  # logs and block numbers: web3 formats them on both networks
    labels = itertools.count()

    def head() -> int:
        return int(chain.blocks.head.timestamp)

    def block_time(receipt: Any) -> int:
        return int(chain.blocks[receipt.block_number].timestamp)

    def block_number() -> int:
        return int(web3.eth.block_number)

    def logs(since: int) -> list[Any]:
        found = web3.eth.get_logs({"address": registry.address, "fromBlock": since})
        return sorted(found, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))

    class StudyLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._isolation = isolated()
            self._isolation.__enter__()
            self.start_block = block_number() + 1
            self.model = Model(
                versions={
                    1: ModelVersion(
                        study.protocol.primary_outcomes,
                        study.protocol.secondary_outcomes,
                        False,
                        study.protocol.protocol_digest,
                    )
                },
                participants={a: ModelParticipant() for a in addresses},
                nonces=dict.fromkeys(addresses, 0),
            )
            self._checked_at = -1
            self._timestamps: dict[int, int] = {}
            # Consents signed and not relayed yet: (participant, site, request, signature).
            self.pending: list[tuple[str, AccountAPI, dict[str, Any], HexBytes]] = []

        def teardown(self) -> None:
            self._isolation.__exit__(None, None, None)

        # ------------------------------------------------------------ rules

        @initialize()
        def enrol_two_participants(self) -> None:
            self.consent(addresses[0], hospital, False, 3, ConsentPurpose.TRIAL_ONLY, True)
            self.consent(addresses[1], clinic, False, 1, ConsentPurpose.TRIAL_ONLY, False)

        @rule(
            who=st.sampled_from(addresses),
            site=st.sampled_from([hospital, hospital, clinic]),
            stale=st.sampled_from([False, False, False, True]),
            readers=st.sampled_from([0, 1, 2, 3, 3, 4]),
            purpose=st.sampled_from(
                [ConsentPurpose.TRIAL_ONLY, ConsentPurpose.TRIAL_AND_FUTURE_RESEARCH]
            ),
            with_delegate=st.booleans(),
        )
        def consent(
            self,
            who: str,
            site: AccountAPI,
            stale: bool,
            readers: int,
            purpose: ConsentPurpose,
            with_delegate: bool,
        ) -> None:
            version = self.model.current - 1 if stale else self.model.current
            delegate = monitor.address if with_delegate else ZERO_ADDRESS
            request, signature = self.sign(who, site, version, readers, purpose, delegate, HOUR)
            self.relay(who, site, request, signature)

        def sign(
            self,
            who: str,
            site: AccountAPI,
            version: int,
            readers: int,
            purpose: ConsentPurpose,
            delegate: str,
            valid_for: int,
        ) -> tuple[dict[str, Any], HexBytes]:
            """The participant signs a consent to ``version`` as the model holds it now (a
            version that does not exist gets a zero hash: it is refused before the hash)."""
            model = self.model
            known = model.versions.get(version)
            request = {
                "studyId": sid,
                "version": version,
                "protocolHash": known.hash if known is not None else ZERO32,
                "site": site.address,
                "participant": who,
                "purpose": int(purpose),
                "readers": readers,
                "delegate": delegate,
                "nonce": model.nonces[who],
                "deadline": head() + valid_for,
            }
            signable = typed_message(chain.chain_id, registry.address, "ConsentRequest", request)
            return request, HexBytes(Account.sign_message(signable, keys[who].key).signature)

        def relay(
            self, who: str, site: AccountAPI, request: dict[str, Any], signature: HexBytes
        ) -> None:
            """The site relays a signed consent: the model predicts the refusal (nonce, version
            in force, protocol hash, terms, standing, in the contract's order) or the events."""
            model, p = self.model, self.model.participants[who]
            version, readers, purpose = request["version"], request["readers"], request["purpose"]
            delegate, nonce = request["delegate"], request["nonce"]
            refusal: tuple[Any, dict[str, Any]] | None = None
            if nonce != model.nonces[who]:
                refusal = (
                    registry.TrialSignatureReplayed,
                    {"participant": who, "nonce": nonce, "expectedNonce": model.nonces[who]},
                )
            elif version != model.current:
                refusal = (
                    registry.TrialVersionNotInForce,
                    {"studyId": sid, "version": version, "currentVersion": model.current},
                )
            elif request["protocolHash"] != model.versions[version].hash:
                refusal = (
                    registry.TrialProtocolChanged,
                    {
                        "studyId": sid,
                        "version": version,
                        "signed": request["protocolHash"],
                        "current": model.versions[version].hash,
                    },
                )
            elif readers > 3:
                refusal = (registry.TrialInvalidConsent, {})
            elif p.enrolled and p.withdrawn_at:
                refusal = (
                    registry.TrialParticipantWithdrawn,
                    {"studyId": sid, "participant": who, "withdrawnAt": p.withdrawn_at},
                )
            elif p.enrolled and p.site != site.address:
                refusal = (
                    registry.TrialSiteMismatch,
                    {"site": site.address, "enrollingSite": p.site},
                )
            elif p.enrolled and model.current <= p.consented:
                refusal = (
                    registry.TrialAlreadyConsented,
                    {"studyId": sid, "participant": who, "version": model.current},
                )
            if refusal is not None:
                error, inputs = refusal
                call_reverts(
                    registry.consent, request, signature, sender=site, error=error, **inputs
                )
                return

            tx = registry.consent(request, signature, sender=site)
            enrolment = not p.enrolled
            assert_events(
                tx,
                registry.ConsentRecorded(
                    studyId=sid,
                    participant=who,
                    site=site.address,
                    version=version,
                    purpose=int(purpose),
                    readers=readers,
                    delegate=delegate,
                    enrolment=enrolment,
                    signature=signature,
                ),
            )
            if enrolment:
                p.site, p.enrolled_at = site.address, block_time(tx)
            p.consented, p.purpose, p.readers, p.delegate = version, int(purpose), readers, delegate
            p.history.append((version, site.address, int(purpose), readers, delegate, enrolment))
            model.nonces[who] += 1
            model.versions[version].freeze(block_time(tx))

        @rule(who=st.sampled_from(addresses), readers=st.sampled_from([0, 1, 2, 3]))
        def reconsent(self, who: str, readers: int) -> None:
            """A consent at the participant's own site for the version in force: a re-consent
            (or a refusal, as the model says) for the enrolled, an enrolment for the others."""
            site = {clinic.address: clinic}.get(self.model.participants[who].site, hospital)
            self.consent(who, site, False, readers, ConsentPurpose.TRIAL_ONLY, False)

        @precondition(lambda self: len(self.pending) < MAX_PENDING)
        @rule(who=st.sampled_from(addresses), readers=st.sampled_from([0, 3]))
        def sign_for_later(self, who: str, readers: int) -> None:
            """The participant signs a consent to the version in force at their own site (a
            week's deadline) that the site relays only later: meanwhile the version's outcomes
            may change, another version may come in force or the nonce may be used."""
            site = {clinic.address: clinic}.get(self.model.participants[who].site, hospital)
            request, signature = self.sign(
                who, site, self.model.current, readers, ConsentPurpose.TRIAL_ONLY, ZERO_ADDRESS,
                7 * 24 * HOUR,
            )  # fmt: skip
            self.pending.append((who, site, request, signature))

        @precondition(lambda self: self.pending)
        @rule(pick=st.integers(0, MAX_PENDING - 1))
        def relay_signed_earlier(self, pick: int) -> None:
            self.relay(*self.pending.pop(pick % len(self.pending)))

        @precondition(lambda self: self.model.current < MAX_VERSIONS)
        @rule(
            requires_reconsent=st.sampled_from([False, False, True]),
            then_reconsent=st.lists(st.sampled_from(addresses), unique=True, max_size=2),
            then_collect=st.sampled_from([None, *addresses[:2]]),
            edit_after_signing=st.sampled_from([None, None, *addresses]),
        )
        def amend(
            self,
            requires_reconsent: bool,
            then_reconsent: list[str],
            then_collect: str | None,
            edit_after_signing: str | None,
        ) -> None:
            """Amends; maybe a participant then signs a consent to the new version and the
            sponsor edits that version's outcomes before the site relays it (the finding that
            brought ``protocolHash``: the consent must not count for outcomes the participant
            was not shown); then the sites collect re-consents from some participants (which the
            model may refuse, for a withdrawn participant say), so that stale participants come
            back, and maybe a body from one participant at their site, after which the sponsor
            tries to switch the new version's outcomes (review finding 7): after an amendment
            without re-consent, that body is what froze them."""
            model = self.model
            protocol = Protocol.of(f"lifecycle-{next(labels)}")
            version = model.current + 1
            tx = registry.amendProtocol(
                sid, protocol.args, requires_reconsent, "amendment", sender=sponsor
            )
            assert_events(
                tx,
                registry.ProtocolVersionRegistered(
                    studyId=sid,
                    version=version,
                    protocolDigest=protocol.protocol_digest,
                    encrypted=False,
                    requiresReconsent=requires_reconsent,
                    reason="amendment",
                ),
                registry.OutcomesDefined(
                    studyId=sid,
                    version=version,
                    primaryOutcomes=protocol.primary_outcomes,
                    secondaryOutcomes=protocol.secondary_outcomes,
                ),
            )
            model.current = version
            if requires_reconsent:
                model.reconsent = version
            model.versions[version] = ModelVersion(
                protocol.primary_outcomes,
                protocol.secondary_outcomes,
                requires_reconsent,
                protocol.protocol_digest,
            )
            if edit_after_signing is not None:
                who = edit_after_signing
                site = {clinic.address: clinic}.get(model.participants[who].site, hospital)
                signed = self.sign(
                    who, site, version, READERS_ALL, ConsentPurpose.TRIAL_ONLY, ZERO_ADDRESS, HOUR
                )
                self.set_outcomes(version - 1)  # the version just amended, not frozen yet
                self.relay(who, site, *signed)
            for who in then_reconsent:
                self.reconsent(who, READERS_ALL)
            if then_collect is not None:
                site = {clinic.address: clinic}.get(model.participants[then_collect].site, hospital)
                self.submit(then_collect, site, 0, False, VISITS[0])
                self.sponsor_tries_to_switch_outcomes(None, False, False)  # finding 7

        @rule(pick=st.integers(0, 100))
        def set_outcomes(self, pick: int) -> None:
            model = self.model
            version = 1 + pick % model.current
            primary, secondary = digest(f"edited-{next(labels)}"), digest(f"edited-{next(labels)}")
            args = (sid, version, primary, secondary)
            if model.versions[version].frozen:
                call_reverts(
                    registry.setOutcomes,
                    *args,
                    sender=sponsor,
                    error=registry.TrialOutcomesFrozen,
                    studyId=sid,
                    version=version,
                )
                return
            tx = registry.setOutcomes(*args, sender=sponsor)
            assert_events(
                tx,
                registry.OutcomesDefined(
                    studyId=sid,
                    version=version,
                    primaryOutcomes=primary,
                    secondaryOutcomes=secondary,
                ),
            )
            model.versions[version].primary = primary
            model.versions[version].secondary = secondary

        @rule(
            pick=st.one_of(st.none(), st.integers(0, 100)),
            by_investigator=st.booleans(),
            zero_primary=st.sampled_from([False, False, False, True]),
        )
        def sponsor_tries_to_switch_outcomes(
            self, pick: int | None, by_investigator: bool, zero_primary: bool
        ) -> None:
            """The sponsor (or its practitioner) tries to redefine the outcomes of any version,
            0 and the one after the current one included (half the time the version in force,
            the one that data is being collected under): the model predicts the unknown
            version, then ``TrialOutcomesFrozen`` exactly when the version had a consent or
            data, then the missing primary outcome; otherwise the switch is allowed."""
            model = self.model
            version = model.current if pick is None else pick % (model.current + 2)
            sender = investigator if by_investigator else sponsor
            primary = ZERO32 if zero_primary else digest(f"switched-{next(labels)}")
            secondary = digest(f"switched-{next(labels)}")
            args = (sid, version, primary, secondary)
            refusal: tuple[Any, dict[str, Any]] | None = None
            if version not in model.versions:
                refusal = (registry.TrialUnknownVersion, {"studyId": sid, "version": version})
            elif model.versions[version].frozen:
                refusal = (registry.TrialOutcomesFrozen, {"studyId": sid, "version": version})
            elif zero_primary:
                refusal = (registry.TrialInvalidProtocol, {})
            if refusal is not None:
                error, inputs = refusal
                call_reverts(registry.setOutcomes, *args, sender=sender, error=error, **inputs)
                return
            tx = registry.setOutcomes(*args, sender=sender)
            assert_events(
                tx,
                registry.OutcomesDefined(
                    studyId=sid,
                    version=version,
                    primaryOutcomes=primary,
                    secondaryOutcomes=secondary,
                ),
            )
            model.versions[version].primary = primary
            model.versions[version].secondary = secondary

        @rule(seconds=st.sampled_from([1, 60, HOUR]))
        def time_passes(self, seconds: int) -> None:
            """So that a later consent or data lands at a later time than the freeze."""
            advance_time(seconds)

        @rule(
            who=st.sampled_from(addresses), how=st.sampled_from(["signed", "delegate", "stranger"])
        )
        def withdraw(self, who: str, how: str) -> None:
            model, p = self.model, self.model.participants[who]
            if how == "signed":
                request = {
                    "studyId": sid,
                    "participant": who,
                    "nonce": model.nonces[who],
                    "deadline": head() + HOUR,
                }
                signable = typed_message(
                    chain.chain_id, registry.address, "WithdrawalRequest", request
                )
                signature = Account.sign_message(signable, keys[who].key).signature
                send: Any = (registry.withdrawWithSignature, (request, signature), stranger)
                by = stranger
                refusal = self._withdraw_refusal(who, p)
            else:
                caller = monitor if how == "delegate" else stranger
                send = (registry.withdraw, (sid, who), caller)
                by = caller
                if p.delegate != caller.address:
                    refusal = (
                        registry.TrialNotParticipantOrDelegate,
                        {"caller": caller.address, "participant": who},
                    )
                else:
                    refusal = self._withdraw_refusal(who, p)
            method, args, sender = send
            if refusal is not None:
                error, inputs = refusal
                call_reverts(method, *args, sender=sender, error=error, **inputs)
                return
            tx = method(*args, sender=sender)
            assert_events(
                tx, registry.ParticipantWithdrawn(studyId=sid, participant=who, by=by.address)
            )
            p.withdrawn_at = block_time(tx)
            p.withdrawals.append(by.address)
            if how == "signed":
                model.nonces[who] += 1

        def _withdraw_refusal(
            self, who: str, p: ModelParticipant
        ) -> tuple[Any, dict[str, Any]] | None:
            if not p.enrolled:
                return registry.TrialNotEnrolled, {"studyId": sid, "participant": who}
            if p.withdrawn_at:
                return registry.TrialParticipantWithdrawn, {
                    "studyId": sid,
                    "participant": who,
                    "withdrawnAt": p.withdrawn_at,
                }
            return None

        @rule(
            who=st.sampled_from([*addresses[:2], *addresses]),
            sender=st.sampled_from([hospital, doctor, clinic]),
            size=st.sampled_from([0, 0, 1, 3]),  # 0: a single body
            duplicate=st.booleans(),
            visit=st.sampled_from(VISITS),
        )
        def submit(
            self, who: str, sender: AccountAPI, size: int, duplicate: bool, visit: HexBytes
        ) -> None:
            model, p = self.model, self.model.participants[who]
            version = model.current
            earlier = model.singles.get((who, version), [])
            if size == 0 and duplicate and earlier:
                visit, cid, salted = earlier[0]
            else:
                cid, salted = digest(f"cid-{next(labels)}"), digest(f"salt-{next(labels)}")
            if size == 0:
                body_id = data_id(
                    chain.chain_id, registry.address, sid, who, visit, version, cid, salted
                )
                method: Any = registry.submitData
                args: tuple[Any, ...] = (sid, who, visit, cid, salted)
            else:
                bodies = [
                    (digest(f"bcid-{next(labels)}"), digest(f"bsalt-{next(labels)}"))
                    for _ in range(size)
                ]
                ids = [
                    data_id(chain.chain_id, registry.address, sid, who, visit, version, c, m)
                    for c, m in bodies
                ]
                root, proofs = indexed_tree(ids)
                manifest = digest(f"manifest-{next(labels)}")
                method = registry.submitDataBatch
                args = (sid, who, visit, root, manifest, size)
            refusal: tuple[Any, dict[str, Any]] | None = None
            if not p.enrolled:
                refusal = (registry.TrialNotEnrolled, {"studyId": sid, "participant": who})
            elif institution_of[sender.address] != p.site:
                refusal = (
                    registry.TrialNotParticipantSite,
                    {"caller": sender.address, "site": p.site},
                )
            elif p.withdrawn_at:
                refusal = (
                    registry.TrialParticipantWithdrawn,
                    {"studyId": sid, "participant": who, "withdrawnAt": p.withdrawn_at},
                )
            elif p.consented < model.reconsent:
                refusal = (
                    registry.TrialConsentStale,
                    {
                        "studyId": sid,
                        "participant": who,
                        "consentedVersion": p.consented,
                        "requiredVersion": model.reconsent,
                    },
                )
            elif size == 0 and duplicate and earlier:
                refusal = (registry.TrialDataAlreadySubmitted, {"id": body_id})
            if refusal is not None:
                error, inputs = refusal
                call_reverts(method, *args, sender=sender, error=error, **inputs)
                return

            tx = method(*args, sender=sender)
            if size == 0:
                expected = registry.DataSubmitted(
                    studyId=sid,
                    participant=who,
                    dataId=body_id,
                    visit=visit,
                    version=version,
                    cidDigest=cid,
                    commitment=salted,
                    site=p.site,
                )
                model.singles.setdefault((who, version), []).append((visit, cid, salted))
            else:
                batch = batch_id(chain.chain_id, registry.address, sid, who, visit, root)
                expected = registry.DataBatchSubmitted(
                    studyId=sid,
                    participant=who,
                    batchId=batch,
                    visit=visit,
                    version=version,
                    root=root,
                    manifestDigest=manifest,
                    count=size,
                    site=p.site,
                )
                position = len(model.accepted) % size  # varies from batch to batch
                cid, salted = bodies[position]
                proof = proofs[position]
                proven = registry.verifyBatchData(
                    sid, who, visit, root, cid, salted, position, proof
                )
                assert HexBytes(proven) == ids[position]
                call_reverts(  # no position at or beyond the declared count is ever proven
                    registry.verifyBatchData, sid, who, visit, root, cid, salted, size, proof,
                    sender=stranger, error=registry.TrialDataNotInBatch,
                    batchId=batch, dataId=ids[position],
                )  # fmt: skip
            assert_events(tx, expected)
            model.data_count += size or 1
            model.accepted.append((who, model.is_current(who)))
            model.versions[version].freeze(block_time(tx))

        # ------------------------------------------------------------ invariants

        def chain_log(self) -> list[Any] | None:
            """The registry's events since the example began, once per new block (else None)."""
            number = block_number()
            if number == self._checked_at:
                return None
            self._checked_at = number
            self._log = logs(self.start_block)
            return self._log

        @invariant()
        def chain_matches_the_model(self) -> None:
            """One entry point, so that the event log is read once per block; each check below
            is a separate method so that a failure names the promise broken."""
            events = self.chain_log()
            if events is None:
                return
            self.check_accepted_data_was_from_active_current_participants(events)
            self.check_no_outcome_definition_of_a_frozen_version_changes(events)
            self.check_consent_history_from_events_matches_the_model(events)
            self.check_stored_standing_and_counters_match_the_model()

        def check_accepted_data_was_from_active_current_participants(
            self, events: list[Any]
        ) -> None:
            assert all(current for _, current in self.model.accepted), self.model.accepted
            consented: dict[str, int] = {}
            withdrawn: set[str] = set()
            required, in_force, data_events = 1, 1, 0
            for event in events:
                kind, topics = HexBytes(event["topics"][0]), event["topics"]
                body = HexBytes(event["data"])
                if kind == VERSION_REGISTERED:
                    in_force = _int(topics[2])
                    if decode(["bytes32", "bool", "bool", "string"], body)[2]:
                        required = in_force
                elif kind == CONSENT_RECORDED:
                    consented[_address(topics[2])] = decode(["uint32"], body[:32])[0]
                elif kind == PARTICIPANT_WITHDRAWN:
                    withdrawn.add(_address(topics[2]))
                elif kind in (DATA_SUBMITTED, BATCH_SUBMITTED):
                    data_events += 1
                    who = _address(topics[2])
                    version = decode(["bytes32", "uint32"], body[:64])[1]
                    assert who in consented, f"data for {who}, who never consented"
                    assert who not in withdrawn, f"data for {who} after their withdrawal"
                    assert consented[who] >= required, f"data for {who} on a stale consent"
                    assert version == in_force, (version, in_force)
            assert data_events == len(self.model.accepted)

        def check_no_outcome_definition_of_a_frozen_version_changes(
            self, events: list[Any]
        ) -> None:
            frozen_in_block: dict[int, int] = {}  # version: block of its first consent or data
            for event in events:
                kind, body = HexBytes(event["topics"][0]), HexBytes(event["data"])
                if kind == CONSENT_RECORDED:
                    version = decode(["uint32"], body[:32])[0]
                elif kind in (DATA_SUBMITTED, BATCH_SUBMITTED):
                    version = decode(["bytes32", "uint32"], body[:64])[1]
                elif kind == OUTCOMES_DEFINED:
                    version = _int(event["topics"][2])
                    assert version not in frozen_in_block, f"outcomes of {version} changed"
                    continue
                else:
                    continue
                frozen_in_block.setdefault(version, int(event["blockNumber"]))
            for version, modelled in self.model.versions.items():
                stored = registry.getProtocolVersion(sid, version)
                assert (
                    HexBytes(stored.protocol.primaryOutcomes),
                    HexBytes(stored.protocol.secondaryOutcomes),
                ) == (modelled.primary, modelled.secondary), version
                assert stored.outcomesFrozenAt == modelled.frozen_at, version
                assert HexBytes(registry.protocolHashOf(sid, version)) == modelled.hash, version
                block = frozen_in_block.get(version)
                from_log = 0 if block is None else self.timestamp_of(block)
                assert stored.outcomesFrozenAt == from_log, (version, block)

        def timestamp_of(self, block: int) -> int:
            if block not in self._timestamps:
                self._timestamps[block] = int(web3.eth.get_block(block)["timestamp"])
            return self._timestamps[block]

        def check_consent_history_from_events_matches_the_model(self, events: list[Any]) -> None:
            history: dict[str, list[tuple[int, str, int, int, str, bool]]] = {
                a: [] for a in addresses
            }
            withdrawals: dict[str, list[str]] = {a: [] for a in addresses}
            for event in events:
                kind, topics, body = (
                    HexBytes(event["topics"][0]),
                    event["topics"],
                    HexBytes(event["data"]),
                )
                if kind == CONSENT_RECORDED:
                    version, purpose, readers, delegate, enrolment, _ = decode(
                        ["uint32", "uint8", "uint8", "address", "bool", "bytes"], body
                    )
                    history[_address(topics[2])].append(
                        (
                            version,
                            _address(topics[3]),
                            purpose,
                            readers,
                            to_checksum_address(delegate),
                            enrolment,
                        )
                    )
                elif kind == PARTICIPANT_WITHDRAWN:
                    withdrawals[_address(topics[2])].append(
                        to_checksum_address(decode(["address"], body)[0])
                    )
            for who, p in self.model.participants.items():
                assert history[who] == p.history, who
                assert withdrawals[who] == p.withdrawals, who
                assert history[who][:1] == [] or history[who][0][5], "the first consent enrols"

        def check_stored_standing_and_counters_match_the_model(self) -> None:
            model = self.model
            for who, p in model.participants.items():
                assert as_dict(registry.getParticipation(sid, who)) == {
                    "site": p.site,
                    "consentedVersion": p.consented,
                    "enrolledAt": p.enrolled_at,
                    "purpose": p.purpose,
                    "readers": p.readers,
                    "withdrawnAt": p.withdrawn_at,
                    "delegate": p.delegate,
                    "consents": len(p.history),
                }, who
            stored = registry.getStudy(sid)
            enrolled = sum(p.enrolled for p in model.participants.values())
            assert (
                stored.currentVersion,
                stored.reconsentVersion,
                stored.participants,
                stored.dataCount,
            ) == (model.current, model.reconsent, enrolled, model.data_count)

    run_state_machine_as_test(
        StudyLifecycle,
        settings=settings(max_examples=examples(chain), stateful_step_count=25, deadline=None),
    )


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16)
    return int.from_bytes(bytes(value), "big")


def _address(word: Any) -> str:
    return to_checksum_address(HexBytes(word)[-20:])
