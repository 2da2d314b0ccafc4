// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.27;

import {RecordId} from "../libraries/RecordIds.sol";

/// @title IConsentManager
/// @notice Patient-controlled access to records: grants scoped to one record, a category or
/// all records, for a purpose, until an expiry; signed (gasless) grants; emergency
/// ("break-glass") access; an on-chain access log; and erasure marks. Who acts for a patient
/// (the patient and the delegates they name) is the ProviderRegistry's to say.
/// @dev `hasAccess` costs a constant number of storage reads whatever the number of grants:
/// one per possible scope (record, category, all), never a loop; only when none covers the
/// record does it look for a live emergency opening of the reader's emergency service. Grants carry the digest of a
/// key envelope in IPFS (the record keys wrapped for the grantee); the chain holds no key.
interface IConsentManager {
    // ------------------------------------------------------------------ types

    /// @notice Why access is granted.
    enum Purpose {
        None,
        Treatment,
        Payment,
        Research,
        Operations,
        PatientRequest,
        Emergency
    }

    /// @notice What a grant covers.
    enum ScopeKind {
        Record,
        Category,
        All
    }

    /// @notice One grant, packed in one storage slot.
    /// @param grantedAt When the grant was (last) given; zero when there never was one.
    /// @param expiresAt When it ends.
    /// @param revokedAt When it was revoked; zero while it is not.
    /// @param purpose Why it was given.
    struct Grant {
        uint40 grantedAt;
        uint40 expiresAt;
        uint40 revokedAt;
        Purpose purpose;
    }

    /// @notice A grant signed off chain by the patient (or a delegate) and submitted by anyone.
    /// @param patient Whose records.
    /// @param grantee Who gets access.
    /// @param scopeKind Record, category or all.
    /// @param scope The record id, the category code (as bytes32), or zero for all.
    /// @param purpose Why.
    /// @param expiresAt Until when.
    /// @param envelopeDigest CIDv0 digest of the key envelope for the grantee (zero if none).
    /// @param nonce The patient's next nonce (`nonces(patient)`).
    /// @param deadline The signature is refused after this time.
    struct GrantRequest {
        address patient;
        address grantee;
        ScopeKind scopeKind;
        bytes32 scope;
        Purpose purpose;
        uint40 expiresAt;
        bytes32 envelopeDigest;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A revocation signed off chain by the patient (or a delegate) and submitted by
    /// anyone. Uses the same nonces as `GrantRequest`: `cancelSignatures` cancels both.
    /// @param patient Whose records.
    /// @param grantee Whose access ends.
    /// @param scopeKind The grant's scope kind.
    /// @param scope The grant's scope.
    /// @param nonce The patient's next nonce (`nonces(patient)`).
    /// @param deadline The signature is refused after this time.
    struct RevocationRequest {
        address patient;
        address grantee;
        ScopeKind scopeKind;
        bytes32 scope;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice One emergency opening of a service for a patient, packed in one storage slot.
    /// @param openedAt When it was opened; zero when there never was one.
    /// @param expiresAt When it ends on its own.
    /// @param closedAt When the patient (or a delegate) closed it; zero while it is not.
    /// @param round The service's approval round when it opened: a suspension (and any
    /// reinstatement) starts a new round, which ends the opening for good.
    struct Emergency {
        uint40 openedAt;
        uint40 expiresAt;
        uint40 closedAt;
        uint32 round;
    }

    // ------------------------------------------------------------------ errors

    /// @notice Thrown when the caller is neither the patient nor one of their delegates.
    error ConsentNotPatientOrDelegate(address caller, address patient);

    /// @notice Thrown when an account that is not a registered patient acts as one.
    error ConsentNotPatient(address account);

    /// @notice Thrown when an expiry is not in the future.
    error ConsentInvalidExpiry(uint256 expiresAt);

    /// @notice Thrown when a purpose is `None`, or `Emergency` outside emergency access.
    error ConsentInvalidPurpose(Purpose purpose);

    /// @notice Thrown when a scope does not fit its kind (zero record id, category 0 or above
    /// 255, non-zero scope for `All`).
    error ConsentInvalidScope(ScopeKind kind, bytes32 scope);

