"""Giving and taking back access: grants and revocations (sent by the patient or a delegate,
or signed off chain for any relayer to submit) and cancelled signatures.

A grant carries the key envelope of the records in scope that the signer holds keys for (see
:mod:`medledger.consent.envelopes`). Revocation cannot take back a key already delivered: a
revoked party that kept a copy of a body and of its key can still read that copy. What
revocation does guarantee is the future: the chain refuses the party from then on, honest
clients stop decrypting, and every record or version written after the revocation has a fresh
key that is wrapped only for parties with a live grant at writing time (``readers_for``), so
the revoked party never receives it.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from medledger import providers, records
from medledger.accounts import sign_typed_data
from medledger.addresses import parse_address
from medledger.consent.contract import ZERO, consent_contract
from medledger.consent.envelopes import build, records_in_scope
from medledger.consent.grants import GrantState, grant_state, grantee_key, grants
from medledger.consent.scopes import Purpose, Scope, ScopeKind
from medledger.crypto import eip712
from medledger.deadlines import require_unexpired
from medledger.errors import ConfigurationError, MedLedgerError, PreconditionFailed
from medledger.ipfs.unixfs import hash_bytes

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

SIGNED_GRANT_KIND = "medledger/signed-grant"
GRANT_FIELDS = (
    ("patient", "address"),
    ("grantee", "address"),
    ("scopeKind", "uint8"),
    ("scope", "bytes32"),
    ("purpose", "uint8"),
    ("expiresAt", "uint40"),
    ("envelopeDigest", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)
SIGNED_REVOCATION_KIND = "medledger/signed-revocation"
REVOCATION_FIELDS = (
    ("patient", "address"),
    ("grantee", "address"),
    ("scopeKind", "uint8"),
    ("scope", "bytes32"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)


def grant(
    chain: Chain,
    store: BlockStore,
    signer: Signer,
    patient: str,
    grantee: str,
    scope: Scope,
    purpose: Purpose,
    expires: timedelta,
) -> GrantState:
    """Grant access (the signer is the patient or a delegate) and deliver the keys in scope
    that the signer holds; the ids of those it does not hold (all of them, for a delegate) are
    in the result's ``undelivered``, for the patient or an issuer to deliver."""
    patient, grantee = parse_address(patient), parse_address(grantee)
    contract = consent_contract(chain)
    providers.require_acts_for(chain, signer.address, patient)
    key = grantee_key(chain, patient, grantee)
    in_scope = records_in_scope(chain, store, patient, scope)
    if scope.kind is ScopeKind.RECORD:
        in_scope = [records.ensure_registered(chain, store, signer, r) for r in in_scope]
    envelope, missing = build(chain, store, signer, patient, grantee, key, in_scope)
    expires_at = int((chain.now() + expires).timestamp())
    chain.transact(
        "granting access",
        signer,
        contract.functions.grant(
            patient, grantee, int(scope.kind), scope.value, int(purpose), expires_at,
            envelope.digest if envelope else ZERO,
        ),
    )  # fmt: skip
    state = grant_state(chain, patient, grantee, scope, (envelope,) if envelope else ())
    return replace(state, undelivered=missing)


