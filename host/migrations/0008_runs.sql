-- Runs of many renders (issue #14): a backfill or a batch file, estimated and confirmed once,
-- then followed, paused, resumed and cancelled as one. `label` names what was asked (the same
-- command names the same run), so running a command again resumes its run.
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    label             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    source            TEXT NOT NULL,
    -- active | paused | cancelled
    state             TEXT NOT NULL,
    -- What the last confirmation covered: videos and credits.
    videos            BIGINT NOT NULL,
    credits           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX runs_by_label ON runs (label);

-- The run a render belongs to; none for a live publish (live work is claimed first).
ALTER TABLE renders ADD COLUMN run_id TEXT;
CREATE INDEX renders_by_run ON renders (run_id, state);
