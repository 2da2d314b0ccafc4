// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {RecordId} from "../libraries/RecordIds.sol";

/// @title IClaimsManager
/// @notice Insurance policies funded in an ERC-20 stablecoin, and the claims made against them:
/// submission with consented evidence, automatic settlement of small claims the contract can
/// check itself, review by the insurer (approve in full or in part, deny, ask for more
/// information), a dispute window, escalation of claims left undecided, resolution by a
/// resolver, pull payments, and the return of an ended policy's unspent pool to its insurer.
/// @dev Money invariants: a policy pays out at most what was funded into it and at most its
/// annual limit; a claim is paid or credited at most once per decision and never above what
/// the policy allows for it (`coverageBps` of the billed amount less the deductible applied);
/// the token balance of this contract equals the sum of every policy's unpaid funds plus every
/// payee's unwithdrawn credit (an automatic settlement is sent at once; the decisions of
/// people are credited and withdrawn). A piece of care is paid at most once: a claim's id is its claim record's
/// id, and the same care (same patient, provider, service, codes and amount) or the same
/// claim identifier from the same provider is refused however it is re-encrypted. Only a care
/// provider's record of the patient backs a claim, submitted by that provider or the patient.
/// Medical detail never reaches the chain: procedure codes, the service period and the claim
/// identifier are salted hashes, evidence is referenced by record id, and reasons are numeric
/// codes.
interface IClaimsManager {
    // ------------------------------------------------------------------ types

    /// @notice Where a claim stands.
    /// @dev Submitted -> Approved | PartiallyApproved | Denied | InfoRequested;
    /// InfoRequested -> Submitted (information provided) | Approved | PartiallyApproved | Denied;
    /// PartiallyApproved | Denied -> Disputed (within the dispute window) -> Resolved;
    /// Submitted | InfoRequested -> Disputed (escalated: undecided past `DECISION_PERIOD`, or
    /// the insurer is no longer verified) -> Resolved.
    /// An automatically settled claim goes straight from submission to Approved.
    enum ClaimState {
        None,
        Submitted,
        InfoRequested,
        Approved,
        PartiallyApproved,
        Denied,
        Disputed,
        Resolved
    }

    /// @notice Why a submitted claim was left for a person to review instead of being settled
    /// automatically.
    enum ReviewReason {
        None,
        AutoSettleDisabled,
        AboveAutoSettleLimit,
        CodeNotProven,
        LimitReached, // the policy would pay nothing: its limit is used up, or coverage rounds to 0
        PoolInsufficient,
        SubmittedByPatient,
        InsurerNotVerified
    }

    /// @notice The terms an insurer issues a policy with.
    /// @param patient The insured patient (a registered patient's address).
    /// @param validFrom First second of cover.
    /// @param validUntil Last second of cover (at most 366 days after `validFrom`).
    /// @param coverageBps Share of the billed amount above the deductible that is paid, in
    /// basis points (1 to 10,000).
    /// @param deductible What the patient pays first over the policy's term, in token units.
    /// @param annualLimit Most the policy pays over its term, in token units (at least the
    /// deductible).
    /// @param autoSettleLimit Claims billed at most this much settle automatically when every
    /// rule holds; zero disables automatic settlement.
    /// @param codesRoot Merkle root (OpenZeppelin standard tree, leaf
    /// `keccak256(bytes.concat(keccak256(abi.encode(codeHash))))`) of the covered procedure
    /// codes' salted hashes.
    /// @param termsDigest CIDv0 digest of the encrypted terms document in IPFS (code list, salt).
    struct PolicyTerms {
        address patient;
        uint40 validFrom;
        uint40 validUntil;
        uint16 coverageBps;
        uint96 deductible;
        uint96 annualLimit;
        uint96 autoSettleLimit;
        bytes32 codesRoot;
        bytes32 termsDigest;
    }

