-- Never pay twice, for real (issue #10).

-- When a job was adopted (by the provider's webhook, an operator or a late poll): the await step
-- measures its wait from here, so a job adopted after a long reconciliation gets a full wait.
ALTER TABLE renders ADD COLUMN adopted_at BIGINT;

-- Every operator action on a render (retry, adopt, resubmit): who, when, why.
CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- What each entry's content is now in its CMS (the fingerprint of the newest accepted delivery)
-- and whose video we last wrote into it, so that a revert to an earlier content (A → B → A) is
-- told apart from a duplicate delivery and from the echo of our own write-back.
CREATE TABLE entry_heads (
    source              TEXT NOT NULL,
    entry_id            TEXT NOT NULL,
    locale              TEXT NOT NULL,
    fingerprint         TEXT NOT NULL,
    written_fingerprint TEXT,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (source, entry_id, locale)
);

-- A revert accepts the same content again as a new generation of its event.
ALTER TABLE events ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
DROP INDEX events_by_content;
CREATE UNIQUE INDEX events_by_content ON events (source, entry_id, locale, fingerprint, generation);
