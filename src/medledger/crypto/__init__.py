"""Cryptography: envelope encryption of bodies, EIP-712 digests, Merkle trees."""

from medledger.crypto.envelope import *  # noqa: F403