    /// @notice A policy (six storage slots in the contract; the terms digest is only in the event).
    /// @param insurer The verified insurer that issued it.
    /// @param validFrom First second of cover.
    /// @param validUntil Last second of cover.
    /// @param coverageBps Share paid above the deductible, in basis points.
    /// @param patient The insured patient.
    /// @param deductible The deductible over the term.
    /// @param annualLimit Most the policy pays over its term.
    /// @param paid What the policy has credited to payees so far.
    /// @param autoSettleLimit Largest billed amount settled automatically (zero: never).
    /// @param deductibleMet Deductible applied to decided claims so far.
    /// @param funded Everything ever funded into the policy's pool; `funded - paid` is left.
    /// @param codesRoot Merkle root of the covered procedure codes' salted hashes.
    struct Policy {
        address insurer;
        uint40 validFrom;
        uint40 validUntil;
        uint16 coverageBps;
        address patient;
        uint96 deductible;
        uint96 annualLimit;
        uint96 paid;
        uint96 autoSettleLimit;
        uint96 deductibleMet;
        uint128 funded;
        bytes32 codesRoot;
    }

    /// @notice A claim as stored (three slots; codes, evidence and reasons are in events).
    /// @param submitter The institution (or the patient) that submitted it.
    /// @param policyId The policy claimed against.
    /// @param state Where it stands.
    /// @param payPatient True when payment goes to the patient (who paid the provider already).
    /// @param infoRequests How many times the insurer asked for information (at most
    /// `MAX_INFO_REQUESTS`).
    /// @param billed The amount billed, in token units.
    /// @param paid What has been credited to the payee for this claim.
    /// @param decidedAt When the insurer (or the contract) decided; zero before.
    /// @param deductibleApplied Deductible applied when it was decided.
    /// @param submittedAt When it was submitted.
    /// @param answeredAt When information was last provided (zero if never): the insurer's
    /// decision period runs from the later of the two.
    struct Claim {
        address submitter;
        uint64 policyId;
        ClaimState state;
        bool payPatient;
        uint8 infoRequests;
        uint96 billed;
        uint96 paid;
        uint40 decidedAt;
        uint96 deductibleApplied;
        uint40 submittedAt;
        uint40 answeredAt;
    }

    /// @notice What a claim submission carries.
    /// @param policyId The policy claimed against.
    /// @param billed The amount billed, in token units (non-zero).
    /// @param payPatient True to pay the patient (through its controller: credited to its id
    /// while frozen) instead of the submitting institution.
    /// @param claimRecord Record id of the encrypted FHIR `Claim` resource (anchored before, in
    /// category Financial, by a care provider for the patient); it is also the claim's id.
    /// @param evidence Further evidence records (encounter, procedures); may be empty.
    /// @param codeHashes Salted hashes of the claim's procedure codes (at least one, strictly
    /// ascending, so that the same set of codes is always the same list).
    /// @param codeProofs For each code hash, its Merkle proof against the policy's root; empty
    /// (or a wrong proof) leaves the claim for manual review instead of reverting.
    /// @param serviceKey Salted hash of the service period (non-zero): with the patient, the
    /// provider, the codes and the amount it identifies the care billed.
    /// @param identifierKey Salted hash of the claim's business identifier, or zero when it
    /// has none.
    struct Submission {
        uint64 policyId;
        uint96 billed;
        bool payPatient;
        RecordId claimRecord;
        RecordId[] evidence;
        bytes32[] codeHashes;
        bytes32[][] codeProofs;
        bytes32 serviceKey;
        bytes32 identifierKey;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when the caller is not a verified insurer (or one of its practitioners).
    error ClaimNotInsurer(address caller);

    /// @notice Thrown when the caller is not the insurer of the policy.
    error ClaimNotPolicyInsurer(address caller, uint64 policyId);

    /// @notice Thrown when the insured account is not a registered patient.
    error ClaimPatientNotRegistered(address patient);

    /// @notice Thrown when policy terms are inconsistent (dates, rate, limits or root).
    error ClaimInvalidTerms();

    /// @notice Thrown when a policy id is unknown.
    error ClaimUnknownPolicy(uint64 policyId);

    /// @notice Thrown when a claim id is unknown.
    error ClaimUnknownClaim(uint256 claimId);

