"""ProviderRegistry: gasless onboarding (``registerPatientWithSignature``).

A newcomer with no ETH signs a ``RegistrationRequest`` (their address, their encryption key,
their next nonce, a deadline) off chain; a verified institution, or one of its practitioners,
relays it and pays the gas. The tests play the hostile relayer: it must not swap the key,
replay the request, register someone who did not sign, carry a signature to another chain or
registry, or register an account that already has a role.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):

* ``patient`` registered (by themselves);
* ``hospital`` a verified hospital and ``doctor`` its practitioner;
* ``clinic`` a verified clinic;
* ``newcomer`` a fresh account with no role and no ETH (a new one per test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import (
    MAX_UINT40,
    ZERO_ADDRESS,
    Kind,
    Status,
    assert_events,
    key_proof,
    new_key,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

HOUR = 3600
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
REGISTRATION_FIELDS = [
    {"name": "patient", "type": "address"},
    {"name": "key", "type": "bytes"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REGISTRATION_TYPE = (
    "RegistrationRequest(" + ",".join(f"{f['type']} {f['name']}" for f in REGISTRATION_FIELDS) + ")"
)


def registration_digest(chain_id: int, registry: str, request: dict[str, Any]) -> HexBytes:
    """``registrationDigest(request)`` from the EIP-712 definition, hashed by hand (the
    oracle): ``bytes`` is encoded as the keccak256 of its contents."""
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
        encode(
            ["bytes32", "address", "bytes32", "uint256", "uint256"],
            [
                keccak(text=REGISTRATION_TYPE),
                request["patient"],
                keccak(bytes(request["key"])),
                request["nonce"],
                request["deadline"],
            ],
        )
    )
    return HexBytes(keccak(b"\x19\x01" + domain + struct))


def typed_registration(chain_id: int, registry: str, request: dict[str, Any]) -> Any:
    """The EIP-712 signable message of a registration request (eth_account's encoder)."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "RegistrationRequest": REGISTRATION_FIELDS,
            },
            "primaryType": "RegistrationRequest",
            "domain": {
                "name": "MedLedger ProviderRegistry",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": registry,
            },
            "message": {**request, "key": bytes(request["key"])},
        }
    )


# ============================================================================ fixtures


@pytest.fixture(scope="module", autouse=True)
def world(
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    add_practitioner(hospital, doctor)


@pytest.fixture
def newcomer(accounts: Any) -> AccountAPI:
    """A fresh account with no role and no ETH."""
    return accounts.generate_test_account()


@pytest.fixture(scope="module")
def now(chain: Any) -> Callable[[], int]:
    return lambda: int(chain.blocks.head.timestamp)


@pytest.fixture
def make_request(
    provider_registry: Any, newcomer: AccountAPI, now: Callable[[], int]
) -> Callable[..., dict[str, Any]]:
    """``make_request(**overrides)``: the newcomer's registration with a fresh key, their next
    nonce and a deadline an hour away."""

    def make(**overrides: Any) -> dict[str, Any]:
        patient = overrides.pop("patient", newcomer)
        address = to_checksum_address(getattr(patient, "address", patient))
        request: dict[str, Any] = {
            "patient": address,
            "key": new_key(),
            "nonce": provider_registry.nonces(address),
            "deadline": now() + HOUR,
        }
        request.update(overrides)
        return request

    return make


@pytest.fixture(scope="module")
def sign(provider_registry: Any, chain: Any) -> Callable[..., HexBytes]:
    """``sign(account, request, chain_id=None, registry=None)``: the account's EIP-712
    signature of the request (in this registry's domain unless told otherwise)."""

    def signed(
        account: Any, request: dict[str, Any], chain_id: int | None = None, registry: Any = None
    ) -> HexBytes:
        signable = typed_registration(
            chain_id if chain_id is not None else chain.chain_id,
            getattr(registry, "address", None) or provider_registry.address,
            request,
        )
        return HexBytes(Account.sign_message(signable, account.private_key).signature)

    return signed


@pytest.fixture
def proof(provider_registry: Any) -> Callable[[dict[str, Any]], HexBytes]:
    """``proof(request)``: the key's proof of possession for the request's patient."""
    return lambda request: key_proof(provider_registry, request["patient"], request["key"])


def recovered(chain: Any, registry: Any, request: dict[str, Any], signature: bytes) -> str:
    """The address a signature recovers to over ``request`` in ``registry``'s domain."""
    signable = typed_registration(chain.chain_id, registry.address, request)
    return str(Account.recover_message(signable, signature=signature))


# ============================================================================ the digest


def test_eip712_registration_type_hash_is_the_documented_one(provider_registry: Any) -> None:
    assert HexBytes(provider_registry.REGISTRATION_TYPEHASH()) == HexBytes(
        keccak(text=REGISTRATION_TYPE)
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    patient_address=st.binary(min_size=20, max_size=20),
    key=st.binary(max_size=70),
    nonce=st.integers(0, 2**256 - 1),
    deadline=st.integers(0, 2**256 - 1),
)
def test_python_eip712_digest_equals_registration_digest(
    chain: Any, provider_registry: Any, patient_address: bytes, key: bytes, nonce: int,
    deadline: int,
) -> None:  # fmt: skip
    request = {
        "patient": to_checksum_address(patient_address),
        "key": key,
        "nonce": nonce,
        "deadline": deadline,
    }
    expected = registration_digest(chain.chain_id, provider_registry.address, request)
    signable = typed_registration(chain.chain_id, provider_registry.address, request)
    assert HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body)) == (
        expected
    )
    assert HexBytes(provider_registry.registrationDigest(request)) == expected


