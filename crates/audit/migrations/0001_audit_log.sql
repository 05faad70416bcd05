-- Portcullis audit log, PostgreSQL store (schema chosen at open via search_path).
-- One global order: `idx` is the log index; rows are only ever inserted.

CREATE TABLE audit_log (
    idx        BIGINT      PRIMARY KEY CHECK (idx >= 0),
    leaf_hash  BYTEA       NOT NULL CHECK (length(leaf_hash) = 32), -- SHA-256(0x00 || record)
    record     TEXT        NOT NULL,                                -- the exact JSON bytes hashed
    stored_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The tree's right edge after the last committed batch. Writers lock this row
-- (SELECT ... FOR UPDATE) to serialise batches and continue the tree.
CREATE TABLE audit_tree_state (
    id        BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    size      BIGINT  NOT NULL CHECK (size >= 0),
    frontier  BYTEA   NOT NULL, -- perfect-subtree roots, largest first, 32 bytes each
    root      BYTEA   NOT NULL CHECK (length(root) = 32)
);

INSERT INTO audit_tree_state (id, size, frontier, root)
VALUES (TRUE, 0, ''::bytea,
        '\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'::bytea);

CREATE TABLE audit_checkpoints (
    id         BIGSERIAL   PRIMARY KEY,
    size       BIGINT      NOT NULL CHECK (size >= 0),
    root       BYTEA       NOT NULL CHECK (length(root) = 32),
    time_ms    BIGINT      NOT NULL,
    key_id     TEXT        NOT NULL,
    signature  BYTEA       NOT NULL CHECK (length(signature) = 64),
    stored_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
