-- A template's draft (issue #26): text an editor saved without publishing it. Renders never read
-- it; previews do when asked. One draft per template, shared by its editors; publishing it saves
-- a version and removes the draft. `based_on` is the live version the draft was written against.
CREATE TABLE template_drafts (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    based_on BIGINT NOT NULL,
    saved_at BIGINT NOT NULL
);
