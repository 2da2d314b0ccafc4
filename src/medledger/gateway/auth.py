"""Who is calling the gateway: Sign-In with Ethereum, bearer tokens and each request's check.

The flow (the server holds one :class:`Authority`):

1. ``authority.challenge(address, "user/Observation.rs patient/*.rs")`` answers an EIP-4361
   message (https://eips.ethereum.org/EIPS/eip-4361) for the account to sign: this gateway's
   domain and URI, the chain's id, a fresh single-use nonce (remembered in memory), issued now
   and expiring a few minutes later. The requested SMART scopes are in its statement, written
   for the person who signs: ``Sign in to MedLedger with the scopes: user/Observation.rs
   patient/*.rs`` (EIP-4361 ``resources`` must be URIs, which SMART scopes are not).
2. The account signs it as wallets do (EIP-191 ``personal_sign``) and the caller hands back
   message and signature: ``authority.sign_in(message, signature)`` checks them with the
   ``siwe`` package (the signature recovers the address; EIP-1271 contract wallets are not
   supported), and that the message is this gateway's (domain, chain, the very challenge
   issued for that address), unexpired, with a nonce issued and not used. The scopes asked
   for are cut down to the caller's standing on chain (:mod:`~medledger.gateway.standing`);
   the answer is a :class:`Token`, a bearer JWT valid for 15 minutes under a key that only
   this Authority holds in memory.
3. Every request: ``authority.authorize(bearer, resource_type, action, patient)`` reads the
   token and the caller's standing again, live (a grant revoked since sign-in refuses the
   next request), and answers the :class:`Principal` the server serves the request as, or
   raises :class:`~medledger.errors.Unauthenticated` (HTTP 401) or
   :class:`~medledger.errors.Forbidden` (HTTP 403), both one-line
   :class:`~medledger.errors.CallerRefused`.

Times of messages and tokens are the server's clock; grants are judged by the chain's.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eth_keys.exceptions import BadSignature
from siwe import ISO8601Datetime, SiweMessage, VerificationError, generate_nonce

from medledger import providers
from medledger.addresses import parse_address
from medledger.errors import Forbidden, Unauthenticated
from medledger.fhir import R4_RESOURCE_TYPES
from medledger.gateway.scopes import (
    Action,
    SmartScope,
    cut_down,
    parse_scopes,
    render,
)
from medledger.gateway.standing import STUDY_TYPES, standing_of
from medledger.gateway.tokens import Minter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from medledger.categories import Category
    from medledger.chain import Chain
    from medledger.records import Record

STATEMENT = "Sign in to MedLedger with the scopes: "
TOKEN_LIFETIME = timedelta(minutes=15)
CHALLENGE_LIFETIME = timedelta(minutes=5)
MAX_PENDING = 10_000  # challenges not yet answered; a flood of requests cannot grow it further
MAX_MESSAGE = 4_096  # characters: a challenge is about 400; longer is refused before parsing


@dataclass(frozen=True)
class Token:
    """A signed-in caller's bearer token and what it carries."""

    bearer: str
    address: str
    chain_id: int
    scopes: tuple[SmartScope, ...]
    patient: str | None  # the patient context: the caller, when the caller is a patient
    expires_at: datetime

    @property
    def scope(self) -> str:
        """The granted scopes as the OAuth ``scope`` string."""
        return render(self.scopes)


@dataclass(frozen=True)
class Principal:
    """Who a request is served as, and which records it may see (checked at the request)."""

    address: str
    chain_id: int
    scopes: tuple[SmartScope, ...]
    patient: str | None  # the patient the request is about (None: the institution, any)
    institution: bool  # acts for the gateway's institution
    categories: frozenset[Category] | None  # None: not limited by category
    records: frozenset[bytes]  # single records a record grant covers

    def covers(self, record: Record) -> bool:
        """Whether ``record`` is within what the principal may see (the chain still checks
        each read: this narrows searches, it does not replace ``consent.read``)."""
        if self.patient is not None and record.patient != self.patient:
            return False
        if self.categories is None:
            return True
        return record.id in self.records or record.category in self.categories


@dataclass(frozen=True)
class _Pending:
    address: str
    statement: str
    scopes: tuple[SmartScope, ...]
    expires_at: datetime


