// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

/// @title IPatientRecovery
/// @notice Who controls a patient, and how guardians give control back when a key is lost or
/// stolen: a patient names guardians (k of n) and a delay; k guardians approve moving control to
/// a new address, which completes after the delay unless the controlling key cancels it; the
/// controlling key, or k guardians, freeze a stolen key at once.
/// @dev Identity continuity: a patient's on-chain id never changes. Records, grants, care
/// relationships and nonces stay keyed by it; recovery only changes which address controls the
/// id (its *controller*, the id itself until a first recovery). Moving a patient with 1,000
/// records and their grants to a new id would cost a transaction per record and per grant and
/// would break every reference held off chain (issuers' indexes, claims, studies); moving the
/// controller is one storage write, which `ProviderRegistry` makes when this contract asks it
/// (`moveControl`, `freezeControl`: nobody else may). Every contract asks the registry (`actsFor`,
/// `controllerOf`) instead of comparing with the id, so the old key loses every right at once.
interface IPatientRecovery {
    // ------------------------------------------------------------------ types

    /// @notice A patient's guardians' rules, in one slot.
    /// @param threshold Guardian approvals needed to recover or freeze (0: no guardians).
    /// @param delay Seconds between the threshold of approvals and completion.
    /// @param round Bumped by every completed or cancelled recovery and guardian change:
    /// approvals of an earlier round never count.
    /// @param freezeVotes Bit i set: guardian i voted to freeze (cleared by recovery or change).
    /// @param changeAt When a pending guardian change may be applied (0: none pending).
    struct Guardianship {
        uint8 threshold;
        uint32 delay;
        uint32 round;
        uint8 freezeVotes;
        uint40 changeAt;
    }

    /// @notice A recovery to one new controller.
    /// @param round The guardians' round it was approved in.
    /// @param approvals Bit i set: guardian i approved.
    /// @param readyAt When it may complete (0 until the threshold is reached).
    struct Recovery {
        uint32 round;
        uint8 approvals;
        uint40 readyAt;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when the caller is not the patient's live controller (the patient's own
    /// address before any recovery), or the patient is frozen.
    error RecoveryNotController(address caller, address patient);

    /// @notice Thrown when a guardian list, threshold or delay is not acceptable.
    error RecoveryInvalidGuardians(uint256 guardians, uint256 threshold, uint256 delay);

    /// @notice Thrown when the caller is not one of the patient's guardians.
    error RecoveryNotGuardian(address caller, address patient);

    /// @notice Thrown when a guardian approves the same recovery or freeze twice.
    error RecoveryAlreadyApproved(address patient, address guardian);

    /// @notice Thrown when a recovery is completed before its delay ran out, without the
    /// threshold of approvals, or after it was cancelled or already completed.
    error RecoveryNotReady(address patient, address newController, uint256 readyAt);

    /// @notice Thrown when no guardian change is pending or its delay has not run out.
    error RecoveryNoGuardianChange(address patient, uint256 changeAt);

    /// @notice Thrown when the patient is frozen and the operation needs a live controller.
    error RecoveryFrozen(address patient);

    /// @notice Thrown when an account that holds no record keys of the patient (neither a
    /// verified care institution nor the patient's controller) delivers keys for a recovery.
    error RecoveryNotKeyHolder(address caller, address patient);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when a patient's guardians change (at once for the first set, else when
    /// a delayed change is applied).
    event GuardiansChanged(address indexed patient, address[] guardians, uint8 threshold, uint32 delay);

    /// @notice Emitted when the controller proposes new guardians, applicable from `changeAt`.
    event GuardianChangeProposed(
        address indexed patient, address[] guardians, uint8 threshold, uint32 delay, uint40 changeAt
    );

    /// @notice Emitted when a guardian approves moving control to `newController`;
    /// `approvals` counts this round's approvals of that move.
    event RecoveryApproved(
        address indexed patient, address indexed newController, address indexed guardian, uint256 approvals
    );

    /// @notice Emitted when a recovery reached the threshold: it may complete from `readyAt`.
    event RecoveryStarted(address indexed patient, address indexed newController, uint40 readyAt);

    /// @notice Emitted when the controller cancels every pending recovery.
    event RecoveryCancelled(address indexed patient, address by);

