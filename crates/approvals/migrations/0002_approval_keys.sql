-- Portcullis approvals, PostgreSQL store (docs/approvals.md): keys every replica shares,
-- one row each, created by the first gateway that starts on the database and read by
-- every gateway at start.
--
-- `request_state`: the HMAC-SHA256 key protecting the `requestState` of 2026-07-28
-- round trips, so that a client's retry may reach any replica. Like the rest of the
-- approvals state, it is only as safe as the database: whoever can read this table can
-- forge a `requestState` (which lets a caller answer for their own call, and only on the
-- tiers `[approvals] user_may_approve` names). To replace the key, delete its row and
-- restart every replica.
CREATE TABLE portcullis_approval_keys (
    name        TEXT   PRIMARY KEY,
    key         BYTEA  NOT NULL CHECK (octet_length(key) = 32),
    created_at  BIGINT NOT NULL
);
