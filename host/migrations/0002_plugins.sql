-- Installed plugin versions. The component bytes live in <data_dir>/plugins/<digest>.wasm.
CREATE TABLE plugins (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    installed_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- The plugin versions a render was accepted with (JSON [{name, version}]): a job in flight keeps
-- them even if a newer version is installed meanwhile.
ALTER TABLE renders ADD COLUMN plugins_json TEXT;