def challenge(
    address: str,
    chain_id: int,
    domain: str,
    uri: str,
    scopes: Iterable[SmartScope],
    nonce: str,
    issued_at: datetime,
    lifetime: timedelta = CHALLENGE_LIFETIME,
) -> str:
    """The EIP-4361 message asking ``address`` to sign in with ``scopes``."""
    message: str = SiweMessage(
        domain=domain,
        address=parse_address(address),
        statement=STATEMENT + render(scopes),
        uri=uri,
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=ISO8601Datetime.from_datetime(issued_at),
        expiration_time=ISO8601Datetime.from_datetime(issued_at + lifetime),
    ).prepare_message()
    return message


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Authority:
    """Signs callers in and checks each request (one per server; state in memory only)."""

    def __init__(
        self,
        chain: Chain,
        institution: str,
        domain: str,
        uri: str,
        *,
        token_lifetime: timedelta = TOKEN_LIFETIME,
        challenge_lifetime: timedelta = CHALLENGE_LIFETIME,
        clock: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self.chain = chain
        self.institution = parse_address(institution, "institution")
        self.domain = domain
        self.uri = uri
        self.token_lifetime = token_lifetime
        self.challenge_lifetime = challenge_lifetime
        self._clock = clock
        self._minter = Minter()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def challenge(self, address: str, scopes: str | Iterable[str]) -> str:
        """A sign-in message for ``address`` asking for ``scopes`` (raises
        :class:`~medledger.errors.InvalidScope` for a malformed one); its nonce is remembered
        until it is used or expires."""
        address, wanted = parse_address(address), parse_scopes(scopes)
        now, nonce = self._clock(), generate_nonce()
        with self._lock:
            self._forget_expired(now)
            if len(self._pending) >= MAX_PENDING:
                raise Unauthenticated("too many sign-ins are pending: try again in a few minutes")
            self._pending[nonce] = _Pending(
                address, STATEMENT + render(wanted), wanted, now + self.challenge_lifetime
            )
        return challenge(
            address, self.chain.chain_id, self.domain, self.uri, wanted, nonce, now,
            self.challenge_lifetime,
        )  # fmt: skip

    def sign_in(self, message: str, signature: str | bytes) -> Token:
        """Check a signed challenge and issue a token with the scopes cut down to what the
        caller may do now (:class:`~medledger.errors.Forbidden` when nothing is left)."""
        signed = self._parse(message)
        if signed.domain != self.domain:
            raise Unauthenticated(
                f"the sign-in message is for {signed.domain}, not this gateway ({self.domain})"
            )
        if signed.chain_id != self.chain.chain_id:
            raise Unauthenticated(
                f"the sign-in message is for chain {signed.chain_id}; this gateway serves "
                f"chain {self.chain.chain_id}"
            )
        now = self._clock()
        with self._lock:
            pending = self._pending.get(signed.nonce)
            if pending is None:
                raise Unauthenticated(
                    "the sign-in message's nonce was not issued by this gateway or was used "
                    "already: ask for a new challenge"
                )
            deadline = pending.expires_at
            if signed.expiration_time is not None:
                deadline = min(deadline, signed.expiration_time._datetime)
            if now >= deadline:
                del self._pending[signed.nonce]
                raise Unauthenticated(
                    f"the sign-in message expired at {deadline:%Y-%m-%d %H:%M:%S}Z: "
                    "ask for a new challenge"
                )
            if (signed.address, signed.statement, signed.uri) != (
                pending.address, pending.statement, self.uri
            ):  # fmt: skip
                raise Unauthenticated(
                    f"the sign-in message is not the challenge this gateway issued to "
                    f"{pending.address}"
                )
            self._verify(signed, signature, now)
            del self._pending[signed.nonce]  # single use
        # The patient whose key signed (its id: after a recovery, not the key's address).
        controlled = providers.patient_of(self.chain, signed.address)
        standing = standing_of(self.chain, signed.address, self.institution, controlled)
        scopes = cut_down(pending.scopes, standing)
        if not scopes:
            first = pending.scopes[0]
            reason = standing.why_not(first.context, first.resource_type, min(first.actions))
            raise Forbidden(
                f"none of the scopes asked for ({render(pending.scopes)}) is allowed to "
                f"{signed.address}: {reason or 'no resource type is left'}"
            )
        expires_at = now + self.token_lifetime
        patient = controlled if standing.own else None
        bearer = self._minter.mint({
            "iss": self.uri, "sub": signed.address, "chain": self.chain.chain_id,
            "scope": render(scopes), "patient": patient, "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()), "jti": secrets.token_hex(8),
        })  # fmt: skip
        return Token(bearer, signed.address, self.chain.chain_id, scopes, patient, expires_at)

    def authorize(
        self, bearer: str | None, resource_type: str, action: Action | str, patient: str | None
    ) -> Principal:
        """Who the request is served as; :class:`~medledger.errors.Unauthenticated` without a
        valid live token, :class:`~medledger.errors.Forbidden` when its scopes or the
        caller's live standing on chain do not allow ``action`` on ``resource_type`` about
        ``patient`` (None: the patient context of the token, or every patient for the
        institution)."""
        claims = self._claims(bearer)
        address, scopes = claims["sub"], parse_scopes(claims["scope"])
        doing = Action.parse(action)
        if resource_type not in R4_RESOURCE_TYPES:
            raise Forbidden(f"{resource_type!r} is not a FHIR R4 resource type")
        contexts = {s.context for s in scopes if s.allows(resource_type, doing)}
        if not contexts:
            raise Forbidden(
                f"the token's scopes ({render(scopes)}) do not allow {doing.name.lower()} of "
                f"{resource_type}: sign in again asking for user/{resource_type}.{doing.value}"
            )
        patient = parse_address(patient, "patient") if patient else claims.get("patient")
        standing = standing_of(self.chain, address, self.institution, patient)
        reasons = [standing.why_not(c, resource_type, doing) for c in sorted(contexts)]
        if all(reasons):
            raise Forbidden(str(reasons[0]))
        if patient is None and not standing.institution and resource_type not in STUDY_TYPES:
            raise Forbidden(
                "name the patient the request is about: access is decided patient by patient"
            )
        limited = not (standing.institution or standing.own)
        return Principal(
            address=address,
            chain_id=self.chain.chain_id,
            scopes=scopes,
            patient=patient,
            institution=standing.institution,
            categories=standing.categories if limited else None,
            records=frozenset(standing.records) if limited else frozenset(),
        )

    def caller(self, bearer: str | None) -> str:
        """The signed-in address of a valid live token (:class:`~medledger.errors.
        Unauthenticated` otherwise); what it may do is decided by :meth:`authorize`."""
        return str(self._claims(bearer)["sub"])

    def scopes(self, bearer: str | None) -> tuple[SmartScope, ...]:
        """The scopes a valid live token carries."""
        return parse_scopes(self._claims(bearer)["scope"])

    def _claims(self, bearer: str | None) -> dict[str, Any]:
        if not bearer or not bearer.strip():
            raise Unauthenticated(
                "no bearer token: sign in with Ethereum and send Authorization: Bearer <token>"
            )
        head, _, rest = bearer.strip().partition(" ")
        claims = self._minter.claims(rest.strip() if head.lower() == "bearer" else head)
        if claims.get("chain") != self.chain.chain_id:
            raise Unauthenticated(
                f"the bearer token is for chain {claims.get('chain')}; this gateway serves "
                f"chain {self.chain.chain_id}: sign in again"
            )
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        if self._clock() >= expires_at:
            raise Unauthenticated(
                f"the bearer token expired at {expires_at:%Y-%m-%d %H:%M:%S}Z: sign in again"
            )
        return claims

    @staticmethod
    def _parse(message: str) -> SiweMessage:
        if len(message) > MAX_MESSAGE:
            raise Unauthenticated(f"the sign-in message is longer than {MAX_MESSAGE} characters")
        try:
            return SiweMessage.from_message(message)
        except ValueError as error:  # pydantic's ValidationError is one
            first = str(error).strip().splitlines()
            detail = f": {first[-1].strip()}" if first else ""
            raise Unauthenticated(
                f"the sign-in message is not an EIP-4361 message{detail}"
            ) from None

    @staticmethod
    def _verify(signed: SiweMessage, signature: str | bytes, now: datetime) -> None:
        text = signature if isinstance(signature, str) else "0x" + bytes(signature).hex()
        try:
            signed.verify(text if text.startswith("0x") else "0x" + text, timestamp=now)
        except (VerificationError, BadSignature, ValueError, TypeError) as error:
            raise Unauthenticated(
                f"the signature does not show that {signed.address} signed the sign-in message"
            ) from error

    def _forget_expired(self, now: datetime) -> None:
        for nonce in [n for n, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[nonce]
