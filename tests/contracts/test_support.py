"""The assertion helpers must fail where plain Ape 0.8 helpers pass (see ``support.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import Role, assert_events, key_proof, new_key, reverts

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

# How revert data reaches Python differs between the networks: every test here runs on both.
pytestmark = pytest.mark.networks

# Revert data that Ape cannot decode by itself on one network or the other: ASCII bytes
# (Anvil prints them as text), a quote byte (eth-tester's repr), and a plain word.
VIEW_IDS = [
    pytest.param(b"\x01" * 32, id="ascii-data"),
    pytest.param(b"'" * 32, id="quote-byte-data"),
    pytest.param(b"\xff" * 32, id="binary-data"),
]


@pytest.mark.parametrize("record_id", VIEW_IDS)
def test_reverts_decodes_view_call_errors_on_every_network(
    record_registry: Any, record_id: bytes
) -> None:
    with reverts(record_registry.RecordNotFound, id=record_id):
        record_registry.getRecord(record_id)


@pytest.mark.parametrize("record_id", VIEW_IDS)
def test_reverts_fails_on_wrong_view_call_argument(record_registry: Any, record_id: bytes) -> None:
    with (
        pytest.raises(AssertionError, match="'id'"),
        reverts(record_registry.RecordNotFound, id=b"\x02" * 32),
    ):
        record_registry.getRecord(record_id)


def test_reverts_decodes_view_call_error_whose_arguments_are_zero_words(
    record_registry: Any, stranger: AccountAPI
) -> None:
    # Anvil prints zero words as NUL characters, not as hex.
    with reverts(record_registry.RecordInvalidPointer, cidDigest=bytes(32), commitment=bytes(32)):
        record_registry.anchor.call(stranger, bytes(32), bytes(32), 1, bytes(32), sender=stranger)
    with reverts(record_registry.RecordInvalidCategory, category=0):
        record_registry.anchor.call(
            stranger, b"\x01" * 32, b"\x01" * 32, 0, bytes(32), sender=stranger
        )


def test_reverts_fails_on_wrong_error_from_view_call(record_registry: Any) -> None:
    with (
        pytest.raises(AssertionError, match="RecordAlreadyAnchored"),
        reverts(record_registry.RecordAlreadyAnchored, id=b"\x07" * 32),
    ):
        record_registry.getRecord(b"\x07" * 32)


def test_reverts_requires_every_error_argument_by_its_name(
    provider_registry: Any, stranger: AccountAPI
) -> None:
    with (
        pytest.raises(TypeError, match="takes"),
        reverts(provider_registry.ProviderNotRegistered, acount=stranger),
    ):
        pass  # pragma: no cover


def test_reverts_fails_when_nothing_reverts(provider_registry: Any, patient: AccountAPI) -> None:
    key = new_key()
    with (
        pytest.raises(AssertionError, match="did not revert") as raised,
        reverts(provider_registry.ProviderNotRegistered, account=patient),
    ):
        provider_registry.registerPatient(
            key, key_proof(provider_registry, patient, key), sender=patient
        )
    # Ape says "did not revert" also when another exception (a wrong argument count) escaped.
    assert raised.value.__cause__ is None
    assert provider_registry.participant(patient).role == Role.PATIENT


def test_assert_events_requires_every_field_and_every_event(
    provider_registry: Any, patient: AccountAPI, register_patient: Callable[..., Any]
) -> None:
    tx = register_patient(patient)
    with pytest.raises(AssertionError, match="give every field"):
        assert_events(tx, provider_registry.PatientRegistered())
    with pytest.raises(AssertionError, match="events: expected"):
        assert_events(tx, provider_registry.PatientRegistered(patient=patient))
