-- What each source's last catch-up sweep did (issue #24): when it ran, how many items the CMS
-- listed and how many of them were new, and how many deliveries the source had refused since
-- the sweep before it. Shown by `vidhook sources` and `GET /api/v1/sources`.
ALTER TABLE catch_up ADD COLUMN last_sweep_at BIGINT;
ALTER TABLE catch_up ADD COLUMN last_listed BIGINT;
ALTER TABLE catch_up ADD COLUMN last_found BIGINT;
ALTER TABLE catch_up ADD COLUMN refused_before BIGINT;
