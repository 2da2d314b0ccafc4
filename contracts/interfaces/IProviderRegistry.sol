// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

import {IIdentityRegistry} from "./IIdentityRegistry.sol";
import {IPatientRecovery} from "./IPatientRecovery.sol";

/// @title IProviderRegistry
/// @notice Directory of the participants of a MedLedger network and of who acts for whom:
/// institutions (verified by a k-of-n quorum of registrars), the practitioners who accepted to
/// work for them, self-registered patients, the delegates a patient names, and the care
/// relationships a patient opens with care institutions (who may write the patient's records).
/// Every participant publishes a compressed secp256k1 public key that record keys are wrapped
/// for, with a proof that it holds the private key.
/// @dev Nothing personal is stored: an institution's name only appears in its application
/// event, and a patient is known by an address and a public key alone. Registrars govern
/// themselves: adding or removing a registrar and changing the threshold take the same quorum
/// as verifying an institution; there is no administrator.
interface IProviderRegistry {
    // ------------------------------------------------------------------ types

    /// @notice What kind of institution an account is.
    enum InstitutionKind {
        None,
        Hospital,
        Clinic,
        Laboratory,
        Insurer,
        ResearchSponsor,
        EmergencyService
    }

    /// @notice Where an institution stands. Only `Verified` institutions (and their
    /// practitioners) may act as institutions.
    enum InstitutionStatus {
        None,
        Pending,
        Verified,
        Suspended
    }

    /// @notice The role an account plays; an account has at most one role at a time.
    enum Role {
        None,
        Patient,
        Institution,
        Practitioner
    }

    /// @notice Everything the registry holds about one account, packed in one storage slot.
    /// @param role The account's role.
    /// @param kind For institutions, their kind; `None` otherwise.
    /// @param status For institutions, their status; `None` otherwise.
    /// @param keyPrefix First byte (0x02 or 0x03) of the compressed encryption public key, whose
    /// 32-byte x coordinate is stored beside the record; zero when no key is published.
    /// @param round For institutions, the approval round; bumped on every status change so that
    /// approvals never carry over from an earlier round.
    /// @param employer For practitioners, the institution they work for; zero otherwise.
    /// @param number For institutions, their directory number (1, 2, ...), which records carry
    /// as their writer; zero otherwise.
    struct Participant {
        Role role;
        InstitutionKind kind;
        InstitutionStatus status;
        uint8 keyPrefix;
        uint32 round;
        address employer;
        uint32 number;
    }

    /// @notice A care relationship: the institution may write the patient's records while
    /// `since <= t < until` (`since` is zero when there never was one).
    struct Care {
        uint40 since;
        uint40 until;
    }

    /// @notice A care relationship signed off chain by a patient (or a delegate), submitted by
    /// anyone (typically the institution at check-in).
    /// @param patient The patient.
    /// @param institution The care institution that may write the patient's records.
    /// @param until When the relationship ends (`type(uint40).max`: until revoked).
    /// @param nonce The patient's next nonce (`nonces(patient)`).
    /// @param deadline Last timestamp at which the signature may be submitted.
    struct CareRequest {
        address patient;
        address institution;
        uint40 until;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A patient's registration signed off chain by the patient, relayed by a verified
    /// institution (or one of its practitioners) that pays the gas: a patient with no ETH
    /// registers.
    /// @param patient The account to register; it signs the request.
    /// @param key The patient's compressed secp256k1 encryption key (33 bytes). EIP-712 signs
    /// `bytes` as the keccak256 of its contents, so the signature binds the key's hash.
    /// @param nonce The patient's next nonce (`nonces(patient)`, shared with care requests).
    /// @param deadline Last timestamp at which the signature may be submitted.
    struct RegistrationRequest {
        address patient;
        bytes key;
        uint256 nonce;
        uint256 deadline;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when an account that already has a role tries to take another.
    error ProviderAlreadyRegistered(address account);

    /// @notice Thrown when an institution applies with kind `None`.
    error ProviderInvalidKind(InstitutionKind kind);

    /// @notice Thrown when a public key is not a 33-byte compressed secp256k1 key on the curve.
    error ProviderInvalidEncryptionKey(bytes key);

    /// @notice Thrown when the proof of possession of a key was not signed by that key for the
    /// publishing account.
    error ProviderKeyNotOwned(address account, bytes key);

