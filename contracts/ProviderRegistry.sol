// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControlEnumerable} from
    "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title ProviderRegistry
/// @notice Directory of institutions, practitioners and patients, with k-of-n verification of
/// institutions by registrars.
/// @dev Invariants: an account has at most one role; only `Verified` institutions and the
/// active practitioners of `Verified` institutions pass `canAnchor` as writers; a status change
/// starts a new approval round so that approvals never carry over from an earlier round.
contract ProviderRegistry is IProviderRegistry, AccessControlEnumerable {
    // ------------------------------------------------------------------ constants

    /// @notice Role of the accounts that verify, suspend and reinstate institutions.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    uint256 private constant _KEY_LENGTH = 33;

    // ------------------------------------------------------------------ storage

    mapping(address account => Participant) private _participants;
    mapping(address account => bytes32 keyX) private _keyX;
    mapping(bytes32 roundKey => bool) private _approved;
    uint8 private _threshold;

    // ------------------------------------------------------------------ constructor

    /// @param admin Holder of `DEFAULT_ADMIN_ROLE`, who manages registrars and the threshold.
    /// @param registrars The initial registrars.
    /// @param threshold Approvals needed to verify an institution (1..registrars.length).
    constructor(address admin, address[] memory registrars, uint8 threshold) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < registrars.length; ++i) {
            _grantRole(REGISTRAR_ROLE, registrars[i]);
        }
        _setThreshold(threshold);
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IProviderRegistry
    function applyAsInstitution(InstitutionKind kind, string calldata name, bytes calldata publicKey)
        external
    {
        if (kind == InstitutionKind.None) revert ProviderInvalidKind(kind);
        Participant storage p = _register(msg.sender, Role.Institution);
        _setKey(msg.sender, p, publicKey);
        p.kind = kind;
        p.status = InstitutionStatus.Pending;
        emit InstitutionApplied(msg.sender, kind, name);
    }

    /// @inheritdoc IProviderRegistry
    function approveInstitution(address institution)
        external
        onlyRole(REGISTRAR_ROLE)
        returns (bool verified)
    {
        Participant storage p = _institution(institution);
        InstitutionStatus status = p.status;
        if (status != InstitutionStatus.Pending && status != InstitutionStatus.Suspended) {
            revert ProviderInvalidStatus(institution, status);
        }
        bytes32 roundKey = keccak256(abi.encode(institution, p.round, msg.sender));
        if (_approved[roundKey]) revert ProviderAlreadyApproved(institution, msg.sender);
        _approved[roundKey] = true;
        uint8 approvals = p.approvals + 1;
        uint8 threshold = _threshold;
        p.approvals = approvals;
        emit InstitutionApproved(institution, msg.sender, approvals, threshold);
        if (approvals < threshold) return false;
        _startRound(p, InstitutionStatus.Verified);
        if (status == InstitutionStatus.Pending) emit InstitutionVerified(institution);
        else emit InstitutionReinstated(institution);
        return true;
    }

    /// @inheritdoc IProviderRegistry
    function suspendInstitution(address institution, bytes32 reason) external onlyRole(REGISTRAR_ROLE) {
        Participant storage p = _institution(institution);
        if (p.status != InstitutionStatus.Verified) revert ProviderInvalidStatus(institution, p.status);
        _startRound(p, InstitutionStatus.Suspended);
        emit InstitutionSuspended(institution, msg.sender, reason);
    }

    /// @inheritdoc IProviderRegistry
    function addPractitioner(address practitioner) external {
        Participant storage employer = _institution(msg.sender);
        if (employer.status != InstitutionStatus.Verified) {
            revert ProviderInvalidStatus(msg.sender, employer.status);
        }
        Participant storage p = _register(practitioner, Role.Practitioner);
        p.employer = msg.sender;
        p.active = true;
        emit PractitionerAdded(msg.sender, practitioner);
    }

    /// @inheritdoc IProviderRegistry
    function removePractitioner(address practitioner) external {
        Participant storage p = _participants[practitioner];
        if (p.role != Role.Practitioner || p.employer != msg.sender || !p.active) {
            revert ProviderNotPractitioner(msg.sender, practitioner);
        }
        p.active = false;
        emit PractitionerRemoved(msg.sender, practitioner);
    }

    /// @inheritdoc IProviderRegistry
    function registerPatient(bytes calldata publicKey) external {
        _setKey(msg.sender, _register(msg.sender, Role.Patient), publicKey);
        emit PatientRegistered(msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function publishEncryptionKey(bytes calldata publicKey) external {
        Participant storage p = _participants[msg.sender];
        if (p.role == Role.None) revert ProviderNotRegistered(msg.sender);
        _setKey(msg.sender, p, publicKey);
    }

    /// @inheritdoc IProviderRegistry
    function setApprovalThreshold(uint8 threshold) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setThreshold(threshold);
    }

    /// @inheritdoc IProviderRegistry
    function participant(address account) external view returns (Participant memory) {
        return _participants[account];
    }

    /// @inheritdoc IProviderRegistry
    function encryptionKey(address account) external view returns (bytes memory key) {
        uint8 prefix = _participants[account].keyPrefix;
        if (prefix == 0) return "";
        return abi.encodePacked(prefix, _keyX[account]);
    }

    /// @inheritdoc IProviderRegistry
    function canAnchor(address issuer, address patient)
        external
        view
        returns (bool issuerMayWrite, bool patientRegistered)
    {
        patientRegistered = _participants[patient].role == Role.Patient;
        issuerMayWrite = (issuer == patient && patientRegistered) || _verifiedInstitutionOf(issuer) != address(0);
    }

    /// @inheritdoc IProviderRegistry
    function verifiedInstitutionOf(address account) external view returns (address institution) {
        return _verifiedInstitutionOf(account);
    }

    /// @inheritdoc IProviderRegistry
    function approvalThreshold() external view returns (uint8 threshold) {
        return _threshold;
    }

    // ------------------------------------------------------------------ internal

    /// @dev Keeps the threshold reachable: a registrar cannot be removed below it.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (role == REGISTRAR_ROLE) {
            uint256 registrars = getRoleMemberCount(REGISTRAR_ROLE);
            if (_threshold > registrars) revert ProviderInvalidThreshold(_threshold, registrars);
        }
    }

    // ------------------------------------------------------------------ private

    function _register(address account, Role role) private returns (Participant storage p) {
        p = _participants[account];
        if (p.role != Role.None) revert ProviderAlreadyRegistered(account);
        p.role = role;
    }

    function _setKey(address account, Participant storage p, bytes calldata key) private {
        if (key.length != _KEY_LENGTH || (key[0] != 0x02 && key[0] != 0x03)) {
            revert ProviderInvalidEncryptionKey(key);
        }
        p.keyPrefix = uint8(key[0]);
        _keyX[account] = bytes32(key[1:]);
        emit EncryptionKeyPublished(account, key);
    }

    function _startRound(Participant storage p, InstitutionStatus status) private {
        p.status = status;
        p.approvals = 0;
        // A round counter that wraps after 2^32 status changes of one institution is harmless:
        // the approvals of a round that old cannot be told apart only after 4 billion changes.
        unchecked {
            p.round += 1;
        }
    }

    function _setThreshold(uint8 threshold) private {
        uint256 registrars = getRoleMemberCount(REGISTRAR_ROLE);
        if (threshold == 0 || threshold > registrars) revert ProviderInvalidThreshold(threshold, registrars);
        emit ApprovalThresholdChanged(_threshold, threshold);
        _threshold = threshold;
    }

    function _institution(address account) private view returns (Participant storage p) {
        p = _participants[account];
        if (p.role != Role.Institution) revert ProviderNotInstitution(account);
    }

    function _verifiedInstitutionOf(address account) private view returns (address) {
        Participant storage p = _participants[account];
        if (p.role == Role.Institution) {
            return p.status == InstitutionStatus.Verified ? account : address(0);
        }
        if (p.role == Role.Practitioner && p.active) {
            address employer = p.employer;
            return _participants[employer].status == InstitutionStatus.Verified ? employer : address(0);
        }
        return address(0);
    }
}
