-- Editors' workspace (issue #15): an admin turns a plugin of a source's chain off (and on again)
-- without editing the config; a render pins its chain without the plugins switched off.
CREATE TABLE source_plugins (
    source     TEXT NOT NULL,
    plugin     TEXT NOT NULL,
    enabled    BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (source, plugin)
);

-- The workspace's live render list asks what changed since a moment, once a second.
CREATE INDEX renders_by_update ON renders (updated_at);