    /// @notice Thrown when an account that is not an institution is treated as one.
    error ProviderNotInstitution(address account);

    /// @notice Thrown when an institution's status does not allow the operation.
    error ProviderInvalidStatus(address institution, InstitutionStatus status);

    /// @notice Thrown when a registrar approves the same institution twice in one round.
    error ProviderAlreadyApproved(address institution, address registrar);

    /// @notice Thrown when a registrar approves an institution it is, works for, worked for or
    /// holds an invitation from.
    error ProviderSelfApproval(address registrar, address institution);

    /// @notice Thrown when an account is neither a practitioner of the caller nor invited by it,
    /// or removes a practitioner it does not employ.
    error ProviderNotPractitioner(address institution, address account);

    /// @notice Thrown when an account accepts a practitioner role it was not invited to.
    error ProviderNotInvited(address institution, address account);

    /// @notice Thrown when an institution invites the zero address or itself.
    error ProviderInvalidPractitioner(address account);

    /// @notice Thrown when an account with no role publishes a key.
    error ProviderNotRegistered(address account);

    /// @notice Thrown when a threshold is zero or larger than the number of registrars.
    error ProviderInvalidThreshold(uint256 threshold, uint256 registrars);

    /// @notice Thrown when a registrar vote names an account that cannot be added or removed.
    error ProviderInvalidRegistrar(address account, bool add);

    /// @notice Thrown when a registrar votes twice on the same motion.
    error ProviderAlreadyVoted(bytes32 motion, address registrar);

    /// @notice Thrown when the caller is neither the patient nor one of the patient's delegates.
    error ProviderNotPatientOrDelegate(address caller, address patient);

    /// @notice Thrown when an account that must be a registered patient is not one.
    error ProviderNotPatient(address account);

    /// @notice Thrown when a delegate is the zero address or the patient themself.
    error ProviderInvalidDelegate(address delegate);

    /// @notice Thrown when a care relationship names an account that is not a verified
    /// hospital, clinic, laboratory or emergency service.
    error ProviderNotCareProvider(address institution);

    /// @notice Thrown when a care relationship would end in the past.
    error ProviderInvalidCareExpiry(uint256 until);

    /// @notice Thrown when a care relationship to end is not live.
    error ProviderNoCare(address patient, address institution);

    /// @notice Thrown when the caller may not end a care relationship.
    error ProviderNotCareParty(address caller, address patient, address institution);

    /// @notice Thrown when a signed request is submitted after its deadline.
    error ProviderSignatureExpired(uint256 deadline);

    /// @notice Thrown when a signed request does not carry the patient's next nonce.
    error ProviderSignatureReplayed(address patient, uint256 nonce, uint256 expectedNonce);

    /// @notice Thrown when a signature is malformed or not from the patient or a delegate.
    error ProviderInvalidSignature(address signer, address patient);

    /// @notice Thrown when anybody but the `RECOVERY` contract moves or freezes control.
    error ProviderNotRecovery(address caller);

    /// @notice Thrown when a new controller has a role or already controls a patient.
    error ProviderInvalidController(address account);

    /// @notice Thrown when a patient's replaced (or frozen) key acts as the patient.
    error ProviderNotController(address caller, address patient);

    /// @notice Thrown when anybody but the `IDENTITY` contract stores an attestation.
    error ProviderNotIdentityRegistry(address caller);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when an institution applies to join; `number` is its directory number.
    event InstitutionApplied(address indexed institution, InstitutionKind indexed kind, uint32 number, string name);

    /// @notice Emitted when a registrar approves an institution (verification or reinstatement);
    /// `approvals` counts the approvals of current registrars in this round.
    event InstitutionApproved(
        address indexed institution, address indexed registrar, uint256 approvals, uint256 threshold
    );

    /// @notice Emitted when a pending institution has gathered the threshold of approvals.
    event InstitutionVerified(address indexed institution);

    /// @notice Emitted when a registrar suspends an institution; `reason` is a short code.
    event InstitutionSuspended(address indexed institution, address indexed registrar, bytes32 reason);

    /// @notice Emitted when a suspended institution has gathered the threshold of approvals.
    event InstitutionReinstated(address indexed institution);

