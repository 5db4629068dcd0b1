-- Portable SQL: runs unchanged on SQLite and PostgreSQL (times are unix milliseconds).

-- One row per content accepted from a source. Deduplicated twice: by the sender's delivery id
-- (a redelivery) and by the fingerprint of the fields that drive the video (a re-publish of the
-- same content, including the one our own write-back triggers).
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    delivery_id  TEXT,
    entry_id     TEXT NOT NULL,
    locale       TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    content_json TEXT NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_by_delivery ON events (source, delivery_id, entry_id, locale);
CREATE UNIQUE INDEX events_by_content ON events (source, entry_id, locale, fingerprint);

-- One row per video to make. `state` is the next step to run (or a final state); every change
-- is committed before the side effect of the next step.
CREATE TABLE renders (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (id),
    plan_key         TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    run_after        BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    plan_json        TEXT,
    provenance_json  TEXT,
    audio_key        TEXT,
    audio_seconds    DOUBLE PRECISION,
    submit_key       TEXT,
    submitted_at     BIGINT,
    provider_job_id  TEXT,
    video_url        TEXT,
    error_category   TEXT,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE UNIQUE INDEX renders_by_plan ON renders (event_id, plan_key);
CREATE INDEX renders_runnable ON renders (state, run_after);

-- The history of every step a render went through: timings for `vidhook jobs` and the demo.
CREATE TABLE render_steps (
    render_id   TEXT NOT NULL REFERENCES renders (id),
    step        TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX render_steps_by_render ON render_steps (render_id, finished_at);

-- Editor templates: every save is a new version; renders record the versions they used.
CREATE TABLE templates (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