    /// @notice Thrown when the grantee is the zero address or the patient.
    error ConsentInvalidGrantee(address grantee);

    /// @notice Thrown when there is no live grant to revoke.
    error ConsentNotGranted(address patient, address grantee, bytes32 scopeKey);

    /// @notice Thrown when a signed grant or revocation arrives after its deadline.
    error ConsentSignatureExpired(uint256 deadline);

    /// @notice Thrown when a signed grant's or revocation's nonce was already used (a replay)
    /// or is not next.
    error ConsentSignatureReplayed(address patient, uint256 nonce, uint256 expectedNonce);

    /// @notice Thrown when a signature was not made by the patient or one of their delegates.
    error ConsentInvalidSignature(address signer, address patient);

    /// @notice Thrown when emergency access is opened by an account that is not (a practitioner
    /// of) a verified emergency service.
    error ConsentNotEmergencyService(address caller);

    /// @notice Thrown when emergency access is opened without a reason.
    error ConsentEmergencyReasonRequired();

    /// @notice Thrown when emergency access is asked for longer than allowed.
    error ConsentEmergencyTooLong(uint256 duration, uint256 maxDuration);

    /// @notice Thrown when a reader logs the use of a record it has no access to.
    error ConsentAccessDenied(address reader, RecordId id);

    /// @notice Thrown when a record is not anchored (or, delivering its keys, is not the
    /// patient's or was erased).
    error ConsentUnknownRecord(RecordId id);

    /// @notice Thrown when keys are delivered for a grant that is not live.
    error ConsentNoLiveAccess(address patient, address grantee);

    /// @notice Thrown when an account that cannot hold a patient's record keys (not the
    /// patient, a delegate, or a care institution writing for them) delivers keys.
    error ConsentNotKeyHolder(address caller, address patient);

    /// @notice Thrown when a service opens emergency access while its last opening for the
    /// patient is live or ended less than `EMERGENCY_COOLDOWN` ago.
    error ConsentEmergencyCoolingDown(address patient, address institution, uint256 until);

    /// @notice Thrown when there is no live emergency opening to close.
    error ConsentNoEmergencyAccess(address patient, address institution);

    /// @notice Thrown when a gateway logs a served read of a record that the institution it
    /// acts for (verified, a care provider) did not write.
    error ConsentNotRecordWriter(address caller, RecordId id);

    // ------------------------------------------------------------------ events

    /// @notice Emitted when a patient (or delegate, or a relayer with their signature) grants;
    /// `grantor` is the patient or delegate who decided (the signer for a signed grant).
    event AccessGranted(
        address indexed patient,
        address indexed grantee,
        bytes32 indexed scopeKey,
        ScopeKind scopeKind,
        bytes32 scope,
        Purpose purpose,
        uint40 expiresAt,
        bytes32 envelopeDigest,
        address grantor
    );

    /// @notice Emitted when a grant is revoked; `revoker` is the patient or delegate who
    /// decided (the signer for a signed revocation).
    event AccessRevoked(
        address indexed patient, address indexed grantee, bytes32 indexed scopeKey, address revoker
    );

    /// @notice Emitted when record keys are delivered to a grantee in a new envelope.
    event KeysDelivered(
        address indexed patient,
        address indexed grantee,
        bytes32 indexed scopeKey,
        bytes32 envelopeDigest,
        address deliverer
    );

    /// @notice Emitted when an emergency service opens break-glass access to all of a patient's
    /// records. Loud on purpose: audits list it first.
    event EmergencyAccessOpened(
        address indexed patient,
        address indexed opener,
        address indexed institution,
        uint40 expiresAt,
        string reason
    );

    /// @notice Emitted when the patient (or a delegate, `by`) closes an emergency opening.
    event EmergencyAccessClosed(address indexed patient, address indexed institution, address by);

    /// @notice Emitted when a patient (or delegate, `by`) burns a nonce, cancelling every signed
    /// grant or revocation that carries it.
    event SignaturesCancelled(address indexed patient, uint256 nonce, address by);

    /// @notice Emitted for each record a reader logs having opened.
    event RecordAccessed(RecordId indexed id, address indexed patient, address indexed reader);