    /// @notice Emitted when an institution invites an account to work for it.
    event PractitionerInvited(address indexed institution, address indexed practitioner);

    /// @notice Emitted when an invited account accepts and becomes the institution's practitioner.
    event PractitionerAdded(address indexed institution, address indexed practitioner);

    /// @notice Emitted when a practitioner leaves or is removed, or an invitation is withdrawn.
    event PractitionerRemoved(address indexed institution, address indexed practitioner, address by);

    /// @notice Emitted when a patient registers (by themself or by a relayed signature).
    event PatientRegistered(address indexed patient);

    /// @notice Emitted right after `PatientRegistered` when the registration was relayed:
    /// `relayer` (the institution or one of its practitioners) submitted the patient's signed
    /// request for `institution`, which paid for it and answers for it.
    event PatientOnboarded(address indexed patient, address indexed institution, address relayer);

    /// @notice Emitted when an account publishes (or rotates) its encryption public key.
    event EncryptionKeyPublished(address indexed account, bytes key);

    /// @notice Emitted when the number of approvals needed changes.
    event ApprovalThresholdChanged(uint256 previousThreshold, uint256 newThreshold);

    /// @notice Emitted when a registrar votes to add or remove a registrar.
    event RegistrarVoted(
        address indexed account, bool add, address indexed registrar, uint256 votes, uint256 threshold
    );

    /// @notice Emitted when a registrar votes for a new threshold.
    event ThresholdVoted(uint256 threshold, address indexed registrar, uint256 votes, uint256 needed);

    /// @notice Emitted when a patient names or drops a delegate.
    event DelegateChanged(address indexed patient, address indexed delegate, bool allowed);

    /// @notice Emitted when a patient (or delegate, `by`) lets a care institution write their
    /// records until `until`.
    event CareAuthorized(address indexed patient, address indexed institution, uint40 until, address by);

    /// @notice Emitted when a care relationship is ended by the patient, a delegate or the
    /// institution (`by`).
    event CareRevoked(address indexed patient, address indexed institution, address by);

    /// @notice Emitted when a patient (or delegate, `by`) burns a nonce, cancelling every signed
    /// request that carries it.
    event SignaturesCancelled(address indexed patient, uint256 nonce, address by);

    /// @notice Emitted when control of `patient` moved from `previousController` to
    /// `newController` (a completed recovery): the patient's encryption key is cleared until the
    /// new controller publishes one, and delegates named before no longer count.
    event PatientRecovered(
        address indexed patient, address indexed previousController, address indexed newController
    );

    /// @notice Emitted when a patient is frozen (by its controller, or by the guardian `by`
    /// whose vote reached the threshold): nobody acts as the patient until a recovery completes.
    event PatientFrozen(address indexed patient, address by);

    // ------------------------------------------------------------------ functions

    /// @notice Applies to join as an institution; registrars then verify the application.
    /// @dev Callable by any account without a role. The name is emitted, not stored.
    /// @param kind The kind of institution.
    /// @param name The institution's public name.
    /// @param publicKey The institution's compressed secp256k1 public key (33 bytes).
    /// @param keyProof The key's signature of `keyDigest(caller, publicKey)`.
    function applyAsInstitution(
        InstitutionKind kind,
        string calldata name,
        bytes calldata publicKey,
        bytes calldata keyProof
    ) external;

    /// @notice Casts the caller's approval for a pending or suspended institution; once the
    /// approvals of current registrars reach the threshold the institution becomes verified
    /// (or is reinstated).
    /// @dev Only `REGISTRAR_ROLE`, never for an institution the registrar is, works for, ever
    /// worked for or holds an invitation from. One
    /// approval per registrar per round; a registrar's approval stops counting when it leaves.
    /// @param institution The institution's account.
    /// @return verified True when this approval reached the threshold.
    function approveInstitution(address institution) external returns (bool verified);

    /// @notice Suspends a verified institution at once: it and its practitioners can no longer
    /// act as an institution.
    /// @dev Only `REGISTRAR_ROLE`; one registrar suffices, because stopping is the safe
    /// direction. Reinstatement needs the threshold again.
    /// @param institution The institution's account.
    /// @param reason A short reason code (for example "licence-lapsed").
    function suspendInstitution(address institution, bytes32 reason) external;

