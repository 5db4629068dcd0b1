-- The approval gate: a $0 local preview for an editor to look at, and when it was approved.
ALTER TABLE renders ADD COLUMN preview_url TEXT;
ALTER TABLE renders ADD COLUMN approved_at BIGINT;
