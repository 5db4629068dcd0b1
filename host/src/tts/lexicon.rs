//! A source's pronunciation lexicon for one locale: brand names and the like, replaced by how
//! they are said before the text reaches the engine (captions keep the written form). A term
//! matches whole words, ignoring case; the longest term wins where terms overlap; a term set for
//! the exact locale ("de-at") wins over its language ("de"), which wins over every locale ("").

use std::collections::BTreeMap;

use crate::store::LexiconEntry;

/// Why a lexicon entry cannot be saved, if it cannot: a term of 1–100 characters with a letter
/// or digit, a spoken form of 1–300, a locale that is empty or a language tag ("de", "pt-br").
pub fn entry_problem(locale: &str, term: &str, spoken: &str) -> Option<String> {
    let tag = locale.is_empty()
        || (locale.len() <= 16
            && locale.split('-').all(|p| {
                (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric())
            }));
    if !tag {
        return Some(format!(
            "locale {locale:?}: use a language tag such as \"de\" or \"pt-br\", or none"
        ));
    }
    let term_len = term.chars().count();
    if term_len == 0 || term_len > 100 || !term.chars().any(char::is_alphanumeric) {
        return Some("term: 1 to 100 characters, with a letter or digit".into());
    }
    let spoken_len = spoken.trim().chars().count();
    if spoken_len == 0 || spoken_len > 300 {
        return Some("spoken: 1 to 300 characters".into());
    }
    None
}

/// One term's use in a text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Applied {
    pub spoken: String,
    pub times: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Lexicon {
    /// (term as lower-case chars, term, spoken), longest term first.
    terms: Vec<(Vec<char>, String, String)>,
}

impl Lexicon {
    /// The terms of `entries` that apply to `language`.
    pub fn for_language(entries: &[LexiconEntry], language: &str) -> Lexicon {
        let (locale, primary) = super::locale_and_language(language);
        let rank = |entry_locale: &str| match entry_locale {
            "" => Some(0),
            l if l == primary => Some(1),
            l if l == locale => Some(2),
            _ => None,
        };
        // Per lower-cased term, the most specific locale's entry.
        let mut chosen: BTreeMap<String, (u8, &LexiconEntry)> = BTreeMap::new();
        for entry in entries {
            let Some(rank) = rank(&entry.locale.to_ascii_lowercase()) else {
                continue;
            };
            let key = entry.term.to_lowercase();
            if chosen.get(&key).is_none_or(|(r, _)| rank > *r) {
                chosen.insert(key, (rank, entry));
            }
        }
        let mut terms: Vec<_> = chosen
            .into_iter()
            .filter(|(key, _)| !key.trim().is_empty())
            .map(|(key, (_, e))| {
                (
                    key.chars().collect::<Vec<_>>(),
                    e.term.clone(),
                    e.spoken.clone(),
                )
            })
            .collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Lexicon { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// `text` with every term replaced by its spoken form, and per term replaced: its spoken
    /// form and how often (for the render's provenance).
    pub fn apply(&self, text: &str) -> (String, BTreeMap<String, Applied>) {
        let mut counts = BTreeMap::new();
        if self.terms.is_empty() {
            return (text.to_string(), counts);
        }
        let chars: Vec<char> = text.chars().collect();
        let lower: Vec<char> = chars
            .iter()
            .map(|c| c.to_lowercase().next().unwrap_or(*c))
            .collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
            let found = at_word_start
                .then(|| {
                    self.terms.iter().find(|(term, _, _)| {
                        let end = i + term.len();
                        end <= chars.len()
                            && lower[i..end] == term[..]
                            && chars.get(end).is_none_or(|c| !c.is_alphanumeric())
                    })
                })
                .flatten();
            match found {
                Some((term, written, spoken)) => {
                    out.push_str(spoken);
                    counts
                        .entry(written.clone())
                        .or_insert_with(|| Applied {
                            spoken: spoken.clone(),
                            times: 0,
                        })
                        .times += 1;
                    i += term.len();
                }
                None => {
                    out.push(chars[i]);
                    i += 1;
                }
            }
        }
        (out, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(locale: &str, term: &str, spoken: &str) -> LexiconEntry {
        LexiconEntry {
            source: "blog".into(),
            locale: locale.into(),
            term: term.into(),
            spoken: spoken.into(),
            updated_at: 0,
            updated_by: String::new(),
        }
    }

    #[test]
    fn whole_words_any_case_longest_first_most_specific_locale() {
        let entries = [
            entry("", "vidhook", "vid hook"),
            entry("", "SQL", "sequel"),
            entry("", "SQLite", "S Q L ite"),
            entry("de", "vidhook", "widd huck"),
            entry("de-at", "vidhook", "widd hook"),
            entry("fr", "SQL", "esse cu elle"),
        ];
        let en = Lexicon::for_language(&entries, "en-US");
        let (text, counts) = en.apply("Vidhook uses SQLite, not MySQL; vidhook's SQL.");
        assert_eq!(
            text,
            "vid hook uses S Q L ite, not MySQL; vid hook's sequel."
        );
        assert_eq!(counts["vidhook"].times, 2);
        assert_eq!(counts["SQL"].times, 1);
        assert_eq!(counts["SQLite"].spoken, "S Q L ite");
        let de = Lexicon::for_language(&entries, "de-DE");
        assert_eq!(de.apply("vidhook").0, "widd huck");
        let at = Lexicon::for_language(&entries, "de-AT");
        assert_eq!(at.apply("vidhook").0, "widd hook");
        assert!(Lexicon::for_language(&[], "en").apply("x").1.is_empty());
    }
}
