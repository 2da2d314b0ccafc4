// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IClaimsManager} from "./interfaces/IClaimsManager.sol";
import {IConsentManager} from "./interfaces/IConsentManager.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {RecordId} from "./libraries/RecordIds.sol";

/// @title ClaimsManager
/// @notice Insurance policies funded in a stablecoin and the claims made against them, from
/// submission (settled at once when small and provable) through review, dispute and
/// resolution to pull payment.
/// @dev Invariants: `policy.paid <= policy.funded` and `policy.paid <= policy.annualLimit`;
/// `policy.deductibleMet <= policy.deductible`; a claim record backs at most one claim, and a
/// care key or identifier key at most one claim; a claim is credited only by a decision
/// (automatic, approval or resolution), each at most once, and
/// `claim.paid <= (claim.billed - claim.deductibleApplied) * coverageBps / 10_000`; every
/// credit moves value from a policy's pool (`funded - paid`) to a payee's credit, so the token
/// balance equals the sum of the pools plus the sum of the credits (tokens sent here directly,
/// outside `fundPolicy`, only add to the balance). Who may call what: insurers (verified
/// institutions of kind Insurer, or their practitioners) issue policies and decide claims of
/// their own policies while verified, and take back an ended policy's pool; the care provider
/// that wrote a claim record (a verified hospital, clinic, laboratory or emergency service, or
/// its practitioners) and the insured patient submit, answer requests, dispute and escalate;
/// `RESOLVER_ROLE` resolves disputes; `DEFAULT_ADMIN_ROLE` manages resolvers. Storage: six
/// slots per policy (`Policy`'s fields cannot pack into fewer; see `StoredPolicy`), three per
/// claim and one per duplicate key.
contract ClaimsManager is IClaimsManager, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ types

    /// @dev A policy as this contract stores it. `Policy`, in its declared order, takes six
    /// slots, and so does any order of its fields: five 96-bit and one 128-bit field cannot
    /// share two slots. This order spends the spare bits where writes are cheapest: a decision
    /// writes `paid` and `deductibleMet` in one slot, and funding writes `funded`, each into a
    /// slot that already holds a non-zero term (so the first write costs 2,900 gas, not
    /// 20,000). `getPolicy` returns the fields as `Policy`.
    struct StoredPolicy {
        // slot 0
        address insurer;
        uint40 validFrom;
        uint16 openClaims;
        uint40 lastDecisionAt;
        // slot 1
        address patient;
        uint96 deductible;
        // slot 2: written by every decision that pays
        uint96 paid;
        uint96 deductibleMet;
        uint40 validUntil;
        uint16 coverageBps;
        // slot 3: written by funding
        uint128 funded;
        uint96 annualLimit;
        // slot 4
        uint96 autoSettleLimit;
        bool attestationRequired;
        // slot 5
        bytes32 codesRoot;
    }

    // ------------------------------------------------------------------ constants and immutables

    /// @notice Role of the accounts that resolve disputes.
    bytes32 public constant RESOLVER_ROLE = keccak256("RESOLVER_ROLE");

    /// @notice How long the insurer has to decide a claim before the claimant may escalate it.
    uint40 public constant DECISION_PERIOD = 30 days;

    /// @notice Most requests for information per claim.
    uint8 public constant MAX_INFO_REQUESTS = 3;

    /// @notice `Category.FINANCIAL` (see the Python `Category` enum): a claim record's category.
    uint8 public constant FINANCIAL_CATEGORY = 13;

    uint16 private constant _FULL_COVERAGE_BPS = 10_000;
    uint40 private constant _MAX_TERM = 366 days;
    /// @dev Bit `k` set for each care `InstitutionKind` k: Hospital 1, Clinic 2, Laboratory 3,
    /// EmergencyService 6.
    uint256 private constant _CARE_KINDS = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6);

    /// @inheritdoc IClaimsManager
    IERC20 public immutable TOKEN;

    /// @inheritdoc IClaimsManager
    uint40 public immutable DISPUTE_WINDOW;

    IProviderRegistry private immutable _PROVIDERS;
    IRecordRegistry private immutable _RECORDS;
    IConsentManager private immutable _CONSENT;

    // ------------------------------------------------------------------ storage

    mapping(uint64 policyId => StoredPolicy) private _policies;
    mapping(uint256 claimId => Claim) private _claims;
    mapping(address payee => uint256 amount) private _credit;
    mapping(bytes32 key => uint256 claimId) private _claimOfKey;
    /// @dev A patient's claim reserves its care and identifier keys, and its claim record, only
    /// once it is approved (or awarded): until then they wait here (care key, identifier key,
    /// record), so a patient's claim cannot block a provider's. The record stays once the keys
    /// are taken (it names the writer, a party to the claim).
    mapping(uint256 claimId => bytes32[3] keys) private _pendingKeys;
    uint64 private _policyCount;

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry of participants (who is an insurer, a care provider, a
    /// patient).
    /// @param records The registry of records (whose records the evidence is).
    /// @param consent The consent manager (whether the insurer may read the evidence).
    /// @param token The ERC-20 stablecoin policies are funded and claims paid in.
    /// @param disputeWindow Seconds after a decision during which it may be disputed.
    /// @param admin Holder of `DEFAULT_ADMIN_ROLE`, who grants and revokes `RESOLVER_ROLE`.
    constructor(
        IProviderRegistry providers,
        IRecordRegistry records,
        IConsentManager consent,
        IERC20 token,
        uint40 disputeWindow,
        address admin
    ) {
        _PROVIDERS = providers;
        _RECORDS = records;
        _CONSENT = consent;
        TOKEN = token;
        DISPUTE_WINDOW = disputeWindow;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IClaimsManager
    function issuePolicy(PolicyTerms calldata terms) external returns (uint64 policyId) {
        return _issuePolicy(terms, false);
    }

    /// @inheritdoc IClaimsManager
    function issuePolicyRequiringAttestation(PolicyTerms calldata terms) external returns (uint64 policyId) {
        policyId = _issuePolicy(terms, true);
        emit PolicyAttestationRequired(policyId);
    }

    /// @inheritdoc IClaimsManager
    /// @dev Credits the balance increase, not `amount`, so that a token taking a fee on
    /// transfer cannot make the pool promise more than it holds. Guarded against reentrancy
    /// (the token is called in the middle). Reverts with `ClaimInvalidAmount` when nothing
    /// arrives or the pool's total would not fit in 128 bits.
    function fundPolicy(uint64 policyId, uint256 amount) external nonReentrant {
        StoredPolicy storage policy = _policy(policyId);
        if (amount == 0) revert ClaimInvalidAmount(amount);
        uint256 before = TOKEN.balanceOf(address(this));
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = TOKEN.balanceOf(address(this)) - before;
        uint256 funded = policy.funded + received;
        if (received == 0 || funded > type(uint128).max) revert ClaimInvalidAmount(amount);
        policy.funded = uint128(funded);
        emit PolicyFunded(policyId, msg.sender, received, funded);
    }

    /// @inheritdoc IClaimsManager
    /// @dev An automatic settlement is paid at once (one token transfer to the payee, last, under
    /// the reentrancy guard): the claimant needs no withdrawal. Decisions by people credit the
    /// payee instead (pull payment), so that no payee can block an insurer or a resolver.
    function submitClaim(Submission calldata submission) external nonReentrant returns (uint256 claimId) {
        StoredPolicy storage policy = _policy(submission.policyId);
        (address submitter, uint32 provider) = _checkSubmission(policy, submission);
        bool byPatient = submitter == policy.patient;
        claimId = _identify(policy, submission, provider, byPatient);
        (ReviewReason review, uint96 allowed, uint96 deductible) = _review(policy, submission, byPatient);
        bool automatic = review == ReviewReason.None;
        uint40 now_ = uint40(block.timestamp);
        _claims[claimId] = Claim({
            submitter: submitter,
            policyId: submission.policyId,
            state: automatic ? ClaimState.Approved : ClaimState.Submitted,
            payPatient: submission.payPatient,
            infoRequests: 0,
            billed: submission.billed,
            paid: automatic ? allowed : 0,
            decidedAt: automatic ? now_ : 0,
            deductibleApplied: automatic ? deductible : 0,
            submittedAt: now_,
            answeredAt: 0
        });
        _emitSubmitted(claimId, submitter, submission, review);
        if (!automatic) {
            _open(policy, submission.policyId);
            return claimId;
        }
        // The patient is paid through its controller; while frozen (zero), its id is credited.
        address payee = submission.payPatient ? _PROVIDERS.controllerOf(policy.patient) : submitter;
        uint96 sent = allowed;
        if (payee == address(0)) {
            payee = policy.patient;
            _pay(policy, payee, allowed, deductible);
            sent = 0;
        } else {
            // Cannot overflow: see `_pay`.
            unchecked {
                policy.paid += allowed;
                policy.deductibleMet += deductible;
            }
        }
        emit ClaimApproved(claimId, payee, allowed, allowed, deductible, true, address(this));
        if (sent != 0) TOKEN.safeTransfer(payee, sent);
    }

    /// @inheritdoc IClaimsManager
    function approveClaim(uint256 claimId, uint96 amount) external {
        (Claim storage claim, StoredPolicy storage policy) = _decidable(claimId, true);
        uint96 billed = claim.billed;
        (uint96 allowed, uint96 deductible) = _allowedNow(policy, billed);
        if (amount == 0 && deductible != billed) revert ClaimInvalidAmount(amount);
        if (amount > allowed) revert ClaimAmountExceedsAllowed(amount, allowed);
        _requirePool(policy, claim.policyId, amount);
        claim.state = amount == allowed ? ClaimState.Approved : ClaimState.PartiallyApproved;
        claim.paid = amount;
        claim.decidedAt = uint40(block.timestamp);
        claim.deductibleApplied = deductible;
        _close(policy, amount != allowed);
        _reservePending(claimId);
        address payee = _payee(claim, policy);
        _pay(policy, payee, amount, deductible);
        emit ClaimApproved(claimId, payee, amount, allowed, deductible, false, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    function denyClaim(uint256 claimId, uint16 reasonCode) external {
        (Claim storage claim,) = _decidable(claimId, true);
        if (reasonCode == 0) revert ClaimReasonRequired();
        claim.state = ClaimState.Denied;
        claim.decidedAt = uint40(block.timestamp);
        _close(_policies[claim.policyId], true);
        emit ClaimDenied(claimId, reasonCode, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    function requestInfo(uint256 claimId, uint16 reasonCode) external {
        (Claim storage claim,) = _decidable(claimId, false);
        if (reasonCode == 0) revert ClaimReasonRequired();
        if (claim.infoRequests >= MAX_INFO_REQUESTS) revert ClaimTooManyInfoRequests(claimId);
        claim.infoRequests += 1;
        claim.state = ClaimState.InfoRequested;
        emit ClaimInfoRequested(claimId, reasonCode, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    /// @dev Reverts with `ClaimEvidenceRequired` when `evidence` is empty.
    function provideInfo(uint256 claimId, RecordId[] calldata evidence) external {
        (Claim storage claim, StoredPolicy storage policy) = _party(claimId);
        if (claim.state != ClaimState.InfoRequested) revert ClaimInvalidState(claimId, claim.state);
        if (evidence.length == 0) revert ClaimEvidenceRequired();
        _checkEvidence(evidence, policy.patient, policy.insurer);
        claim.state = ClaimState.Submitted;
        claim.answeredAt = uint40(block.timestamp);
        emit ClaimInfoProvided(claimId, evidence, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    function disputeClaim(uint256 claimId, uint16 reasonCode) external {
        (Claim storage claim, StoredPolicy storage policy) = _party(claimId);
        ClaimState state = claim.state;
        if (state != ClaimState.PartiallyApproved && state != ClaimState.Denied) {
            revert ClaimInvalidState(claimId, state);
        }
        if (reasonCode == 0) revert ClaimReasonRequired();
        uint256 closedAt = uint256(claim.decidedAt) + DISPUTE_WINDOW;
        if (block.timestamp >= closedAt) revert ClaimDisputeWindowClosed(claimId, closedAt);
        claim.state = ClaimState.Disputed;
        _open(policy, claim.policyId);
        emit ClaimDisputed(claimId, reasonCode, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    function escalateClaim(uint256 claimId) external {
        Claim storage claim = _claim(claimId);
        StoredPolicy storage policy = _policies[claim.policyId];
        bool insurerVerified = _isVerified(policy.insurer);
        if (msg.sender != policy.insurer || insurerVerified) _party(claimId);
        ClaimState state = claim.state;
        if (state != ClaimState.Submitted && (state != ClaimState.InfoRequested || insurerVerified)) {
            revert ClaimInvalidState(claimId, state);
        }
        uint40 answeredAt = claim.answeredAt;
        uint256 since = answeredAt > claim.submittedAt ? answeredAt : claim.submittedAt;
        uint256 until = since + DECISION_PERIOD;
        if (block.timestamp < until && insurerVerified) revert ClaimNotOverdue(claimId, until);
        claim.state = ClaimState.Disputed;
        emit ClaimEscalated(claimId, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    /// @dev For a claim paid nothing so far (denied or escalated), a covered resolution applies
    /// the deductible that `allowedAmount` reports and an uncovered one applies none; after a
    /// partial approval the deductible stays as it was applied then.
    function resolveDispute(uint256 claimId, uint96 award, bool covered) external {
        if (!hasRole(RESOLVER_ROLE, msg.sender)) revert ClaimNotResolver(msg.sender);
        Claim storage claim = _claim(claimId);
        if (claim.state != ClaimState.Disputed) revert ClaimInvalidState(claimId, claim.state);
        StoredPolicy storage policy = _policies[claim.policyId];
        (uint96 allowed, uint96 deductible, bool unpaid) = _allowedInDispute(policy, claim);
        if (unpaid && !covered) {
            if (award != 0) revert ClaimInvalidAmount(award);
            deductible = 0;
        }
        if (award > allowed) revert ClaimAmountExceedsAllowed(award, allowed);
        _requirePool(policy, claim.policyId, award);
        claim.state = ClaimState.Resolved;
        claim.paid += award;
        if (unpaid) claim.deductibleApplied = deductible;
        _close(policy, false);
        if (award != 0 || (unpaid && covered)) _reservePending(claimId);
        address payee = _payee(claim, policy);
        _pay(policy, payee, award, unpaid ? deductible : 0);
        emit DisputeResolved(claimId, payee, award, msg.sender);
    }

    /// @inheritdoc IClaimsManager
    function reclaimPool(uint64 policyId) external nonReentrant returns (uint256 amount) {
        StoredPolicy storage policy = _policy(policyId);
        address insurer = policy.insurer;
        if (msg.sender != insurer) revert ClaimNotPolicyInsurer(msg.sender, policyId);
        uint256 until = _max(uint256(policy.validUntil) + 1, uint256(policy.lastDecisionAt) + DISPUTE_WINDOW);
        if (policy.openClaims != 0) until = 0;
        if (until == 0 || block.timestamp < until) revert ClaimPolicyNotSettled(policyId, until);
        amount = _pool(policy);
        if (amount == 0) revert ClaimNothingToWithdraw(msg.sender);
        policy.funded = policy.paid;
        emit PoolReclaimed(policyId, insurer, amount);
        TOKEN.safeTransfer(insurer, amount);
    }

    /// @inheritdoc IClaimsManager
    /// @dev A patient's credit stays under its id: its controller withdraws it, and a replaced
    /// or frozen patient key withdraws nothing (not even as its own credit).
    function withdrawPayment() external nonReentrant returns (uint256 amount) {
        address patient = _PROVIDERS.patientOf(msg.sender);
        if (patient == msg.sender || _controls(msg.sender, msg.sender)) amount = _take(msg.sender);
        if (patient != msg.sender && patient != address(0)) amount += _take(patient);
        if (amount == 0) revert ClaimNothingToWithdraw(msg.sender);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IClaimsManager
    function getPolicy(uint64 policyId) external view returns (Policy memory policy) {
        StoredPolicy storage stored = _policy(policyId);
        return Policy({
            insurer: stored.insurer,
            validFrom: stored.validFrom,
            validUntil: stored.validUntil,
            coverageBps: stored.coverageBps,
            patient: stored.patient,
            deductible: stored.deductible,
            annualLimit: stored.annualLimit,
            paid: stored.paid,
            autoSettleLimit: stored.autoSettleLimit,
            deductibleMet: stored.deductibleMet,
            funded: stored.funded,
            codesRoot: stored.codesRoot
        });
    }

    /// @inheritdoc IClaimsManager
    function getClaim(uint256 claimId) external view returns (Claim memory claim) {
        return _claim(claimId);
    }

    /// @inheritdoc IClaimsManager
    /// @dev In a dispute after a partial approval: `allowed = min(coverage - paid, annual
    /// limit left)`, where `coverage = (billed - deductibleApplied) * coverageBps / 10_000`
    /// and `deductible = deductibleApplied` (nothing more is applied). An unknown claim is in
    /// state `None`: (0, 0).
    function allowedAmount(uint256 claimId) external view returns (uint96 allowed, uint96 deductible) {
        Claim storage claim = _claims[claimId];
        ClaimState state = claim.state;
        StoredPolicy storage policy = _policies[claim.policyId];
        if (state == ClaimState.Submitted || state == ClaimState.InfoRequested) {
            return _allowedNow(policy, claim.billed);
        }
        if (state == ClaimState.Disputed) {
            (allowed, deductible,) = _allowedInDispute(policy, claim);
        }
    }

    /// @inheritdoc IClaimsManager
    function creditOf(address payee) external view returns (uint256 amount) {
        return _credit[payee];
    }

    /// @inheritdoc IClaimsManager
    function patientClaimIdOf(RecordId record) external pure returns (uint256 claimId) {
        return _patientClaimId(record);
    }

    /// @inheritdoc IClaimsManager
    function openClaimsOf(uint64 policyId) external view returns (uint256 open) {
        return _policies[policyId].openClaims;
    }

    /// @inheritdoc IClaimsManager
    function claimOfKey(bytes32 key) external view returns (uint256 claimId) {
        return _claimOfKey[key];
    }

    /// @inheritdoc IClaimsManager
    function policyCount() external view returns (uint64 count) {
        return _policyCount;
    }

    // ------------------------------------------------------------------ private

    /// @dev Issues a policy on `terms` for the calling insurer (see `issuePolicy`).
    function _issuePolicy(PolicyTerms calldata terms, bool attestationRequired) private returns (uint64 policyId) {
        (address insurer, IProviderRegistry.Participant memory p) = _institutionOf(msg.sender);
        if (insurer == address(0) || p.kind != IProviderRegistry.InstitutionKind.Insurer) {
            revert ClaimNotInsurer(msg.sender);
        }
        if (_PROVIDERS.participant(terms.patient).role != IProviderRegistry.Role.Patient) {
            revert ClaimPatientNotRegistered(terms.patient);
        }
        if (
            terms.validFrom >= terms.validUntil || terms.validUntil - terms.validFrom > _MAX_TERM
                || terms.coverageBps == 0 || terms.coverageBps > _FULL_COVERAGE_BPS || terms.annualLimit == 0
                || terms.deductible > terms.annualLimit || terms.codesRoot == bytes32(0)
        ) revert ClaimInvalidTerms();

        policyId = ++_policyCount;
        _policies[policyId] = StoredPolicy({
            insurer: insurer,
            validFrom: terms.validFrom,
            openClaims: 0,
            lastDecisionAt: 0,
            patient: terms.patient,
            deductible: terms.deductible,
            paid: 0,
            deductibleMet: 0,
            validUntil: terms.validUntil,
            coverageBps: terms.coverageBps,
            funded: 0,
            annualLimit: terms.annualLimit,
            autoSettleLimit: terms.autoSettleLimit,
            codesRoot: terms.codesRoot,
            attestationRequired: attestationRequired
        });
        emit PolicyIssued(
            policyId,
            insurer,
            terms.patient,
            terms.validFrom,
            terms.validUntil,
            terms.coverageBps,
            terms.deductible,
            terms.annualLimit,
            terms.autoSettleLimit,
            terms.codesRoot,
            terms.termsDigest
        );
    }

    function _policy(uint64 policyId) private view returns (StoredPolicy storage policy) {
        policy = _policies[policyId];
        if (policy.insurer == address(0)) revert ClaimUnknownPolicy(policyId);
    }

    function _claim(uint256 claimId) private view returns (Claim storage claim) {
        claim = _claims[claimId];
        if (claim.state == ClaimState.None) revert ClaimUnknownClaim(claimId);
    }

    /// @dev A claim the caller may decide as its policy's insurer: Submitted, or also
    /// InfoRequested when `orInfoRequested`.
    function _decidable(uint256 claimId, bool orInfoRequested)
        private
        view
        returns (Claim storage claim, StoredPolicy storage policy)
    {
        claim = _claim(claimId);
        uint64 policyId = claim.policyId;
        policy = _policies[policyId];
        if (_PROVIDERS.verifiedInstitutionOf(msg.sender) != policy.insurer) {
            revert ClaimNotPolicyInsurer(msg.sender, policyId);
        }
        ClaimState state = claim.state;
        if (state != ClaimState.Submitted && (!orInfoRequested || state != ClaimState.InfoRequested)) {
            revert ClaimInvalidState(claimId, state);
        }
    }

    /// @dev A claim the caller is a party to: its submitter, an active practitioner of the
    /// submitting (verified) institution, or the insured patient.
    function _party(uint256 claimId) private view returns (Claim storage claim, StoredPolicy storage policy) {
        claim = _claim(claimId);
        policy = _policies[claim.policyId];
        address submitter = claim.submitter;
        // The patient acts through its live controller; its id (the submitter of its own
        // claims) stops acting once a recovery replaced that key.
        address patient = policy.patient;
        if (msg.sender == (submitter == patient ? address(0) : submitter) || _controls(msg.sender, patient)) {
            return (claim, policy);
        }
        (address institution, IProviderRegistry.Participant memory p) = _institutionOf(msg.sender);
        if (institution == submitter) return (claim, policy);
        // The provider that wrote the claim record is a party to a claim the patient submitted
        // (a patient's claim keeps its record in `_pendingKeys`; a provider's has none there).
        bytes32 record = _pendingKeys[claimId][2];
        uint32 writer = record == bytes32(0) ? 0 : _RECORDS.lookup(RecordId.wrap(record)).writer;
        if (institution == address(0) || writer == 0 || p.number != writer) {
            revert ClaimNotSubmitterOrPatient(msg.sender, claimId);
        }
    }

    /// @dev Whether `account` acts as the patient now (its live controller: see
    /// `IProviderRegistry.controllerOf`).
    function _controls(address account, address patient) private view returns (bool) {
        return account == _PROVIDERS.controllerOf(patient);
    }

    /// @dev Checks who submits, when, how much, the codes, the claim record and the evidence;
    /// returns the submitter as stored (the institution a practitioner acts for, or the
    /// patient) and the provider (the claim record's writer).
    function _checkSubmission(StoredPolicy storage policy, Submission calldata submission)
        private
        view
        returns (address submitter, uint32 provider)
    {
        uint64 policyId = submission.policyId;
        address patient = policy.patient;
        RecordId claimRecord = submission.claimRecord;
        IRecordRegistry.Record memory record = _RECORDS.lookup(claimRecord);
        provider = record.writer;
        uint32 number;
        (submitter, number) = _careProviderOf(msg.sender);
        if (submitter != address(0)) {
            if (number != provider) revert ClaimNotRecordWriter(msg.sender, claimRecord);
        } else if (_controls(msg.sender, patient)) {
            submitter = patient; // the patient's id, whichever key controls it now
        } else {
            revert ClaimNotProviderOrPatient(msg.sender, policyId);
        }
        if (block.timestamp < policy.validFrom || block.timestamp > policy.validUntil) {
            revert ClaimPolicyNotActive(policyId, block.timestamp);
        }
        if (submission.billed == 0) revert ClaimInvalidAmount(0);
        if (submission.serviceKey == bytes32(0)) revert ClaimServiceRequired();
        _checkCodes(submission.codeHashes, submission.codeProofs.length);
        if (record.patient != patient || record.category != FINANCIAL_CATEGORY || provider == 0) {
            revert ClaimRecordNotProviders(claimRecord);
        }
        if (policy.attestationRequired) _PROVIDERS.requireAttested(patient, provider);
        address insurer = policy.insurer;
        if (!_CONSENT.hasAccessFor(insurer, claimRecord, IConsentManager.Purpose.Payment)) {
            revert ClaimEvidenceNotConsented(claimRecord, insurer);
        }
        _checkEvidence(submission.evidence, patient, insurer);
    }

    /// @dev At least one code, strictly ascending (no repeats: one canonical list per set of
    /// codes), and either no proofs or one per code.
    function _checkCodes(bytes32[] calldata codeHashes, uint256 proofs) private pure {
        uint256 codes = codeHashes.length;
        if (codes == 0 || (proofs != 0 && proofs != codes)) revert ClaimInvalidCodes(codes, proofs);
        for (uint256 i = 1; i < codes; ++i) {
            if (codeHashes[i - 1] >= codeHashes[i]) revert ClaimInvalidCodes(codes, proofs);
        }
    }

    /// @dev The new claim's id, once it is no duplicate: a provider's claim takes its care and
    /// identifier keys at once; a patient's leaves them (and its record) waiting for approval.
    function _identify(StoredPolicy storage policy, Submission calldata submission, uint32 provider, bool byPatient)
        private
        returns (uint256 claimId)
    {
        RecordId claimRecord = submission.claimRecord;
        claimId = byPatient ? _patientClaimId(claimRecord) : uint256(RecordId.unwrap(claimRecord));
        if (_claims[claimId].state != ClaimState.None) revert ClaimDuplicate(claimId);
        // A provider's claim on a record whose patient's claim was approved is the same care.
        if (!byPatient) _claimKey(_recordKey(claimRecord), claimId, false);
        bytes32 careKey = keccak256(
            abi.encode("care", policy.patient, provider, submission.serviceKey, submission.codeHashes)
        );
        bytes32 identifierKey = submission.identifierKey == bytes32(0)
            ? bytes32(0)
            : keccak256(abi.encode("identifier", provider, submission.identifierKey));
        _claimKey(careKey, claimId, !byPatient);
        if (identifierKey != bytes32(0)) _claimKey(identifierKey, claimId, !byPatient);
        if (byPatient) _pendingKeys[claimId] = [careKey, identifierKey, RecordId.unwrap(claimRecord)];
    }

    /// @dev Refuses a key another claim holds; takes it for `claimId` when `reserve`.
    function _claimKey(bytes32 key, uint256 claimId, bool reserve) private {
        uint256 earlier = _claimOfKey[key];
        if (earlier != 0) revert ClaimDuplicate(earlier);
        if (reserve) _claimOfKey[key] = claimId;
    }

    /// @dev Before a claim is paid or covered: takes the keys a patient's claim left waiting
    /// (reverts when another claim took one meanwhile: the same care cannot be paid twice); for
    /// a provider's claim, refuses when the patient's claim of its record took the record (the
    /// provider's denial, disputed, must not pay the record a second time).
    function _reservePending(uint256 claimId) private {
        bytes32[3] storage keys = _pendingKeys[claimId];
        if (keys[2] == bytes32(0)) {
            _claimKey(_recordKey(RecordId.wrap(bytes32(claimId))), claimId, false);
            return;
        }
        bytes32 careKey = keys[0];
        if (careKey == bytes32(0)) return;
        // The provider's own claim of the same record wins unless it was settled for nothing.
        RecordId record = RecordId.wrap(keys[2]);
        uint256 providerClaim = uint256(RecordId.unwrap(record));
        Claim storage theirs = _claims[providerClaim];
        ClaimState state = theirs.state;
        bool nothing = state == ClaimState.None || state == ClaimState.Denied
            || (state == ClaimState.Resolved && theirs.paid == 0 && theirs.deductibleApplied == 0);
        if (!nothing) revert ClaimDuplicate(providerClaim);
        _claimKey(careKey, claimId, true);
        bytes32 identifierKey = keys[1];
        if (identifierKey != bytes32(0)) _claimKey(identifierKey, claimId, true);
        _claimKey(_recordKey(record), claimId, true);
        // The record stays: its writer is a party to the claim (`_party`).
        delete keys[0];
        delete keys[1];
    }

    /// @dev A patient's claim on a record has its own id, so that it never takes the id of the
    /// provider's claim on the same record.
    function _patientClaimId(RecordId record) private pure returns (uint256) {
        return uint256(keccak256(abi.encode("patient", record)));
    }

    function _recordKey(RecordId record) private pure returns (bytes32) {
        return keccak256(abi.encode("record", record));
    }

    /// @dev Counts a claim that awaits the insurer or a resolver.
    function _open(StoredPolicy storage policy, uint64 policyId) private {
        uint16 open = policy.openClaims;
        if (open == type(uint16).max) revert ClaimTooManyOpen(policyId);
        policy.openClaims = open + 1;
    }

    /// @dev Uncounts a claim that was decided or resolved; notes when for a decision that
    /// can be disputed (a partial approval or a denial), which keeps the pool until its window
    /// closes.
    function _close(StoredPolicy storage policy, bool disputable) private {
        // Cannot underflow: every claim decided or resolved here was counted open first.
        unchecked {
            policy.openClaims -= 1;
        }
        if (disputable) policy.lastDecisionAt = uint40(block.timestamp);
    }

    function _emitSubmitted(uint256 claimId, address submitter, Submission calldata submission, ReviewReason review)
        private
    {
        emit ClaimSubmitted(
            claimId,
            submission.policyId,
            submitter,
            submission.claimRecord,
            submission.billed,
            submission.payPatient,
            submission.evidence,
            submission.codeHashes,
            review == ReviewReason.None,
            review
        );
    }

    function _checkEvidence(RecordId[] calldata ids, address patient, address insurer) private view {
        for (uint256 i = 0; i < ids.length; ++i) {
            _checkEvidence(ids[i], patient, insurer);
        }
    }

    function _checkEvidence(RecordId id, address patient, address insurer) private view {
        if (_RECORDS.lookup(id).patient != patient) revert ClaimEvidenceNotPatients(id, patient);
        if (!_CONSENT.hasAccessFor(insurer, id, IConsentManager.Purpose.Payment)) {
            revert ClaimEvidenceNotConsented(id, insurer);
        }
    }

    /// @dev Why a submission cannot settle automatically (`None` when it can), and what it
    /// would be paid.
    function _review(StoredPolicy storage policy, Submission calldata submission, bool byPatient)
        private
        view
        returns (ReviewReason review, uint96 allowed, uint96 deductible)
    {
        if (byPatient) return (ReviewReason.SubmittedByPatient, 0, 0);
        uint96 limit = policy.autoSettleLimit;
        if (limit == 0) return (ReviewReason.AutoSettleDisabled, 0, 0);
        if (submission.billed > limit) return (ReviewReason.AboveAutoSettleLimit, 0, 0);
        uint256 codes = submission.codeProofs.length;
        if (codes == 0) return (ReviewReason.CodeNotProven, 0, 0);
        bytes32 root = policy.codesRoot;
        for (uint256 i = 0; i < codes; ++i) {
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(submission.codeHashes[i]))));
            if (!MerkleProof.verifyCalldata(submission.codeProofs[i], root, leaf)) {
                return (ReviewReason.CodeNotProven, 0, 0);
            }
        }
        (allowed, deductible) = _allowedNow(policy, submission.billed);
        // Nothing to pay is settled only for a claim wholly within the deductible (which then
        // counts toward it); otherwise the limit is reached, or the coverage rounds to zero.
        if (allowed == 0 && deductible != submission.billed) return (ReviewReason.LimitReached, 0, 0);
        if (_pool(policy) < allowed) return (ReviewReason.PoolInsufficient, 0, 0);
        if (!_isVerified(policy.insurer)) return (ReviewReason.InsurerNotVerified, 0, 0);
    }

    /// @dev `deductible = min(billed, deductible left)`,
    /// `allowed = min((billed - deductible) * coverageBps / 10_000, annual limit left)`.
    function _allowedNow(StoredPolicy storage policy, uint96 billed)
        private
        view
        returns (uint96 allowed, uint96 deductible)
    {
        deductible = _deductibleFor(policy, billed);
        allowed = _min(_coverage(policy, billed, deductible), _limitLeft(policy));
    }

    /// @dev What a resolution may award: for a claim paid nothing (denied or escalated) as if
    /// deciding now; after a partial approval the coverage left with the deductible applied
    /// then.
    function _allowedInDispute(StoredPolicy storage policy, Claim storage claim)
        private
        view
        returns (uint96 allowed, uint96 deductible, bool unpaid)
    {
        uint96 billed = claim.billed;
        uint96 paid = claim.paid;
        if (paid == 0) {
            (allowed, deductible) = _allowedNow(policy, billed);
            return (allowed, deductible, true);
        }
        deductible = claim.deductibleApplied;
        uint96 coverage = _coverage(policy, billed, deductible);
        // Cannot underflow: the approval paid at most the coverage computed the same way.
        unchecked {
            allowed = _min(coverage - paid, _limitLeft(policy));
        }
    }

    function _deductibleFor(StoredPolicy storage policy, uint96 billed) private view returns (uint96) {
        // Cannot underflow: deductibleMet only grows by deductibles capped at what was left.
        unchecked {
            return _min(billed, policy.deductible - policy.deductibleMet);
        }
    }

    function _coverage(StoredPolicy storage policy, uint96 billed, uint96 deductible) private view returns (uint96) {
        // Fits in 96 bits: at most `billed - deductible`, as coverageBps <= 10,000.
        return uint96(uint256(billed - deductible) * policy.coverageBps / _FULL_COVERAGE_BPS);
    }

    function _limitLeft(StoredPolicy storage policy) private view returns (uint96) {
        // Cannot underflow: a payment is never allowed above the limit left.
        unchecked {
            return policy.annualLimit - policy.paid;
        }
    }

    function _pool(StoredPolicy storage policy) private view returns (uint256) {
        // Cannot underflow: a payment is never made above the pool (`funded - paid`).
        unchecked {
            return policy.funded - policy.paid;
        }
    }

    function _requirePool(StoredPolicy storage policy, uint64 policyId, uint96 amount) private view {
        uint256 available = _pool(policy);
        if (available < amount) revert ClaimPoolInsufficient(policyId, amount, available);
    }

    /// @dev Moves `amount` from the policy's pool to the payee's credit and records the
    /// deductible applied. Callers have checked the pool, the limit and the deductible left.
    function _pay(StoredPolicy storage policy, address payee, uint96 amount, uint96 deductible) private {
        // Cannot overflow: paid stays below annualLimit and deductibleMet below deductible
        // (both uint96); a credit is bounded by the token's supply.
        unchecked {
            if (amount != 0) {
                policy.paid += amount;
                _credit[payee] += amount;
            }
            if (deductible != 0) policy.deductibleMet += deductible;
        }
    }

    /// @dev Clears `holder`'s credit for the caller to withdraw; returns it.
    function _take(address holder) private returns (uint256 amount) {
        amount = _credit[holder];
        if (amount != 0) {
            _credit[holder] = 0;
            emit PaymentWithdrawn(msg.sender, amount, holder);
        }
    }

    function _payee(Claim storage claim, StoredPolicy storage policy) private view returns (address) {
        return claim.payPatient ? policy.patient : claim.submitter;
    }

    /// @dev The verified institution `account` is or acts for, and its participant record;
    /// (0, record) when there is none. The same rule as `IProviderRegistry.verifiedInstitutionOf`
    /// (a verified institution, or a practitioner of one), read from `participant` so that an
    /// institution acting itself costs one call instead of two.
    function _institutionOf(address account)
        private
        view
        returns (address institution, IProviderRegistry.Participant memory p)
    {
        p = _PROVIDERS.participant(account);
        institution = account;
        if (p.role == IProviderRegistry.Role.Practitioner) {
            institution = p.employer;
            p = _PROVIDERS.participant(institution);
        }
        if (p.role != IProviderRegistry.Role.Institution || p.status != IProviderRegistry.InstitutionStatus.Verified) {
            institution = address(0);
        }
    }

    /// @dev The verified care institution (hospital, clinic, laboratory, emergency service)
    /// `account` is or works for, and its directory number; (0, 0) when there is none.
    function _careProviderOf(address account) private view returns (address institution, uint32 number) {
        IProviderRegistry.Participant memory p;
        (institution, p) = _institutionOf(account);
        // One bit per care kind (hospital, clinic, laboratory, emergency service): smaller code
        // than four comparisons, which keeps this contract under the 24,576-byte limit.
        if (institution == address(0) || (_CARE_KINDS >> uint8(p.kind)) & 1 == 0) return (address(0), 0);
        return (institution, p.number);
    }

    function _isVerified(address institution) private view returns (bool) {
        return _PROVIDERS.participant(institution).status == IProviderRegistry.InstitutionStatus.Verified;
    }

    function _max(uint256 a, uint256 b) private pure returns (uint256) {
        return a > b ? a : b;
    }

    function _min(uint96 a, uint96 b) private pure returns (uint96) {
        return a < b ? a : b;
    }
}
