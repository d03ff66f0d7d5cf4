"""campaign-api: campaigns, their lifecycle and stats, and the HTTP gateway (see README.md)."""