def sign_grant(
    chain: Chain,
    store: BlockStore,
    signer: Signer,
    patient: str,
    grantee: str,
    scope: Scope,
    purpose: Purpose,
    expires: timedelta,
    valid_for: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    """Sign a grant off chain (EIP-712); return the document any relayer can submit.

    The document carries the key envelope itself, so the relayer can put it in its own store.
    """
    patient, grantee = parse_address(patient), parse_address(grantee)
    contract = consent_contract(chain)
    providers.require_acts_for(chain, signer.address, patient)
    key = grantee_key(chain, patient, grantee)
    in_scope = records_in_scope(chain, store, patient, scope)
    envelope, _missing = build(chain, store, signer, patient, grantee, key, in_scope)
    now = chain.now()
    request = {
        "patient": patient,
        "grantee": grantee,
        "scopeKind": int(scope.kind),
        "scope": "0x" + scope.value.hex(),
        "purpose": int(purpose),
        "expiresAt": int((now + expires).timestamp()),
        "envelopeDigest": "0x" + (envelope.digest if envelope else ZERO).hex(),
        "nonce": int(chain.call("reading the nonce", contract.functions.nonces(patient))),
        "deadline": int((now + valid_for).timestamp()),
    }
    typed = eip712.typed_data(
        "ConsentManager", chain.chain_id, contract.address, "GrantRequest", GRANT_FIELDS, request
    )
    signature = sign_typed_data(signer, typed)
    return {
        "kind": SIGNED_GRANT_KIND,
        "chain_id": chain.chain_id,
        "consent_manager": contract.address,
        "request": request,
        "signature": "0x" + bytes(signature).hex(),
        "envelope": base64.b64encode(store.cat(envelope)).decode() if envelope else None,
    }


def submit_signed_grant(
    chain: Chain, store: BlockStore, relayer: Signer, document: dict[str, Any]
) -> GrantState:
    """Submit a signed grant (any account pays the gas); the patient needs no ETH."""
    contract = consent_contract(chain)
    try:
        request = document["request"]
        signature = HexBytes(document["signature"])
        if document.get("kind") != SIGNED_GRANT_KIND:
            raise KeyError("kind")
    except (KeyError, TypeError, ValueError):
        raise ConfigurationError("signature file", "is not a MedLedger signed grant") from None
    if (
        document.get("chain_id") != chain.chain_id
        or document.get("consent_manager") != contract.address
    ):
        raise PreconditionFailed("the signed grant is for another chain or ConsentManager")
    require_unexpired(chain, request.get("deadline"), "grant")  # before anything is stored
    if document.get("envelope"):
        envelope = base64.b64decode(document["envelope"])
        if "0x" + hash_bytes(envelope).digest.hex() != request["envelopeDigest"]:
            raise PreconditionFailed("the envelope in the file does not match the signed digest")
        store.add_bytes(envelope)  # stored only once it is known to be the signed one
    scope = Scope.from_chain(request["scopeKind"], bytes(HexBytes(request["scope"])))
    if scope.kind is ScopeKind.RECORD and scope.record is not None:
        records.ensure_registered(chain, store, relayer, records.get(chain, scope.record, store))
    args = (
        request["patient"], request["grantee"], request["scopeKind"],
        HexBytes(request["scope"]), request["purpose"], request["expiresAt"],
        HexBytes(request["envelopeDigest"]), request["nonce"], request["deadline"],
    )  # fmt: skip
    chain.transact(
        "submitting the signed grant",
        relayer,
        contract.functions.grantWithSignature(args, signature),
    )
    return grant_state(chain, request["patient"], request["grantee"], scope)


def revoke(chain: Chain, signer: Signer, patient: str, grantee: str, scope: Scope) -> None:
    """Revoke a grant at once (the signer is the patient or a delegate)."""
    patient, grantee = parse_address(patient), parse_address(grantee)
    contract = consent_contract(chain)
    providers.require_acts_for(chain, signer.address, patient)
    now = chain.now()
    state = grant_state(chain, patient, grantee, scope)
    if not state.live(now):
        raise PreconditionFailed(_not_revocable(chain, state, now))
    chain.transact(
        "revoking access",
        signer,
        contract.functions.revoke(patient, grantee, int(scope.kind), scope.value),
    )


def sign_revocation(
    chain: Chain, patient: Signer, grantee: str, scope: Scope, deadline: datetime | None = None
) -> dict[str, Any]:
    """Sign the revocation of a live grant off chain (EIP-712); return the document any
    relayer (a gateway holding only its institution's key) submits with
    :func:`submit_signed_revocation`. It takes the patient's next nonce, like a signed grant:
    ``cancel_signatures`` cancels it. ``deadline`` defaults to seven days from now."""
    grantee = parse_address(grantee, "grantee")
    contract = consent_contract(chain)
    now = chain.now()
    state = grant_state(chain, patient.address, grantee, scope)
    if not state.live(now):
        raise PreconditionFailed(_not_revocable(chain, state, now))
    until = deadline if deadline is not None else now + timedelta(days=7)
    if until <= now:
        raise PreconditionFailed(
            f"the deadline {until:%Y-%m-%d %H:%M:%S}Z is not after the chain's time "
            f"{now:%Y-%m-%d %H:%M:%S}Z: nothing was signed"
        )
    request = {
        "patient": patient.address,
        "grantee": grantee,
        "scopeKind": int(scope.kind),
        "scope": "0x" + scope.value.hex(),
        "nonce": _next_nonce(chain, patient.address),
        "deadline": int(until.timestamp()),
    }
    signature = sign_typed_data(patient, _typed_revocation(chain, request))
    return {
        "kind": SIGNED_REVOCATION_KIND,
        "chain_id": chain.chain_id,
        "consent_manager": contract.address,
        "request": request,
        "signature": "0x" + bytes(signature).hex(),
    }


def submit_signed_revocation(
    chain: Chain, submitter: Signer, document: dict[str, Any]
) -> GrantState:
    """Submit a signed revocation (any account pays the gas) and return the revoked grant.

    Checked before sending, each a one-line ``PreconditionFailed`` (nothing is sent): the
    document is for this chain and ConsentManager, its deadline has not passed, its nonce is
    the patient's next (a used or cancelled one is refused as such), it was signed by the
    patient or a delegate, and the grant is live.
    """
    contract = consent_contract(chain)
    request, scope, signature = _signed_revocation(document)
    if (
        document.get("chain_id") != chain.chain_id
        or document.get("consent_manager") != contract.address
    ):
        raise PreconditionFailed("the signed revocation is for another chain or ConsentManager")
    require_unexpired(chain, request["deadline"], "revocation")
    request["deadline"] = int(request["deadline"])  # a time, require_unexpired made sure
    patient, grantee = request["patient"], request["grantee"]
    nonce, expected = request["nonce"], _next_nonce(chain, patient)
    if nonce < expected:
        raise PreconditionFailed(
            f"the signed revocation's nonce {nonce} was already used or cancelled (the "
            f"patient's next is {expected}): nothing was sent; the patient must sign again"
        )
    if nonce > expected:
        raise PreconditionFailed(
            f"the signed revocation's nonce {nonce} is not the patient's next ({expected}): "
            "submit the patient's earlier signed grants and revocations first"
        )
    signer = eip712.signer_of(_typed_revocation(chain, request), signature)
    if signer is None or not providers.acts_for(chain, signer, patient):
        raise PreconditionFailed(
            f"the revocation was not signed by patient {patient} or one of their delegates "
            f"(it recovers to {signer or 'no address'})"
        )
    now = chain.now()
    state = grant_state(chain, patient, grantee, scope)
    if not state.live(now):
        raise PreconditionFailed(_not_revocable(chain, state, now))
    args = (patient, grantee, int(scope.kind), scope.value, nonce, request["deadline"])
    chain.transact(
        "submitting the signed revocation",
        submitter,
        contract.functions.revokeWithSignature(args, signature),
    )
    return grant_state(chain, patient, grantee, scope)


def _signed_revocation(document: object) -> tuple[dict[str, Any], Scope, HexBytes]:
    """The request, scope and signature of a signed revocation document, or a one-line
    refusal (also for a scope value that does not fit its kind)."""
    try:
        if not isinstance(document, dict) or document.get("kind") != SIGNED_REVOCATION_KIND:
            raise ValueError("kind")
        raw = document["request"]
        request = {
            "patient": parse_address(raw["patient"], "patient"),
            "grantee": parse_address(raw["grantee"], "grantee"),
            "scopeKind": int(raw["scopeKind"]),
            "scope": "0x" + bytes(HexBytes(raw["scope"])).hex(),
            "nonce": int(raw["nonce"]),
            "deadline": raw["deadline"],
        }
        value = bytes(HexBytes(request["scope"]))
        scope = Scope.from_chain(request["scopeKind"], value)
        if scope.value != value:
            raise ValueError("scope")
        return request, scope, HexBytes(document["signature"])
    except (KeyError, TypeError, ValueError, MedLedgerError):
        raise ConfigurationError("signature file", "is not a MedLedger signed revocation") from None


def _typed_revocation(chain: Chain, request: dict[str, Any]) -> dict[str, Any]:
    address = consent_contract(chain).address
    return eip712.typed_data(
        "ConsentManager", chain.chain_id, address, "RevocationRequest", REVOCATION_FIELDS, request
    )


def _next_nonce(chain: Chain, patient: str) -> int:
    contract = consent_contract(chain)
    return int(chain.call("reading the nonce", contract.functions.nonces(patient)))


def _not_revocable(chain: Chain, state: GrantState, now: datetime) -> str:
    """Why a grant cannot be revoked: never given (naming the grantee's live grants of other
    scopes), already revoked, or expired."""
    who = f"{state.grantee} has no {state.scope.label} grant from {state.patient}"
    if state.revoked_at is not None:
        return f"{who} to revoke: it was revoked on {state.revoked_at:%Y-%m-%d %H:%M}Z"
    if state.given:
        return f"{who} to revoke: it expired on {state.expires_at:%Y-%m-%d %H:%M}Z"
    others = [g.scope.label for g in grants(chain, state.patient, state.grantee) if g.live(now)]
    if not others:
        return f"{state.grantee} has no grant from {state.patient}"
    return f"{who} (its live grants: {', '.join(others)}; name one with --scope)"


def cancel_signatures(chain: Chain, signer: Signer, patient: str) -> int:
    """Burn the patient's next ConsentManager nonce: a signed grant or revocation carrying it
    (not yet submitted) can never be used. Returns the cancelled nonce."""
    patient = parse_address(patient)
    providers.require_acts_for(chain, signer.address, patient)
    contract = consent_contract(chain)
    nonce = int(chain.call("reading the nonce", contract.functions.nonces(patient)))
    chain.transact("cancelling signatures", signer, contract.functions.cancelSignatures(patient))
    return nonce
