"""What the TrialRegistry holds, as Python values: studies, protocol versions, participations,
anchored data bodies, submissions and the steps of a study's history.

Every model turns into JSON through :func:`medledger.documents.to_data`; the ``as_dict``
methods keep the JSON shapes the command line has always printed (an identifier instead of the
chain and registry, a participation's standing and reader flags instead of its bits...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from medledger.chain.events import moment
from medledger.crypto.merkle import verify_indexed
from medledger.documents import to_data
from medledger.labels import Labelled

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.ipfs.cid import Cid

CONTRACT = "TrialRegistry"
"""The contract this package is the client of (its events are read under this name)."""
ZERO = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
READER_SPONSOR = 1
READER_MONITORS = 2


class ConsentPurpose(Labelled):
    """What a participant's data may be used for (the contract's ``ConsentPurpose``)."""

    TRIAL_ONLY = 1
    TRIAL_AND_FUTURE_RESEARCH = 2

    @classmethod
    def parse(cls, text: str) -> ConsentPurpose:
        """Parse a command-line name."""
        return cls.lookup(text, "--purpose", "consent purpose")


class Standing(Enum):
    """Where a participant stands: data is accepted only while ``active``."""

    ACTIVE = "active"
    STALE = "stale"  # an amendment requires re-consent first
    WITHDRAWN = "withdrawn"


def optional_time(seconds: int) -> datetime | None:
    """A contract's timestamp, ``None`` for zero (not happened)."""
    return moment(seconds) if seconds else None


@dataclass(frozen=True)
class Study:
    """A study as the chain holds it, with its sites and current monitors from its events."""

    id: int
    chain_id: int
    registry: str
    sponsor: str
    current_version: int
    reconsent_version: int
    participants: int
    registered_at: datetime
    first_enrolment_at: datetime | None
    data_count: int
    sites: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    summary: Cid | None = None
    #: True when each participant must be attested by the site that enrols them.
    attested_participants: bool = False

    @property
    def identifier(self) -> str:
        """The portable identifier ``eip155:<chain>/<TrialRegistry>/<id>``."""
        return f"eip155:{self.chain_id}/{self.registry}/{self.id}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the fields, with the identifier in place of chain and
        registry."""
        fields = to_data(self)
        del fields["chain_id"], fields["registry"]
        return {"id": fields.pop("id"), "identifier": self.identifier, **fields}


@dataclass(frozen=True)
class ProtocolVersion:
    """One protocol version: its document, outcome hashes and why it came.

    ``outcomes_frozen_at`` is when its outcome definitions froze: its first consent or its
    first data, whichever came first (``None`` while they may still change).
    """

    study_id: int
    version: int
    protocol: Cid
    encrypted: bool
    primary_outcomes: bytes
    secondary_outcomes: bytes | None
    requires_reconsent: bool
    reason: str
    registered_at: datetime
    outcomes_frozen_at: datetime | None
    block: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (every field but the study's id)."""
        fields = to_data(self)
        del fields["study_id"]
        return dict(fields)


@dataclass(frozen=True)
class Participation:
    """A participant's standing in a study."""

    study_id: int
    participant: str
    site: str
    consented_version: int
    enrolled_at: datetime
    purpose: ConsentPurpose
    readers: int
    withdrawn_at: datetime | None
    delegate: str | None
    consents: int
    required_version: int

    @property
    def standing(self) -> Standing:
        """Active, stale (must re-consent) or withdrawn."""
        if self.withdrawn_at is not None:
            return Standing.WITHDRAWN
        if self.consented_version < self.required_version:
            return Standing.STALE
        return Standing.ACTIVE

    @property
    def sponsor_reads(self) -> bool:
        """Whether the participant lets the sponsor read their data."""
        return bool(self.readers & READER_SPONSOR)

    @property
    def monitors_read(self) -> bool:
        """Whether the participant lets the study's monitors read their data."""
        return bool(self.readers & READER_MONITORS)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the standing and what the reader bits allow."""
        fields = to_data(self)
        return {
            "study": self.study_id,
            "participant": self.participant,
            "site": self.site,
            "standing": to_data(self.standing),
            "consented_version": self.consented_version,
            "required_version": self.required_version,
            "enrolled_at": fields["enrolled_at"],
            "purpose": self.purpose.label,
            "sponsor_reads": self.sponsor_reads,
            "monitors_read": self.monitors_read,
            "withdrawn_at": fields["withdrawn_at"],
            "delegate": self.delegate,
            "consents": self.consents,
        }


@dataclass(frozen=True)
class BatchPosition:
    """Where a batched body sits: its batch's root and declared count, its position in the
    positional tree and the sibling hashes that prove it there."""

    root: bytes
    count: int
    index: int
    proof: tuple[bytes, ...]

    def proves(self, item_id: bytes) -> bool:
        """Whether the proof puts ``item_id`` at this position (as ``verifyBatchData`` does)."""
        return verify_indexed(list(self.proof), self.root, item_id, self.index, self.count)


@dataclass(frozen=True)
class DataItem:
    """One anchored data body: submitted alone, or a leaf of a batch (``batch`` and
    ``position`` set)."""

    id: bytes
    study_id: int
    participant: str
    visit: bytes
    version: int
    cid: Cid
    commitment: bytes
    site: str
    submitted_at: datetime
    block: int
    log_index: int
    transaction_hash: str
    batch: bytes | None = None
    position: BatchPosition | None = None

    @property
    def hex_id(self) -> str:
        """The id as ``0x`` hex."""
        return "0x" + self.id.hex()

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the body's fields, its transaction, batch and position."""
        fields = to_data(self)
        return {
            **{name: fields[name] for name in ("id", "participant", "visit", "version", "cid",
                                               "commitment", "site", "submitted_at", "block")},
            "transaction": self.transaction_hash,
            "batch": fields["batch"],
            "index": self.position.index if self.position else None,
        }  # fmt: skip


@dataclass(frozen=True)
class Submission:
    """What one :func:`~medledger.trials.submit_data` call anchored, and what it cost."""

    items: tuple[DataItem, ...]
    transactions: tuple[str, ...]
    gas_used: int
    batch: bytes | None = None
    manifest: Cid | None = None
    #: Positions of bodies that wrote nothing: on chain already (a re-run), or twice in the call.
    skipped: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (each item as :meth:`DataItem.as_dict` shows it)."""
        return {**to_data(self), "items": [i.as_dict() for i in self.items]}


@dataclass(frozen=True)
class TrialEvent:
    """One step of a study's life, from its events, with its transaction's gas."""

    time: datetime
    block: int
    log_index: int
    event: str
    actor: str
    detail: str
    transaction_hash: str
    gas_used: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "time": to_data(self.time),
            "block": self.block,
            "event": self.event,
            "by": self.actor,
            "detail": self.detail,
            "transaction": self.transaction_hash,
            "gas": self.gas_used,
        }


@dataclass
class Check:
    """One audit rule, how many things it looked at, and what broke it."""

    rule: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing broke the rule."""
        return not self.violations