    /// @notice Thrown when a claim is submitted outside its policy's period of cover.
    error ClaimPolicyNotActive(uint64 policyId, uint256 at);

    /// @notice Thrown when an amount is zero or too large for the accounting.
    error ClaimInvalidAmount(uint256 amount);

    /// @notice Thrown when the caller may not submit against the policy (neither a verified
    /// care provider nor the insured patient).
    error ClaimNotProviderOrPatient(address caller, uint64 policyId);

    /// @notice Thrown when a claim lists no procedure code, or proofs that do not pair up.
    error ClaimInvalidCodes(uint256 codes, uint256 proofs);

    /// @notice Thrown when an evidence record is not the insured patient's.
    error ClaimEvidenceNotPatients(RecordId record, address patient);

    /// @notice Thrown when the insurer holds no live "payment" grant for an evidence record.
    error ClaimEvidenceNotConsented(RecordId record, address insurer);

    /// @notice Thrown when an action is not allowed in the claim's current state.
    error ClaimInvalidState(uint256 claimId, ClaimState state);

    /// @notice Thrown when the caller is neither the claim's submitter nor the patient.
    error ClaimNotSubmitterOrPatient(address caller, uint256 claimId);

    /// @notice Thrown when an approval or award exceeds what the policy allows for the claim.
    error ClaimAmountExceedsAllowed(uint256 amount, uint256 allowed);

    /// @notice Thrown when the policy's pool holds less than a payment needs.
    error ClaimPoolInsufficient(uint64 policyId, uint256 needed, uint256 available);

    /// @notice Thrown when a denial, request or dispute carries reason code zero.
    error ClaimReasonRequired();

    /// @notice Thrown when a dispute comes after the dispute window closed.
    error ClaimDisputeWindowClosed(uint256 claimId, uint256 closedAt);

    /// @notice Thrown when the caller does not hold the resolver role.
    error ClaimNotResolver(address caller);

    /// @notice Thrown when an account withdraws with nothing credited to it.
    error ClaimNothingToWithdraw(address account);

    /// @notice Thrown when the claim record is not a Financial record written by a care
    /// provider for the insured patient.
    error ClaimRecordNotProviders(RecordId record);

    /// @notice Thrown when an institution submits a claim on a record another provider wrote.
    error ClaimNotRecordWriter(address caller, RecordId record);

    /// @notice Thrown when the same care, or the same claim identifier, was already claimed
    /// (by `claimId`), or the claim record already backs a claim.
    error ClaimDuplicate(uint256 claimId);

    /// @notice Thrown when a submission carries no service key.
    error ClaimServiceRequired();

    /// @notice Thrown when the insurer asks for information more than `MAX_INFO_REQUESTS` times.
    error ClaimTooManyInfoRequests(uint256 claimId);

    /// @notice Thrown when a claim is escalated while its insurer is verified and the decision
    /// period runs until `until`.
    error ClaimNotOverdue(uint256 claimId, uint256 until);

    /// @notice Thrown when an unspent pool is taken back before the policy's term, its open
    /// claims and its last decision's dispute window are over (`until`: the earliest time, or 0
    /// while claims are open).
    error ClaimPolicyNotSettled(uint64 policyId, uint256 until);

    /// @notice Thrown when a policy counts too many open claims for its counter.
    error ClaimTooManyOpen(uint64 policyId);

    /// @notice Thrown when information is provided without any evidence record.
    error ClaimEvidenceRequired();


    // ------------------------------------------------------------------ events

    /// @notice Emitted when an insurer issues a policy.
    event PolicyIssued(
        uint64 indexed policyId,
        address indexed insurer,
        address indexed patient,
        uint40 validFrom,
        uint40 validUntil,
        uint16 coverageBps,
        uint96 deductible,
        uint96 annualLimit,
        uint96 autoSettleLimit,
        bytes32 codesRoot,
        bytes32 termsDigest
    );

    /// @notice Emitted when a policy is issued requiring an attested patient.
    event PolicyAttestationRequired(uint64 indexed policyId);

