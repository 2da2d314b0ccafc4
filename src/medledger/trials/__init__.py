"""Client of the TrialRegistry: studies, consent, data, the trial audit."""

from medledger.trials.core import *  # noqa: F403
