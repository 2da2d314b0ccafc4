"""The one place ``verify`` and ``history`` ask about writes this client sent that the chain
does not hold (yet, or any more).

A record can be sent and then be missing: the node rolled back (a reorganisation, a devnet that
lost blocks and has not been restarted yet) or dropped the transaction, or the command was
interrupted before its transaction was mined. Only the client's outbox
(:mod:`medledger.chain.outbox`) knows such a record: it names the records each anchoring meant
to write and the transaction that carried them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger.chain.outbox import DROPPED, MINED, SIGNED, open_outbox
from medledger.errors import TransactionReverted
from medledger.records.record import registry

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
    not hold, from the outbox; ``verify`` reports each one as failed and ``history`` names it
    instead of "not anchored". A write never sent (refused before sending) is not one, nor one
    the journal no longer holds (a devnet snapshot made it durable)."""
    box = open_outbox(chain.settings.home)
    wanted = to_checksum_address(patient) if patient else None
    found = []
    for intent, entry in box.sent_records(chain.journal_key, wanted, record_id):
        if entry is None or _on_chain(chain, intent.record, intent.batch):
            continue
        state = _STATES.get((entry.state, entry.status), entry.state)
        found.append(UnconfirmedWrite(intent.record, intent.patient, entry.hash, None, state))
    return found


_STATES = {
    (SIGNED, None): "sent, not mined yet: run `medledger doctor --resume`",
    (MINED, 1): "rolled back",
    (MINED, 0): "its transaction reverted",
    (DROPPED, None): "dropped: another transaction took its nonce",
}


def _on_chain(chain: Chain, record: bytes, batch: bytes | None) -> bool:
    contract = registry(chain)
    if chain.call("reading the record", contract.functions.exists(record)):
        return True
    if batch is None:
        return False
    try:
        chain.call("reading the batch", contract.functions.getBatch(batch))
    except TransactionReverted:
        return False
    return True
