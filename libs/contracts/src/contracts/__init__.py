"""Shared contracts of the campaign platform (see README.md)."""
