"""Client of the ProviderRegistry: institutions, practitioners, patients, delegates, care relationships."""

from medledger.providers.directory import *  # noqa: F403
