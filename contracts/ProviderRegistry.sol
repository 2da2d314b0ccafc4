// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControlEnumerable} from
    "@openzeppelin/contracts/access/extensions/AccessControlEnumerable.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IdentityRegistry} from "./IdentityRegistry.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IPatientRecovery} from "./interfaces/IPatientRecovery.sol";
import {PatientRecovery} from "./PatientRecovery.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title ProviderRegistry
/// @notice Directory of institutions, practitioners and patients, with k-of-n verification of
/// institutions by self-governing registrars, patients' delegates, and the care relationships
/// that say which institutions may write a patient's records.
/// @dev Invariants: an account has at most one role; only `Verified` institutions and the
/// practitioners of `Verified` institutions act as institutions; only the votes of current
/// registrars count, one per registrar per round, never the institution's own; a status change
/// starts a new approval round (which also ends the emergency openings of its previous rounds);
/// an institution writes a patient's records only while a care
/// relationship the patient (or a delegate) opened is live; every published key is on the
/// curve and was signed for by its holder. Every "does this account act as the patient?"
/// question, here and in the other contracts, is answered by `_actsFor` / `_controllerOf`,
/// which know the patient's controller (see `IPatientRecovery`) and whether it is frozen: a
/// frozen patient has nobody acting for it, and a replaced key (or a delegate it named) has no
/// right left.
contract ProviderRegistry is IProviderRegistry, AccessControlEnumerable, EIP712, Nonces {
    // ------------------------------------------------------------------ types

    /// @dev Who controls a patient, in one slot read by every patient check.
    /// @param controller The controlling address; zero means the patient's own address.
    /// @param epoch Completed recoveries; a delegate counts only if named in the current epoch.
    /// @param frozen True from a freeze until the next completed recovery.
    struct Control {
        address controller;
        uint32 epoch;
        bool frozen;
    }

    // ------------------------------------------------------------------ constants

    /// @notice Role of the accounts that verify, suspend and reinstate institutions and govern
    /// the registrar set. Its admin role is held by nobody: only `voteRegistrar` changes it.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    /// @notice Most registrars at once (bounds the gas of counting votes).
    uint256 public constant MAX_REGISTRARS = 16;

    /// @notice EIP-712 type hash of `CareRequest`.
    bytes32 public constant CARE_TYPEHASH = keccak256(
        "CareRequest(address patient,address institution,uint40 until,uint256 nonce,uint256 deadline)"
    );

    /// @notice EIP-712 type hash of `RegistrationRequest`.
    bytes32 public constant REGISTRATION_TYPEHASH =
        keccak256("RegistrationRequest(address patient,bytes key,uint256 nonce,uint256 deadline)");

    /// @notice EIP-712 type hash of the proof that an account holds an encryption key.
    bytes32 public constant KEY_TYPEHASH = keccak256("EncryptionKey(address account,bytes key)");

    /// @notice The guardians' contract, deployed by this constructor: the only caller of
    /// `moveControl` and `freezeControl`.
    IPatientRecovery public immutable RECOVERY;

    /// @inheritdoc IProviderRegistry
    IIdentityRegistry public immutable IDENTITY;

    bytes32 private constant _NOBODY = keccak256("MedLedger.NOBODY");
    uint256 private constant _KEY_LENGTH = 33;
    /// @dev The secp256k1 field prime.
    uint256 private constant _P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;

    // ------------------------------------------------------------------ storage

    mapping(address account => Participant) private _participants;
    mapping(address account => bytes32 keyX) private _keyX;
    /// @dev The term (1, 2, ...) of each registrar's latest appointment; a vote counts only
    /// while its registrar is in the term it voted in.
    mapping(address registrar => uint32 term) private _terms;
    mapping(bytes32 motion => mapping(address registrar => uint32 term)) private _votes;
    mapping(address account => uint32 round) private _registrarRounds;
    mapping(address institution => mapping(address account => bool)) private _invitations;
    /// @dev Every institution an account ever worked for: a registrar never approves one of
    /// them, even after leaving it.
    mapping(address account => mapping(address institution => bool)) private _workedFor;
    /// @dev The controller epoch plus one in which the delegate was named (0: not a delegate).
    mapping(address patient => mapping(address delegate => uint32 epoch)) private _delegates;
    mapping(address patient => Control) private _control;
    mapping(address controller => address patient) private _controlled;

    mapping(address patient => mapping(uint32 institution => Care)) private _care;
    mapping(address account => mapping(uint32 institution => IIdentityRegistry.Attestation)) private _attestations;
    /// @dev Earlier care periods, oldest first: a batch written in one of them stays
    /// registrable after the relationship lapsed and was opened again.
    mapping(address patient => mapping(uint32 institution => Care[])) private _pastCare;
    uint32 private _institutionCount;
    uint32 private _thresholdRound;
    uint8 private _threshold;

    // ------------------------------------------------------------------ modifiers

    modifier onlyActingFor(address patient) {
        if (!_actsFor(msg.sender, patient)) revert ProviderNotPatientOrDelegate(msg.sender, patient);
        _;
    }

    // ------------------------------------------------------------------ constructor

    /// @param registrars The initial registrars (at most `MAX_REGISTRARS`).
    /// @param threshold Approvals needed to verify an institution (1..registrars.length).
    constructor(address[] memory registrars, uint8 threshold) EIP712("MedLedger ProviderRegistry", "1") {
        _setRoleAdmin(REGISTRAR_ROLE, _NOBODY);
        for (uint256 i = 0; i < registrars.length; ++i) {
            address registrar = registrars[i];
            if (registrar == address(0) || i >= MAX_REGISTRARS || !_grantRole(REGISTRAR_ROLE, registrar)) {
                revert ProviderInvalidRegistrar(registrar, true);
            }
        }
        _setThreshold(threshold);
        // Deployed here (its code is in this constructor's init code, not in the runtime code,
        // which stays under the 24 KiB limit) so that the registry trusts exactly one contract
        // with moving control, and nobody has to configure it.
        RECOVERY = new PatientRecovery(this);
        IDENTITY = new IdentityRegistry(this); // the same, for storing attestations
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IProviderRegistry
    function applyAsInstitution(
        InstitutionKind kind,
        string calldata name,
        bytes calldata publicKey,
        bytes calldata keyProof
    ) external {
        if (kind == InstitutionKind.None) revert ProviderInvalidKind(kind);
        Participant storage p = _register(msg.sender, Role.Institution);
        _setKey(msg.sender, p, publicKey, keyProof);
        uint32 number = ++_institutionCount;
        p.kind = kind;
        p.status = InstitutionStatus.Pending;
        p.number = number;
        emit InstitutionApplied(msg.sender, kind, number, name);
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
        if (
            institution == msg.sender || _workedFor[msg.sender][institution]
                || _invitations[institution][msg.sender]
        ) revert ProviderSelfApproval(msg.sender, institution);
        bytes32 motion = _approvalMotion(institution, p.round);
        if (_hasVoted(motion, msg.sender)) revert ProviderAlreadyApproved(institution, msg.sender);
        uint256 approvals = _vote(motion);
        uint256 threshold = _threshold;
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
        if (practitioner == address(0) || practitioner == msg.sender) {
            revert ProviderInvalidPractitioner(practitioner);
        }
        if (_participants[practitioner].role != Role.None) revert ProviderAlreadyRegistered(practitioner);
        _invitations[msg.sender][practitioner] = true;
        emit PractitionerInvited(msg.sender, practitioner);
    }

    /// @inheritdoc IProviderRegistry
    function acceptPractitioner(address institution) external {
        if (!_invitations[institution][msg.sender]) revert ProviderNotInvited(institution, msg.sender);
        Participant storage employer = _institution(institution);
        if (employer.status != InstitutionStatus.Verified) {
            revert ProviderInvalidStatus(institution, employer.status);
        }
        delete _invitations[institution][msg.sender];
        Participant storage p = _register(msg.sender, Role.Practitioner);
        p.employer = institution;
        _workedFor[msg.sender][institution] = true;
        emit PractitionerAdded(institution, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function removePractitioner(address practitioner) external {
        Participant storage p = _participants[practitioner];
        address institution = p.employer;
        if (p.role == Role.Practitioner && (msg.sender == institution || msg.sender == practitioner)) {
            // No role, no key: the account starts afresh (registering or joining publishes one).
            p.role = Role.None;
            p.employer = address(0);
            p.keyPrefix = 0;
        } else if (_invitations[msg.sender][practitioner]) {
            institution = msg.sender;
            delete _invitations[msg.sender][practitioner];
        } else {
            revert ProviderNotPractitioner(msg.sender, practitioner);
        }
        emit PractitionerRemoved(institution, practitioner, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function registerPatient(bytes calldata publicKey, bytes calldata keyProof) external {
        _setKey(msg.sender, _register(msg.sender, Role.Patient), publicKey, keyProof);
        emit PatientRegistered(msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function registerPatientWithSignature(
        RegistrationRequest calldata request,
        bytes calldata keyProof,
        bytes calldata signature
    ) external {
        address institution = _relayingInstitution();
        address patient = request.patient;
        if (block.timestamp > request.deadline) revert ProviderSignatureExpired(request.deadline);
        uint256 expected = nonces(patient);
        if (request.nonce != expected) revert ProviderSignatureReplayed(patient, request.nonce, expected);
        (address signer, ECDSA.RecoverError failure,) =
            ECDSA.tryRecoverCalldata(_registrationDigest(request), signature);
        if (failure != ECDSA.RecoverError.NoError || signer != patient) {
            revert ProviderInvalidSignature(signer, patient);
        }
        _useNonce(patient);
        _setKey(patient, _register(patient, Role.Patient), request.key, keyProof);
        emit PatientRegistered(patient);
        emit PatientOnboarded(patient, institution, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    /// @dev A patient's key is published by its live controller, for the patient's id.
    function publishEncryptionKey(bytes calldata publicKey, bytes calldata keyProof) external {
        address account = msg.sender;
        Role role = _participants[account].role;
        if (role == Role.None || role == Role.Patient) {
            account = _patientOf(msg.sender);
            if (account == address(0)) {
                if (role == Role.None) revert ProviderNotRegistered(msg.sender);
                revert ProviderNotController(msg.sender, msg.sender);
            }
        }
        _setKey(account, _participants[account], publicKey, keyProof);
    }

    /// @inheritdoc IProviderRegistry
    function voteRegistrar(address account, bool add) external onlyRole(REGISTRAR_ROLE) returns (bool done) {
        if (account == address(0) || hasRole(REGISTRAR_ROLE, account) == add) {
            revert ProviderInvalidRegistrar(account, add);
        }
        if (add && getRoleMemberCount(REGISTRAR_ROLE) >= MAX_REGISTRARS) revert ProviderInvalidRegistrar(account, add);
        bytes32 motion = keccak256(abi.encode("registrar", account, add, _registrarRounds[account]));
        if (_hasVoted(motion, msg.sender)) revert ProviderAlreadyVoted(motion, msg.sender);
        uint256 votes = _vote(motion);
        uint256 threshold = _threshold;
        emit RegistrarVoted(account, add, msg.sender, votes, threshold);
        if (votes < threshold) return false;
        ++_registrarRounds[account];
        if (add) _grantRole(REGISTRAR_ROLE, account);
        else _revokeRole(REGISTRAR_ROLE, account);
        return true;
    }

    /// @inheritdoc IProviderRegistry
    function voteThreshold(uint8 threshold) external onlyRole(REGISTRAR_ROLE) returns (bool done) {
        uint256 registrars = getRoleMemberCount(REGISTRAR_ROLE);
        if (threshold == 0 || threshold > registrars) revert ProviderInvalidThreshold(threshold, registrars);
        bytes32 motion = keccak256(abi.encode("threshold", threshold, _thresholdRound));
        if (_hasVoted(motion, msg.sender)) revert ProviderAlreadyVoted(motion, msg.sender);
        uint256 votes = _vote(motion);
        uint256 needed = _threshold;
        emit ThresholdVoted(threshold, msg.sender, votes, needed);
        if (votes < needed) return false;
        ++_thresholdRound;
        _setThreshold(threshold);
        return true;
    }

    /// @inheritdoc IProviderRegistry
    /// @dev The caller is the patient's live controller; the delegate is named for the
    /// current controller epoch only.
    function setDelegate(address delegate, bool allowed) external {
        address patient = _patientOf(msg.sender);
        if (patient == address(0)) revert ProviderNotPatient(msg.sender);
        if (delegate == address(0) || delegate == msg.sender || delegate == patient) {
            revert ProviderInvalidDelegate(delegate);
        }
        _delegates[patient][delegate] = allowed ? _control[patient].epoch + 1 : 0;
        emit DelegateChanged(patient, delegate, allowed);
    }

    /// @inheritdoc IProviderRegistry
    function authorizeCare(address patient, address institution, uint40 until) external onlyActingFor(patient) {
        _authorizeCare(patient, institution, until, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function authorizeCareWithSignature(CareRequest calldata request, bytes calldata signature) external {
        address patient = request.patient;
        if (block.timestamp > request.deadline) revert ProviderSignatureExpired(request.deadline);
        uint256 expected = nonces(patient);
        if (request.nonce != expected) revert ProviderSignatureReplayed(patient, request.nonce, expected);
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(_careDigest(request), signature);
        if (failure != ECDSA.RecoverError.NoError || !_actsFor(signer, patient)) {
            revert ProviderInvalidSignature(signer, patient);
        }
        _useNonce(patient);
        _authorizeCare(patient, request.institution, request.until, signer);
    }

    /// @inheritdoc IProviderRegistry
    function revokeCare(address patient, address institution) external {
        if (msg.sender != institution && !_actsFor(msg.sender, patient)) {
            revert ProviderNotCareParty(msg.sender, patient, institution);
        }
        Care storage care = _care[patient][_participants[institution].number];
        uint40 now_ = uint40(block.timestamp);
        if (_participants[institution].number == 0 || !_live(care, now_)) revert ProviderNoCare(patient, institution);
        care.until = now_;
        emit CareRevoked(patient, institution, msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function cancelSignatures(address patient) external onlyActingFor(patient) {
        emit SignaturesCancelled(patient, _useNonce(patient), msg.sender);
    }

    /// @inheritdoc IProviderRegistry
    function moveControl(address patient, address newController) external {
        if (msg.sender != address(RECOVERY)) revert ProviderNotRecovery(msg.sender);
        if (
            newController == address(0) || _participants[newController].role != Role.None
                || _controlled[newController] != address(0)
        ) revert ProviderInvalidController(newController);
        Control storage control = _control[patient];
        address previous = control.controller;
        if (previous == address(0)) previous = patient;
        else delete _controlled[previous];
        control.controller = newController;
        control.frozen = false;
        ++control.epoch;
        _controlled[newController] = patient;
        _participants[patient].keyPrefix = 0;
        emit PatientRecovered(patient, previous, newController);
    }

    /// @inheritdoc IProviderRegistry
    function freezeControl(address patient, address by) external {
        if (msg.sender != address(RECOVERY)) revert ProviderNotRecovery(msg.sender);
        _control[patient].frozen = true;
        emit PatientFrozen(patient, by);
    }

    /// @inheritdoc IProviderRegistry
    function storeAttestation(address account, uint32 number, IIdentityRegistry.Attestation calldata attestation)
        external
    {
        if (msg.sender != address(IDENTITY)) revert ProviderNotIdentityRegistry(msg.sender);
        _attestations[account][number] = attestation;
    }

    /// @inheritdoc IProviderRegistry
    function attestationOf(address account, uint32 number)
        external
        view
        returns (IIdentityRegistry.Attestation memory)
    {
        return _attestations[account][number];
    }

    /// @inheritdoc IProviderRegistry
    function isAttested(address account, uint32 number) external view returns (bool) {
        return _attestationHolds(_attestations[account][number]);
    }

    /// @inheritdoc IProviderRegistry
    function requireAttested(address account, uint32 number) external view {
        if (!_attestationHolds(_attestations[account][number])) {
            revert IIdentityRegistry.IdentityNotAttestedBy(account, number);
        }
    }

    /// @inheritdoc IProviderRegistry
    function requireAttestedBy(address account, address institution) external view {
        uint32 number = _participants[institution].number;
        if (number == 0 || !_attestationHolds(_attestations[account][number])) {
            revert IIdentityRegistry.IdentityNotAttestedBy(account, number);
        }
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
    function verifiedInstitutionOf(address account) external view returns (address institution) {
        (institution,) = _actingInstitution(account);
    }

    /// @inheritdoc IProviderRegistry
    function actingInstitution(address account) external view returns (address institution, uint32 round) {
        Participant storage p;
        (institution, p) = _actingInstitution(account);
        if (institution != address(0)) round = p.round;
    }

    /// @inheritdoc IProviderRegistry
    function writerOf(address account) external view returns (bool mayWrite, uint32 writer) {
        return _writerOf(account);
    }

    /// @inheritdoc IProviderRegistry
    function mayWriteFor(address issuer, address patient) external view returns (bool allowed, uint32 writer) {
        bool mayWrite;
        (mayWrite, writer) = _writerOf(issuer);
        if (!mayWrite) return (false, writer);
        // A live care relationship implies a registered patient: only one can open it.
        allowed = writer == 0 ? issuer == _controllerOf(patient) : _live(_care[patient][writer], uint40(block.timestamp));
    }

    /// @inheritdoc IProviderRegistry
    /// @dev Looks at the current period, then binary-searches the earlier ones (sorted by
    /// start, never overlapping) for the last that began at or before `at`, the only one that
    /// can hold it: O(log n) however often care was re-opened.
    function hadCare(address patient, uint32 writer, uint40 at) external view returns (bool held) {
        if (writer == 0) return false;
        Care storage current = _care[patient][writer];
        if (current.since <= at) return current.since != 0 && at < current.until;
        Care[] storage past = _pastCare[patient][writer];
        uint256 low = 0;
        uint256 high = past.length; // the answer is the last index below `high` with since <= at
        while (low < high) {
            uint256 middle = (low + high) / 2;
            if (past[middle].since <= at) low = middle + 1;
            else high = middle;
        }
        return low != 0 && at < past[low - 1].until;
    }

    /// @inheritdoc IProviderRegistry
    function careOf(address patient, address institution) external view returns (Care memory care) {
        uint32 number = _participants[institution].number;
        if (number != 0) care = _care[patient][number];
    }

    /// @inheritdoc IProviderRegistry
    function actsFor(address account, address patient) external view returns (bool allowed) {
        return _actsFor(account, patient);
    }

    /// @inheritdoc IProviderRegistry
    function isDelegate(address patient, address delegate) external view returns (bool allowed) {
        Control storage control = _control[patient];
        return !control.frozen && _delegates[patient][delegate] == control.epoch + 1;
    }

    /// @inheritdoc IProviderRegistry
    function isInvited(address institution, address account) external view returns (bool invited) {
        return _invitations[institution][account];
    }

    /// @inheritdoc IProviderRegistry
    function approvalThreshold() external view returns (uint8 threshold) {
        return _threshold;
    }

    /// @inheritdoc IProviderRegistry
    function approvalsOf(address institution) external view returns (uint256 approvals) {
        Participant storage p = _participants[institution];
        if (p.role != Role.Institution) return 0;
        return _countVotes(_approvalMotion(institution, p.round));
    }

    /// @inheritdoc IProviderRegistry
    function keyDigest(address account, bytes calldata publicKey) external view returns (bytes32 digest) {
        return _keyDigest(account, publicKey);
    }

    /// @inheritdoc IProviderRegistry
    function careDigest(CareRequest calldata request) external view returns (bytes32 digest) {
        return _careDigest(request);
    }

    /// @inheritdoc IProviderRegistry
    function registrationDigest(RegistrationRequest calldata request) external view returns (bytes32 digest) {
        return _registrationDigest(request);
    }

    /// @inheritdoc IProviderRegistry
    function controllerOf(address patient) external view returns (address controller) {
        return _controllerOf(patient);
    }

    /// @inheritdoc IProviderRegistry
    function patientOf(address account) external view returns (address patient) {
        return _patientOf(account);
    }

    /// @inheritdoc IProviderRegistry
    function isFrozen(address patient) external view returns (bool frozen) {
        return _control[patient].frozen;
    }

    // ------------------------------------------------------------------ internal

    /// @dev A new registrar starts a new term, so that votes from an earlier term never count.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted && role == REGISTRAR_ROLE) ++_terms[account];
    }

    /// @dev Keeps the threshold reachable: a registrar cannot be removed (or renounce) below it.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (role == REGISTRAR_ROLE) {
            uint256 registrars = getRoleMemberCount(REGISTRAR_ROLE);
            if (_threshold > registrars) revert ProviderInvalidThreshold(_threshold, registrars);
        }
    }

    // ------------------------------------------------------------------ private

    /// @dev The one answer to "may `account` act as `patient`?": its live controller or a
    /// delegate named in the current epoch, nobody while frozen. An account with no recovery
    /// state (a patient never recovered, or any other account) controls itself.
    function _actsFor(address account, address patient) private view returns (bool) {
        Control storage control = _control[patient];
        if (control.frozen) return false;
        address controller = control.controller;
        if (controller == address(0)) controller = patient;
        return account == controller || _delegates[patient][account] == control.epoch + 1;
    }

    /// @dev The patient's live controller, or zero while frozen.
    function _controllerOf(address patient) private view returns (address) {
        Control storage control = _control[patient];
        if (control.frozen) return address(0);
        address controller = control.controller;
        return controller == address(0) ? patient : controller;
    }

    /// @dev The registered patient `account` controls now, or zero.
    function _patientOf(address account) private view returns (address patient) {
        patient = _controlled[account];
        if (patient == address(0) && _participants[account].role == Role.Patient) patient = account;
        if (patient != address(0) && _controllerOf(patient) != account) patient = address(0);
    }

    function _register(address account, Role role) private returns (Participant storage p) {
        p = _participants[account];
        if (p.role != Role.None || _controlled[account] != address(0)) revert ProviderAlreadyRegistered(account);
        p.role = role;
    }

    /// @dev Checks that the key is a compressed point on secp256k1 and that its holder signed
    /// `keyDigest(account, key)`: the signer's address must be the key's own address.
    function _setKey(address account, Participant storage p, bytes calldata key, bytes calldata proof) private {
        if (key.length != _KEY_LENGTH || (key[0] != 0x02 && key[0] != 0x03)) {
            revert ProviderInvalidEncryptionKey(key);
        }
        uint8 prefix = uint8(key[0]);
        bytes32 x = bytes32(key[1:]);
        address holder = _keyAddress(prefix, uint256(x), key);
        (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecoverCalldata(_keyDigest(account, key), proof);
        if (failure != ECDSA.RecoverError.NoError || signer != holder) revert ProviderKeyNotOwned(account, key);
        p.keyPrefix = prefix;
        _keyX[account] = x;
        emit EncryptionKeyPublished(account, key);
    }

    /// @dev Decompresses a point (y = (x^3 + 7)^((p + 1) / 4) mod p, as p = 3 mod 4) and
    /// returns its Ethereum address; reverts when x is not the coordinate of a curve point.
    function _keyAddress(uint8 prefix, uint256 x, bytes calldata key) private view returns (address) {
        if (x >= _P) revert ProviderInvalidEncryptionKey(key);
        uint256 y2 = addmod(mulmod(mulmod(x, x, _P), x, _P), 7, _P);
        uint256 y = Math.modExp(y2, (_P + 1) / 4, _P);
        if (mulmod(y, y, _P) != y2) revert ProviderInvalidEncryptionKey(key);
        if (y & 1 != prefix & 1) y = _P - y;
        return address(uint160(uint256(keccak256(abi.encodePacked(x, y)))));
    }

    function _authorizeCare(address patient, address institution, uint40 until, address by) private {
        if (_participants[patient].role != Role.Patient) revert ProviderNotPatient(patient);
        Participant storage p = _participants[institution];
        if (p.role != Role.Institution || p.status != InstitutionStatus.Verified || !_isCareKind(p.kind)) {
            revert ProviderNotCareProvider(institution);
        }
        uint40 now_ = uint40(block.timestamp);
        if (until <= now_) revert ProviderInvalidCareExpiry(until);
        Care storage care = _care[patient][p.number];
        if (!_live(care, now_)) {
            if (care.since != 0) _pastCare[patient][p.number].push(care);
            care.since = now_;
        }
        care.until = until;
        emit CareAuthorized(patient, institution, until, by);
    }

    function _startRound(Participant storage p, InstitutionStatus status) private {
        p.status = status;
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

    /// @dev Records the caller's vote in its current term and returns the votes of current
    /// registrars on the motion.
    function _vote(bytes32 motion) private returns (uint256 votes) {
        _votes[motion][msg.sender] = _terms[msg.sender];
        return _countVotes(motion);
    }

    function _hasVoted(bytes32 motion, address registrar) private view returns (bool) {
        return _votes[motion][registrar] == _terms[registrar];
    }

    /// @dev At most `MAX_REGISTRARS` iterations.
    function _countVotes(bytes32 motion) private view returns (uint256 votes) {
        uint256 registrars = getRoleMemberCount(REGISTRAR_ROLE);
        for (uint256 i = 0; i < registrars; ++i) {
            if (_hasVoted(motion, getRoleMember(REGISTRAR_ROLE, i))) ++votes;
        }
    }

    function _institution(address account) private view returns (Participant storage p) {
        p = _participants[account];
        if (p.role != Role.Institution) revert ProviderNotInstitution(account);
    }

    /// @dev The institution the caller is or works for, which must be verified.
    function _relayingInstitution() private view returns (address institution) {
        Participant storage caller = _participants[msg.sender];
        institution = caller.role == Role.Practitioner ? caller.employer : msg.sender;
        InstitutionStatus status = _institution(institution).status;
        if (status != InstitutionStatus.Verified) revert ProviderInvalidStatus(institution, status);
    }

    /// @dev An attestation holds while unrevoked, unexpired and while its institution is
    /// verified in the round it attested in (a suspension bumps the round: it voids the
    /// institution's attestations for good).
    function _attestationHolds(IIdentityRegistry.Attestation storage stored) private view returns (bool) {
        address institution = stored.institution;
        if (institution == address(0) || stored.revoked || block.timestamp >= stored.expiresAt) return false;
        Participant storage p = _participants[institution];
        return p.status == InstitutionStatus.Verified && p.round == stored.round;
    }

    /// @dev The verified institution `account` is or works for, and its participant record.
    function _actingInstitution(address account) private view returns (address, Participant storage) {
        Participant storage p = _participants[account];
        address institution = account;
        if (p.role == Role.Practitioner) {
            institution = p.employer;
            p = _participants[institution];
        }
        if (p.role != Role.Institution || p.status != InstitutionStatus.Verified) institution = address(0);
        return (institution, p);
    }

    function _writerOf(address account) private view returns (bool mayWrite, uint32 writer) {
        (address institution, Participant storage p) = _actingInstitution(account);
        if (institution == address(0)) return (_patientOf(account) != address(0), 0);
        if (!_isCareKind(p.kind)) return (false, 0);
        return (true, p.number);
    }

    function _live(Care storage care, uint40 at) private view returns (bool) {
        uint40 since = care.since;
        return since != 0 && since <= at && at < care.until;
    }

    function _isCareKind(InstitutionKind kind) private pure returns (bool) {
        return kind == InstitutionKind.Hospital || kind == InstitutionKind.Clinic
            || kind == InstitutionKind.Laboratory || kind == InstitutionKind.EmergencyService;
    }

    function _approvalMotion(address institution, uint32 round) private pure returns (bytes32) {
        return keccak256(abi.encode("approval", institution, round));
    }

    function _keyDigest(address account, bytes calldata key) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(KEY_TYPEHASH, account, keccak256(key))));
    }

    function _careDigest(CareRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    CARE_TYPEHASH, request.patient, request.institution, request.until, request.nonce, request.deadline
                )
            )
        );
    }

    function _registrationDigest(RegistrationRequest calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    REGISTRATION_TYPEHASH, request.patient, keccak256(request.key), request.nonce, request.deadline
                )
            )
        );
    }
}
