-- The four prefix indexes of 0009 cost a bulk import nearly half its pace at a million
-- contacts (43,000/s -> 23,000/s here; the email's alone 13%: 37,700/s), and the import's
-- pace is a promise (bench/segments.py). A search reads the contacts in id order until a
-- page is full: at once for a common prefix, the whole table for a rare one (a few hundred
-- ms at a million, like a segment's preview).
DROP INDEX contacts_by_email_prefix;
DROP INDEX contacts_by_first_name_prefix;
DROP INDEX contacts_by_last_name_prefix;
DROP INDEX contacts_by_full_name_prefix;