    /// @notice Emitted when tokens are paid into a policy's pool.
    event PolicyFunded(uint64 indexed policyId, address indexed funder, uint256 amount, uint256 funded);

    /// @notice Emitted when a claim is submitted on `claimRecord` (the claim's id for a
    /// provider's claim; a patient's claim has its own id); `automatic` says whether it was
    /// settled at once, otherwise `review` says why a person must look at it.
    event ClaimSubmitted(
        uint256 indexed claimId,
        uint64 indexed policyId,
        address indexed submitter,
        RecordId claimRecord,
        uint96 billed,
        bool payPatient,
        RecordId[] evidence,
        bytes32[] codeHashes,
        bool automatic,
        ReviewReason review
    );

    /// @notice Emitted when a claim is approved (by the insurer or automatically) and the
    /// amount credited to the payee.
    event ClaimApproved(
        uint256 indexed claimId,
        address indexed payee,
        uint96 amount,
        uint96 allowed,
        uint96 deductibleApplied,
        bool automatic,
        address decider
    );

    /// @notice Emitted when the insurer denies a claim.
    event ClaimDenied(uint256 indexed claimId, uint16 reasonCode, address decider);

    /// @notice Emitted when the insurer asks for more information.
    event ClaimInfoRequested(uint256 indexed claimId, uint16 reasonCode, address requester);

    /// @notice Emitted when the submitter or patient answers a request with more evidence.
    event ClaimInfoProvided(uint256 indexed claimId, RecordId[] evidence, address provider);

    /// @notice Emitted when the submitter or patient disputes a decision.
    event ClaimDisputed(uint256 indexed claimId, uint16 reasonCode, address disputer);

    /// @notice Emitted when a resolver settles a dispute; `award` is credited on top of what
    /// was approved before (zero upholds the decision).
    event DisputeResolved(uint256 indexed claimId, address indexed payee, uint96 award, address resolver);

    /// @notice Emitted when the submitter or patient escalates a claim left undecided.
    event ClaimEscalated(uint256 indexed claimId, address by);

    /// @notice Emitted when an insurer takes back the unspent pool of an ended policy.
    event PoolReclaimed(uint64 indexed policyId, address indexed insurer, uint256 amount);

    /// @notice Emitted when a payee withdraws a credit: its own (`holder` is the payee) or, as
    /// a patient's controller, the patient's (`holder` is the patient's id).
    event PaymentWithdrawn(address indexed payee, uint256 amount, address indexed holder);

    // ------------------------------------------------------------------ functions

    /// @notice Issues a policy to a patient.
    /// @dev Callable by a verified insurer or one of its practitioners (the policy's insurer is
    /// the institution).
    /// @param terms The policy terms.
    /// @return policyId The new policy's id (1, 2, ...).
    function issuePolicy(PolicyTerms calldata terms) external returns (uint64 policyId);

    /// @notice Issues a policy, as `issuePolicy`, that requires an attested patient: a claim is
    /// refused (`IIdentityRegistry.IdentityNotAttestedBy`) unless the care provider that wrote
    /// its claim record attests the patient at submission (`IIdentityRegistry.isAttested`).
    /// Fixed at issuance, so a patient's cover never tightens once issued.
    /// @dev Same callers and checks as `issuePolicy`; emits `PolicyAttestationRequired` after
    /// `PolicyIssued` (readers find the requirement there).
    /// @param terms The policy's terms.
    /// @return policyId The new policy's id.
    function issuePolicyRequiringAttestation(PolicyTerms calldata terms) external returns (uint64 policyId);

    /// @notice Pays tokens into a policy's pool (the caller must have approved this contract).
    /// @dev Callable by anyone; uses SafeERC20 and credits exactly what arrived.
    /// @param policyId The policy.
    /// @param amount Token units.
    function fundPolicy(uint64 policyId, uint256 amount) external;

