-- Template versions say who made them and why (issue #26): the author (the token's name, or the
-- operator's user for the CLI), an optional note, and, for a rollback, the version it restored.
-- Versions saved before this migration have an empty author and note.
ALTER TABLE templates ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE templates ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE templates ADD COLUMN restored_from BIGINT;
