"""What a grant covers and why: its scope (a record, a category, all records), its purpose,
and how long it lasts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from medledger import records
from medledger.categories import Category
from medledger.consent.contract import ZERO
from medledger.errors import ConfigurationError
from medledger.labels import Labelled


class Purpose(Labelled):
    """Why access is granted (the contract's ``Purpose``)."""

    TREATMENT = 1
    PAYMENT = 2
    RESEARCH = 3
    OPERATIONS = 4
    PATIENT_REQUEST = 5
    EMERGENCY = 6

    @classmethod
    def choices(cls) -> list[Purpose]:
        """Emergency access has its own verb, so it is never a grant's purpose."""
        return [p for p in cls if p is not cls.EMERGENCY]

    @classmethod
    def parse(cls, text: str) -> Purpose:
        """Parse a command-line name."""
        return cls.lookup(text, "--purpose", "purpose")


class ScopeKind(IntEnum):
    """What a grant covers (the contract's ``ScopeKind``)."""

    RECORD = 0
    CATEGORY = 1
    ALL = 2


@dataclass(frozen=True)
class Scope:
    """A grant's scope: one record, one category, or all records of the patient."""

    kind: ScopeKind
    record: bytes | None = None
    category: Category | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``record:ID``, ``category:NAME`` or ``all``."""
        head, _, rest = text.strip().partition(":")
        if head == "all" and not rest:
            return cls(ScopeKind.ALL)
        if head == "record" and rest:
            return cls(ScopeKind.RECORD, record=records.RecordRef.parse(rest).id)
        if head == "category" and rest:
            return cls(ScopeKind.CATEGORY, category=Category.parse(rest))
        raise ConfigurationError("--scope", f"{text!r} is not record:ID, category:NAME or all")

    @classmethod
    def covering(cls, record: records.Record) -> tuple[Scope, ...]:
        """Every scope that includes ``record``: itself, its category, all records."""
        scopes = [cls(ScopeKind.RECORD, record=record.id), cls(ScopeKind.ALL)]
        if isinstance(record.category, Category):
            scopes.append(cls(ScopeKind.CATEGORY, category=record.category))
        return tuple(scopes)

    @property
    def value(self) -> bytes:
        """The contract's ``bytes32 scope``."""
        if self.kind is ScopeKind.RECORD and self.record is not None:
            return self.record
        if self.kind is ScopeKind.CATEGORY and self.category is not None:
            return int(self.category).to_bytes(32, "big")
        return ZERO

    @property
    def key(self) -> bytes:
        """The contract's ``scopeKey``: keccak of the ABI encoding of kind and value (the
        indexed field of the grant events)."""
        return keccak(encode(["uint8", "bytes32"], [int(self.kind), self.value]))

    @property
    def label(self) -> str:
        """The command-line form."""
        if self.kind is ScopeKind.RECORD and self.record is not None:
            return f"record:0x{self.record.hex()}"
        if self.kind is ScopeKind.CATEGORY and self.category is not None:
            return f"category:{self.category.label}"
        return "all"

    def covers(self, record: records.Record) -> bool:
        """Whether the scope includes ``record``."""
        if self.kind is ScopeKind.ALL:
            return True
        if self.kind is ScopeKind.RECORD:
            return record.id == self.record
        return int(record.category) == int(self.category or 0)

    @classmethod
    def from_chain(cls, kind: int, value: bytes) -> Scope:
        """Rebuild a scope from event fields."""
        scope_kind = ScopeKind(kind)
        if scope_kind is ScopeKind.RECORD:
            return cls(scope_kind, record=bytes(value))
        if scope_kind is ScopeKind.CATEGORY:
            number = int.from_bytes(bytes(value), "big")
            try:
                return cls(scope_kind, category=Category(number))
            except ValueError:
                return cls(scope_kind)
        return cls(scope_kind)


#: Scope ``all``: every record of the patient.
ALL_RECORDS = Scope(ScopeKind.ALL)
