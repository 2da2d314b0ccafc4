"""The demo walk-through (``medledger demo``)."""

from medledger.demo.walkthrough import *  # noqa: F403