    /// @notice Invites an account to work for the caller; the account becomes a practitioner
    /// only when it accepts.
    /// @dev Only a verified institution; the account must have no role.
    /// @param practitioner The account invited.
    function addPractitioner(address practitioner) external;

    /// @notice Accepts an institution's invitation: the caller becomes its practitioner.
    /// @dev The caller must have no role and the institution must be verified.
    /// @param institution The inviting institution.
    function acceptPractitioner(address institution) external;

    /// @notice Ends a practitioner's work for an institution (or withdraws an invitation): the
    /// account loses its role and its published key, and may register or work elsewhere.
    /// @dev Callable by the employing (or inviting) institution, or by the practitioner.
    /// @param practitioner The practitioner's account.
    function removePractitioner(address practitioner) external;

    /// @notice Registers the caller as a patient.
    /// @param publicKey The patient's compressed secp256k1 public key (33 bytes).
    /// @param keyProof The key's signature of `keyDigest(caller, publicKey)`.
    function registerPatient(bytes calldata publicKey, bytes calldata keyProof) external;

    /// @notice Registers a patient who signed a `RegistrationRequest` off chain; the caller pays
    /// the gas, so the patient needs no ETH.
    /// @dev Only a verified institution (of any kind) or a practitioner of one relays: the
    /// institution answers for whom it onboards (it is named in `PatientOnboarded`) and loses
    /// the right when suspended, while the patient's signature, nonce and deadline remain the
    /// authority. Refusals, in order: the caller (`ProviderNotInstitution`,
    /// `ProviderInvalidStatus`), the deadline, the nonce, the signature (it must recover to
    /// `request.patient`; no delegate, since an unregistered account has none), the patient's
    /// role (none allowed), the key and its proof. Uses the patient's nonce.
    /// @param request The signed request.
    /// @param keyProof The key's signature of `keyDigest(request.patient, request.key)`.
    /// @param signature The patient's EIP-712 signature of `registrationDigest(request)`.
    function registerPatientWithSignature(
        RegistrationRequest calldata request,
        bytes calldata keyProof,
        bytes calldata signature
    ) external;

    /// @notice Publishes or rotates the caller's encryption public key.
    /// @dev Callable by any account that has a role.
    /// @param publicKey The new compressed secp256k1 public key (33 bytes).
    /// @param keyProof The key's signature of `keyDigest(caller, publicKey)`.
    function publishEncryptionKey(bytes calldata publicKey, bytes calldata keyProof) external;

    /// @notice Votes to add (`add`) or remove a registrar; at the threshold of current
    /// registrars' votes the change is made.
    /// @dev Only `REGISTRAR_ROLE`. At most `MAX_REGISTRARS` registrars; a removal may not leave
    /// fewer registrars than the threshold.
    /// @param account The account to add or remove.
    /// @param add True to add, false to remove.
    /// @return done True when this vote made the change.
    function voteRegistrar(address account, bool add) external returns (bool done);

    /// @notice Votes for a new approval threshold; at the current threshold of votes it applies.
    /// @dev Only `REGISTRAR_ROLE`; between 1 and the number of registrars.
    /// @param threshold The proposed threshold.
    /// @return done True when this vote changed the threshold.
    function voteThreshold(uint8 threshold) external returns (bool done);

    /// @notice Names or drops a delegate (a guardian, a proxy) who may act for the caller.
    /// @dev Only a registered patient.
    /// @param delegate The delegate's account.
    /// @param allowed True to name, false to drop.
    function setDelegate(address delegate, bool allowed) external;

    /// @notice Lets a care institution write the patient's records until `until`.
    /// @dev Callable by the patient or a delegate. The institution must be a verified hospital,
    /// clinic, laboratory or emergency service. Renewing a live relationship keeps its start;
    /// opening one again after it lapsed starts a new period and keeps the old one on record.
    /// @param patient The patient.
    /// @param institution The institution.
    /// @param until When it ends (`type(uint40).max`: until revoked).
    function authorizeCare(address patient, address institution, uint40 until) external;

    /// @notice Submits a care relationship the patient (or a delegate) signed off chain.
    /// @dev Callable by anyone; the signature, its nonce and deadline are the authority.
    /// @param request The signed request.
    /// @param signature The EIP-712 signature of `careDigest(request)`.
    function authorizeCareWithSignature(CareRequest calldata request, bytes calldata signature) external;

