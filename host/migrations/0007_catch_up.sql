-- The catch-up sweep (issue #16): per source, how far its listing has been committed, and which
-- instance is sweeping it now (one at a time per source, whatever the number of instances).
CREATE TABLE catch_up (
    source       TEXT PRIMARY KEY,
    -- Unix ms: every item the CMS changed before this (less the overlap) has been accepted.
    watermark    BIGINT NOT NULL,
    -- Unix ms of the source's first sweep: nothing changed before it is caught up (that is
    -- backfill's business), whatever the overlap.
    started_at   BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    last_ok_at   BIGINT,
    last_error   TEXT
);
