"""Practitioners: an institution invites an account, the account accepts, and either ends it.

A practitioner writes records for its institution's patients and reads with its
institution; its records carry the institution's writer number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.addresses import parse_address
from medledger.errors import PreconditionFailed
from medledger.providers.participants import (
    Role,
    Status,
    participant,
    registry,
    require_institution,
    require_no_role,
)

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt


def add_practitioner(chain: Chain, institution: Signer, practitioner: str) -> Receipt:
    """Invite an account to work for the caller's (verified) institution; it must accept."""
    entry = require_institution(chain, institution.address)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{entry.address} must be verified to add practitioners")
    require_no_role(chain, practitioner)
    return chain.transact(
        "inviting the practitioner",
        institution,
        registry(chain).functions.addPractitioner(parse_address(practitioner)),
    )


def accept_practitioner(chain: Chain, practitioner: Signer, institution: str) -> Receipt:
    """Accept an institution's invitation: the account becomes its practitioner."""
    institution = parse_address(institution)
    contract = registry(chain)
    invited = chain.call(
        "reading invitations", contract.functions.isInvited(institution, practitioner.address)
    )
    if not invited:
        raise PreconditionFailed(f"{institution} has not invited {practitioner.address}")
    entry = require_institution(chain, institution)
    if entry.status is not Status.VERIFIED:
        raise PreconditionFailed(f"{institution} is {entry.status.name.lower()}, not verified")
    require_no_role(chain, practitioner.address)
    return chain.transact(
        "accepting the invitation", practitioner, contract.functions.acceptPractitioner(institution)
    )


def remove_practitioner(chain: Chain, signer: Signer, practitioner: str) -> Receipt:
    """End a practitioner's work (by its institution or itself), or withdraw an invitation."""
    entry = participant(chain, practitioner)
    contract = registry(chain)
    employs = entry.role is Role.PRACTITIONER and signer.address in (entry.employer, entry.address)
    invited = chain.call(
        "reading invitations", contract.functions.isInvited(signer.address, entry.address)
    )
    if not (employs or invited):
        raise PreconditionFailed(f"{entry.address} is not a practitioner (or invitee) of yours")
    return chain.transact(
        "removing the practitioner", signer, contract.functions.removePractitioner(entry.address)
    )
