"""The deployed ClaimsManager: its handle, its constants, the states and reason codes it speaks
in, and claim ids as MedLedger shows them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from eth_utils.crypto import keccak

from medledger import records
from medledger.chain import deployments
from medledger.errors import ConfigurationError
from medledger.labels import Labelled

if TYPE_CHECKING:
    from medledger.chain import Chain
    from medledger.chain.contracts import Contract

CONTRACT = "ClaimsManager"
"""The contract's name in the deployment and in :mod:`medledger.chain.events`."""
RESOLVER_ROLE = keccak(text="RESOLVER_ROLE")
BPS = 10_000
DECISION_PERIOD = timedelta(days=30)
"""How long an insurer has to decide before the claimant may escalate (the contract's
``DECISION_PERIOD``)."""
MAX_INFO_REQUESTS = 3
"""Most requests for information per claim (the contract's ``MAX_INFO_REQUESTS``)."""
_HEX_CLAIM_ID = re.compile(r"^0x[0-9a-fA-F]{1,64}$")


class ClaimState(Labelled):
    """Where a claim stands (the contract's ``ClaimState``)."""

    NONE = 0
    SUBMITTED = 1
    INFO_REQUESTED = 2
    APPROVED = 3
    PARTIALLY_APPROVED = 4
    DENIED = 5
    DISPUTED = 6
    RESOLVED = 7


class ReviewReason(Labelled):
    """Why a claim was left for a person (the contract's ``ReviewReason``)."""

    NONE = 0
    AUTO_SETTLE_DISABLED = 1
    ABOVE_AUTO_SETTLE_LIMIT = 2
    CODE_NOT_PROVEN = 3
    LIMIT_REACHED = 4
    POOL_INSUFFICIENT = 5
    SUBMITTED_BY_PATIENT = 6
    INSURER_NOT_VERIFIED = 7


class ReasonCode(Labelled):
    """Published meanings of the numeric reason codes used in denials, requests and disputes.

    Loosely after the X12 claim adjustment reason groups; only the number goes on chain.
    """

    NOT_COVERED = 1
    POLICY_INACTIVE = 2
    DUPLICATE = 3
    DOCUMENTATION_MISSING = 4
    NOT_MEDICALLY_NECESSARY = 5
    LIMIT_REACHED = 6
    CODING_ERROR = 7
    AMOUNT_DISPUTED = 8
    DECISION_DISPUTED = 9
    OTHER = 99

    @classmethod
    def parse(cls, text: str) -> ReasonCode:
        """Parse a command-line name (or a number)."""
        if text.strip().isdigit():
            try:
                return cls(int(text))
            except ValueError:
                pass
        return cls.lookup(text, "--reason", "reason code")


def describe_reason(code: int) -> str:
    """The published meaning of a reason code (or its number when unknown)."""
    try:
        return ReasonCode(code).label
    except ValueError:
        return f"code {code}"


def manager(chain: Chain) -> Contract:
    """The deployed ClaimsManager."""
    return deployments.contract(chain, CONTRACT)


def dispute_window(chain: Chain) -> int:
    """How long after a decision it may be disputed, in seconds (fixed at deployment)."""
    if "claims-dispute-window" not in chain.cache:
        chain.cache["claims-dispute-window"] = int(
            chain.call("reading the window", manager(chain).functions.DISPUTE_WINDOW())
        )
    return int(chain.cache["claims-dispute-window"])


# --- claim ids -----------------------------------------------------------------------------------


def claim_hex(claim_id: int) -> str:
    """A claim id as MedLedger shows it: ``0x`` and 64 hex digits (its claim record's id)."""
    return f"0x{claim_id:064x}"


def parse_claim_id(text: str, setting: str = "CLAIM") -> int:
    """Parse a claim id: ``0x`` hex (the claim record's id, or a shorter hex number), a
    ``medledger://`` record URI, or the same number in decimal."""
    raw = text.strip()
    value = -1
    if _HEX_CLAIM_ID.match(raw):
        value = int(raw[2:], 16)
    elif raw.isdigit() and len(raw) <= 78:
        value = int(raw)
    elif raw.startswith("medledger://"):
        value = int.from_bytes(records.RecordRef.parse(raw).id, "big")
    if not 0 < value < 2**256:
        raise ConfigurationError(
            setting,
            f"{text!r} is not a claim id (0x and up to 64 hex digits, the claim record's id, or "
            "a decimal number)",
        )
    return value
