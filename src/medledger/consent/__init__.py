"""Client of the ConsentManager: grants, key delivery, emergency access, the access trail."""

from medledger.consent.grants import *  # noqa: F403
