-- Pronunciation lexicon (issue #13): per source and locale ('' = every locale), a written term and
-- how the narration says it; applied to the speech text before synthesis.
CREATE TABLE lexicon (
    source     TEXT NOT NULL,
    locale     TEXT NOT NULL,
    term       TEXT NOT NULL,
    spoken     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (source, locale, term)
);
