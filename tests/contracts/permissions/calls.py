"""One call per row of docs/permissions.md: the arguments that make it succeed for the
allowed callers, the same for every caller.

A builder takes the world and the caller and returns the call's arguments. Only the
self-referential functions (a caller registering, applying, publishing its own key, renouncing
its own role, accepting its own invitation) use the caller; every other builder ignores it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_utils import keccak

from ..support import (
    MAX_UINT40,
    NO_RECORD,
    REGISTRAR_ROLE,
    Category,
    Kind,
    digest,
    indexed_tree,
    key_proof,
    new_key,
    sign_digest,
)
from .conftest import (
    DAY,
    RESOLVER_ROLE,
    SCOPE_CATEGORY,
    TREATMENT,
    TRIAL_ONLY,
    USD,
    VISIT,
    category_scope,
    fresh_address,
    protocol,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import World

CALLS: dict[str, Callable[[World, Any], tuple[Any, ...]]] = {}


def call(row: str) -> Callable[[Callable[[World, Any], tuple[Any, ...]]], Any]:
    def register(builder: Callable[[World, Any], tuple[Any, ...]]) -> Any:
        if row in CALLS:
            raise ValueError(f"two builders for {row}")
        CALLS[row] = builder
        return builder

    return register


LAB_SCOPE = category_scope(Category.LAB)


def _own_key(world: World, actor: Any) -> tuple[bytes, bytes]:
    key = new_key()
    return key, key_proof(world.contracts["ProviderRegistry"], actor, key)


# ---------------------------------------------------------------------------- ProviderRegistry


@call("ProviderRegistry.applyAsInstitution")
def _apply(world: World, actor: Any) -> tuple[Any, ...]:
    return (Kind.HOSPITAL, "Applicant Hospital", *_own_key(world, actor))


@call("ProviderRegistry.approveInstitution")
def _approve(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.pending,)


@call("ProviderRegistry.suspendInstitution")
def _suspend(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.clinic, b"licence-lapsed".ljust(32, b"\0"))


@call("ProviderRegistry.addPractitioner")
def _add_practitioner(world: World, actor: Any) -> tuple[Any, ...]:
    return (fresh_address("candidate"),)


@call("ProviderRegistry.acceptPractitioner")
def _accept(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.hospital,)


@call("ProviderRegistry.removePractitioner")
def _remove(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.practitioner,)


@call("ProviderRegistry.registerPatient")
def _register(world: World, actor: Any) -> tuple[Any, ...]:
    return _own_key(world, actor)


@call("ProviderRegistry.registerPatientWithSignature")
def _register_signed(world: World, actor: Any) -> tuple[Any, ...]:
    registry = world.contracts["ProviderRegistry"]
    secret = keccak(text="permissions-newcomer")
    newcomer = Account.from_key(secret).address
    key = new_key()
    request = {
        "patient": newcomer,
        "key": key,
        "nonce": int(registry.nonces(newcomer)),
        "deadline": world.now() + 30 * DAY,
    }
    signature = sign_digest(secret, registry.registrationDigest(request))
    return (request, key_proof(registry, newcomer, key), signature)


@call("ProviderRegistry.publishEncryptionKey")
def _publish(world: World, actor: Any) -> tuple[Any, ...]:
    return _own_key(world, actor)


@call("ProviderRegistry.voteRegistrar")
def _vote_registrar(world: World, actor: Any) -> tuple[Any, ...]:
    return (fresh_address("registrar-candidate"), True)


@call("ProviderRegistry.voteThreshold")
def _vote_threshold(world: World, actor: Any) -> tuple[Any, ...]:
    return (3,)


@call("ProviderRegistry.setDelegate")
def _set_delegate(world: World, actor: Any) -> tuple[Any, ...]:
    return (fresh_address("guardian"), True)


@call("ProviderRegistry.authorizeCare")
def _authorize_care(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.laboratory, MAX_UINT40)


@call("ProviderRegistry.authorizeCareWithSignature")
def _authorize_care_signed(world: World, actor: Any) -> tuple[Any, ...]:
    registry = world.contracts["ProviderRegistry"]
    request = {
        "patient": world.patient.address,
        "institution": world.laboratory.address,
        "until": MAX_UINT40,
        "nonce": int(registry.nonces(world.patient)),
        "deadline": world.now() + 30 * DAY,
    }
    return (request, world.sign(world.patient, registry.careDigest(request)))


@call("ProviderRegistry.revokeCare")
def _revoke_care(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.hospital)


@call("ProviderRegistry.cancelSignatures")
def _cancel_care_signatures(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient,)


@call("ProviderRegistry.moveControl")
def _move_control(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, fresh_address("new-controller"))


@call("ProviderRegistry.freezeControl")
def _freeze_control(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, actor)


@call("ProviderRegistry.storeAttestation")
def _store_attestation(world: World, actor: Any) -> tuple[Any, ...]:
    attestation = (world.hospital.address, 1, world.now() + 30 * DAY, False)
    return (world.patient.address, 1, attestation)


# ---------------------------------------------------------------------------- PatientRecovery


@call("PatientRecovery.setGuardians")
def _set_guardians(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, [fresh_address("guardian-1"), fresh_address("guardian-2")], 2, DAY)


@call("PatientRecovery.applyGuardians")
def _apply_guardians(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient,)


@call("PatientRecovery.approveRecovery")
def _approve_recovery(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, fresh_address("new-controller"))


@call("PatientRecovery.cancelRecovery")
def _cancel_recovery(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient,)


@call("PatientRecovery.completeRecovery")
def _complete_recovery(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, fresh_address("new-controller"))


@call("PatientRecovery.freeze")
def _freeze(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient,)


@call("PatientRecovery.deliverRecoveryKeys")
def _deliver_recovery_keys(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, digest("recovery-envelope"))


@call("ProviderRegistry.grantRole")
def _grant_registrar(world: World, actor: Any) -> tuple[Any, ...]:
    return (REGISTRAR_ROLE, fresh_address("registrar-candidate"))


@call("ProviderRegistry.revokeRole")
def _revoke_registrar(world: World, actor: Any) -> tuple[Any, ...]:
    return (REGISTRAR_ROLE, world.registrars[2])


@call("ProviderRegistry.renounceRole")
def _renounce_registrar(world: World, actor: Any) -> tuple[Any, ...]:
    return (REGISTRAR_ROLE, actor)


# ---------------------------------------------------------------------------- RecordRegistry


@call("RecordRegistry.anchor")
def _anchor(world: World, actor: Any) -> tuple[Any, ...]:
    return (
        world.patient,
        digest("permissions-cid"),
        digest("permissions-commitment"),
        Category.LAB,
        NO_RECORD,
    )


@call("RecordRegistry.anchorBatch")
def _anchor_batch(world: World, actor: Any) -> tuple[Any, ...]:
    return (digest("permissions-root"), digest("permissions-manifest"), 3)


@call("RecordRegistry.registerFromBatch")
def _register_from_batch(world: World, actor: Any) -> tuple[Any, ...]:
    return world.batch.entries[0].args(world.batch)


# ---------------------------------------------------------------------------- ConsentManager


@call("ConsentManager.grant")
def _grant(world: World, actor: Any) -> tuple[Any, ...]:
    expires = world.now() + 30 * DAY
    envelope = digest("envelope-laboratory")
    scope = (SCOPE_CATEGORY, LAB_SCOPE)
    return (world.patient, world.laboratory, *scope, TREATMENT, expires, envelope)


@call("ConsentManager.grantWithSignature")
def _grant_signed(world: World, actor: Any) -> tuple[Any, ...]:
    consent = world.contracts["ConsentManager"]
    request = {
        "patient": world.patient.address,
        "grantee": world.laboratory.address,
        "scopeKind": SCOPE_CATEGORY,
        "scope": LAB_SCOPE,
        "purpose": TREATMENT,
        "expiresAt": world.now() + 30 * DAY,
        "envelopeDigest": digest("envelope-laboratory"),
        "nonce": int(consent.nonces(world.patient)),
        "deadline": world.now() + 30 * DAY,
    }
    return (request, world.sign(world.patient, consent.grantDigest(request)))


@call("ConsentManager.revoke")
def _revoke(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.clinic, SCOPE_CATEGORY, LAB_SCOPE)


@call("ConsentManager.revokeWithSignature")
def _revoke_signed(world: World, actor: Any) -> tuple[Any, ...]:
    consent = world.contracts["ConsentManager"]
    request = {
        "patient": world.patient.address,
        "grantee": world.clinic.address,
        "scopeKind": SCOPE_CATEGORY,
        "scope": LAB_SCOPE,
        "nonce": int(consent.nonces(world.patient)),
        "deadline": world.now() + 30 * DAY,
    }
    return (request, world.sign(world.patient, consent.revocationDigest(request)))


@call("ConsentManager.cancelSignatures")
def _cancel_grant_signatures(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient,)


@call("ConsentManager.openEmergencyAccess")
def _open_emergency(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.other_patient, 3600, "found unconscious")


@call("ConsentManager.closeEmergencyAccess")
def _close_emergency(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.emergency)


@call("ConsentManager.deliverKeys")
def _deliver_keys(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.clinic, SCOPE_CATEGORY, LAB_SCOPE, digest("envelope-2"))


@call("ConsentManager.logAccess")
def _log_access(world: World, actor: Any) -> tuple[Any, ...]:
    return ([world.lab_record],)


@call("ConsentManager.logAccessFor")
def _log_access_for(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.clinic, [world.lab_record])


@call("ConsentManager.eraseRecord")
def _erase(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.lab_record,)


# ---------------------------------------------------------------------------- ClaimsManager


@call("ClaimsManager.issuePolicy")
def _issue_policy(world: World, actor: Any) -> tuple[Any, ...]:
    start = world.now() - DAY
    terms = {
        "patient": world.patient.address,
        "validFrom": start,
        "validUntil": start + 365 * DAY,
        "coverageBps": 8_000,
        "deductible": 100 * USD,
        "annualLimit": 5_000 * USD,
        "autoSettleLimit": 500 * USD,
        "codesRoot": digest("codes-root-2"),
        "termsDigest": digest("terms-2"),
    }
    return (terms,)


@call("ClaimsManager.issuePolicyRequiringAttestation")
def _issue_policy_requiring_attestation(world: World, actor: Any) -> tuple[Any, ...]:
    return _issue_policy(world, actor)


@call("ClaimsManager.fundPolicy")
def _fund_policy(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.policy, USD)


@call("ClaimsManager.submitClaim")
def _submit_claim(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.submission(world.new_claim_record, "new"),)


@call("ClaimsManager.approveClaim")
def _approve_claim(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["submitted"], world.approve_amount)


@call("ClaimsManager.denyClaim")
def _deny_claim(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["submitted"], 1)


@call("ClaimsManager.requestInfo")
def _request_info(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["submitted"], 1)


@call("ClaimsManager.provideInfo")
def _provide_info(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["info"], [world.info_evidence])


@call("ClaimsManager.disputeClaim")
def _dispute_claim(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["denied"], 1)


@call("ClaimsManager.escalateClaim")
def _escalate_claim(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["overdue"],)


@call("ClaimsManager.resolveDispute")
def _resolve_dispute(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.claims["disputed"], 0, False)


@call("ClaimsManager.reclaimPool")
def _reclaim_pool(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.ended_policy,)


@call("ClaimsManager.withdrawPayment")
def _withdraw_payment(world: World, actor: Any) -> tuple[Any, ...]:
    return ()


@call("ClaimsManager.grantRole")
def _grant_resolver(world: World, actor: Any) -> tuple[Any, ...]:
    return (RESOLVER_ROLE, fresh_address("resolver-candidate"))


@call("ClaimsManager.revokeRole")
def _revoke_resolver(world: World, actor: Any) -> tuple[Any, ...]:
    return (RESOLVER_ROLE, world.resolver)


@call("ClaimsManager.renounceRole")
def _renounce_resolver(world: World, actor: Any) -> tuple[Any, ...]:
    return (RESOLVER_ROLE, actor)


# ---------------------------------------------------------------------------- TrialRegistry


@call("TrialRegistry.registerStudy")
def _register_study(world: World, actor: Any) -> tuple[Any, ...]:
    return (protocol("new-study"), [world.hospital], digest("summary-new-study"))


@call("TrialRegistry.amendProtocol")
def _amend(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, protocol("v3"), False, "visit schedule changed")


@call("TrialRegistry.setOutcomes")
def _set_outcomes(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, 2, digest("primary-v2-revised"), digest("secondary-v2-revised"))


@call("TrialRegistry.publishSummary")
def _publish_summary(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, digest("summary-results"))


@call("TrialRegistry.addSite")
def _add_site(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, world.clinic)


@call("TrialRegistry.requireAttestedParticipants")
def _require_attested_participants(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.open_study,)


@call("TrialRegistry.setMonitor")
def _set_monitor(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, fresh_address("monitor"), True)


@call("TrialRegistry.consent")
def _consent(world: World, actor: Any) -> tuple[Any, ...]:
    trials = world.contracts["TrialRegistry"]
    participant = world.participant_key
    request = {
        "studyId": world.study,
        "version": 2,
        "protocolHash": trials.protocolHashOf(world.study, 2),
        "site": world.hospital.address,
        "participant": participant.address,
        "purpose": TRIAL_ONLY,
        "readers": 0,
        "delegate": "0x" + "00" * 20,
        "nonce": int(trials.nonces(participant.address)),
        "deadline": world.now() + DAY,
    }
    return (request, world.sign(participant, trials.consentDigest(request)))


@call("TrialRegistry.withdraw")
def _withdraw(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, world.patient)


@call("TrialRegistry.withdrawWithSignature")
def _withdraw_signed(world: World, actor: Any) -> tuple[Any, ...]:
    trials = world.contracts["TrialRegistry"]
    request = {
        "studyId": world.study,
        "participant": world.patient.address,
        "nonce": int(trials.nonces(world.patient)),
        "deadline": world.now() + DAY,
    }
    return (request, world.sign(world.patient, trials.withdrawalDigest(request)))


@call("TrialRegistry.submitData")
def _submit_data(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.study, world.patient, VISIT, digest("trial-cid"), digest("trial-commitment"))


@call("TrialRegistry.submitDataBatch")
def _submit_data_batch(world: World, actor: Any) -> tuple[Any, ...]:
    root, _ = indexed_tree([digest("trial-body-1"), digest("trial-body-2")])
    return (world.study, world.patient, VISIT, root, digest("trial-manifest"), 2)


@call("TrialRegistry.cancelSignatures")
def _cancel_trial_signatures(world: World, actor: Any) -> tuple[Any, ...]:
    return ()


# ---------------------------------------------------------------------------- DevStablecoin


@call("DevStablecoin.mint")
def _mint(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.stranger, USD)


@call("DevStablecoin.transfer")
def _transfer(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.other_patient, USD)


@call("DevStablecoin.approve")
def _approve_spender(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.other_patient, USD)


@call("DevStablecoin.transferFrom")
def _transfer_from(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient, world.hospital, USD)


@call("DevStablecoin.transferOwnership")
def _transfer_ownership(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.stranger,)


@call("DevStablecoin.renounceOwnership")
def _renounce_ownership(world: World, actor: Any) -> tuple[Any, ...]:
    return ()


# ---------------------------------------------------------------------------- IdentityRegistry


@call("IdentityRegistry.attest")
def _attest(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient.address, world.now() + 30 * DAY, digest("identity-commitment"))


@call("IdentityRegistry.attestPseudonym")
def _attest_pseudonym(world: World, actor: Any) -> tuple[Any, ...]:
    return (fresh_address("study-account"), world.now() + 30 * DAY, digest("link-commitment"))


@call("IdentityRegistry.revoke")
def _revoke_attestation(world: World, actor: Any) -> tuple[Any, ...]:
    return (world.patient.address,)
