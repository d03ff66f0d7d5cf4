"""Shared infrastructure of the campaign services (see README.md)."""
