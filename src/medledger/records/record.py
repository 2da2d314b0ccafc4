"""A record as the chain holds it, a reference to one, and the check that its fields are the
ones its id commits to.

A record on chain is one storage slot (patient, time, category, superseded flag) plus the
``RecordAnchored`` event holding the issuer, the CID digest of the sealed body, the salted
commitment and the previous version. The record id is a hash of all of those (see
``contracts/libraries/RecordIds.sol``), so every field read back from an event (or a batch
manifest) is checked against the id: a swapped pointer or commitment is detected, whichever
node served the log.

Record URIs name chain, registry and id, so a record can be cited outside this chain::

    medledger://eip155:<chain id>/<RecordRegistry address>/<0x record id>
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger import documents
from medledger.categories import Category
from medledger.chain import deployments
from medledger.errors import IntegrityError, InvalidRecordId
from medledger.records.ids import Context, derive_id

if TYPE_CHECKING:
    from datetime import datetime

    from medledger.chain import Chain
    from medledger.chain.contracts import Contract
    from medledger.ipfs.cid import Cid

_URI = re.compile(r"^medledger://eip155:(\d+)/(0x[0-9a-fA-F]{40})/(0x[0-9a-fA-F]{64})$")
_HEX_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class RecordRef:
    """A parsed record id, with the chain and registry when it came as a URI."""

    id: bytes
    chain_id: int | None = None
    registry: str | None = None

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """Parse ``0x<64 hex>`` or a ``medledger://`` URI."""
        text = text.strip()
        if _HEX_ID.match(text):
            return cls(bytes.fromhex(text[2:]))
        match = _URI.match(text)
        if match is None:
            raise InvalidRecordId(text)
        return cls(bytes.fromhex(match[3][2:]), int(match[1]), to_checksum_address(match[2]))


@dataclass(frozen=True)
class Erasure:
    """A record's erasure as the chain holds it: when, and by whom (the patient or a delegate).

    Erasure is decided by the ConsentManager; records learns of it through an
    :data:`Erasures` lookup its caller passes (``consent.erasures(chain)``)."""

    at: datetime
    by: str


Erasures = Callable[["Record"], "Erasure | None"]
"""How records learns whether a record was erased (``consent.erasures(chain)`` builds one)."""


@dataclass(frozen=True)
class Record:
    """An anchored record, as the chain holds it (``erased`` only when the caller looked)."""

    id: bytes
    patient: str
    issuer: str
    previous: bytes | None
    cid: Cid
    commitment: bytes
    category: Category | int
    anchored_at: datetime
    block: int
    transaction_hash: str
    superseded: bool
    chain_id: int
    registry: str
    batch: bytes | None = None
    registered: bool = True
    erased: Erasure | None = None

    @property
    def state(self) -> str:
        """``erased``, ``superseded`` or ``current`` (erasure is known only when looked up)."""
        if self.erased is not None:
            return "erased"
        return "superseded" if self.superseded else "current"

    @property
    def hex_id(self) -> str:
        """The id as ``0x`` hex."""
        return "0x" + self.id.hex()

    @property
    def uri(self) -> str:
        """The portable URI of the record."""
        return f"medledger://eip155:{self.chain_id}/{self.registry}/{self.hex_id}"

    @property
    def category_label(self) -> str:
        """The category's command-line name (or its number when unknown to this version)."""
        return self.category.label if isinstance(self.category, Category) else str(self.category)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (:func:`medledger.documents.to_data`, with the URI, the
        category's label and ``transaction`` for the hash; chain and registry are in the URI)."""
        data = documents.to_data(self)
        return {
            "id": data["id"],
            "uri": self.uri,
            "patient": data["patient"],
            "issuer": data["issuer"],
            "previous": data["previous"],
            "cid": data["cid"],
            "commitment": data["commitment"],
            "category": self.category_label,
            "anchored_at": data["anchored_at"],
            "block": data["block"],
            "transaction": data["transaction_hash"],
            "superseded": data["superseded"],
            "batch": data["batch"],
            "registered": data["registered"],
            "state": self.state,
            "erased": data["erased"],
        }


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one record: ``ok`` unless its pointer, body or commitment
    failed. A record the patient erased is ``ok`` with ``erased`` set (its body is gone by
    design); a body missing without an erasure is a failure."""

    record_id: str
    ok: bool
    checks: tuple[str, ...]
    problem: str | None = None
    erased: Erasure | None = None

    @property
    def status(self) -> str:
        """``verified``, ``erased`` or ``failed``."""
        if not self.ok:
            return "failed"
        return "erased" if self.erased is not None else "verified"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (the erasure's time and author when erased)."""
        return {"id": self.record_id, "ok": self.ok, "status": self.status,
                "checks": list(self.checks), "problem": self.problem,
                "erased": documents.to_data(self.erased)}  # fmt: skip


def category_of(code: int) -> Category | int:
    """A category code as a :class:`Category`, or the bare number when this version does not
    know it (a later version may add categories)."""
    try:
        return Category(code)
    except ValueError:
        return int(code)


def check_pointer(chain: Chain, record: Record) -> None:
    """Raise ``IntegrityError`` unless the record's fields hash to its id (pointer intact)."""
    expected = derive_id(
        Context(chain.chain_id, record.registry, record.issuer), record.patient,
        record.cid.digest, record.commitment, int(record.category), record.previous,
    )  # fmt: skip
    if expected != record.id:
        raise IntegrityError(
            f"record {record.hex_id}: its pointer or commitment does not match its id "
            f"(CID {record.cid} was not the one anchored)"
        )


def registry(chain: Chain) -> Contract:
    """The deployed RecordRegistry (for the package's modules)."""
    return deployments.contract(chain, "RecordRegistry")
