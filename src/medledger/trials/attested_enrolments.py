"""The audit's check of a study that requires attested participants, from events alone.

From its ``ParticipantAttestationRequired`` event on, every enrolment (a first consent) must
come with the enrolling site's attestation of the study account, live at the enrolment: the
site's latest ``IdentityAttested`` of the account before it, unexpired then, not revoked
(``IdentityRevoked``) and the site not suspended (``InstitutionSuspended``) between the two.
The contract refuses such enrolments itself; the audit re-checks from the IdentityRegistry's
and the ProviderRegistry's events, trusting none of the contracts' rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger.chain import events

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.trials.enrolment import RecordedConsent
    from medledger.trials.model import Check

RULE = "every enrolment under the attested-participants rule attested by its site"


def check_attested_enrolments(
    chain: Chain, logs: Sequence[Log], consents: Sequence[RecordedConsent], check: Check
) -> None:
    """Add to ``check`` each enrolment after the study's rule that its site did not attest
    (``logs``: the study's TrialRegistry events, with ``ParticipantAttestationRequired``)."""
    rules = [(e.block, e.index) for e in logs if e.event == "ParticipantAttestationRequired"]
    if not rules:
        check.notes.append("the study does not require attested participants")
        return
    since = min(rules)
    for c in consents:
        if not c.enrolment or (c.block, c.log_index) < since:
            continue
        check.checked += 1
        problem = _unattested(chain, c)
        if problem:
            check.violations.append(
                f"{c.participant} enrolled at {c.site} in block {c.block}: {problem}"
            )


def _unattested(chain: Chain, c: RecordedConsent) -> str | None:
    """Why the site's attestation of the participant did not hold at the enrolment, or None."""
    at = (c.block, c.log_index)
    about = {"patient": c.participant, "institution": c.site}
    made = [e for e in events.logs(chain, "IdentityRegistry", "IdentityAttested", about)
            if (e.block, e.index) < at]  # fmt: skip
    if not made:
        return "the site never attested the study account before"
    latest = made[-1]
    since = (latest.block, latest.index)
    if int(latest["expiresAt"]) <= chain.block_time(c.block).timestamp():
        return "the site's attestation had expired"
    revoked = events.logs(chain, "IdentityRegistry", "IdentityRevoked", about)
    if any(since < (e.block, e.index) < at for e in revoked):
        return "the site had revoked its attestation"
    suspended = events.logs(
        chain, "ProviderRegistry", "InstitutionSuspended", {"institution": c.site}
    )
    if any(since < (e.block, e.index) < at for e in suspended):
        return "the site was suspended after it attested (its attestations are void)"
    return None
