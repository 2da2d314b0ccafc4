"""Client of the ClaimsManager: policies, claims and their money."""

from medledger.claims.core import *  # noqa: F403
