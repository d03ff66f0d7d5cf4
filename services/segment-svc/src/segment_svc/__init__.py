"""segment-svc: contacts and segments (see README.md)."""
