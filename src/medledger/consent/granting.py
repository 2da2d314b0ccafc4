"""Giving and taking back access: grants (sent by the patient or a delegate, or signed off
chain for any relayer to submit), revocations and cancelled signatures.

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
from datetime import timedelta
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
from medledger.errors import ConfigurationError, PreconditionFailed
from medledger.ipfs.unixfs import hash_bytes

if TYPE_CHECKING:
    from datetime import datetime

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
    """Burn the patient's next ConsentManager nonce: a signed grant carrying it (not yet
    submitted) can never be used. Returns the cancelled nonce."""
    patient = parse_address(patient)
    providers.require_acts_for(chain, signer.address, patient)
    contract = consent_contract(chain)
    nonce = int(chain.call("reading the nonce", contract.functions.nonces(patient)))
    chain.transact("cancelling signatures", signer, contract.functions.cancelSignatures(patient))
    return nonce
