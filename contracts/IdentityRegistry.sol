// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title IdentityRegistry
/// @notice Identity attestations of patient addresses by the verified care institutions that
/// checked who the person is: attest with an expiry, revoke, and check.
/// @dev Why not the Ethereum Attestation Service (npm `@ethereum-attestation-service/eas-contracts`
/// 1.9.0, measured on the devnet with the shipped EAS and SchemaRegistry bytecode and a schema
/// resolver that admits only verified care institutions): EAS stores the whole `Attestation`
/// struct (uid, schema, time, expiry, revocation time, refUID, recipient, attester, flags and the
/// data bytes) in about nine fresh slots and calls the resolver, so one `attest` cost far more than
/// the 80,000 gas target (figures in the report and `medledger bench`), and a check inside a
/// claim would read an attestation by uid, which the claim does not know. Here an attestation is
/// one slot keyed by (patient, institution number), so the claim checks the attestation of the
/// provider that wrote the claim record with one cold read. Invariants: only a verified care
/// institution (or its practitioner) writes its own attestations; an attestation holds only
/// while unrevoked, unexpired and while its institution is verified in the round it attested in
/// (`IProviderRegistry.Participant.round` is bumped by every suspension and reinstatement, so a
/// suspension voids every attestation the institution made, for good). Nothing personal is
/// stored; the commitment is only emitted.
contract IdentityRegistry is IIdentityRegistry {
    // ------------------------------------------------------------------ constants and immutables

    /// @inheritdoc IIdentityRegistry
    uint40 public constant MAX_TERM = 5 * 365 days;

    IProviderRegistry private immutable _PROVIDERS;

    // ------------------------------------------------------------------ storage

    mapping(address patient => mapping(uint32 number => Attestation)) private _attestations;

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry of participants (who is a verified care institution, who a
    /// registered patient).
    constructor(IProviderRegistry providers) {
        _PROVIDERS = providers;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IIdentityRegistry
    function attest(address patient, uint40 expiresAt, bytes32 commitment) external {
        (address institution, IProviderRegistry.Participant memory p) = _careInstitutionOf(msg.sender);
        if (_PROVIDERS.participant(patient).role != IProviderRegistry.Role.Patient) {
            revert IdentityPatientNotRegistered(patient);
        }
        uint256 latest = block.timestamp + MAX_TERM;
        if (expiresAt <= block.timestamp || expiresAt > latest) revert IdentityInvalidExpiry(expiresAt, latest);
        _attestations[patient][p.number] =
            Attestation({institution: institution, round: p.round, expiresAt: expiresAt, revoked: false});
        emit IdentityAttested(patient, institution, msg.sender, p.number, expiresAt, commitment);
    }

    /// @inheritdoc IIdentityRegistry
    function revoke(address patient) external {
        (address institution, IProviderRegistry.Participant memory p) = _careInstitutionOf(msg.sender);
        Attestation storage stored = _attestations[patient][p.number];
        if (stored.institution == address(0) || stored.revoked) revert IdentityNotAttested(patient, institution);
        stored.revoked = true;
        emit IdentityRevoked(patient, institution, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function attestation(address patient, uint32 number) external view returns (Attestation memory) {
        return _attestations[patient][number];
    }

    /// @inheritdoc IIdentityRegistry
    function requireAttested(address patient, uint32 number) external view {
        if (!isAttested(patient, number)) revert IdentityNotAttestedBy(patient, number);
    }

    // ------------------------------------------------------------------ public

    /// @inheritdoc IIdentityRegistry
    function isAttested(address patient, uint32 number) public view returns (bool) {
        Attestation memory stored = _attestations[patient][number];
        if (stored.institution == address(0) || stored.revoked || block.timestamp >= stored.expiresAt) return false;
        // Two words back instead of a whole `Participant`: cheaper inside a claim.
        (address acting, uint32 round) = _PROVIDERS.actingInstitution(stored.institution);
        return acting == stored.institution && round == stored.round;
    }

    // ------------------------------------------------------------------ private

    /// @dev The verified care institution `account` is or works for, and its participant
    /// record; reverts when there is none.
    function _careInstitutionOf(address account)
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
        IProviderRegistry.InstitutionKind kind = p.kind;
        if (
            p.role != IProviderRegistry.Role.Institution || p.status != IProviderRegistry.InstitutionStatus.Verified
                || (
                    kind != IProviderRegistry.InstitutionKind.Hospital && kind != IProviderRegistry.InstitutionKind.Clinic
                        && kind != IProviderRegistry.InstitutionKind.Laboratory
                        && kind != IProviderRegistry.InstitutionKind.EmergencyService
                )
        ) revert IdentityNotCareInstitution(account);
    }
}