    /// @notice Ends a live care relationship.
    /// @dev Callable by the patient, a delegate, or the institution itself.
    /// @param patient The patient.
    /// @param institution The institution.
    function revokeCare(address patient, address institution) external;

    /// @notice Burns the patient's next nonce, so that a request signed with it (and not yet
    /// submitted) can never be used.
    /// @dev Callable by the patient or a delegate.
    /// @param patient The patient.
    function cancelSignatures(address patient) external;

    /// @notice Moves control of `patient` to `newController`: the previous controller and the
    /// delegates it named lose every right, the patient is unfrozen, its key is cleared.
    /// @dev Only `RECOVERY` (after its guardians' approvals and delay). Records, grants, care
    /// and nonces stay keyed by the patient's id (identity continuity, see `IPatientRecovery`).
    /// @param patient The patient's id.
    /// @param newController An account with no role that controls no patient.
    function moveControl(address patient, address newController) external;

    /// @notice Freezes `patient`: nobody acts as it until control moves.
    /// @dev Only `RECOVERY`.
    /// @param patient The patient's id.
    /// @param by Who froze it (the controller, or the guardian whose vote reached the threshold).
    function freezeControl(address patient, address by) external;

    /// @notice Stores `IDENTITY`'s attestation of `account` by the institution numbered
    /// `number` (a new one, a renewal or a revocation).
    /// @dev Only `IDENTITY`, which checks who attests what. Kept here, not in `IDENTITY`:
    /// every claim and enrolment already calls this contract, so checking an attestation costs
    /// one cold slot, not a cold contract as well.
    /// @param account The attested account (a patient, or a study pseudonym).
    /// @param number The attesting institution's directory number.
    /// @param attestation The attestation.
    function storeAttestation(address account, uint32 number, IIdentityRegistry.Attestation calldata attestation)
        external;

    /// @notice The attestation of `account` by the institution numbered `number`, as stored.
    /// @param account The attested account.
    /// @param number The institution's directory number.
    /// @return attestation The stored attestation (all zero when there is none).
    function attestationOf(address account, uint32 number)
        external
        view
        returns (IIdentityRegistry.Attestation memory attestation);

    /// @notice Tells whether the institution numbered `number` attests `account` now: attested,
    /// not revoked, not expired, and the institution verified in the round it attested in.
    /// @param account The attested account.
    /// @param number The institution's directory number.
    /// @return attested True when the attestation holds.
    function isAttested(address account, uint32 number) external view returns (bool attested);

    /// @notice Reverts with `IIdentityRegistry.IdentityNotAttestedBy` unless
    /// `isAttested(account, number)`.
    /// @param account The attested account.
    /// @param number The institution's directory number.
    function requireAttested(address account, uint32 number) external view;

    /// @notice As `requireAttested`, for the institution `institution` (its number looked up).
    /// @param account The attested account.
    /// @param institution The attesting institution's address.
    function requireAttestedBy(address account, address institution) external view;

    /// @notice The identity attestations' contract, deployed by this contract's constructor:
    /// the only caller of `storeAttestation`.
    /// @return identity The IdentityRegistry.
    function IDENTITY() external view returns (IIdentityRegistry identity);

    /// @notice The guardians' contract that alone moves and freezes control.
    /// @return recovery Its address.
    function RECOVERY() external view returns (IPatientRecovery recovery);

    /// @notice The address that acts as the patient now: its controller, or zero while frozen.
    /// @dev For an account without recovery state (any non-patient too) it is the account itself.
    /// @param patient The patient's id.
    /// @return controller The controller, or zero.
    function controllerOf(address patient) external view returns (address controller);

    /// @notice The patient an account controls now (itself for a patient never recovered), or
    /// zero (also for a replaced or frozen key).
    /// @param account The account.
    /// @return patient The patient's id, or zero.
    function patientOf(address account) external view returns (address patient);

    /// @notice Whether the patient is frozen.
    /// @param patient The patient's id.
    /// @return frozen True while frozen.
    function isFrozen(address patient) external view returns (bool frozen);

    /// @notice Returns what the registry holds about an account.
    /// @param account The account.
    /// @return participant The participant record (all zero for an unknown account).
    function participant(address account) external view returns (Participant memory participant);

