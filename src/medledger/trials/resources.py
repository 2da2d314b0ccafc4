"""A study and its participations as FHIR R4 resources: the protocol's ``ResearchStudy`` with
the chain's view laid over it, and a participation as a ``ResearchSubject`` (the mapping
itself is :mod:`medledger.fhir`'s)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from medledger import fhir
from medledger.errors import MedLedgerError
from medledger.trials.model import Participation, Standing, Study
from medledger.trials.protocols import read_protocol
from medledger.trials.reading import get_study

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore


def research_study(
    chain: Chain, store: BlockStore, study: Study, reader: Signer | None = None
) -> bytes:
    """The study as a FHIR ``ResearchStudy``: the protocol in force (when public, or readable by
    ``reader``) with the chain's view laid over it (identifier, version, sponsor, sites)."""
    try:
        protocol = json.loads(read_protocol(chain, store, study.id, reader=reader))
    except (MedLedgerError, ValueError):
        protocol = None
    return fhir.research_study(_study_facts(study), protocol)


def research_subject(chain: Chain, current: Participation, study: Study | None = None) -> bytes:
    """A participation as a FHIR ``ResearchSubject`` (the individual is the study address);
    ``study`` is its study when the caller has it already."""
    study = study or get_study(chain, current.study_id)
    return fhir.research_subject(
        fhir.SubjectFacts(
            study=_study_facts(study).ref,
            participant=current.participant,
            site=current.site,
            withdrawn=current.withdrawn_at is not None,
            start=current.enrolled_at,
            end=current.withdrawn_at,
            consented_version=current.consented_version,
            reconsent_required=current.standing is Standing.STALE,
        )
    )


def _study_facts(study: Study) -> fhir.StudyFacts:
    return fhir.StudyFacts(
        ref=fhir.StudyRef(study.chain_id, study.registry, study.id),
        sponsor=study.sponsor,
        sites=study.sites,
        protocol_version=study.current_version,
        registered_at=study.registered_at,
    )
