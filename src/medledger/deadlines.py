"""Deadlines of signed messages, judged by the chain's clock before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from medledger.errors import ConfigurationError, SignatureExpired

if TYPE_CHECKING:
    from medledger.chain import Chain

_LATEST = datetime.max.replace(tzinfo=UTC)
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def deadline_time(deadline: object, what: str) -> datetime:
    """A signed ``deadline`` (seconds since the epoch) as a UTC time, or a one-line refusal."""
    try:
        if isinstance(deadline, bool) or not isinstance(deadline, (int, str)):
            raise ValueError(deadline)
        seconds = int(deadline)
    except ValueError:
        raise ConfigurationError(f"signed {what}", f"deadline {deadline!r} is not a time") from None
    if seconds > _LATEST.timestamp():
        return _LATEST
    if seconds < _EARLIEST.timestamp():
        return _EARLIEST
    return datetime.fromtimestamp(seconds, tz=UTC)


def require_unexpired(chain: Chain, deadline: object, what: str) -> None:
    """Refuse a signed message whose deadline is before the chain's latest block time."""
    at = deadline_time(deadline, what)
    now = chain.now()
    if at < now:
        raise SignatureExpired(what, at, now)