    /// @notice Submits a claim; settles it at once when it is small and every rule holds.
    /// @dev Callable by the verified care provider that wrote the claim record (or one of its
    /// practitioners) or by the insured patient; a patient's claim is always reviewed, and
    /// takes its care and identifier keys only when approved (so it cannot block the
    /// provider's own claim of that care). The
    /// insurer must hold a live "payment" grant for the claim record and every evidence record,
    /// all of which must be the patient's. Settles automatically only while the insurer is
    /// verified, and then pays the payee at once (a token transfer; no withdrawal needed). A
    /// claim entirely within the deductible settles for zero and counts toward it.
    /// @param submission The claim.
    /// @return claimId The new claim's id: `uint256(claimRecord)` for a provider's claim,
    /// `patientClaimIdOf(claimRecord)` for the patient's.
    function submitClaim(Submission calldata submission) external returns (uint256 claimId);

    /// @notice Approves a claim in full (`amount` equal to what the policy allows) or in part.
    /// @dev Callable by the policy's insurer while the claim is Submitted or InfoRequested.
    /// @param claimId The claim.
    /// @param amount Token units to pay (at most `allowedAmount(claimId)`; zero only when the
    /// whole claim falls within the deductible, which then counts toward it). Approving a
    /// patient's claim takes its care and identifier keys, and reverts `ClaimDuplicate` when
    /// another claim took one since.
    function approveClaim(uint256 claimId, uint96 amount) external;

    /// @notice Denies a claim.
    /// @dev Callable by the policy's insurer while the claim is Submitted or InfoRequested.
    /// @param claimId The claim.
    /// @param reasonCode Non-zero reason code (the meaning is published off chain).
    function denyClaim(uint256 claimId, uint16 reasonCode) external;

    /// @notice Asks the submitter for more information.
    /// @dev Callable by the policy's insurer while the claim is Submitted, at most
    /// `MAX_INFO_REQUESTS` times per claim.
    /// @param claimId The claim.
    /// @param reasonCode Non-zero code for what is missing.
    function requestInfo(uint256 claimId, uint16 reasonCode) external;

    /// @notice Answers a request for information with more evidence and returns the claim for
    /// review.
    /// @dev Callable by the submitter (or its practitioners) or the patient while the claim is
    /// InfoRequested; the evidence must be consented like at submission.
    /// @param claimId The claim.
    /// @param evidence The added evidence records (at least one).
    function provideInfo(uint256 claimId, RecordId[] calldata evidence) external;

    /// @notice Disputes a partial approval or a denial.
    /// @dev Callable by a party: the submitter (or its practitioners), the patient, or, for a
    /// claim the patient submitted, the provider that wrote its claim record (or its
    /// practitioners); within `DISPUTE_WINDOW` of the decision, once.
    /// @param claimId The claim.
    /// @param reasonCode Non-zero reason code.
    function disputeClaim(uint256 claimId, uint16 reasonCode) external;

    /// @notice Escalates a claim its insurer left undecided to a resolver.
    /// @dev Callable by a party (see `disputeClaim`), or by the policy's insurer account while
    /// it is not verified (its suspension cannot strand its pool), while the claim awaits the insurer
    /// (Submitted) and `DECISION_PERIOD` has passed since its submission or its last answer to
    /// a request, or at once, also from InfoRequested, when the insurer is no longer verified.
    /// @param claimId The claim.
    function escalateClaim(uint256 claimId) external;

    /// @notice Resolves a dispute, crediting `award` on top of what was approved.
    /// @dev Callable by a holder of `RESOLVER_ROLE`. `award` is at most what the policy allows
    /// for the claim less what it already paid, and at most what the pool holds. For a claim
    /// paid nothing so far, `covered` says whether the care is covered: the deductible then
    /// applies (a claim within the deductible is covered with an award of zero); an uncovered
    /// claim gets no award and applies no deductible. An award (or a covered resolution) takes
    /// a patient's claim's keys like `approveClaim`; for a provider's claim whose record the
    /// patient's approved claim took meanwhile, it reverts `ClaimDuplicate` naming that claim.
    /// @param claimId The claim.
    /// @param award Token units to add (zero upholds the decision).
    /// @param covered Whether the care is covered (ignored after a partial approval).
    function resolveDispute(uint256 claimId, uint96 award, bool covered) external;

