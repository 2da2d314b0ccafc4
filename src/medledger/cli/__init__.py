"""The ``medledger`` command line."""

from medledger.cli.root import *  # noqa: F403
