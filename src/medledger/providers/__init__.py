"""Client of the ProviderRegistry: institutions and their registrars, practitioners, patients
and their delegates, encryption keys, and care relationships.

Each function checks its preconditions (role held, status allows it) before sending, so the
user gets a clear error instead of a revert. Every participant's published encryption key is
the compressed public key of its own account, so any Ethereum account can read what is wrapped
for it without extra key material; the proof that it holds the key is the account's EIP-712
signature of ``EncryptionKey(account, key)``.

Modules: :mod:`~medledger.providers.participants` (roles, kinds, reading an entry),
:mod:`~medledger.providers.keys`, :mod:`~medledger.providers.institutions` (applying,
approval, suspension, registrar votes), :mod:`~medledger.providers.practitioners`,
:mod:`~medledger.providers.patients` (registration, delegates),
:mod:`~medledger.providers.onboarding` (a patient's signed registration, relayed by an
institution) and
:mod:`~medledger.providers.care` (care relationships, who may write a patient's records);
:mod:`~medledger.providers.recovery` (a patient's guardians, who move control of the patient
to a new key when one is lost or stolen, and freeze a stolen one).
"""

from medledger.providers.care import (
    UNTIL_REVOKED,
    Care,
    authorize_care,
    cancel_care_signatures,
    care_of,
    may_write_for,
    require_writer,
    revoke_care,
    sign_care,
    submit_signed_care,
    writer_number,
)
from medledger.providers.institutions import (
    REGISTRAR_ROLE,
    apply_institution,
    approve_institution,
    suspend_institution,
    vote_registrar,
    vote_threshold,
)
from medledger.providers.keys import key_proof, publish_key
from medledger.providers.onboarding import (
    Registration,
    sign_registration,
    submit_signed_registration,
)
from medledger.providers.participants import (
    InstitutionKind,
    Participant,
    Role,
    Status,
    chain_time,
    encryption_key,
    participant,
    verified_institution_of,
)
from medledger.providers.patients import (
    acts_for,
    register_patient,
    require_acts_for,
    require_patient,
    set_delegate,
)
from medledger.providers.practitioners import (
    accept_practitioner,
    add_practitioner,
    remove_practitioner,
)
from medledger.providers.recovery import controller_of, patient_of

__all__ = [
    "REGISTRAR_ROLE",
    "UNTIL_REVOKED",
    "Care",
    "InstitutionKind",
    "Participant",
    "Registration",
    "Role",
    "Status",
    "accept_practitioner",
    "acts_for",
    "add_practitioner",
    "apply_institution",
    "approve_institution",
    "authorize_care",
    "cancel_care_signatures",
    "care_of",
    "chain_time",
    "controller_of",
    "encryption_key",
    "key_proof",
    "may_write_for",
    "participant",
    "patient_of",
    "publish_key",
    "register_patient",
    "remove_practitioner",
    "require_acts_for",
    "require_patient",
    "require_writer",
    "revoke_care",
    "set_delegate",
    "sign_care",
    "sign_registration",
    "submit_signed_care",
    "submit_signed_registration",
    "suspend_institution",
    "verified_institution_of",
    "vote_registrar",
    "vote_threshold",
    "writer_number",
]
