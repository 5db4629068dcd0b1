-- The credit ledger: an estimate is reserved in the same transaction that marks a render
-- `submitting` (so budgets stop a submission before it happens), the provider's actual figure is
-- added at completion. Days are UTC day numbers (unix ms / 86,400,000).
CREATE TABLE credit_ledger (
    render_id TEXT NOT NULL REFERENCES renders (id),
    source    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    credits   BIGINT NOT NULL,
    day       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (render_id, kind)
);
CREATE INDEX credit_ledger_by_day ON credit_ledger (day, source);
