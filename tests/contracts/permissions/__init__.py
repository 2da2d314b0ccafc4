"""The permission model (docs/permissions.md), walked on chain cell by cell."""
