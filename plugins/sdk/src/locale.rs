//! Locale helpers: BCP 47 tags as CMSs send them ("en-US", "de_DE", "pt-br").

/// Normalises a tag: language lower-case, region upper-case, `_` → `-` ("de_de" → "de-DE").
pub fn normalize(tag: &str) -> String {
    let mut parts = tag.trim().split(['-', '_']);
    let language = parts.next().unwrap_or_default().to_ascii_lowercase();
    let rest: Vec<String> = parts
        .map(|p| {
            if p.len() == 2 {
                p.to_ascii_uppercase()
            } else {
                p.to_string()
            }
        })
        .collect();
    std::iter::once(language)
        .chain(rest)
        .collect::<Vec<_>>()
        .join("-")
}

/// The primary language subtag ("de-AT" → "de").
pub fn language(tag: &str) -> String {
    normalize(tag)
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The espeak-ng style voice for a locale ("en-US" → "en-us").
pub fn default_voice(tag: &str) -> String {
    let normalized = normalize(tag);
    if normalized.is_empty() {
        "en-us".into()
    } else {
        normalized.to_ascii_lowercase()
    }
}

/// A locale as a field-name suffix ("de-DE" → "de_de").
pub fn slug(tag: &str) -> String {
    normalize(tag).to_ascii_lowercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_tags() {
        assert_eq!(normalize("de_de"), "de-DE");
        assert_eq!(normalize("EN-us"), "en-US");
        assert_eq!(normalize("zh-Hant-TW"), "zh-Hant-TW");
        assert_eq!(language("pt_BR"), "pt");
        assert_eq!(default_voice("en-US"), "en-us");
        assert_eq!(default_voice(""), "en-us");
        assert_eq!(slug("de-DE"), "de_de");
    }
}
