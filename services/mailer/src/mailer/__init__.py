"""mailer: SMTP delivery with a send ledger and a consent cache (see README.md)."""
