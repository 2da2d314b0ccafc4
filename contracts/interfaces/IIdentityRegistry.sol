// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

/// @title IIdentityRegistry
/// @notice Identity attestations: a verified care institution (or one of its practitioners,
/// acting for it) that has checked a person's identity the usual way (in person, against its own
/// records) attests that a registered patient address belongs to an identified patient of that
/// institution, until an expiry. The attesting institution may revoke it; a suspension of the
/// institution voids it for good (a reinstated institution attests again).
/// @dev No personal data reaches the chain: an attestation is the institution, its approval
/// round, an expiry and a revoked flag, in one storage slot (in the ProviderRegistry, see
/// `IProviderRegistry.storeAttestation`), keyed by the patient and the institution's directory
/// number (the number records carry as their writer). The only link to
/// the person is an optional salted commitment, emitted in `IdentityAttested` and never stored:
/// the institution keeps its opening and shows it on demand.
interface IIdentityRegistry {
    // ------------------------------------------------------------------ types

    /// @notice One institution's attestation of one patient, as stored (one slot).
    /// @param institution The attesting institution (zero: never attested).
    /// @param round The institution's approval round when it attested: a later suspension
    /// (which bumps the round) voids the attestation.
    /// @param expiresAt The attestation holds while `block.timestamp < expiresAt`.
    /// @param revoked True once the institution revoked it.
    struct Attestation {
        address institution;
        uint32 round;
        uint40 expiresAt;
        bool revoked;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when the caller is neither a verified care institution (hospital, clinic,
    /// laboratory, emergency service) nor a practitioner of one.
    error IdentityNotCareInstitution(address caller);

    /// @notice Thrown when the attested account is not a registered patient.
    error IdentityPatientNotRegistered(address patient);

    /// @notice Thrown when an account attested as a pseudonym has a role, controls a patient,
    /// or is zero.
    error IdentityNotPseudonym(address account);

    /// @notice Thrown when an expiry is not in the future or lies more than `MAX_TERM` ahead.
    error IdentityInvalidExpiry(uint256 expiresAt, uint256 latest);

    /// @notice Thrown when the caller's institution holds no unrevoked attestation of the patient.
    error IdentityNotAttested(address patient, address institution);

    /// @notice Thrown when the institution numbered `number` does not attest `patient` now
    /// (never attested, revoked, expired, or the institution suspended since).
    error IdentityNotAttestedBy(address patient, uint32 number);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when `institution` (through `attester`, itself or a practitioner)
    /// attests `patient`, until `expiresAt`; `commitment` is a salted commitment to what was
    /// checked (zero when none), whose opening the institution keeps.
    event IdentityAttested(
        address indexed patient,
        address indexed institution,
        address indexed attester,
        uint32 number,
        uint40 expiresAt,
        bytes32 commitment
    );

    /// @notice Emitted when `institution` (through `revoker`) revokes its attestation of
    /// `patient`.
    event IdentityRevoked(address indexed patient, address indexed institution, address indexed revoker);

    // ------------------------------------------------------------------ functions

    /// @notice Attests that `patient` is an identified patient of the caller's institution,
    /// until `expiresAt` (renewing the institution's earlier attestation, if any).
    /// @dev Callable by a verified care institution or a practitioner of one.
    /// @param patient A registered patient's address.
    /// @param expiresAt When the attestation lapses (in the future, at most `MAX_TERM` ahead).
    /// @param commitment A salted commitment to the identity checked, or zero; only emitted.
    function attest(address patient, uint40 expiresAt, bytes32 commitment) external;

    /// @notice Attests that the pseudonymous `account` (a trial participant's study account,
    /// with no role in the registry) belongs to a person the caller's institution identified,
    /// until `expiresAt`. Which person stays off chain: `linkCommitment` commits to the link
    /// (the person's patient address and the link proof both keys signed), whose opening the
    /// institution and the participant keep and show on demand.
    /// @dev Callable by a verified care institution or a practitioner of one; revoked with
    /// `revoke`, checked like any attestation (a study that requires attested participants asks
    /// for the enrolling site's).
    /// @param account The pseudonymous account (no role, controls no patient).
    /// @param expiresAt When the attestation lapses (in the future, at most `MAX_TERM` ahead).
    /// @param linkCommitment A salted commitment to the link, or zero; only emitted.
    function attestPseudonym(address account, uint40 expiresAt, bytes32 linkCommitment) external;

    /// @notice Revokes the caller's institution's attestation of `patient`.
    /// @dev Callable by the attesting institution or a practitioner of it, while it is verified.
    /// @param patient The attested patient.
    function revoke(address patient) external;

    /// @notice The attestation of `patient` by the institution numbered `number`, as stored.
    /// @param patient The patient.
    /// @param number The institution's directory number.
    /// @return attestation The stored attestation (all zero when there is none).
    function attestation(address patient, uint32 number) external view returns (Attestation memory attestation);

    /// @notice Tells whether the institution numbered `number` attests `patient` now: attested,
    /// not revoked, not expired, and the institution verified in the same round as when it
    /// attested (never suspended since).
    /// @param patient The patient.
    /// @param number The institution's directory number.
    /// @return attested True when the attestation holds.
    function isAttested(address patient, uint32 number) external view returns (bool attested);

    /// @notice Reverts with `IdentityNotAttestedBy` unless `isAttested(patient, number)`.
    /// @dev For contracts that refuse what an unattested patient asks (ClaimsManager's claims
    /// under a policy that requires attestation): the error reaches their caller as it is.
    /// @param patient The patient.
    /// @param number The institution's directory number.
    function requireAttested(address patient, uint32 number) external view;

    /// @notice The longest an attestation may run.
    /// @return term Seconds.
    function MAX_TERM() external view returns (uint40 term);
}
