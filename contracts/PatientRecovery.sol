// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IPatientRecovery} from "./interfaces/IPatientRecovery.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title PatientRecovery
/// @notice A patient's guardians (k of n, with a delay) move control of the patient to a new
/// address when its key is lost, or freeze a stolen key at once.
/// @dev Deployed by `ProviderRegistry`'s constructor, which trusts only this contract to move or
/// freeze control. Who may call: `setGuardians` and `cancelRecovery` the patient's live
/// controller; `approveRecovery` a guardian; `freeze` the controller (at once) or a guardian (a
/// vote); `applyGuardians` and `completeRecovery` anybody once their delay has run out.
/// Invariants: an approval counts only in the round it was cast in (a cancel, a completion or a
/// guardian change starts a new round, so a completed recovery never replays); a guardian change
/// waits the current delay, and a completed recovery drops it, so a thief holding the key
/// cannot replace the guardians before they freeze it; freeze votes survive a cancel (the thief
/// cannot wipe them) and are cleared only by a completion or a guardian change. Trust: k
/// guardians together can freeze and then take control after the delay; the patient chooses
/// them, and every step is an event the patient (and `medledger patient show`) sees.
contract PatientRecovery is IPatientRecovery {
    // ------------------------------------------------------------------ constants and immutables

    /// @inheritdoc IPatientRecovery
    uint256 public constant MAX_GUARDIANS = 8;

    /// @inheritdoc IPatientRecovery
    uint32 public constant MIN_RECOVERY_DELAY = 1 hours;

    /// @inheritdoc IPatientRecovery
    uint32 public constant MAX_RECOVERY_DELAY = 365 days;

    IProviderRegistry private immutable _PROVIDERS;

    // ------------------------------------------------------------------ storage

    mapping(address patient => address[]) private _guardians;
    mapping(address patient => Guardianship) private _rules;
    /// @dev A proposed guardian change: its list, and its threshold and delay.
    mapping(address patient => address[]) private _nextGuardians;
    mapping(address patient => Guardianship) private _nextRules;
    mapping(address patient => mapping(address newController => Recovery)) private _recoveries;

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry whose patients this contract recovers (the deployer).
    constructor(IProviderRegistry providers) {
        _PROVIDERS = providers;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IPatientRecovery
    function setGuardians(address patient, address[] calldata guardians, uint8 threshold, uint32 delay)
        external
    {
        _checkController(patient);
        uint256 count = guardians.length;
        bool none = count == 0 && threshold == 0;
        if (
            !none
                && (count > MAX_GUARDIANS || threshold == 0 || threshold > count || delay < MIN_RECOVERY_DELAY
                    || delay > MAX_RECOVERY_DELAY)
        ) revert RecoveryInvalidGuardians(count, threshold, delay);
        for (uint256 i = 0; i < count; ++i) {
            address guardian = guardians[i];
            if (guardian == address(0) || guardian == patient || guardian == msg.sender) {
                revert RecoveryInvalidGuardians(count, threshold, delay);
            }
            for (uint256 j = 0; j < i; ++j) {
                if (guardians[j] == guardian) revert RecoveryInvalidGuardians(count, threshold, delay);
            }
        }
        Guardianship storage rules = _rules[patient];
        if (rules.threshold == 0) {
            _guardians[patient] = guardians;
            _start(rules, threshold, delay);
            emit GuardiansChanged(patient, guardians, threshold, delay);
            return;
        }
        uint40 changeAt = uint40(block.timestamp) + rules.delay;
        rules.changeAt = changeAt;
        _nextGuardians[patient] = guardians;
        Guardianship storage next = _nextRules[patient];
        next.threshold = threshold;
        next.delay = delay;
        emit GuardianChangeProposed(patient, guardians, threshold, delay, changeAt);
    }

    /// @inheritdoc IPatientRecovery
    function applyGuardians(address patient) external {
        Guardianship storage rules = _rules[patient];
        uint40 changeAt = rules.changeAt;
        if (changeAt == 0 || block.timestamp < changeAt) revert RecoveryNoGuardianChange(patient, changeAt);
        if (_PROVIDERS.isFrozen(patient)) revert RecoveryFrozen(patient);
        address[] storage guardians = _nextGuardians[patient];
        Guardianship storage next = _nextRules[patient];
        _guardians[patient] = guardians;
        _start(rules, next.threshold, next.delay);
        emit GuardiansChanged(patient, guardians, next.threshold, next.delay);
        delete _nextGuardians[patient];
    }

    /// @inheritdoc IPatientRecovery
    function approveRecovery(address patient, address newController) external returns (uint40 readyAt) {
        uint8 bit = _guardianBit(patient, msg.sender);
        if (
            newController == address(0) || _PROVIDERS.participant(newController).role != IProviderRegistry.Role.None
                || _PROVIDERS.patientOf(newController) != address(0)
        ) revert IProviderRegistry.ProviderInvalidController(newController);
        Guardianship storage rules = _rules[patient];
        Recovery storage recovery = _recoveries[patient][newController];
        uint32 round = rules.round;
        if (recovery.round != round) {
            recovery.round = round;
            recovery.approvals = 0;
            recovery.readyAt = 0;
        }
        uint8 approvals = recovery.approvals;
        if (approvals & bit != 0) revert RecoveryAlreadyApproved(patient, msg.sender);
        approvals |= bit;
        recovery.approvals = approvals;
        uint256 count = _bits(approvals);
        emit RecoveryApproved(patient, newController, msg.sender, count);
        readyAt = recovery.readyAt;
        if (readyAt == 0 && count >= rules.threshold) {
            readyAt = uint40(block.timestamp) + rules.delay;
            recovery.readyAt = readyAt;
            emit RecoveryStarted(patient, newController, readyAt);
        }
    }

    /// @inheritdoc IPatientRecovery
    function cancelRecovery(address patient) external {
        _checkController(patient);
        ++_rules[patient].round;
        emit RecoveryCancelled(patient, msg.sender);
    }

    /// @inheritdoc IPatientRecovery
    function completeRecovery(address patient, address newController) external {
        Guardianship storage rules = _rules[patient];
        Recovery storage recovery = _recoveries[patient][newController];
        uint40 readyAt = recovery.readyAt;
        if (recovery.round != rules.round || readyAt == 0 || block.timestamp < readyAt) {
            revert RecoveryNotReady(patient, newController, readyAt);
        }
        // A new round voids every other approval and this recovery (no replay); the freeze
        // votes and a guardian change the replaced key proposed are dropped.
        ++rules.round;
        rules.freezeVotes = 0;
        rules.changeAt = 0;
        _PROVIDERS.moveControl(patient, newController);
    }

    /// @inheritdoc IPatientRecovery
    function freeze(address patient) external returns (bool frozen) {
        if (_PROVIDERS.participant(patient).role != IProviderRegistry.Role.Patient) {
            revert IProviderRegistry.ProviderNotPatient(patient);
        }
        if (_PROVIDERS.isFrozen(patient)) revert RecoveryFrozen(patient);
        if (msg.sender != _PROVIDERS.controllerOf(patient)) {
            uint8 bit = _guardianBit(patient, msg.sender);
            Guardianship storage rules = _rules[patient];
            uint8 votes = rules.freezeVotes;
            if (votes & bit != 0) revert RecoveryAlreadyApproved(patient, msg.sender);
            votes |= bit;
            rules.freezeVotes = votes;
            uint256 count = _bits(votes);
            emit FreezeApproved(patient, msg.sender, count);
            if (count < rules.threshold) return false;
        }
        _PROVIDERS.freezeControl(patient, msg.sender);
        return true;
    }

    /// @inheritdoc IPatientRecovery
    function deliverRecoveryKeys(address patient, bytes32 envelopeDigest) external {
        address controller = _PROVIDERS.controllerOf(patient);
        (bool mayWrite, uint32 writer) = _PROVIDERS.writerOf(msg.sender);
        if (controller == address(0) || (msg.sender != controller && (!mayWrite || writer == 0))) {
            revert RecoveryNotKeyHolder(msg.sender, patient);
        }
        emit RecoveryKeysDelivered(patient, controller, envelopeDigest, msg.sender);
    }

    /// @inheritdoc IPatientRecovery
    function guardiansOf(address patient)
        external
        view
        returns (address[] memory guardians, Guardianship memory rules)
    {
        return (_guardians[patient], _rules[patient]);
    }

    /// @inheritdoc IPatientRecovery
    function recoveryOf(address patient, address newController) external view returns (Recovery memory recovery) {
        return _recoveries[patient][newController];
    }

    // ------------------------------------------------------------------ private

    /// @dev The caller must be the registered patient's live controller (not frozen).
    function _checkController(address patient) private view {
        if (
            _PROVIDERS.participant(patient).role != IProviderRegistry.Role.Patient
                || _PROVIDERS.controllerOf(patient) != msg.sender
        ) revert RecoveryNotController(msg.sender, patient);
    }

    /// @dev The bit of `guardian` in the patient's approval bitmaps; reverts for a non-guardian.
    function _guardianBit(address patient, address guardian) private view returns (uint8) {
        address[] storage guardians = _guardians[patient];
        uint256 count = guardians.length;
        for (uint256 i = 0; i < count; ++i) {
            if (guardians[i] == guardian) return uint8(1 << i);
        }
        revert RecoveryNotGuardian(guardian, patient);
    }

    /// @dev New guardians: a new round, no freeze votes, no pending change.
    function _start(Guardianship storage rules, uint8 threshold, uint32 delay) private {
        rules.threshold = threshold;
        rules.delay = delay;
        ++rules.round;
        rules.freezeVotes = 0;
        rules.changeAt = 0;
    }

    function _bits(uint8 set) private pure returns (uint256 count) {
        for (; set != 0; set &= set - 1) ++count;
    }
}
