-- Scheduled digests (issue #14): per source, the last schedule tick a digest was queued for,
-- and how far the source's accepted events have been covered (received_at, unix ms): the next
-- digest reads what was received after it.
CREATE TABLE digests (
    source     TEXT PRIMARY KEY,
    last_tick  BIGINT NOT NULL,
    covered_to BIGINT NOT NULL
);