    /// @notice Returns an ended policy's unspent pool to its insurer.
    /// @dev Callable by the policy's insurer account (verified or not) once the term has ended,
    /// no claim of the policy is open and its last decision can no longer be disputed.
    /// @param policyId The policy.
    /// @return amount Token units returned.
    function reclaimPool(uint64 policyId) external returns (uint256 amount);

    /// @notice Withdraws everything credited to the caller (pull payment) and, for a patient's
    /// controller (`IProviderRegistry.patientOf`), to the patient: a patient is paid through
    /// its controller, so a replaced or frozen patient key withdraws nothing.
    /// @dev Guarded against reentrancy; state is cleared before the transfer.
    /// @return amount Token units sent.
    function withdrawPayment() external returns (uint256 amount);

    /// @notice Returns a policy.
    /// @param policyId The policy.
    /// @return policy The policy (reverts when unknown).
    function getPolicy(uint64 policyId) external view returns (Policy memory policy);

    /// @notice Returns a claim.
    /// @param claimId The claim.
    /// @return claim The claim (reverts when unknown).
    function getClaim(uint256 claimId) external view returns (Claim memory claim);

    /// @notice Returns what the policy would allow for a claim if decided now.
    /// @dev Submitted or InfoRequested: `deductible = min(billed, policy deductible left)`,
    /// `allowed = min((billed - deductible) * coverageBps / 10_000, annual limit left)`.
    /// Disputed: the same with the deductible applied at the decision (or, after a denial, the
    /// deductible left now), less what the claim was already paid. Any other state: (0, 0).
    /// The pool is not a cap here: a decision the pool cannot pay reverts with
    /// `ClaimPoolInsufficient` (and an automatic settlement is left for review instead).
    /// @param claimId The claim.
    /// @return allowed Token units the decision may credit at most.
    /// @return deductible The deductible that deciding now would apply.
    function allowedAmount(uint256 claimId) external view returns (uint96 allowed, uint96 deductible);

    /// @notice Returns what a payee can withdraw.
    /// @param payee The payee.
    /// @return amount Token units credited and not yet withdrawn.
    function creditOf(address payee) external view returns (uint256 amount);

    /// @notice The id of the patient's claim on a claim record:
    /// `uint256(keccak256(abi.encode("patient", record)))` (a provider's claim on it has the
    /// record's own id).
    /// @param record The claim record.
    /// @return claimId The id.
    function patientClaimIdOf(RecordId record) external pure returns (uint256 claimId);

    /// @notice Returns how many claims of a policy are open (undecided or disputed).
    /// @param policyId The policy.
    /// @return open The count.
    function openClaimsOf(uint64 policyId) external view returns (uint256 open);

    /// @notice Returns the claim that already billed the same care or identifier, or zero.
    /// @dev Care key: `keccak256(abi.encode("care", patient, provider, serviceKey, codeHashes))`,
    /// the provider being the claim record's writer number (not the amount: the same service
    /// with the same codes billed again at another amount, a corrected invoice, is the same
    /// care; a denial is disputed, not resubmitted); identifier key:
    /// `keccak256(abi.encode("identifier", provider, identifierKey))`; record key (taken when
    /// a patient's claim is approved): `keccak256(abi.encode("record", claimRecord))`.
    /// @param key A care, identifier or record key.
    /// @return claimId The claim, or zero.
    function claimOfKey(bytes32 key) external view returns (uint256 claimId);

    /// @notice Returns the number of policies issued so far (the last policy id).
    /// @return count Policies.
    function policyCount() external view returns (uint64 count);

    /// @notice Returns the ERC-20 stablecoin that policies are funded and claims paid in.
    /// @return token The token (fixed at deployment).
    function TOKEN() external view returns (IERC20 token);

    /// @notice Returns how long after a decision it may be disputed.
    /// @dev A dispute is accepted while `block.timestamp < decidedAt + DISPUTE_WINDOW`.
    /// @return window Seconds (fixed at deployment).
    function DISPUTE_WINDOW() external view returns (uint40 window);
}
