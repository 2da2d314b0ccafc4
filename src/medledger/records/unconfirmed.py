"""The one place ``verify`` and ``history`` ask about writes this client sent that the chain
does not hold (yet, or any more).

A record can be acknowledged and then be missing: the node rolled back (a devnet killed before
it saved its state, a reorganisation) or dropped the transaction. Only the client's outbox of
sent transactions knows such a record. Until that outbox exists, :func:`unconfirmed_writes`
knows none and a missing record is simply "not anchored on this chain".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.chain import Chain


@dataclass(frozen=True)
class UnconfirmedWrite:
    """A record this client sent to the chain that the chain does not hold."""

    record_id: bytes
    patient: str
    transaction_hash: str | None
    sent_at: datetime | None
    state: str  # what the outbox knows: "pending", "rolled back", "dropped"...

    @property
    def problem(self) -> str:
        """One line for ``verify`` and ``history``: what happened, and what to do."""
        sent = f" in transaction {self.transaction_hash}" if self.transaction_hash else ""
        when = f" on {self.sent_at:%Y-%m-%d %H:%M:%S}Z" if self.sent_at else ""
        return (
            f"record 0x{self.record_id.hex()} was sent{sent}{when} but is not on this chain "
            f"({self.state}): run the command that wrote it again"
        )


def unconfirmed_writes(
    chain: Chain, *, patient: str | None = None, record_id: bytes | None = None
) -> list[UnconfirmedWrite]:
    """The writes this client sent for ``patient`` (or of ``record_id``) that the chain does
    not hold: the hook for the outbox of sent transactions.

    Today there is no outbox, so this returns nothing. When it exists, it answers from it
    (entries not confirmed, or whose record the chain no longer holds); ``verify`` reports
    each one as failed and ``history`` names it instead of "not anchored".
    """
    del chain, patient, record_id
    return []
