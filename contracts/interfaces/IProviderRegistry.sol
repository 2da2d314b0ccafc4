// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

/// @title IProviderRegistry
/// @notice Directory of the participants of a MedLedger network: institutions (verified by a
/// k-of-n quorum of registrars), their practitioners, and self-registered patients. Every
/// participant publishes a compressed secp256k1 public key that record keys are wrapped for.
/// @dev Nothing personal is stored: an institution's name only appears in its application
/// event, and a patient is known by an address and a public key alone.
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
    /// practitioners) may write records.
    enum InstitutionStatus {
        None,
        Pending,
        Verified,
        Suspended
    }

    /// @notice The role an account plays; an account has exactly one role.
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
    /// @param approvals Registrar approvals gathered in the current round.
    /// @param round Approval round; bumped on every status change so that old approvals lapse.
    /// @param employer For practitioners, the institution they act for; zero otherwise.
    /// @param active For practitioners, false once their institution has removed them.
    /// @param keyPrefix First byte (0x02 or 0x03) of the compressed encryption public key, whose
    /// 32-byte x coordinate is stored beside the record; zero when no key is published.
    struct Participant {
        Role role;
        InstitutionKind kind;
        InstitutionStatus status;
        uint8 approvals;
        uint32 round;
        address employer;
        bool active;
        uint8 keyPrefix;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when an account that already has a role tries to take another.
    error ProviderAlreadyRegistered(address account);

    /// @notice Thrown when an institution applies with kind `None`.
    error ProviderInvalidKind(InstitutionKind kind);

    /// @notice Thrown when a public key is not a 33-byte compressed secp256k1 key.
    error ProviderInvalidEncryptionKey(bytes key);

    /// @notice Thrown when an account that is not an institution is treated as one.
    error ProviderNotInstitution(address account);

    /// @notice Thrown when an institution's status does not allow the operation.
    error ProviderInvalidStatus(address institution, InstitutionStatus status);

    /// @notice Thrown when a registrar approves the same institution twice in one round.
    error ProviderAlreadyApproved(address institution, address registrar);

    /// @notice Thrown when an account that is not a practitioner of the caller is removed.
    error ProviderNotPractitioner(address institution, address account);

    /// @notice Thrown when an account with no role publishes a key.
    error ProviderNotRegistered(address account);

    /// @notice Thrown when a threshold is zero or larger than the number of registrars.
    error ProviderInvalidThreshold(uint256 threshold, uint256 registrars);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when an institution applies to join.
    event InstitutionApplied(address indexed institution, InstitutionKind indexed kind, string name);

    /// @notice Emitted when a registrar approves an institution (verification or reinstatement).
    event InstitutionApproved(
        address indexed institution, address indexed registrar, uint8 approvals, uint8 threshold
    );

    /// @notice Emitted when a pending institution has gathered the threshold of approvals.
    event InstitutionVerified(address indexed institution);

    /// @notice Emitted when a registrar suspends an institution; `reason` is a short code.
    event InstitutionSuspended(address indexed institution, address indexed registrar, bytes32 reason);

    /// @notice Emitted when a suspended institution has gathered the threshold of approvals.
    event InstitutionReinstated(address indexed institution);

    /// @notice Emitted when an institution adds a practitioner.
    event PractitionerAdded(address indexed institution, address indexed practitioner);

    /// @notice Emitted when an institution removes a practitioner.
    event PractitionerRemoved(address indexed institution, address indexed practitioner);

    /// @notice Emitted when a patient registers.
    event PatientRegistered(address indexed patient);

    /// @notice Emitted when an account publishes (or rotates) its encryption public key.
    event EncryptionKeyPublished(address indexed account, bytes key);

    /// @notice Emitted when the admin changes the number of approvals needed.
    event ApprovalThresholdChanged(uint8 previousThreshold, uint8 newThreshold);

    // ------------------------------------------------------------------ functions

    /// @notice Applies to join as an institution; registrars then verify the application.
    /// @dev Callable by any account without a role. The name is emitted, not stored.
    /// @param kind The kind of institution.
    /// @param name The institution's public name.
    /// @param publicKey The institution's compressed secp256k1 public key (33 bytes).
    function applyAsInstitution(InstitutionKind kind, string calldata name, bytes calldata publicKey)
        external;

    /// @notice Casts the caller's approval for a pending or suspended institution; at the
    /// threshold the institution becomes verified (or is reinstated).
    /// @dev Only `REGISTRAR_ROLE`. One approval per registrar per round.
    /// @param institution The institution's account.
    /// @return verified True when this approval reached the threshold.
    function approveInstitution(address institution) external returns (bool verified);

    /// @notice Suspends a verified institution at once: it can no longer write records.
    /// @dev Only `REGISTRAR_ROLE`; one registrar suffices, because stopping writes is the safe
    /// direction. Reinstatement needs the threshold again.
    /// @param institution The institution's account.
    /// @param reason A short reason code (for example "licence-lapsed").
    function suspendInstitution(address institution, bytes32 reason) external;

    /// @notice Adds a practitioner who writes records on the caller's behalf.
    /// @dev Only a verified institution. The practitioner then publishes their own key.
    /// @param practitioner The practitioner's account.
    function addPractitioner(address practitioner) external;

    /// @notice Removes one of the caller's practitioners; they can no longer write.
    /// @param practitioner The practitioner's account.
    function removePractitioner(address practitioner) external;

    /// @notice Registers the caller as a patient.
    /// @param publicKey The patient's compressed secp256k1 public key (33 bytes).
    function registerPatient(bytes calldata publicKey) external;

    /// @notice Publishes or rotates the caller's encryption public key.
    /// @dev Callable by any account that has a role.
    /// @param publicKey The new compressed secp256k1 public key (33 bytes).
    function publishEncryptionKey(bytes calldata publicKey) external;

    /// @notice Sets how many registrar approvals verify or reinstate an institution.
    /// @dev Only `DEFAULT_ADMIN_ROLE`; between 1 and the number of registrars.
    /// @param threshold The new threshold.
    function setApprovalThreshold(uint8 threshold) external;

    /// @notice Returns what the registry holds about an account.
    /// @param account The account.
    /// @return participant The participant record (all zero for an unknown account).
    function participant(address account) external view returns (Participant memory participant);

    /// @notice Returns an account's published encryption key, or empty bytes.
    /// @param account The account.
    /// @return key The compressed secp256k1 public key (33 bytes), or empty.
    function encryptionKey(address account) external view returns (bytes memory key);

    /// @notice Tells a record registry whether `issuer` may anchor a record for `patient`.
    /// @param issuer The account that would write the record.
    /// @param patient The patient the record is about.
    /// @return issuerMayWrite True for the patient themself, a verified institution or an
    /// active practitioner of a verified institution.
    /// @return patientRegistered True when `patient` is a registered patient.
    function canAnchor(address issuer, address patient)
        external
        view
        returns (bool issuerMayWrite, bool patientRegistered);

    /// @notice Tells whether `account` is a verified institution or acts for one.
    /// @param account The account.
    /// @return institution The verified institution (the account itself, or its employer),
    /// or zero when the account does not act for a verified institution.
    function verifiedInstitutionOf(address account) external view returns (address institution);

    /// @notice Returns the number of approvals that verify an institution.
    /// @return threshold The current threshold.
    function approvalThreshold() external view returns (uint8 threshold);
}
