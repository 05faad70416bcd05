-- Portcullis audit log, PostgreSQL store: batch seals (docs/THREATS.md T24).
-- Every batch of records is committed together with its seal, the signed
-- tree head right after the batch, in the same transaction: no record is
-- acknowledged before a signature covers it. `size` is the tree size the
-- seal signs (the batch's last index + 1). Rows are only ever inserted.

CREATE TABLE audit_seals (
    size       BIGINT      PRIMARY KEY CHECK (size > 0),
    root       BYTEA       NOT NULL CHECK (length(root) = 32),
    time_ms    BIGINT      NOT NULL,
    key_id     TEXT        NOT NULL,
    signature  BYTEA       NOT NULL CHECK (length(signature) = 64),
    stored_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
