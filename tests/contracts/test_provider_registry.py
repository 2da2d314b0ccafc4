"""ProviderRegistry: deployment, institutions (application, k-of-n verification, suspension,
reinstatement, self-approval), patients, encryption keys and their proofs of possession, and
who may write records at all (``writerOf``, ``verifiedInstitutionOf``).

Registrar governance (votes, terms) is tested in ``test_provider_governance.py``,
practitioners in ``test_provider_practitioners.py``, delegates, care relationships and
``mayWriteFor`` / ``hadCare`` in ``test_provider_care.py``, and a random lifecycle against a
model in ``test_provider_lifecycle_stateful.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import coincurve
import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import (
    DEFAULT_ADMIN_ROLE,
    REGISTRAR_ROLE,
    THRESHOLD,
    ZERO_ADDRESS,
    Kind,
    Role,
    Status,
    assert_events,
    call_reverts,
    key_proof,
    new_key,
    reverts,
    reverts_without_data,
    sign_digest,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

REASON = b"licence-lapsed".ljust(32, b"\0")
NOBODY = HexBytes(keccak(text="MedLedger.NOBODY"))
"""The admin role of REGISTRAR_ROLE, held by nobody."""
SECP256K1_P = 2**256 - 2**32 - 977
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NO_PROOF = b"\x00" * 65
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
KEY_TYPE = "EncryptionKey(address account,bytes key)"


def participant(registry: Any, account: Any) -> dict[str, Any]:
    return dict(registry.participant(account).items())


def expected_participant(**fields: Any) -> dict[str, Any]:
    blank = {
        "role": Role.NONE,
        "kind": Kind.NONE,
        "status": Status.NONE,
        "keyPrefix": 0,
        "round": 0,
        "employer": ZERO_ADDRESS,
        "number": 0,
    }
    unknown = set(fields) - set(blank)
    assert not unknown, f"no such Participant fields: {unknown}"
    return blank | fields


def address_of(label: str) -> str:
    return to_checksum_address(keccak(text=label)[-20:])


def key_digest(chain_id: int, registry: str, account: str, key: bytes) -> HexBytes:
    """``keyDigest(account, key)``, computed from the EIP-712 definition (independent oracle)."""
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=DOMAIN_TYPE),
                keccak(text="MedLedger ProviderRegistry"),
                keccak(text="1"),
                chain_id,
                registry,
            ],
        )
    )
    struct = keccak(
        encode(["bytes32", "address", "bytes32"], [keccak(text=KEY_TYPE), account, keccak(key)])
    )
    return HexBytes(keccak(b"\x19\x01" + domain + struct))


def is_curve_x(x: int) -> bool:
    """Whether x (below p) is the x coordinate of a secp256k1 point: coincurve decides."""
    try:
        coincurve.PublicKey(b"\x02" + x.to_bytes(32, "big"))
    except ValueError:
        return False
    return True


def signer_key(account: AccountAPI) -> bytes:
    """The secret key of a test account (the one its Ethereum address derives from)."""
    return HexBytes(account.private_key)


def secret_and_key(label: str) -> tuple[bytes, bytes]:
    """A secp256k1 secret and its compressed public key, from a readable label."""
    secret = keccak(text=f"provider-registry-test-{label}")
    return secret, coincurve.PrivateKey(secret).public_key.format(compressed=True)


@pytest.fixture
def institution_in(
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
) -> Callable[[Status], AccountAPI]:
    """``institution_in(status)``: the hospital account, brought to ``status``."""

    def bring(status: Status) -> AccountAPI:
        apply_institution(hospital, Kind.HOSPITAL)
        if status in (Status.VERIFIED, Status.SUSPENDED):
            approve(hospital)
        if status is Status.SUSPENDED:
            suspend(hospital)
        return hospital

    return bring


@pytest.fixture
def account_with_role(
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> Callable[[str], AccountAPI]:
    """``account_with_role("patient" | "institution" | "practitioner")``."""

    def make(role: str) -> AccountAPI:
        if role == "patient":
            register_patient(patient)
            return patient
        verified_institution(Kind.HOSPITAL)
        if role == "institution":
            return hospital
        add_practitioner(hospital, doctor)
        return doctor

    return make


ROLES = ["patient", "institution", "practitioner"]

INVALID_KEYS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x02" * 32, id="32-bytes"),
    pytest.param(b"\x02" * 34, id="34-bytes"),
    pytest.param(b"\x04" + b"\x11" * 32, id="prefix-04"),
    pytest.param(b"\x00" + b"\x11" * 32, id="prefix-00"),
    pytest.param(b"\x01" + b"\x11" * 32, id="prefix-01"),
    pytest.param(new_key(uncompressed=True), id="uncompressed-65-bytes"),
]

# x = 5 is not the x coordinate of any point; p + 1 reduces to 1, which is, so only the range
# check refuses it; 2^256 - 1 is the largest word.
assert not is_curve_x(5) and is_curve_x(1)
OFF_CURVE_KEYS = [
    pytest.param(b"\x02" + (5).to_bytes(32, "big"), id="x-not-on-curve"),
    pytest.param(b"\x03" + (5).to_bytes(32, "big"), id="x-not-on-curve-odd"),
    pytest.param(b"\x02" + (SECP256K1_P + 1).to_bytes(32, "big"), id="x-is-p-plus-1"),
    pytest.param(b"\x03" + SECP256K1_P.to_bytes(32, "big"), id="x-is-p"),
    pytest.param(b"\x03" + b"\xff" * 32, id="x-is-max-word"),
]

KEY_ENTRY_POINTS = ["applyAsInstitution", "registerPatient", "publishEncryptionKey"]


@pytest.fixture
def publish_with(
    provider_registry: Any, register_patient: Callable[..., Any]
) -> Callable[[str, AccountAPI], Callable[..., Any]]:
    """``publish_with(entry, account)(key, proof)``: sends the key through one of the three
    functions that take a key; for ``publishEncryptionKey`` the account first registers as a
    patient (with another key)."""

    def prepare(entry: str, account: AccountAPI) -> Callable[..., Any]:
        if entry == "applyAsInstitution":
            return lambda key, proof: provider_registry.applyAsInstitution(
                Kind.CLINIC, "Keyed", key, proof, sender=account
            )
        if entry == "registerPatient":
            return lambda key, proof: provider_registry.registerPatient(key, proof, sender=account)
        register_patient(account)
        return lambda key, proof: provider_registry.publishEncryptionKey(key, proof, sender=account)

    return prepare


# ============================================================================ deployment


def test_deployment_makes_the_registrars_and_threshold_and_no_administrator(
    chain: Any, provider_registry: Any, admin: AccountAPI, registrars: list[AccountAPI]
) -> None:
    assert provider_registry.DEFAULT_ADMIN_ROLE() == DEFAULT_ADMIN_ROLE
    assert provider_registry.REGISTRAR_ROLE() == REGISTRAR_ROLE
    assert provider_registry.MAX_REGISTRARS() == 16
    assert provider_registry.getRoleMemberCount(DEFAULT_ADMIN_ROLE) == 0
    assert not provider_registry.hasRole(DEFAULT_ADMIN_ROLE, admin)
    assert provider_registry.getRoleMembers(REGISTRAR_ROLE) == [r.address for r in registrars]
    assert provider_registry.getRoleAdmin(REGISTRAR_ROLE) == NOBODY
    assert provider_registry.getRoleMemberCount(NOBODY) == 0
    assert provider_registry.approvalThreshold() == THRESHOLD
    receipt = chain.get_receipt(provider_registry.creation_metadata.txn_hash)
    changed = provider_registry.ApprovalThresholdChanged.from_receipt(receipt)
    assert [(e.previousThreshold, e.newThreshold) for e in changed] == [(0, THRESHOLD)]
    granted = provider_registry.RoleGranted.from_receipt(receipt)
    assert [(HexBytes(e.role), e.account, e.sender) for e in granted] == [
        (REGISTRAR_ROLE, r.address, admin.address) for r in registrars
    ]


@pytest.mark.parametrize(
    ("registrar_indexes", "threshold", "counted"),
    [
        pytest.param([0, 1, 2], 0, 3, id="zero-threshold"),
        pytest.param([0, 1, 2], 4, 3, id="threshold-above-registrars"),
        pytest.param([], 1, 0, id="no-registrars"),
    ],
)
def test_deployment_reverts_when_threshold_is_unreachable(
    project: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    registrar_indexes: list[int],
    threshold: int,
    counted: int,
) -> None:
    chosen = [registrars[i] for i in registrar_indexes]
    with reverts(
        project.ProviderRegistry.ProviderInvalidThreshold, threshold=threshold, registrars=counted
    ):
        admin.deploy(project.ProviderRegistry, chosen, threshold)


def test_deployment_reverts_with_more_than_sixteen_registrars(
    project: Any, admin: AccountAPI
) -> None:
    seventeen = [address_of(f"registrar-{i}") for i in range(17)]
    with reverts(
        project.ProviderRegistry.ProviderInvalidRegistrar, account=seventeen[16], add=True
    ):
        admin.deploy(project.ProviderRegistry, seventeen, 2)


@pytest.mark.parametrize(
    ("names", "refused"),
    [
        pytest.param(["registrar-0", None], 1, id="zero-address"),
        pytest.param(["registrar-0", "registrar-1", "registrar-0"], 2, id="duplicate"),
    ],
)
def test_deployment_reverts_for_a_zero_or_repeated_registrar(
    project: Any, admin: AccountAPI, names: list[str | None], refused: int
) -> None:
    # A zero registrar could never vote nor be voted out, and would count toward the threshold.
    chosen = [address_of(n) if n else ZERO_ADDRESS for n in names]
    with reverts(
        project.ProviderRegistry.ProviderInvalidRegistrar, account=chosen[refused], add=True
    ):
        admin.deploy(project.ProviderRegistry, chosen, 1)


def test_deployment_accepts_sixteen_registrars(project: Any, admin: AccountAPI) -> None:
    sixteen = [address_of(f"registrar-{i}") for i in range(16)]
    registry = admin.deploy(project.ProviderRegistry, sixteen, 16)
    assert registry.getRoleMembers(REGISTRAR_ROLE) == sixteen
    assert registry.approvalThreshold() == 16


def test_supports_access_control_interfaces(provider_registry: Any) -> None:
    assert provider_registry.supportsInterface(bytes.fromhex("01ffc9a7"))  # IERC165
    assert provider_registry.supportsInterface(bytes.fromhex("7965db0b"))  # IAccessControl
    assert provider_registry.supportsInterface(bytes.fromhex("5a05180f"))  # ...Enumerable
    assert not provider_registry.supportsInterface(bytes.fromhex("ffffffff"))


def test_unknown_account_has_blank_participant_no_key_no_institution_and_may_not_write(
    provider_registry: Any, stranger: AccountAPI
) -> None:
    assert participant(provider_registry, stranger) == expected_participant()
    assert provider_registry.encryptionKey(stranger) == b""
    assert provider_registry.verifiedInstitutionOf(stranger) == ZERO_ADDRESS
    assert provider_registry.writerOf(stranger) == (False, 0)
    assert provider_registry.approvalsOf(stranger) == 0


def test_eip712_domain_and_key_type_hash_are_the_documented_ones(
    chain: Any, provider_registry: Any
) -> None:
    domain = provider_registry.eip712Domain()
    assert (domain.name, domain.version) == ("MedLedger ProviderRegistry", "1")
    assert (domain.chainId, domain.verifyingContract) == (chain.chain_id, provider_registry.address)
    assert HexBytes(provider_registry.KEY_TYPEHASH()) == HexBytes(keccak(text=KEY_TYPE))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(account=st.binary(min_size=20, max_size=20), key=st.binary(max_size=70))
def test_python_eip712_digest_equals_key_digest(
    chain: Any, provider_registry: Any, account: bytes, key: bytes
) -> None:
    holder = to_checksum_address(account)
    expected = key_digest(chain.chain_id, provider_registry.address, holder, key)
    assert HexBytes(provider_registry.keyDigest(holder, key)) == expected


# ============================================================================ applyAsInstitution


@pytest.mark.parametrize(
    "kind", [k for k in Kind if k is not Kind.NONE], ids=lambda k: k.name.lower()
)
def test_apply_records_pending_institution_of_kind_and_emits_key_then_application(
    provider_registry: Any, hospital: AccountAPI, kind: Kind
) -> None:
    key = new_key()
    proof = key_proof(provider_registry, hospital, key)
    tx = provider_registry.applyAsInstitution(kind, "St. Mary's", key, proof, sender=hospital)

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=hospital, key=key),
        provider_registry.InstitutionApplied(
            institution=hospital, kind=kind, number=1, name="St. Mary's"
        ),
    )
    assert participant(provider_registry, hospital) == expected_participant(
        role=Role.INSTITUTION, kind=kind, status=Status.PENDING, keyPrefix=key[0], number=1
    )
    assert provider_registry.encryptionKey(hospital) == key
    assert provider_registry.verifiedInstitutionOf(hospital) == ZERO_ADDRESS
    assert provider_registry.writerOf(hospital) == (False, 0)


def test_apply_numbers_institutions_in_order_and_numbers_never_change(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    applied = [
        apply_institution(clinic, Kind.CLINIC),
        apply_institution(stranger, Kind.INSURER),
        apply_institution(hospital, Kind.HOSPITAL),
    ]
    numbers = [provider_registry.InstitutionApplied.from_receipt(tx)[0].number for tx in applied]
    assert numbers == [1, 2, 3]
    approve(hospital)
    suspend(hospital)
    approve(hospital)
    assert [participant(provider_registry, a)["number"] for a in (clinic, stranger, hospital)] == [
        1,
        2,
        3,
    ]
    assert provider_registry.writerOf(hospital) == (True, 3)


def test_apply_reverts_when_kind_is_none(provider_registry: Any, hospital: AccountAPI) -> None:
    key = new_key()
    proof = key_proof(provider_registry, hospital, key)
    with reverts(provider_registry.ProviderInvalidKind, kind=Kind.NONE):
        provider_registry.applyAsInstitution(Kind.NONE, "Nowhere", key, proof, sender=hospital)


@pytest.mark.networks  # an empty revert reads differently on each network
def test_apply_reverts_without_data_when_kind_is_out_of_range(
    provider_registry: Any, hospital: AccountAPI
) -> None:
    key = new_key()
    proof = key_proof(provider_registry, hospital, key)
    with reverts_without_data():
        provider_registry.applyAsInstitution(len(Kind), "Nowhere", key, proof, sender=hospital)


@pytest.mark.parametrize("role", ROLES)
def test_apply_reverts_when_account_already_has_a_role(
    provider_registry: Any, account_with_role: Callable[[str], AccountAPI], role: str
) -> None:
    account = account_with_role(role)
    key = new_key()
    proof = key_proof(provider_registry, account, key)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.applyAsInstitution(Kind.CLINIC, "Again", key, proof, sender=account)


# ============================================================================ approveInstitution


def test_approve_below_threshold_counts_approval_and_keeps_institution_pending(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    assert provider_registry.approveInstitution.call(hospital, sender=registrars[0]) is False

    tx = provider_registry.approveInstitution(hospital, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    fields = participant(provider_registry, hospital)
    assert (fields["status"], fields["round"]) == (Status.PENDING, 0)
    assert provider_registry.approvalsOf(hospital) == 1


def test_approve_at_threshold_verifies_institution_and_starts_new_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[0])
    assert provider_registry.approveInstitution.call(hospital, sender=registrars[2]) is True

    tx = provider_registry.approveInstitution(hospital, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[2], approvals=2, threshold=THRESHOLD
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )
    fields = participant(provider_registry, hospital)
    assert (fields["status"], fields["round"]) == (Status.VERIFIED, 1)
    assert provider_registry.approvalsOf(hospital) == 0  # the approvals belong to round 0
    assert provider_registry.verifiedInstitutionOf(hospital) == hospital.address
    assert provider_registry.writerOf(hospital) == (True, 1)


def test_approve_reverts_when_registrar_approves_twice(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[1])
    with reverts(
        provider_registry.ProviderAlreadyApproved, institution=hospital, registrar=registrars[1]
    ):
        provider_registry.approveInstitution(hospital, sender=registrars[1])


@pytest.mark.parametrize("caller", ["deployer", "stranger", "applicant-itself"])
def test_approve_reverts_when_caller_is_not_registrar(
    provider_registry: Any,
    admin: AccountAPI,
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    caller: str,
) -> None:
    apply_institution(hospital)
    sender = {"deployer": admin, "stranger": stranger, "applicant-itself": hospital}[caller]
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=sender,
        neededRole=REGISTRAR_ROLE,
    ):
        provider_registry.approveInstitution(hospital, sender=sender)


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_approve_reverts_when_account_is_not_an_institution(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
) -> None:
    account = stranger if role == "none" else account_with_role(role)
    with reverts(provider_registry.ProviderNotInstitution, account=account):
        provider_registry.approveInstitution(account, sender=registrars[0])
    assert provider_registry.approvalsOf(account) == 0


def test_approve_reverts_when_institution_is_already_verified(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.VERIFIED)
    with reverts(
        provider_registry.ProviderInvalidStatus, institution=institution, status=Status.VERIFIED
    ):
        provider_registry.approveInstitution(institution, sender=registrars[2])


def test_approve_uses_threshold_current_at_each_approval(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[0])
    provider_registry.voteThreshold(3, sender=registrars[0])
    provider_registry.voteThreshold(3, sender=registrars[1])

    second = provider_registry.approveInstitution(hospital, sender=registrars[1])
    third = provider_registry.approveInstitution(hospital, sender=registrars[2])

    assert_events(
        second,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=2, threshold=3
        ),
    )
    assert_events(
        third,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[2], approvals=3, threshold=3
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


def test_threshold_of_one_lets_a_single_registrar_verify(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    provider_registry.voteThreshold(1, sender=registrars[0])
    provider_registry.voteThreshold(1, sender=registrars[2])
    apply_institution(hospital)
    tx = provider_registry.approveInstitution(hospital, sender=registrars[1])
    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=1, threshold=1
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


# ============================================================================ self-approval


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED], ids=lambda s: s.name.lower())
def test_registrar_that_is_the_institution_cannot_approve_it(
    provider_registry: Any,
    registrars: list[AccountAPI],
    apply_institution: Callable[..., Any],
    status: Status,
) -> None:
    registrar = registrars[2]
    apply_institution(registrar, Kind.HOSPITAL)
    if status is Status.SUSPENDED:
        provider_registry.approveInstitution(registrar, sender=registrars[0])
        provider_registry.approveInstitution(registrar, sender=registrars[1])
        provider_registry.suspendInstitution(registrar, REASON, sender=registrars[0])

    with reverts(
        provider_registry.ProviderSelfApproval, registrar=registrar, institution=registrar
    ):
        provider_registry.approveInstitution(registrar, sender=registrar)

    assert provider_registry.approvalsOf(registrar) == 0
    assert participant(provider_registry, registrar)["status"] == status


def test_registrar_that_is_the_institution_is_verified_by_the_other_registrars(
    provider_registry: Any, registrars: list[AccountAPI], apply_institution: Callable[..., Any]
) -> None:
    registrar = registrars[2]
    apply_institution(registrar, Kind.CLINIC)
    provider_registry.approveInstitution(registrar, sender=registrars[0])
    tx = provider_registry.approveInstitution(registrar, sender=registrars[1])
    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=registrar, registrar=registrars[1], approvals=2, threshold=THRESHOLD
        ),
        provider_registry.InstitutionVerified(institution=registrar),
    )


def test_registrar_that_works_for_the_institution_cannot_approve_its_reinstatement(
    provider_registry: Any,
    registrars: list[AccountAPI],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    insider = registrars[2]
    add_practitioner(hospital, insider)
    suspend(hospital)

    with reverts(provider_registry.ProviderSelfApproval, registrar=insider, institution=hospital):
        provider_registry.approveInstitution(hospital, sender=insider)

    provider_registry.approveInstitution(hospital, sender=registrars[0])
    assert provider_registry.approvalsOf(hospital) == 1
    assert participant(provider_registry, hospital)["status"] == Status.SUSPENDED
    provider_registry.approveInstitution(hospital, sender=registrars[1])
    assert participant(provider_registry, hospital)["status"] == Status.VERIFIED


def test_registrar_that_works_for_another_institution_may_approve(
    provider_registry: Any,
    registrars: list[AccountAPI],
    clinic: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    apply_institution: Callable[..., Any],
    add_practitioner: Callable[..., Any],
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    add_practitioner(hospital, registrars[2])
    apply_institution(clinic, Kind.CLINIC)

    tx = provider_registry.approveInstitution(clinic, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=clinic, registrar=registrars[2], approvals=1, threshold=THRESHOLD
        ),
    )


# ============================================================================ suspendInstitution


def test_suspend_stops_a_verified_institution_and_starts_new_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.VERIFIED)

    tx = provider_registry.suspendInstitution(institution, REASON, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionSuspended(
            institution=institution, registrar=registrars[2], reason=REASON
        ),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["round"], fields["number"]) == (Status.SUSPENDED, 2, 1)
    assert provider_registry.approvalsOf(institution) == 0
    assert provider_registry.verifiedInstitutionOf(institution) == ZERO_ADDRESS
    assert provider_registry.writerOf(institution) == (False, 0)


def test_suspend_reverts_when_caller_is_not_registrar(
    provider_registry: Any, admin: AccountAPI, institution_in: Callable[[Status], AccountAPI]
) -> None:
    institution = institution_in(Status.VERIFIED)
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount, account=admin, neededRole=REGISTRAR_ROLE
    ):
        provider_registry.suspendInstitution(institution, REASON, sender=admin)


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED], ids=lambda s: s.name.lower())
def test_suspend_reverts_when_institution_is_not_verified(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
    status: Status,
) -> None:
    institution = institution_in(status)
    with reverts(provider_registry.ProviderInvalidStatus, institution=institution, status=status):
        provider_registry.suspendInstitution(institution, REASON, sender=registrars[1])


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_suspend_reverts_when_account_is_not_an_institution(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
) -> None:
    account = stranger if role == "none" else account_with_role(role)
    with reverts(provider_registry.ProviderNotInstitution, account=account):
        provider_registry.suspendInstitution(account, REASON, sender=registrars[0])


# ============================================================================ reinstatement


def test_reinstatement_needs_the_threshold_again(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)

    first = provider_registry.approveInstitution(institution, sender=registrars[2])
    assert participant(provider_registry, institution)["status"] == Status.SUSPENDED
    assert provider_registry.approvalsOf(institution) == 1
    second = provider_registry.approveInstitution(institution, sender=registrars[1])

    assert_events(
        first,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[2], approvals=1, threshold=THRESHOLD
        ),
    )
    assert_events(
        second,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[1], approvals=2, threshold=THRESHOLD
        ),
        provider_registry.InstitutionReinstated(institution=institution),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["round"]) == (Status.VERIFIED, 3)
    assert provider_registry.approvalsOf(institution) == 0
    assert provider_registry.verifiedInstitutionOf(institution) == institution.address


def test_reinstatement_does_not_count_approvals_from_the_verification_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    # registrars[0] and [1] verified the institution before it was suspended.
    institution = institution_in(Status.SUSPENDED)
    assert provider_registry.approvalsOf(institution) == 0

    tx = provider_registry.approveInstitution(institution, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    assert participant(provider_registry, institution)["status"] == Status.SUSPENDED


def test_reinstatement_reverts_when_registrar_approves_twice_in_the_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)
    provider_registry.approveInstitution(institution, sender=registrars[0])
    with reverts(
        provider_registry.ProviderAlreadyApproved,
        institution=institution,
        registrar=registrars[0],
    ):
        provider_registry.approveInstitution(institution, sender=registrars[0])


def test_partial_reinstatement_approvals_lapse_after_reinstatement_and_new_suspension(
    provider_registry: Any,
    registrars: list[AccountAPI],
    suspend: Callable[..., Any],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)
    provider_registry.approveInstitution(institution, sender=registrars[0])
    provider_registry.approveInstitution(institution, sender=registrars[1])  # reinstated
    suspend(institution)

    tx = provider_registry.approveInstitution(institution, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["round"]) == (Status.SUSPENDED, 4)


# ============================================================================ patients


def test_register_patient_records_role_and_key_and_emits_key_then_registration(
    provider_registry: Any, patient: AccountAPI
) -> None:
    key = new_key()
    proof = key_proof(provider_registry, patient, key)
    tx = provider_registry.registerPatient(key, proof, sender=patient)

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=patient, key=key),
        provider_registry.PatientRegistered(patient=patient),
    )
    assert participant(provider_registry, patient) == expected_participant(
        role=Role.PATIENT, keyPrefix=key[0]
    )
    assert provider_registry.encryptionKey(patient) == key
    assert provider_registry.writerOf(patient) == (True, 0)
    assert provider_registry.verifiedInstitutionOf(patient) == ZERO_ADDRESS


@pytest.mark.parametrize("role", ROLES)
def test_register_patient_reverts_when_account_already_has_a_role(
    provider_registry: Any, account_with_role: Callable[[str], AccountAPI], role: str
) -> None:
    account = account_with_role(role)
    key = new_key()
    proof = key_proof(provider_registry, account, key)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.registerPatient(key, proof, sender=account)


# ============================================================================ keys


@pytest.mark.parametrize("entry", KEY_ENTRY_POINTS)
@pytest.mark.parametrize("key", INVALID_KEYS)
def test_key_reverts_when_it_is_not_a_compressed_public_key(
    provider_registry: Any,
    patient: AccountAPI,
    publish_with: Callable[[str, AccountAPI], Callable[..., Any]],
    entry: str,
    key: bytes,
) -> None:
    send = publish_with(entry, patient)
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        send(key, NO_PROOF)


@pytest.mark.parametrize("entry", KEY_ENTRY_POINTS)
@pytest.mark.parametrize("key", OFF_CURVE_KEYS)
def test_key_reverts_when_it_is_not_a_point_of_the_curve(
    provider_registry: Any,
    patient: AccountAPI,
    publish_with: Callable[[str, AccountAPI], Callable[..., Any]],
    entry: str,
    key: bytes,
) -> None:
    send = publish_with(entry, patient)
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        send(key, NO_PROOF)


PROOF_FORGERIES = [
    "proof-for-another-account",
    "another-accounts-published-key-and-proof",
    "another-accounts-key-signed-by-the-caller",
    "proof-for-another-registry",
    "opposite-parity-of-the-signing-key",
    "empty-proof",
    "high-s-twin-of-a-valid-proof",
]


@pytest.mark.parametrize("entry", KEY_ENTRY_POINTS)
@pytest.mark.parametrize("forgery", PROOF_FORGERIES)
def test_key_reverts_when_the_proof_is_not_the_keys_signature_for_the_caller(
    project: Any,
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    patient: AccountAPI,
    other_patient: AccountAPI,
    register_patient: Callable[..., Any],
    publish_with: Callable[[str, AccountAPI], Callable[..., Any]],
    entry: str,
    forgery: str,
) -> None:
    send = publish_with(entry, patient)
    key = new_key()
    if forgery == "proof-for-another-account":
        proof = key_proof(provider_registry, other_patient, key)
    elif forgery == "another-accounts-published-key-and-proof":
        register_patient(other_patient, key)
        proof = key_proof(provider_registry, other_patient, key)
    elif forgery == "another-accounts-key-signed-by-the-caller":
        register_patient(other_patient, key)
        proof = sign_digest(signer_key(patient), provider_registry.keyDigest(patient, key))
    elif forgery == "proof-for-another-registry":
        twin = admin.deploy(project.ProviderRegistry, registrars, THRESHOLD)
        proof = key_proof(twin, patient, key)
    elif forgery == "opposite-parity-of-the-signing-key":
        # The same x with the other y is another point, whose holder is not the signer.
        secret, signed = secret_and_key("opposite-parity")
        key = bytes([signed[0] ^ 1]) + signed[1:]
        proof = sign_digest(secret, provider_registry.keyDigest(patient, key))
    elif forgery == "empty-proof":
        proof = b""
    else:
        good = key_proof(provider_registry, patient, key)
        s = int.from_bytes(good[32:64], "big")
        proof = good[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - good[64]])
    with reverts(provider_registry.ProviderKeyNotOwned, account=patient, key=key):
        send(key, proof)


@pytest.mark.networks  # call_reverts: eth-tester raises where Anvil answers with an error
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(prefix=st.sampled_from([2, 3]), x=st.integers(0, SECP256K1_P - 1))
def test_key_of_arbitrary_x_is_refused_off_the_curve_and_unproven_on_it(
    provider_registry: Any, patient: AccountAPI, prefix: int, x: int
) -> None:
    # coincurve is the oracle for "x is a coordinate of a point"; a point's key must still be
    # proven, and a zero proof never is.
    key = bytes([prefix]) + x.to_bytes(32, "big")
    method = provider_registry.registerPatient
    if is_curve_x(x):
        call_reverts(
            method, key, NO_PROOF,
            sender=patient, error=provider_registry.ProviderKeyNotOwned, account=patient, key=key,
        )  # fmt: skip
    else:
        call_reverts(
            method, key, NO_PROOF,
            sender=patient, error=provider_registry.ProviderInvalidEncryptionKey, key=key,
        )  # fmt: skip


@pytest.mark.parametrize("prefix", [2, 3], ids=["even-y", "odd-y"])
@pytest.mark.parametrize("entry", ["applyAsInstitution", "registerPatient"])
def test_key_of_either_parity_is_accepted_with_its_proof(
    provider_registry: Any, patient: AccountAPI, entry: str, prefix: int
) -> None:
    key = new_key(prefix)
    proof = key_proof(provider_registry, patient, key)
    if entry == "applyAsInstitution":
        provider_registry.applyAsInstitution(Kind.LABORATORY, "Lab", key, proof, sender=patient)
    else:
        provider_registry.registerPatient(key, proof, sender=patient)
    assert provider_registry.encryptionKey(patient) == key
    assert participant(provider_registry, patient)["keyPrefix"] == prefix


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("prefix", [2, 3], ids=["even-y", "odd-y"])
def test_publish_key_rotates_key_and_changes_nothing_else(
    provider_registry: Any,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
    prefix: int,
) -> None:
    account = account_with_role(role)
    before = participant(provider_registry, account)
    key = new_key(prefix)

    tx = provider_registry.publishEncryptionKey(
        key, key_proof(provider_registry, account, key), sender=account
    )

    assert_events(tx, provider_registry.EncryptionKeyPublished(account=account, key=key))
    assert provider_registry.encryptionKey(account) == key
    assert participant(provider_registry, account) == before | {"keyPrefix": prefix}


def test_publish_key_may_rotate_again_and_back_to_an_earlier_key(
    provider_registry: Any, patient: AccountAPI, register_patient: Callable[..., Any]
) -> None:
    first = new_key()
    register_patient(patient, first)
    first_proof = key_proof(provider_registry, patient, first)
    second = new_key()
    provider_registry.publishEncryptionKey(
        second, key_proof(provider_registry, patient, second), sender=patient
    )
    assert provider_registry.encryptionKey(patient) == second

    tx = provider_registry.publishEncryptionKey(first, first_proof, sender=patient)

    assert_events(tx, provider_registry.EncryptionKeyPublished(account=patient, key=first))
    assert provider_registry.encryptionKey(patient) == first


def test_publish_key_reverts_when_account_has_no_role(
    provider_registry: Any, stranger: AccountAPI
) -> None:
    key = new_key()
    with reverts(provider_registry.ProviderNotRegistered, account=stranger):
        provider_registry.publishEncryptionKey(
            key, key_proof(provider_registry, stranger, key), sender=stranger
        )


# ============================================================================ writerOf


HOSP, CLIN, LAB, EMS = Kind.HOSPITAL, Kind.CLINIC, Kind.LABORATORY, Kind.EMERGENCY_SERVICE
INS, SPONSOR = Kind.INSURER, Kind.RESEARCH_SPONSOR

# (setup of the account, kind of the institution involved, may write, writes as that
# institution, acts for it as a verified institution)
WRITERS = [
    pytest.param("patient", HOSP, True, False, False, id="patient"),
    pytest.param("stranger", HOSP, False, False, False, id="stranger"),
    pytest.param("pending", HOSP, False, False, False, id="pending-hospital"),
    pytest.param("verified", HOSP, True, True, True, id="verified-hospital"),
    pytest.param("verified", CLIN, True, True, True, id="verified-clinic"),
    pytest.param("verified", LAB, True, True, True, id="verified-laboratory"),
    pytest.param("verified", EMS, True, True, True, id="verified-emergency-service"),
    pytest.param("verified", INS, False, False, True, id="verified-insurer"),
    pytest.param("verified", SPONSOR, False, False, True, id="verified-research-sponsor"),
    pytest.param("suspended", HOSP, False, False, False, id="suspended-hospital"),
    pytest.param("reinstated", HOSP, True, True, True, id="reinstated-hospital"),
    pytest.param("practitioner", HOSP, True, True, True, id="practitioner-of-hospital"),
    pytest.param("practitioner", LAB, True, True, True, id="practitioner-of-laboratory"),
    pytest.param("practitioner", INS, False, False, True, id="practitioner-of-insurer"),
    pytest.param("practitioner", SPONSOR, False, False, True, id="practitioner-of-sponsor"),
    pytest.param(
        "practitioner-suspended", HOSP, False, False, False, id="practitioner-of-suspended"
    ),
    pytest.param(
        "practitioner-reinstated", HOSP, True, True, True, id="practitioner-of-reinstated"
    ),
    pytest.param("invited", HOSP, False, False, False, id="invited-not-accepted"),
    pytest.param("removed", HOSP, False, False, False, id="practitioner-removed-by-employer"),
    pytest.param("left", HOSP, False, False, False, id="practitioner-who-left"),
]


@pytest.mark.parametrize(("setup", "kind", "may_write", "as_institution", "acts"), WRITERS)
def test_writer_of_and_verified_institution_of_follow_role_kind_and_status(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    register_patient: Callable[..., Any],
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    setup: str,
    kind: Kind,
    may_write: bool,
    as_institution: bool,
    acts: bool,
) -> None:
    apply_institution(clinic, Kind.CLINIC)  # number 1: the institution below is number 2
    register_patient(patient)
    account = {"patient": patient, "stranger": stranger}.get(setup)
    if account is None:
        apply_institution(hospital, kind)
        account = hospital
    if setup != "pending" and account is hospital:
        approve(hospital)
    if setup in ("practitioner", "practitioner-suspended", "practitioner-reinstated"):
        add_practitioner(hospital, doctor)
        account = doctor
    elif setup == "invited":
        provider_registry.addPractitioner(doctor, sender=hospital)
        account = doctor
    elif setup in ("removed", "left"):
        add_practitioner(hospital, doctor)
        provider_registry.removePractitioner(
            doctor, sender=hospital if setup == "removed" else doctor
        )
        account = doctor
    if setup.endswith(("suspended", "reinstated")):
        suspend(hospital)
    if setup.endswith("reinstated"):
        approve(hospital)

    assert provider_registry.writerOf(account) == (may_write, 2 if as_institution else 0)
    expected = hospital.address if acts else ZERO_ADDRESS
    assert provider_registry.verifiedInstitutionOf(account) == expected
