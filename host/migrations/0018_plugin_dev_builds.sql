-- `vidhook plugin dev DIR --source NAME` (issue #27): a development build that serves one source
-- in place of the installed versions of its plugin until the dev loop ends. The component bytes
-- live in <data_dir>/plugins/<digest>.wasm, as an installed version's do.
CREATE TABLE plugin_dev_builds (
    source   TEXT NOT NULL,
    name     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    manifest TEXT NOT NULL,
    built_at BIGINT NOT NULL,
    PRIMARY KEY (source, name)
);
