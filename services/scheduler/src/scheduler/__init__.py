"""scheduler: scheduled sends, the one durable timer of the system (see README.md)."""