# ============================================================================ relayed registration


@pytest.mark.parametrize("relayer", ["hospital", "practitioner", "clinic"])
def test_relayed_registration_registers_a_patient_who_holds_no_ether(
    chain: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    relayer: str,
) -> None:
    sender, institution = {
        "hospital": (hospital, hospital),
        "practitioner": (doctor, hospital),
        "clinic": (clinic, clinic),
    }[relayer]
    assert chain.provider.get_balance(newcomer.address) == 0
    request = make_request()
    assert request["nonce"] == 0

    tx = provider_registry.registerPatientWithSignature(
        request, proof(request), sign(newcomer, request), sender=sender
    )

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=newcomer, key=request["key"]),
        provider_registry.PatientRegistered(patient=newcomer),
        provider_registry.PatientOnboarded(
            patient=newcomer, institution=institution, relayer=sender
        ),
    )
    entry = provider_registry.participant(newcomer)
    assert entry.role == 1  # Role.Patient
    assert HexBytes(provider_registry.encryptionKey(newcomer)) == HexBytes(request["key"])
    assert provider_registry.nonces(newcomer) == 1
    assert provider_registry.mayWriteFor(newcomer, newcomer) == (True, 0)
    assert chain.provider.get_balance(newcomer.address) == 0


def test_a_patient_registered_by_relay_opens_care_by_signature_too(
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    now: Callable[[], int],
) -> None:
    """The nonce is shared with care requests: the next signed request uses nonce 1."""
    request = make_request()
    provider_registry.registerPatientWithSignature(
        request, proof(request), sign(newcomer, request), sender=hospital
    )
    care = {
        "patient": newcomer.address,
        "institution": hospital.address,
        "until": MAX_UINT40,
        "nonce": 1,
        "deadline": now() + HOUR,
    }
    digest = provider_registry.careDigest(care)
    signature = Account.unsafe_sign_hash(digest, newcomer.private_key).signature
    provider_registry.authorizeCareWithSignature(care, signature, sender=hospital)
    assert provider_registry.mayWriteFor(hospital, newcomer)[0]


# ============================================================================ who relays


