-- GET /api/contacts?q= finds contacts whose email, first name, last name or "first last"
-- starts with q, whatever its case: lower(...) LIKE 'q%' on each, which a btree with
-- text_pattern_ops serves as a range (byte order, whatever the database's collation). The
-- four indexes are read together (BitmapOr) for a rare prefix; a common one is read along
-- the primary key in id order, which the list's cursor pages by.
CREATE INDEX contacts_by_email_prefix ON contacts (lower(email) text_pattern_ops);
CREATE INDEX contacts_by_first_name_prefix ON contacts (lower(first_name) text_pattern_ops);
CREATE INDEX contacts_by_last_name_prefix ON contacts (lower(last_name) text_pattern_ops);
CREATE INDEX contacts_by_full_name_prefix ON contacts (lower(first_name || ' ' || last_name) text_pattern_ops);
