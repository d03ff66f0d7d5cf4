CREATE TABLE flows (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    steps      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flows_by_creation ON flows (created_at, id);