@pytest.mark.parametrize(
    "relayer",
    ["stranger", "patient", "registrar", "pending-institution", "suspended-institution",
     "practitioner-of-suspended"],
)  # fmt: skip
def test_relayed_registration_reverts_unless_a_verified_institution_relays(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    newcomer: AccountAPI,
    apply_institution: Callable[..., Any],
    suspend: Callable[..., Any],
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    relayer: str,
) -> None:
    request = make_request()
    args = (request, proof(request), sign(newcomer, request))
    if relayer in ("stranger", "patient", "registrar"):
        sender = {"stranger": stranger, "patient": patient, "registrar": registrars[0]}[relayer]
        expected = reverts(provider_registry.ProviderNotInstitution, account=sender)
    elif relayer == "pending-institution":
        apply_institution(stranger, Kind.HOSPITAL)
        sender = stranger
        expected = reverts(
            provider_registry.ProviderInvalidStatus, institution=stranger, status=Status.PENDING
        )
    else:
        suspend(hospital)
        sender = hospital if relayer == "suspended-institution" else doctor
        expected = reverts(
            provider_registry.ProviderInvalidStatus, institution=hospital, status=Status.SUSPENDED
        )
    with expected:
        provider_registry.registerPatientWithSignature(*args, sender=sender)
    assert provider_registry.participant(newcomer).role == 0
    assert provider_registry.nonces(newcomer) == 0


# ============================================================================ the hostile relayer


def test_relayer_cannot_swap_in_a_key_of_its_own(
    chain: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
) -> None:
    """The relayer makes a key it holds and a valid proof of it for the newcomer's address
    (the proof alone binds a key to an account, not to the account's consent), then submits
    it with the newcomer's signature over the newcomer's key: the swap changes the digest."""
    request = make_request()
    signature = sign(newcomer, request)
    swapped = request | {"key": new_key()}
    signer = recovered(chain, provider_registry, swapped, signature)
    assert signer != newcomer.address
    with reverts(provider_registry.ProviderInvalidSignature, signer=signer, patient=newcomer):
        provider_registry.registerPatientWithSignature(
            swapped, proof(swapped), signature, sender=hospital
        )
    assert provider_registry.encryptionKey(newcomer) == b""


@pytest.mark.parametrize("signer", ["the-relayer", "another-patient", "a-stranger"])
def test_relayer_cannot_register_an_account_that_did_not_sign(
    provider_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    signer: str,
) -> None:
    account = {"the-relayer": hospital, "another-patient": patient, "a-stranger": stranger}[signer]
    request = make_request()
    with reverts(provider_registry.ProviderInvalidSignature, signer=account, patient=newcomer):
        provider_registry.registerPatientWithSignature(
            request, proof(request), sign(account, request), sender=hospital
        )
    assert provider_registry.participant(newcomer).role == 0


@pytest.mark.parametrize("field", ["patient", "deadline"])
def test_a_signature_over_another_request_recovers_another_signer_and_reverts(
    chain: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    field: str,
) -> None:
    request = make_request()
    signature = sign(newcomer, request)
    changes = {"patient": stranger.address, "deadline": request["deadline"] + 1}
    forged = request | {field: changes[field]}
    signer = recovered(chain, provider_registry, forged, signature)
    assert signer not in (newcomer.address, stranger.address)
    with reverts(
        provider_registry.ProviderInvalidSignature, signer=signer, patient=forged["patient"]
    ):
        provider_registry.registerPatientWithSignature(
            forged, proof(forged), signature, sender=hospital
        )


def test_relayed_registration_cannot_be_replayed(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
) -> None:
    request = make_request()
    args = (request, proof(request), sign(newcomer, request))
    provider_registry.registerPatientWithSignature(*args, sender=hospital)
    with reverts(
        provider_registry.ProviderSignatureReplayed, patient=newcomer, nonce=0, expectedNonce=1
    ):
        provider_registry.registerPatientWithSignature(*args, sender=clinic)


def test_relayed_registration_reverts_when_the_nonce_is_ahead(
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
) -> None:
    request = make_request(nonce=1)
    with reverts(
        provider_registry.ProviderSignatureReplayed, patient=newcomer, nonce=1, expectedNonce=0
    ):
        provider_registry.registerPatientWithSignature(
            request, proof(request), sign(newcomer, request), sender=hospital
        )


def test_relayed_registration_reverts_after_its_deadline(
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    now: Callable[[], int],
) -> None:
    request = make_request(deadline=now() - 1)
    with reverts(provider_registry.ProviderSignatureExpired, deadline=request["deadline"]):
        provider_registry.registerPatientWithSignature(
            request, proof(request), sign(newcomer, request), sender=hospital
        )
    assert provider_registry.nonces(newcomer) == 0


