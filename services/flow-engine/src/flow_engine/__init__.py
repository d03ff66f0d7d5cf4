"""flow-engine: flows and their steps (see README.md)."""
