"""Reading under consent: a record opens only with live access on chain, each use is logged
on chain, a refusal says why, and a patient can crypto-shred a record (erasure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger import providers, records
from medledger.addresses import parse_address
from medledger.chain import events
from medledger.consent.contract import CONTRACT, consent_contract
from medledger.consent.emergency import emergency_of
from medledger.consent.envelopes import deliver_keys, open_envelope, secret_of
from medledger.consent.grants import grants
from medledger.consent.scopes import Scope
from medledger.errors import (
    AccessRefused,
    CryptoError,
    MedLedgerError,
    PreconditionFailed,
    StoreError,
)
from medledger.providers import recovery

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.pipeline import Receipt
    from medledger.consent.envelopes import Keyring
    from medledger.crypto import BodySecret
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid


def refusal_reason(chain: Chain, reader: str, record: records.Record) -> str:
    """Say why ``reader`` has no access: erased, revoked, expired or no grant."""
    contract = consent_contract(chain)
    if chain.call("reading consent", contract.functions.isErased(record.id)):
        return "the patient erased this record"
    now = chain.now()
    states = grants(chain, record.patient, reader, Scope.covering(record))
    service = providers.verified_institution_of(chain, reader)
    opening = emergency_of(chain, record.patient, service) if service else None
    if not states and opening is not None:
        ended = "was closed" if opening.closed_at else "expired"
        return f"the emergency access of {service} {ended} on {opening.ended_at:%Y-%m-%d %H:%M}Z"
    if not states:
        return f"no grant from patient {record.patient} covers this record"
    latest = max(states, key=lambda g: g.granted_at)
    if latest.revoked_at is not None:
        return f"the patient revoked the grant on {latest.revoked_at:%Y-%m-%d %H:%M}Z"
    return (
        f"the grant expired on {latest.expires_at:%Y-%m-%d %H:%M}Z"
        if latest.expires_at <= now
        else "no live grant"
    )


def read(
    chain: Chain, store: BlockStore, reader: Signer, record_id: bytes | str, log: bool = True
) -> bytes:
    """Read a record under consent: refuse without live access, log the use on chain.

    The patient and the record's author read without a grant. A grantee reading a record that
    is only in a batch registers it on chain first (it pays that gas), so that the chain can
    judge its grant.
    """
    record = records.get(chain, record_id, store)
    body, logged = open_readable(chain, store, reader, record)
    if log and logged:
        contract = consent_contract(chain)
        chain.transact("logging the read", reader, contract.functions.logAccess([record.id]))
    return body


def open_readable(
    chain: Chain, store: BlockStore, reader: Signer, record: records.Record,
    ring: Keyring | None = None, checked: tuple[bool, bool, bool] | None = None,
) -> tuple[bytes, bool]:  # fmt: skip
    """Open a record as :func:`read` does, without logging: its body, and whether the read
    must be logged on chain (a grantee's; not the patient's own or the author's). ``ring``
    keeps the reader's key envelopes between the records of one batch of reads; ``checked``
    is what :func:`access_checks` found for it (asked now when not given).

    Raises AccessRefused, saying why, without live access (or when the record was erased).
    """
    # The patient reads through its controller: the id itself until a recovery, the new key
    # after one (the replaced key, and anybody while the patient is frozen, is no longer it).
    if checked is None:
        (checked,) = access_checks(chain, reader, [record])
    own = checked[2]
    author = reader.address == record.issuer or _employer(chain, record.issuer) == reader.address
    if not (record.registered or own or author):
        record = records.ensure_registered(chain, store, reader, record)
        (checked,) = access_checks(chain, reader, [record])  # registered just now: ask again
    allowed, erased, _own = checked
    allowed = own or allowed
    if erased or not (allowed or author):
        raise AccessRefused(record.hex_id, refusal_reason(chain, reader.address, record))
    secret = secret_of(chain, store, reader, record, ring)
    body = records.open_with(chain, record, store.cat(record.cid), secret)
    return body, bool(allowed and not own)


def access_checks(
    chain: Chain, reader: Signer, chosen: list[records.Record]
) -> list[tuple[bool, bool, bool]]:
    """For each record: whether ``reader`` has access on chain, whether it was erased (a record
    written in a batch and not registered yet has neither), and whether ``reader`` controls
    its patient (:func:`~medledger.providers.recovery.controller_of`); all asked in one
    JSON-RPC batch."""
    contract = consent_contract(chain)
    registered = [r for r in chosen if r.registered]
    patients = list(dict.fromkeys(r.patient for r in chosen))
    calls = [
        call
        for r in registered
        for call in (contract.functions.hasAccess(reader.address, r.id),
                     contract.functions.isErased(r.id))
    ]  # fmt: skip
    calls += [recovery.controller_call(chain, p) for p in patients]
    answers = chain.call_many("checking access", calls)
    pairs = iter(answers[: 2 * len(registered)])
    found = {r.id: (bool(next(pairs)), bool(next(pairs))) for r in registered}
    controls = {
        p: recovery.as_controller(found_) == reader.address
        for p, found_ in zip(patients, answers[2 * len(registered) :], strict=True)
    }
    return [(*found.get(r.id, (False, False)), controls[r.patient]) for r in chosen]


def log_reads(chain: Chain, reader: Signer, record_ids: list[bytes]) -> Receipt:
    """Log many reads in one transaction."""
    return chain.transact(
        "logging reads", reader, consent_contract(chain).functions.logAccess(record_ids)
    )


def log_reads_for(chain: Chain, gateway: Signer, reader: str, record_ids: list[bytes]) -> Receipt:
    """Log, in one transaction, that ``gateway`` served these records to ``reader``.

    For a gateway (``medledger serve``) that decrypts records its institution wrote and hands
    them to a caller the chain lets read them: the patient's audit shows each read with the
    reader and the gateway. Checked before sending (nothing is sent otherwise): the gateway
    acts for the verified care institution that wrote every record (``PreconditionFailed``),
    each record is anchored on its own (``RecordNotFound``) and ``reader`` has live access to
    it (``AccessRefused``, saying why).
    """
    reader = parse_address(reader, "reader")
    if not record_ids:
        raise PreconditionFailed("no records given: there is no read to log")
    writer = providers.writer_number(chain, gateway.address)
    if writer == 0:
        raise PreconditionFailed(
            f"{gateway.address} does not act for a verified care institution: only the "
            "institution that wrote a record (or its practitioner) logs serving it"
        )
    contract = consent_contract(chain)
    for record_id in dict.fromkeys(bytes(i) for i in record_ids):
        if records.writer_of(chain, record_id) != writer:
            raise PreconditionFailed(
                f"record 0x{record_id.hex()} was not written by the institution "
                f"{gateway.address} acts for: only its writer logs serving it; nothing was sent"
            )
        if not chain.call("checking access", contract.functions.hasAccess(reader, record_id)):
            record = records.get(chain, record_id)
            raise AccessRefused(record.hex_id, refusal_reason(chain, reader, record))
    return chain.transact(
        "logging served reads", gateway, contract.functions.logAccessFor(reader, record_ids)
    )


def erase(chain: Chain, store: BlockStore, signer: Signer, record_id: bytes | str) -> int:
    """Crypto-shred a record: mark it erased, unpin its body and the envelopes holding its key.

    Returns how many blocks the store's garbage collection removed. Envelopes that also held
    keys of other records are re-issued without the erased record for the grants still live.
    An envelope the signer cannot open (a delegate is not among an envelope's readers) is
    unpinned too, as it may hold the key.
    """
    record = records.get(chain, record_id, store)
    record = records.ensure_registered(chain, store, signer, record)
    contract = consent_contract(chain)
    providers.require_acts_for(chain, signer.address, record.patient)
    chain.transact("erasing the record", signer, contract.functions.eraseRecord(record.id))
    now = chain.now()
    controller = recovery.controller_of(chain, record.patient)
    store.unpin(record.cid)
    for state in grants(chain, record.patient, scopes=Scope.covering(record)):
        for envelope in state.envelopes:
            held = _held(chain, store, envelope, record.patient, state.grantee, signer)
            if held is not None and record.hex_id not in held:
                continue
            store.unpin(envelope)
            others = held is not None and len(held) > 1
            if state.live(now) and others and signer.address == controller:
                deliver_keys(chain, store, signer, record.patient, state.grantee, state.scope)
    return store.gc()


def erasures(chain: Chain) -> records.Erasures:
    """Which records were erased, as ``records.verify`` and ``records.history`` take it: for a
    record, its erasure (when, by whom) from the chain's ``RecordErased`` events, or None.

    Each patient's erasures are read once (one log query) and kept for the lookup's life.
    """
    known: dict[str, dict[bytes, records.Erasure]] = {}

    def erased(record: records.Record) -> records.Erasure | None:
        if record.patient not in known:
            found = events.logs(chain, CONTRACT, "RecordErased", {"patient": record.patient})
            known[record.patient] = {
                bytes(log["id"]): records.Erasure(log.time(chain), log["by"]) for log in found
            }
        return known[record.patient].get(record.id)

    return erased


def _held(
    chain: Chain, store: BlockStore, envelope: Cid, patient: str, grantee: str,
    signer: Signer,
) -> dict[str, BodySecret] | None:  # fmt: skip
    """The keys an envelope holds as the signer sees them: None when the signer cannot open
    it, empty when it is gone or is no key envelope."""
    try:
        return open_envelope(chain, store, envelope, patient, grantee, signer.key)
    except StoreError:
        return {}  # gone already: nothing left to unpin
    except CryptoError:
        return None  # not among its readers, or sealed for another grant
    except MedLedgerError:
        return {}


def _employer(chain: Chain, account: str) -> str | None:
    return providers.participant(chain, account).employer
