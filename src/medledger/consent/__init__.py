"""Client of the ConsentManager: patient-controlled access to records.

Access is decided on chain by the ConsentManager (``hasAccess``); keys travel off chain. A
patient (or a delegate) grants a grantee a scope (one record, a category, all records) for a
purpose and a time, and the keys of the records in scope travel in a sealed key envelope; a
grant can be signed off chain and submitted by any relayer. A reader's client refuses to
decrypt without live access on chain, logs each read on chain, and says why it refused. A
verified emergency service can open all records of a patient for at most a day. Every step is
an event, from which the patient's access trail is rebuilt.

Modules: :mod:`~medledger.consent.scopes` (scope, purpose, duration),
:mod:`~medledger.consent.grants` (the grants on chain, the readers of a new record),
:mod:`~medledger.consent.granting` (grant, signed grant, revoke, cancel signatures),
:mod:`~medledger.consent.envelopes` (key envelopes, a reader's key, key delivery),
:mod:`~medledger.consent.emergency` (break-glass access), :mod:`~medledger.consent.reading`
(read under consent, the read log, erasure), :mod:`~medledger.consent.exporting` (a patient's
readable records as a FHIR Bundle or NDJSON, the reads logged),
:mod:`~medledger.consent.fhir_consent` (grants as FHIR ``Consent``: read, search, create and
revoke by the patient's signature), :mod:`~medledger.consent.consent_ids` (a grant's FHIR id,
and the grant found again from it) and :mod:`~medledger.consent.trail` (a patient's access
trail).
"""

from medledger.consent.consent_ids import consent_id, find_consent
from medledger.consent.contract import consent_contract
from medledger.consent.emergency import (
    EMERGENCY_COOLDOWN,
    EmergencyState,
    close_emergency_access,
    emergencies,
    emergency_of,
    open_emergency_access,
)
from medledger.consent.envelopes import (
    ENVELOPE_KIND,
    deliver_keys,
    deliver_keys_for_live_grants,
    no_keys_held,
    open_envelope,
    secret_of,
)
from medledger.consent.exporting import Export, export
from medledger.consent.fhir_consent import (
    REVOCATION_HEADER,
    consent_resource,
    consents_of,
    revocation_for,
    revoke_consent,
    signed_consent,
    submit_consent,
)
from medledger.consent.granting import (
    GRANT_FIELDS,
    REVOCATION_FIELDS,
    SIGNED_GRANT_KIND,
    SIGNED_REVOCATION_KIND,
    cancel_signatures,
    grant,
    revoke,
    sign_grant,
    sign_revocation,
    submit_signed_grant,
    submit_signed_revocation,
)
from medledger.consent.grants import GrantState, grant_state, grants, readers_for
from medledger.consent.reading import (
    erase,
    erasures,
    log_reads,
    log_reads_for,
    read,
    refusal_reason,
)
from medledger.consent.scopes import Purpose, Scope, ScopeKind
from medledger.consent.trail import TRAIL_FORMATS, TrailEntry, access_trail, render_trail
from medledger.durations import parse_duration

__all__ = [
    "EMERGENCY_COOLDOWN",
    "ENVELOPE_KIND",
    "GRANT_FIELDS",
    "REVOCATION_FIELDS",
    "REVOCATION_HEADER",
    "SIGNED_GRANT_KIND",
    "SIGNED_REVOCATION_KIND",
    "TRAIL_FORMATS",
    "EmergencyState",
    "Export",
    "GrantState",
    "Purpose",
    "Scope",
    "ScopeKind",
    "TrailEntry",
    "access_trail",
    "cancel_signatures",
    "close_emergency_access",
    "consent_contract",
    "consent_id",
    "consent_resource",
    "consents_of",
    "deliver_keys",
    "deliver_keys_for_live_grants",
    "emergencies",
    "emergency_of",
    "erase",
    "erasures",
    "export",
    "find_consent",
    "grant",
    "grant_state",
    "grants",
    "log_reads",
    "log_reads_for",
    "no_keys_held",
    "open_emergency_access",
    "open_envelope",
    "parse_duration",
    "read",
    "readers_for",
    "refusal_reason",
    "render_trail",
    "revocation_for",
    "revoke",
    "revoke_consent",
    "secret_of",
    "sign_grant",
    "sign_revocation",
    "signed_consent",
    "submit_consent",
    "submit_signed_grant",
    "submit_signed_revocation",
]
