"""Client of the RecordRegistry: anchoring, batches, reading, history, verification."""

from medledger.records.anchoring import *  # noqa: F403
