"""Studies and participations as the FHIR server serves them: ``ResearchStudy/<study id>`` and
``ResearchSubject/<study id>-<participant address>``, built by
:mod:`~medledger.trials.resources` (the protocol with the chain's view laid over it; the
individual of a subject is the pseudonymous study address, never a record patient).

A subject's ``study`` names the study both by identifier and as ``ResearchStudy/<id>``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from medledger.errors import ConfigurationError
from medledger.trials.reading import (
    address,
    enrolled,
    get_study,
    participants,
    participation_or_none,
    studies,
)
from medledger.trials.resources import research_study, research_subject

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.trials.model import Participation, Study

_SUBJECT_ID = re.compile(r"^([0-9]{1,19})-(0x[0-9a-fA-F]{40})$")


def study_resources(
    chain: Chain, store: BlockStore, study_id: int | None = None, reader: Signer | None = None
) -> list[dict[str, Any]]:
    """One study (``StudyNotFound`` when it is not registered) or every study, oldest first, as
    ``ResearchStudy``; an encrypted protocol is laid in when ``reader`` can open it."""
    chosen = [get_study(chain, study_id)] if study_id is not None else studies(chain)
    found = []
    for study in chosen:
        resource = json.loads(research_study(chain, store, study, reader))
        resource["id"] = str(study.id)
        found.append(resource)
    return found


def subject_resources(
    chain: Chain, study: int | None = None, participant: str | None = None
) -> list[dict[str, Any]]:
    """The participations of a study, of a participant (study address) or both, as
    ``ResearchSubject``, study by study in order of enrolment."""
    who = address(participant, "participant") if participant is not None else None
    chosen = [get_study(chain, study)] if study is not None else studies(chain)
    found: list[tuple[Study, Participation]] = []
    for current in chosen:
        if who is None:
            found.extend((current, p) for p in participants(chain, current.id))
        elif (one := participation_or_none(chain, current, who)) is not None:
            found.append((current, one))
    return [_subject(chain, s, p) for s, p in found]


def subject_resource(chain: Chain, subject_id: str) -> dict[str, Any]:
    """One ``ResearchSubject`` by its id (``<study id>-<participant address>``)."""
    match = _SUBJECT_ID.match(subject_id)
    if match is None:
        raise ConfigurationError(
            "id", f"{subject_id!r} is not a ResearchSubject id (<study id>-<participant address>)"
        )
    study = get_study(chain, int(match[1]))
    return _subject(chain, study, enrolled(chain, study, address(match[2], "participant")))


def _subject(chain: Chain, study: Study, current: Participation) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(research_subject(chain, current, study))
    resource["id"] = f"{study.id}-{current.participant}"
    resource["study"]["reference"] = f"ResearchStudy/{study.id}"
    return resource
