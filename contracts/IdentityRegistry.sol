// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";

/// @title IdentityRegistry
/// @notice Identity attestations of patient addresses (and of trial participants' pseudonymous
/// study accounts) by the verified care institutions that checked who the person is: attest
/// with an expiry, revoke, and check.
/// @dev Why not the Ethereum Attestation Service (npm `@ethereum-attestation-service/eas-contracts`
/// 1.9.0, measured on the devnet with the shipped EAS and SchemaRegistry bytecode and a schema
/// resolver that admits only verified care institutions): EAS stores the whole `Attestation`
/// struct (uid, schema, time, expiry, revocation time, refUID, recipient, attester, flags and the
/// data bytes) in about nine fresh slots and calls the resolver, so one `attest` cost far more than
/// the 80,000 gas target (figures in the report and `medledger bench`), and a check inside a
/// claim would read an attestation by uid, which the claim does not know. Here an attestation is
/// one slot keyed by (patient, institution number), so the claim checks the attestation of the
/// provider that wrote the claim record with one cold read. The slot lives in the
/// ProviderRegistry (which deploys this contract and lets only it write there): claims and
/// enrolments already call that registry, so a check costs no cold contract access. This
/// contract holds the rules of who attests what. Invariants: only a verified care
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

    // ------------------------------------------------------------------ constructor

    /// @param providers The registry of participants (who is a verified care institution, who a
    /// registered patient), which keeps the attestations' slots (it deploys this contract).
    constructor(IProviderRegistry providers) {
        _PROVIDERS = providers;
    }

    // ------------------------------------------------------------------ external

    /// @inheritdoc IIdentityRegistry
    function attest(address patient, uint40 expiresAt, bytes32 commitment) external {
        if (_PROVIDERS.participant(patient).role != IProviderRegistry.Role.Patient) {
            revert IdentityPatientNotRegistered(patient);
        }
        _attest(patient, expiresAt, commitment);
    }

    /// @inheritdoc IIdentityRegistry
    function attestPseudonym(address account, uint40 expiresAt, bytes32 linkCommitment) external {
        if (
            account == address(0) || _PROVIDERS.participant(account).role != IProviderRegistry.Role.None
                || _PROVIDERS.patientOf(account) != address(0)
        ) revert IdentityNotPseudonym(account);
        _attest(account, expiresAt, linkCommitment);
    }

    /// @inheritdoc IIdentityRegistry
    function revoke(address patient) external {
        (address institution, IProviderRegistry.Participant memory p) = _careInstitutionOf(msg.sender);
        Attestation memory stored = _PROVIDERS.attestationOf(patient, p.number);
        if (stored.institution == address(0) || stored.revoked) revert IdentityNotAttested(patient, institution);
        stored.revoked = true;
        _PROVIDERS.storeAttestation(patient, p.number, stored);
        emit IdentityRevoked(patient, institution, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function attestation(address patient, uint32 number) external view returns (Attestation memory) {
        return _PROVIDERS.attestationOf(patient, number);
    }

    /// @inheritdoc IIdentityRegistry
    function isAttested(address patient, uint32 number) external view returns (bool) {
        return _PROVIDERS.isAttested(patient, number);
    }

    /// @inheritdoc IIdentityRegistry
    function requireAttested(address patient, uint32 number) external view {
        _PROVIDERS.requireAttested(patient, number);
    }

    // ------------------------------------------------------------------ private

    /// @dev Stores the caller's institution's attestation of `account` and emits it.
    function _attest(address account, uint40 expiresAt, bytes32 commitment) private {
        (address institution, IProviderRegistry.Participant memory p) = _careInstitutionOf(msg.sender);
        uint256 latest = block.timestamp + MAX_TERM;
        if (expiresAt <= block.timestamp || expiresAt > latest) revert IdentityInvalidExpiry(expiresAt, latest);
        _PROVIDERS.storeAttestation(
            account,
            p.number,
            Attestation({institution: institution, round: p.round, expiresAt: expiresAt, revoked: false})
        );
        emit IdentityAttested(account, institution, msg.sender, p.number, expiresAt, commitment);
    }

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