    /// @notice Emitted for each record a gateway logs having served to `reader`: the
    /// institution that wrote the record (or its practitioner, `gateway` being the account
    /// that logged) decrypted it for a reader with live access. Apart from `RecordAccessed`,
    /// which only the reader itself emits.
    event RecordAccessServed(
        RecordId indexed id, address indexed patient, address indexed reader, address gateway
    );

    /// @notice Emitted when a patient erases a record (its keys are destroyed off chain).
    event RecordErased(RecordId indexed id, address indexed patient, address by);

    // ------------------------------------------------------------------ functions

    /// @notice Grants `grantee` access to the patient's records in a scope.
    /// @dev Callable by the patient or one of their delegates. Not checked here, to keep a
    /// grant to one storage slot and no external call: that the grantee published a key (a
    /// grantee without one can read nothing) and that a record scope names one of the
    /// patient's records (grants are looked up under the record's own patient, so such a grant
    /// can never open another patient's record). The client checks both before sending.
    /// @param patient Whose records.
    /// @param grantee Who gets access (the client checks it published an encryption key).
    /// @param scopeKind Record, category or all.
    /// @param scope The record id, the category code as bytes32, or zero.
    /// @param purpose Why (not `None`, not `Emergency`).
    /// @param expiresAt Until when (in the future).
    /// @param envelopeDigest CIDv0 digest of the key envelope for the grantee, or zero.
    /// @return scopeKey The key the grant is stored under.
    function grant(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        Purpose purpose,
        uint40 expiresAt,
        bytes32 envelopeDigest
    ) external returns (bytes32 scopeKey);

    /// @notice Submits a grant the patient (or a delegate) signed off chain (EIP-712).
    /// @dev Callable by anyone, so a patient needs no ETH.
    /// @param request The signed grant.
    /// @param signature The 65-byte ECDSA signature over its EIP-712 digest.
    /// @return scopeKey The key the grant is stored under.
    function grantWithSignature(GrantRequest calldata request, bytes calldata signature)
        external
        returns (bytes32 scopeKey);

    /// @notice Revokes a grant at once.
    /// @dev Callable by the patient or one of their delegates.
    /// @param patient Whose records.
    /// @param grantee Whose access ends.
    /// @param scopeKind The grant's scope kind.
    /// @param scope The grant's scope.
    function revoke(address patient, address grantee, ScopeKind scopeKind, bytes32 scope) external;

    /// @notice Revokes a grant with a revocation the patient (or a delegate) signed off chain
    /// (EIP-712), as `revoke` does.
    /// @dev Callable by anyone (a gateway holding only its institution's key relays the
    /// patient's decision). The signer must be the patient or a delegate now; the nonce is the
    /// one signed grants use.
    /// @param request The signed revocation.
    /// @param signature The 65-byte ECDSA signature over its EIP-712 digest.
    function revokeWithSignature(RevocationRequest calldata request, bytes calldata signature) external;

    /// @notice Burns the patient's next nonce, so that a grant or revocation signed with it
    /// (and not yet submitted) can never be used.
    /// @dev Callable by the patient or a delegate.
    /// @param patient The patient.
    function cancelSignatures(address patient) external;

    /// @notice Opens time-boxed, read-only access to all of a patient's records for the
    /// caller's emergency service, without a prior grant.
    /// @dev Callable by a verified emergency service or one of its practitioners. Stored apart
    /// from grants (a grant of the patient is never touched). The opening belongs to the
    /// service: it gives access to the service and its practitioners while the service stays
    /// verified, until it expires or the patient closes it. A service opens again for the
    /// same patient only `EMERGENCY_COOLDOWN` after its last opening ended.
    /// @param patient Whose records.
    /// @param duration How long, in seconds (at most `MAX_EMERGENCY_DURATION`).
    /// @param reason Why: a short code or sentence, never clinical detail (it is public).
    /// @return expiresAt When the access ends.
    function openEmergencyAccess(address patient, uint40 duration, string calldata reason)
        external
        returns (uint40 expiresAt);

    /// @notice Ends a live emergency opening at once.
    /// @dev Callable by the patient or a delegate. The cooldown counts from now.
    /// @param patient The patient.
    /// @param institution The emergency service.
    function closeEmergencyAccess(address patient, address institution) external;

