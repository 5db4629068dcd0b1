-- Revision order per entry (issue #24): the newest CMS revision accepted for each entry (its
-- `updated_at`, `sys.version`, `modified_gmt`… as unix ms or an integer). A delivery of an older
-- revision — a CMS retry after a timeout, a replay within the signature window — is stale: it
-- changes nothing and pays nothing. NULL where the CMS gives no orderable marker.
ALTER TABLE entry_heads ADD COLUMN revision BIGINT;
