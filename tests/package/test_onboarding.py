"""Gasless onboarding: a patient with no ETH signs their registration and a verified institution
relays it (``medledger patient register --sign-only`` / ``--submit``), then everything else the
patient does is signed and relayed too.

The contract's own refusals (the hostile relayer) are tested in
tests/contracts/test_provider_onboarding.py; here the client refuses every bad file before it
sends anything, in one line.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger import providers
from medledger.accounts import Key
from medledger.errors import PreconditionFailed, SignatureExpired

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)
KEY_VARIABLE = "MEDLEDGER_TEST_NEWCOMER_KEY"


@pytest.fixture
def newcomer(monkeypatch: pytest.MonkeyPatch) -> Key:
    """A brand-new key (no ETH, no role), named on the command line as ``env:VAR``."""
    key = Key.from_private_key(os.urandom(32))
    monkeypatch.setenv(KEY_VARIABLE, "0x" + key.key.hex())
    return key


@pytest.fixture
def relaying_hospital(verified_institution, hospital):
    return verified_institution(hospital)


def balance(chain, account) -> int:
    return int(chain.w3.eth.get_balance(account.address))


def test_a_patient_with_no_ether_is_registered_by_relay_then_reads_their_record(
    chain, medledger, newcomer, relaying_hospital, tmp_path
):
    me = f"env:{KEY_VARIABLE}"
    hospital = relaying_hospital.address
    assert balance(chain, newcomer) == 0

    signed = tmp_path / "registration.json"
    out = medledger("patient", "register", "--sign-only", "--out", str(signed), "--account", me)
    assert out.exit_code == 0, out.stderr
    assert providers.participant(chain, newcomer.address).role is providers.Role.NONE
    relayed = medledger("patient", "register", "--submit", str(signed), "--account", "dev:3")
    assert relayed.exit_code == 0, relayed.stderr
    entry = providers.participant(chain, newcomer.address)
    assert entry.role is providers.Role.PATIENT
    assert entry.encryption_key == providers.key_proof(chain, newcomer)[0]

    care = tmp_path / "care.json"
    out = medledger("care", "authorize", hospital, "--sign-only", "--out", str(care),
                    "--account", me)  # fmt: skip
    assert out.exit_code == 0, out.stderr
    out = medledger("care", "authorize", hospital, "--submit", str(care), "--account", "dev:3")
    assert out.exit_code == 0, out.stderr
    anchored = medledger("anchor", str(OBSERVATION), "--patient", newcomer.address,
                         "--account", "dev:3", "--json")  # fmt: skip
    assert anchored.exit_code == 0, anchored.stderr
    (row,) = anchored.json()
    back = tmp_path / "back.json"
    read = medledger("read", row["id"], "--account", me, "--out", str(back))
    assert read.exit_code == 0, read.stderr
    assert back.read_bytes() == OBSERVATION.read_bytes()
    assert balance(chain, newcomer) == 0


def test_a_practitioner_relays_for_their_institution(
    chain, newcomer, relaying_hospital, doctor
):  # fmt: skip
    providers.add_practitioner(chain, relaying_hospital, doctor.address)
    providers.accept_practitioner(chain, doctor, relaying_hospital.address)
    document = providers.sign_registration(chain, newcomer)
    entry = providers.submit_signed_registration(chain, doctor, document)
    assert entry.role is providers.Role.PATIENT


# --- refused before anything is sent ----------------------------------------------------------


def _other_key_with_proof(chain, patient: str) -> tuple[str, str]:
    """A key the hostile relayer holds and a valid proof of it for the patient's address."""
    from medledger.crypto import eip712, envelope
    from medledger.providers.keys import KEY_FIELDS
    from medledger.providers.participants import registry

    secret = os.urandom(32)
    key = envelope.public_key(secret)
    typed = eip712.typed_data(
        "ProviderRegistry", chain.chain_id, registry(chain).address, "EncryptionKey",
        KEY_FIELDS, {"account": patient, "key": key},
    )  # fmt: skip
    return "0x" + key.hex(), "0x" + eip712.sign(secret, typed).hex()


def _tamper(chain, document: dict, how: str) -> dict:
    request = dict(document["request"])
    if how == "key-swapped":
        request["key"], proof = _other_key_with_proof(chain, request["patient"])
        return document | {"request": request, "key_proof": proof}
    if how == "patient-swapped":
        other = Key.from_private_key(os.urandom(32)).address
        return document | {"request": request | {"patient": other}}
    if how == "signature-altered":
        signature = bytes.fromhex(document["signature"][2:])
        return document | {"signature": "0x" + (bytes([signature[0] ^ 1]) + signature[1:]).hex()}
    if how == "key-proof-altered":
        return document | {"key_proof": "0x" + "11" * 65}
    if how == "nonce-altered":
        return document | {"request": request | {"nonce": 1}}
    if how == "wrong-kind":
        return document | {"kind": "medledger/signed-care"}
    if how == "wrong-chain":
        return document | {"chain_id": 1}
    raise AssertionError(how)