    /// @notice Returns an account's published encryption key, or empty bytes.
    /// @param account The account.
    /// @return key The compressed secp256k1 public key (33 bytes), or empty.
    function encryptionKey(address account) external view returns (bytes memory key);

    /// @notice Tells whether `account` is a verified institution or acts for one.
    /// @param account The account.
    /// @return institution The verified institution (the account itself, or its employer),
    /// or zero when the account does not act for a verified institution.
    function verifiedInstitutionOf(address account) external view returns (address institution);

    /// @notice The verified institution `account` is or works for, with its approval round
    /// (bumped by every suspension and reinstatement).
    /// @param account The account.
    /// @return institution The institution, or zero.
    /// @return round Its current round (zero when there is no institution).
    function actingInstitution(address account) external view returns (address institution, uint32 round);

    /// @notice Tells whether `account` may write records at all, and as which writer.
    /// @param account The account.
    /// @return mayWrite True for a registered patient (their own records), a verified care
    /// institution (hospital, clinic, laboratory, emergency service) or a practitioner of one.
    /// @return writer The institution's directory number, or 0 for a patient.
    function writerOf(address account) external view returns (bool mayWrite, uint32 writer);

    /// @notice Tells whether `issuer` may write a record for `patient` now, and as which writer.
    /// @param issuer The account that would write.
    /// @param patient The patient the record is about.
    /// @return allowed True for the registered patient themself, or a writer (see `writerOf`)
    /// whose institution holds a live care relationship with the patient.
    /// @return writer The institution's directory number, or 0 for the patient.
    function mayWriteFor(address issuer, address patient) external view returns (bool allowed, uint32 writer);

    /// @notice Tells whether institution number `writer` held a care relationship with
    /// `patient` at time `at` (in the current period or an earlier one).
    /// @param patient The patient.
    /// @param writer The institution's directory number.
    /// @param at The time.
    /// @return held True when `since <= at < until`.
    function hadCare(address patient, uint32 writer, uint40 at) external view returns (bool held);

    /// @notice Returns the care relationship between a patient and an institution.
    /// @param patient The patient.
    /// @param institution The institution.
    /// @return care The relationship (all zero when there never was one).
    function careOf(address patient, address institution) external view returns (Care memory care);

    /// @notice Tells whether `account` may act for `patient`: the patient's live controller (the
    /// patient's own address until a recovery, see `IPatientRecovery`) or a delegate it named,
    /// never anybody while the patient is frozen.
    /// @param account The account.
    /// @param patient The patient.
    /// @return allowed True for the controller and current delegates of an unfrozen patient.
    function actsFor(address account, address patient) external view returns (bool allowed);

    /// @notice Tells whether `delegate` is one of `patient`'s delegates.
    /// @param patient The patient.
    /// @param delegate The account.
    /// @return allowed True when named.
    function isDelegate(address patient, address delegate) external view returns (bool allowed);

    /// @notice Tells whether an institution has invited an account to work for it.
    /// @param institution The institution.
    /// @param account The account.
    /// @return invited True while the invitation stands.
    function isInvited(address institution, address account) external view returns (bool invited);

    /// @notice Returns the number of approvals that verify an institution.
    /// @return threshold The current threshold.
    function approvalThreshold() external view returns (uint8 threshold);

    /// @notice Counts the approvals of current registrars in an institution's current round.
    /// @param institution The institution.
    /// @return approvals The count.
    function approvalsOf(address institution) external view returns (uint256 approvals);

    /// @notice The digest an encryption key signs to prove that `account` holds it.
    /// @param account The publishing account.
    /// @param publicKey The compressed public key.
    /// @return digest The EIP-712 digest of `EncryptionKey(account, keccak256(publicKey))`.
    function keyDigest(address account, bytes calldata publicKey) external view returns (bytes32 digest);

    /// @notice The digest a patient (or delegate) signs for a care relationship.
    /// @param request The request.
    /// @return digest The EIP-712 digest.
    function careDigest(CareRequest calldata request) external view returns (bytes32 digest);

    /// @notice The digest a patient signs to be registered by a relaying institution.
    /// @param request The request.
    /// @return digest The EIP-712 digest.
    function registrationDigest(RegistrationRequest calldata request) external view returns (bytes32 digest);
}