@pytest.mark.parametrize("domain", ["another-registry", "another-chain"])
def test_a_signature_for_another_registry_or_chain_reverts(
    chain: Any,
    project: Any,
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    domain: str,
) -> None:
    request = make_request()
    if domain == "another-registry":
        twin = admin.deploy(project.ProviderRegistry, registrars, 2)
        signature = sign(newcomer, request, registry=twin)
    else:
        signature = sign(newcomer, request, chain_id=chain.chain_id + 1)
    signer = recovered(chain, provider_registry, request, signature)
    assert signer != newcomer.address
    with reverts(provider_registry.ProviderInvalidSignature, signer=signer, patient=newcomer):
        provider_registry.registerPatientWithSignature(
            request, proof(request), signature, sender=hospital
        )


def test_a_care_request_signature_does_not_register(
    chain: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    proof: Callable[[dict[str, Any]], HexBytes],
    now: Callable[[], int],
) -> None:
    """A signature the patient gave for another type (a care request) never registers them."""
    care = {
        "patient": newcomer.address,
        "institution": hospital.address,
        "until": MAX_UINT40,
        "nonce": 0,
        "deadline": now() + HOUR,
    }
    signature = Account.unsafe_sign_hash(
        provider_registry.careDigest(care), newcomer.private_key
    ).signature
    request = make_request(deadline=care["deadline"])
    signer = recovered(chain, provider_registry, request, signature)
    with reverts(provider_registry.ProviderInvalidSignature, signer=signer, patient=newcomer):
        provider_registry.registerPatientWithSignature(
            request, proof(request), signature, sender=hospital
        )


@pytest.mark.parametrize("account", ["patient", "institution", "practitioner", "pending"])
def test_relayed_registration_reverts_when_the_account_already_has_a_role(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    account: str,
) -> None:
    """The account signs for itself, so only the role stops it: an account has one role."""
    if account == "pending":
        apply_institution(stranger, Kind.HOSPITAL)
    target = {"patient": patient, "institution": clinic, "practitioner": doctor,
              "pending": stranger}[account]  # fmt: skip
    before = provider_registry.participant(target)
    request = make_request(patient=target)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=target):
        provider_registry.registerPatientWithSignature(
            request, proof(request), sign(target, request), sender=hospital
        )
    assert provider_registry.participant(target) == before


@pytest.mark.parametrize("problem", ["proof-for-another-account", "key-not-on-curve", "no-key"])
def test_relayed_registration_checks_the_key_and_its_proof(
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    problem: str,
) -> None:
    """What the patient signs is still checked as a self-registration is: the key must be on
    the curve and its holder must have signed for the patient's account."""
    if problem == "proof-for-another-account":
        request = make_request()
        key_proof_ = key_proof(provider_registry, hospital, request["key"])
        expected = reverts(
            provider_registry.ProviderKeyNotOwned, account=newcomer, key=request["key"]
        )
    else:
        key = b"\x02" + b"\x00" * 31 + b"\x05" if problem == "key-not-on-curve" else b""
        request = make_request(key=key)
        key_proof_ = HexBytes(b"\x00" * 65)
        expected = reverts(provider_registry.ProviderInvalidEncryptionKey, key=key)
    with expected:
        provider_registry.registerPatientWithSignature(
            request, key_proof_, sign(newcomer, request), sender=hospital
        )


@pytest.mark.parametrize("signature", ["empty", "64-bytes", "high-s-twin"])
def test_a_malformed_signature_reverts_with_zero_signer(
    provider_registry: Any,
    hospital: AccountAPI,
    newcomer: AccountAPI,
    make_request: Callable[..., dict[str, Any]],
    sign: Callable[..., HexBytes],
    proof: Callable[[dict[str, Any]], HexBytes],
    signature: str,
) -> None:
    request = make_request()
    good = sign(newcomer, request)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    bad = {
        "empty": b"",
        "64-bytes": bytes(good[:64]),
        "high-s-twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),
    }[signature]
    with reverts(provider_registry.ProviderInvalidSignature, signer=ZERO_ADDRESS, patient=newcomer):
        provider_registry.registerPatientWithSignature(
            request, proof(request), bad, sender=hospital
        )