    /// @notice Publishes a key envelope for a live grant (for example keys of records written
    /// after the grant), or for a live emergency opening (scope `All`, grantee an account of
    /// the service).
    /// @dev Callable by those who hold the keys: the patient, a delegate, or a care
    /// institution (or its practitioner) that may write the patient's records now. For a
    /// record scope the record must be the patient's and not erased (`ConsentUnknownRecord`).
    /// @param patient Whose records the envelope holds keys of.
    /// @param grantee Who the keys are wrapped for.
    /// @param scopeKind The scope kind of the live grant the envelope serves.
    /// @param scope The scope of that grant.
    /// @param envelopeDigest CIDv0 digest of the envelope.
    function deliverKeys(
        address patient,
        address grantee,
        ScopeKind scopeKind,
        bytes32 scope,
        bytes32 envelopeDigest
    ) external;

    /// @notice Logs that the caller opened these records (the patient's audit shows use).
    /// @dev The caller must have access to each record.
    /// @param ids The records opened.
    function logAccess(RecordId[] calldata ids) external;

    /// @notice Logs that the caller served these records to `reader` (the patient's audit
    /// shows the read, the reader and the gateway).
    /// @dev Callable by the verified care institution that wrote every record, or one of its
    /// practitioners (`ProviderRegistry.writerOf` names the same writer as the record): it
    /// alone holds the keys that opened them. `reader` must have access to each record now
    /// (`hasAccess`). All or nothing: one record failing either check reverts the call.
    /// @param reader Who read the records through the gateway.
    /// @param ids The records served.
    function logAccessFor(address reader, RecordId[] calldata ids) external;

    /// @notice Marks a record erased: its keys are destroyed off chain and nobody has access.
    /// @dev Callable by the record's patient or one of their delegates. Irreversible.
    /// @param id The record.
    function eraseRecord(RecordId id) external;

    /// @notice Tells whether `reader` may read record `id` now.
    /// @param reader The reader.
    /// @param id The record.
    /// @return allowed True for the patient, for live grants covering the record, and for the
    /// accounts of an emergency service with a live opening.
    function hasAccess(address reader, RecordId id) external view returns (bool allowed);

    /// @notice Tells whether `reader` may read record `id` now for `purpose`.
    /// @param reader The reader.
    /// @param id The record.
    /// @param purpose The purpose the access must have been granted for.
    /// @return allowed True when a live grant for that purpose covers the record (or, for
    /// `Emergency`, a live emergency opening).
    function hasAccessFor(address reader, RecordId id, Purpose purpose)
        external
        view
        returns (bool allowed);

    /// @notice Returns the grant stored under a scope key.
    /// @param patient Whose records.
    /// @param grantee Who.
    /// @param scopeKey `scopeKeyOf(kind, scope)`.
    /// @return stored The grant (all zero when none).
    function getGrant(address patient, address grantee, bytes32 scopeKey)
        external
        view
        returns (Grant memory stored);

    /// @notice Computes the key a grant of this scope is stored under.
    /// @param scopeKind The scope kind.
    /// @param scope The scope value.
    /// @return scopeKey `keccak256(abi.encode(scopeKind, scope))`.
    function scopeKeyOf(ScopeKind scopeKind, bytes32 scope) external pure returns (bytes32 scopeKey);

    /// @notice Returns the emergency opening of a service for a patient.
    /// @param patient The patient.
    /// @param institution The emergency service.
    /// @return opening The opening (all zero when there never was one).
    function emergencyOf(address patient, address institution) external view returns (Emergency memory opening);

    /// @notice Tells whether a record was erased.
    /// @param id The record.
    /// @return erased True once erased.
    function isErased(RecordId id) external view returns (bool erased);

    /// @notice Returns the EIP-712 digest a patient signs for a grant request.
    /// @param request The request.
    /// @return digest The digest.
    function grantDigest(GrantRequest calldata request) external view returns (bytes32 digest);

    /// @notice Returns the EIP-712 digest a patient signs for a revocation request.
    /// @param request The request.
    /// @return digest The digest.
    function revocationDigest(RevocationRequest calldata request) external view returns (bytes32 digest);
}