    /// @notice Emitted when `by` (an issuer of the patient's records, or the controller from a
    /// backup) publishes a key envelope, sealed for the patient's current key, holding the keys
    /// of records it holds for `controller` (the patient's controller when it was delivered).
    event RecoveryKeysDelivered(
        address indexed patient, address indexed controller, bytes32 envelopeDigest, address by
    );

    /// @notice Emitted when a guardian votes to freeze the patient.
    event FreezeApproved(address indexed patient, address indexed guardian, uint256 approvals);

    // ------------------------------------------------------------------ functions

    /// @notice Names the patient's guardians, threshold and delay (empty list and zero
    /// threshold: no guardians). The first guardians apply at once; a later change applies only
    /// after the current delay (`applyGuardians`), so a thief holding the key cannot swap the
    /// guardians before they can freeze it; a completed recovery discards a pending change.
    /// @dev Only the patient's live controller (not a delegate), never while frozen. At most
    /// `MAX_GUARDIANS` distinct guardians, none the patient or its controller; threshold
    /// 1..n; delay `MIN_RECOVERY_DELAY`..`MAX_RECOVERY_DELAY`.
    /// @param patient The patient's id.
    /// @param guardians The guardians.
    /// @param threshold Approvals needed.
    /// @param delay Seconds between the threshold of approvals and completion.
    function setGuardians(address patient, address[] calldata guardians, uint8 threshold, uint32 delay) external;

    /// @notice Applies a pending guardian change whose delay has run out.
    /// @dev Callable by anyone; never while the patient is frozen.
    /// @param patient The patient's id.
    function applyGuardians(address patient) external;

    /// @notice The caller, a guardian, approves moving control of `patient` to `newController`;
    /// at the threshold the delay starts.
    /// @param patient The patient's id.
    /// @param newController An account with no role that controls no patient.
    /// @return readyAt When it may complete (0 below the threshold).
    function approveRecovery(address patient, address newController) external returns (uint40 readyAt);

    /// @notice Cancels every pending recovery of the patient (and the guardians' approvals).
    /// @dev Only the live controller (the key being replaced), never while frozen.
    /// @param patient The patient's id.
    function cancelRecovery(address patient) external;

    /// @notice Completes a recovery whose delay has run out: `newController` controls the
    /// patient from now on and the previous controller loses every right.
    /// @dev Callable by anyone: the approvals and the elapsed delay are the authority. Unfreezes
    /// the patient, clears its encryption key and starts a new round (no replay).
    /// @param patient The patient's id.
    /// @param newController The approved new controller.
    function completeRecovery(address patient, address newController) external;

    /// @notice Freezes the patient at once when called by its live controller; a guardian's call
    /// is a vote, and the threshold of votes freezes.
    /// @param patient The patient's id.
    /// @return frozen True when the patient is frozen after this call.
    function freeze(address patient) external returns (bool frozen);

    /// @notice Publishes the digest of a key envelope that re-wraps record keys the caller holds
    /// for the patient's current controller (after a recovery the old key's wraps are useless
    /// to the new one); readers count a key only if it opens its record.
    /// @dev Callable by a verified care institution or its practitioner (the issuers), or by the
    /// patient's live controller (restoring from its own backup).
    /// @param patient The patient's id.
    /// @param envelopeDigest The sha2-256 digest of the envelope's CID.
    function deliverRecoveryKeys(address patient, bytes32 envelopeDigest) external;

    /// @notice The patient's guardians and their rules.
    /// @param patient The patient's id.
    /// @return guardians The guardians.
    /// @return rules Threshold, delay, round, freeze votes and pending change time.
    function guardiansOf(address patient)
        external
        view
        returns (address[] memory guardians, Guardianship memory rules);

    /// @notice The state of a recovery to `newController` (stale when its round is not the
    /// guardians' current round).
    /// @param patient The patient's id.
    /// @param newController The proposed controller.
    /// @return recovery Its round, approvals and readiness time.
    function recoveryOf(address patient, address newController) external view returns (Recovery memory recovery);

    /// @notice Most guardians a patient names (approvals are a bitmap of one byte).
    /// @return count 8.
    function MAX_GUARDIANS() external view returns (uint256 count);

    /// @notice Shortest recovery delay: the time the controlling key has to notice and cancel.
    /// @return delay One hour, in seconds.
    function MIN_RECOVERY_DELAY() external view returns (uint32 delay);

    /// @notice Longest recovery delay.
    /// @return delay 365 days, in seconds.
    function MAX_RECOVERY_DELAY() external view returns (uint32 delay);
}
