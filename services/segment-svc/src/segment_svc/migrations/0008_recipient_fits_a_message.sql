-- Every recipient must travel: in a segment.evaluated batch of its own at worst, and in
-- a send.due with any email (contracts.codec.RECIPIENT_BYTES: attributes of at most
-- 65,536 bytes as this JSON, and the rest under 5,000). The API refuses larger attributes,
-- merged ones too; this holds every other writer to it. NOT VALID: contacts stored before
-- are not checked (an evaluation leaves out, and logs, one that cannot travel).
ALTER TABLE contacts ADD CONSTRAINT recipient_fits_a_message CHECK (octet_length(recipient) <= 70536) NOT VALID;