TAMPERING = {
    "key-swapped": "was not signed by .*: the file was changed after the patient signed",
    "patient-swapped": "was not signed by",
    "signature-altered": "was not signed by",
    "key-proof-altered": "the key proof does not show that .* holds the encryption key",
    "nonce-altered": "uses nonce 1 of .*, whose next nonce is 0",
    "wrong-kind": "is not a MedLedger signed patient registration",
    "wrong-chain": "signed for chain 1 and ProviderRegistry .*, not this network",
}
"""How a registration file is changed, and the refusal it gets."""


@pytest.mark.parametrize("how", TAMPERING)
def test_a_changed_or_foreign_file_is_refused_in_one_line_and_nothing_is_sent(
    chain, medledger, newcomer, relaying_hospital, tmp_path, how
):

    document = _tamper(chain, providers.sign_registration(chain, newcomer), how)
    path = tmp_path / "registration.json"
    path.write_text(json.dumps(document))
    head = chain.w3.eth.block_number

    out = medledger("patient", "register", "--submit", str(path), "--account", "dev:3")

    assert out.exit_code == 1, out.stdout
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert re.search(TAMPERING[how], out.stderr), out.stderr
    assert chain.w3.eth.block_number == head
    assert providers.participant(chain, newcomer.address).role is providers.Role.NONE


def test_an_expired_registration_is_refused_before_sending(
    chain, medledger, newcomer, relaying_hospital, tmp_path
):
    document = providers.sign_registration(chain, newcomer, valid_for=timedelta(hours=1))
    chain.w3.provider.make_request("evm_increaseTime", [2 * 3600])
    chain.w3.provider.make_request("evm_mine", [])
    head = chain.w3.eth.block_number
    with pytest.raises(SignatureExpired, match="signed registration expired"):
        providers.submit_signed_registration(chain, relaying_hospital, document)
    path = tmp_path / "registration.json"
    path.write_text(json.dumps(document))
    out = medledger("patient", "register", "--submit", str(path), "--account", "dev:3")
    assert out.exit_code == 1 and "error: the signed registration expired" in out.stderr
    assert chain.w3.eth.block_number == head


def test_an_already_registered_patient_is_refused_to_sign_and_to_relay(
    chain, medledger, newcomer, relaying_hospital, tmp_path
):
    document = providers.sign_registration(chain, newcomer)
    providers.submit_signed_registration(chain, relaying_hospital, document)
    head = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match="is already registered as patient"):
        providers.submit_signed_registration(chain, relaying_hospital, document)
    out = medledger("patient", "register", "--sign-only", "--out", str(tmp_path / "again.json"),
                    "--account", f"env:{KEY_VARIABLE}")  # fmt: skip
    assert out.exit_code == 1, out.stdout
    assert out.stderr == f"error: {newcomer.address} is already registered as patient\n"
    assert chain.w3.eth.block_number == head


@pytest.mark.parametrize("relayer", ["stranger", "patient", "pending-institution"])
def test_only_a_verified_institution_relays(
    chain, newcomer, registered_patient, stranger, clinic, relayer
):
    if relayer == "pending-institution":
        providers.apply_institution(chain, clinic, providers.InstitutionKind.CLINIC, "Pending")
    account = {"stranger": stranger, "patient": registered_patient,
               "pending-institution": clinic}[relayer]  # fmt: skip
    document = providers.sign_registration(chain, newcomer)
    head = chain.w3.eth.block_number
    with pytest.raises(PreconditionFailed, match="does not act for a verified institution"):
        providers.submit_signed_registration(chain, account, document)
    assert chain.w3.eth.block_number == head


def test_sign_only_needs_out(medledger, newcomer):
    out = medledger("patient", "register", "--sign-only", "--account", f"env:{KEY_VARIABLE}")
    assert out.exit_code == 1
    assert out.stderr == "error: --out: --sign-only writes the registration to --out FILE\n"


_TYPED = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}],
        "Note": [{"name": "value", "type": "uint256"}],
    },
    "primaryType": "Note",
    "domain": {"name": "MedLedger test"},
    "message": {"value": 1},
}


@settings(max_examples=200, deadline=None)
@given(r=st.binary(min_size=32, max_size=32), s=st.binary(min_size=32, max_size=32))
def test_any_signature_bytes_give_a_signer_or_none_never_a_crash(r, s):
    """About half of all 32-byte values are no curve point's x: recovering from such an ``r``
    raised eth_keys' BadSignature, which reached the CLI as an internal error."""
    from medledger.crypto import eip712

    for v in (27, 28):
        signer = eip712.signer_of(_TYPED, r + s + bytes([v]))
        assert signer is None or re.fullmatch(r"0x[0-9a-fA-F]{40}", signer)
