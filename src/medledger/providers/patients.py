"""Patients: registering with the account's own key, and the delegates (guardians, proxies)
who may act for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.addresses import parse_address
from medledger.errors import PatientNotFound, PreconditionFailed
from medledger.providers.keys import key_proof
from medledger.providers.participants import Role, participant, registry, require_no_role

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt


def register_patient(chain: Chain, account: Signer) -> Receipt:
    """Register the account as a patient with its own encryption key."""
    require_no_role(chain, account.address)
    key, proof = key_proof(chain, account)
    return chain.transact(
        "registering the patient",
        account,
        registry(chain).functions.registerPatient(key, proof),
    )


def require_patient(chain: Chain, address: str) -> str:
    """Return the checksummed address of a registered patient; ``PatientNotFound`` otherwise."""
    entry = participant(chain, address)
    if entry.role is not Role.PATIENT:
        raise PatientNotFound(entry.address)
    return entry.address


def set_delegate(chain: Chain, patient: Signer, delegate: str, allowed: bool) -> None:
    """Name (or drop) a guardian or proxy who may act for the patient."""
    if participant(chain, patient.address).role is not Role.PATIENT:
        raise PreconditionFailed(f"{patient.address} is not a registered patient")
    delegate = parse_address(delegate)
    if delegate == patient.address:
        raise PreconditionFailed("a patient cannot be their own delegate")
    chain.transact(
        "changing the delegate",
        patient,
        registry(chain).functions.setDelegate(delegate, allowed),
    )


def acts_for(chain: Chain, account: str, patient: str) -> bool:
    """True when ``account`` is the patient or one of their delegates."""
    return bool(
        chain.call(
            "reading delegates",
            registry(chain).functions.actsFor(parse_address(account), parse_address(patient)),
        )
    )


def require_acts_for(chain: Chain, account: str, patient: str) -> None:
    """Raise unless ``account`` is the patient or one of their delegates."""
    if not acts_for(chain, account, patient):
        raise PreconditionFailed(
            f"{account} is neither patient {patient} nor one of their delegates"
        )
