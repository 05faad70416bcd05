-- Portcullis approvals, PostgreSQL store (docs/approvals.md): the state replicas share —
-- pending approval requests, consumed approval nonces, break-glass windows. In the audit
-- log's schema (chosen at open via search_path), beside its tables; every name starts
-- with `portcullis_approval`. Times are Unix seconds of the gateway that wrote them.

-- One row per open request: its binding (the JSON approvers sign), the approvals given
-- and where it stands. Every change locks the row (SELECT ... FOR UPDATE), so of two
-- racing decisions exactly one finds it undecided. A request is deleted when a call
-- uses it (its nonce then moves to portcullis_approval_nonces), is withdrawn, or is
-- found expired by the next open.
CREATE TABLE portcullis_approval_requests (
    id                 TEXT    PRIMARY KEY,
    binding            TEXT    NOT NULL,
    arguments_sha256   TEXT    NOT NULL,
    required           INTEGER NOT NULL CHECK (required >= 1),
    grants             JSONB   NOT NULL DEFAULT '[]'::jsonb, -- [{approver, channel, signature_sha256}]
    state              TEXT    NOT NULL CHECK (state IN ('waiting', 'granted', 'denied')),
    denied_by          TEXT,
    call_id            TEXT    NOT NULL,
    tier               TEXT    NOT NULL,
    reason             TEXT,
    arguments_summary  TEXT    NOT NULL,
    opened_at          BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL
);
CREATE INDEX portcullis_approval_requests_expiry ON portcullis_approval_requests (expires_at);
CREATE INDEX portcullis_approval_requests_call ON portcullis_approval_requests (arguments_sha256);

-- The nonce of every request a call used, until the request's expiry: inserted in the
-- transaction that deletes the request, so a second use fails on the primary key.
CREATE TABLE portcullis_approval_nonces (
    nonce       TEXT   PRIMARY KEY,
    request_id  TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT NOT NULL
);
CREATE INDEX portcullis_approval_nonces_expiry ON portcullis_approval_nonces (expires_at);

-- Opening a request locks this one row, so `max_pending` counts the requests of every
-- replica without two opens overshooting it.
CREATE TABLE portcullis_approval_open_lock (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id)
);
INSERT INTO portcullis_approval_open_lock (id) VALUES (TRUE);

-- Break-glass windows: requested, active until `until_at` once two distinct approvers
-- approved, then ended (at its TTL, or by an approver). Kept after they end, as listed.
CREATE TABLE portcullis_approval_windows (
    id            TEXT   PRIMARY KEY,
    reason        TEXT   NOT NULL,
    ttl_secs      BIGINT NOT NULL CHECK (ttl_secs > 0),
    workload      TEXT,
    requested_by  TEXT   NOT NULL,
    requested_at  BIGINT NOT NULL,
    approvers     TEXT[] NOT NULL DEFAULT '{}',
    state         TEXT   NOT NULL CHECK (state IN ('requested', 'active', 'ended')),
    until_at      BIGINT,
    ended_at      BIGINT,
    ended_by      TEXT
);
CREATE INDEX portcullis_approval_windows_active ON portcullis_approval_windows (state, until_at);
