CREATE TABLE contacts (
    id               uuid PRIMARY KEY,
    email            text        NOT NULL UNIQUE,  -- stored lower-cased: unique whatever the case
    first_name       text,
    last_name        text,
    timezone         text,
    marketing_opt_in boolean     NOT NULL DEFAULT false,
    attributes       jsonb       NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_by_creation ON contacts (created_at, id);
-- Serves attribute equality (containment, @>) and existence (?) in criteria.
CREATE INDEX contacts_attributes ON contacts USING gin (attributes jsonb_path_ops);
CREATE INDEX contacts_attribute_keys ON contacts USING gin (attributes);

CREATE TABLE segments (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    criteria   jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segments_by_creation ON segments (created_at, id);

-- One row per campaign run whose segment was evaluated: a redelivered
-- campaign.activated finds its run here and publishes nothing again.
CREATE TABLE evaluations (
    run_id           uuid PRIMARY KEY,
    campaign_id      uuid        NOT NULL,
    segment_id       uuid        NOT NULL,
    total_matched    integer     NOT NULL,
    opted_in_matched integer     NOT NULL,
    evaluated_at     timestamptz NOT NULL DEFAULT now()
);

-- Criteria compare attribute text as dates: a value that is not one is no date,
-- not an error that aborts the query.
CREATE FUNCTION try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;
