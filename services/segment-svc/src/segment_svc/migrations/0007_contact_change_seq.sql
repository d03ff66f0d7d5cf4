-- Each contact's change sequence: which of two states of a contact is the newer, for the
-- mailer, which hears of consent both from contact.changed and from the recipients of
-- segment.evaluated (contracts.events.ContactChanged.change_seq, Recipient.change_seq).
-- A contact is 0 as created (nothing can be older), so inserts, the import's COPY among
-- them, need no number. Every update takes the next one in a BEFORE trigger, whichever
-- statement it is, so that none can forget it; updates of one contact queue on its row
-- lock, so its numbers grow in commit order. No CACHE: numbers cached per session would
-- not be handed out in that order.
CREATE SEQUENCE contact_changes;

-- The recipient JSON (migration 0005) also holds the consent and the sequence. Generated
-- columns are computed after BEFORE triggers, so it holds the number the trigger took.
-- A generation expression cannot be altered in place (before PostgreSQL 17): the column
-- is made again, in the same rewrite of the table as the new column.
ALTER TABLE contacts
    ADD COLUMN change_seq bigint NOT NULL DEFAULT 0,
    DROP COLUMN recipient,
    ADD COLUMN recipient text NOT NULL GENERATED ALWAYS AS (
        left(json_object('{contact_id,email,first_name,last_name,timezone}'::text[],
                         ARRAY[id::text, email, first_name, last_name, timezone])::text, -1)
        || ', "attributes" : ' || attributes::text
        || ', "marketing_opt_in" : ' || marketing_opt_in::text
        || ', "change_seq" : ' || change_seq::text || '}'
    ) STORED;

ALTER SEQUENCE contact_changes OWNED BY contacts.change_seq;

-- The sequence is found on the search_path, as every table here is: an UPDATE from a
-- session without the schema on it (psql) fails, naming it, rather than go unnumbered.
CREATE FUNCTION number_contact_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('contact_changes');
    RETURN NEW;
END;
$$;

CREATE TRIGGER contact_changed BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION number_contact_change();
