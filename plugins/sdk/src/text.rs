//! Text helpers that run inside the sandbox: sentence splitting, speaking-time estimates, and
//! fitting a narration to a time limit without cutting a sentence in half.

/// Splits text into sentences at `.`, `!`, `?` (and their run, e.g. `?!`) followed by whitespace,
/// and at blank lines. Sentences keep their punctuation and are trimmed.
pub fn sentences(text: &str) -> Vec<&str> {
    each_sentence(text).collect()
}

/// [`sentences`] one at a time, so a caller that needs only the first few (fitting a long
/// article to a minute) does not split the rest.
fn each_sentence(text: &str) -> impl Iterator<Item = &str> {
    // Works on bytes: the delimiters are ASCII, which never occurs inside a multi-byte UTF-8
    // character, so every cut is on a character boundary. No per-character allocation.
    let bytes = text.as_bytes();
    let is_stop = |b: u8| matches!(b, b'.' | b'!' | b'?');
    let (mut start, mut i) = (0, 0);
    let mut ended = false;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if !(is_stop(b) || b == b'\n') {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < bytes.len() && (is_stop(bytes[j]) || matches!(bytes[j], b'"' | b'\'' | b')'))
            {
                j += 1;
            }
            i = j;
            let at_boundary = j >= bytes.len() || bytes[j].is_ascii_whitespace();
            if at_boundary && (b != b'\n' || bytes.get(j) == Some(&b'\n')) {
                let sentence = &text[start..j];
                start = j;
                return Some(sentence);
            }
        }
        (!std::mem::replace(&mut ended, true)).then(|| &text[start..])
    })
    .map(str::trim)
    .filter(|sentence| !sentence.is_empty())
}

/// HTML to the plain text a narrator reads: the host's own converter (`vidhook-text`), so a
/// plugin converting HTML (a translation, a fetched page) reads it exactly as the host reads a
/// CMS body: blocks become paragraphs, every character reference is decoded, code blocks,
/// tables and footnote markers are skipped.
pub use vidhook_text::html_to_text;

/// Number of words (whitespace-separated runs).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Estimated speaking time in seconds at `words_per_minute`.
pub fn speaking_seconds(text: &str, words_per_minute: f64) -> f64 {
    word_count(text) as f64 * 60.0 / words_per_minute
}

/// The longest prefix of `text` that is estimated to be spoken within `seconds`: whole sentences
/// while they fit, paragraphs kept apart by a blank line (a pause when spoken); if not even the
/// first sentence fits, its leading words with an ellipsis.
pub fn fit_to_seconds(text: &str, seconds: f64, words_per_minute: f64) -> String {
    let max_words = (seconds * words_per_minute / 60.0).floor().max(0.0) as usize;
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut words = 0;
    'paragraphs: for paragraph in paragraphs_of(text) {
        let mut kept = Vec::new();
        for sentence in each_sentence(paragraph) {
            let n = word_count(sentence);
            if words + n > max_words {
                if !kept.is_empty() {
                    paragraphs.push(kept);
                } else if paragraphs.last().is_some_and(|p| is_heading_like(p)) {
                    // A heading whose section is cut away is not said on its own.
                    paragraphs.pop();
                }
                break 'paragraphs;
            }
            words += n;
            kept.push(sentence);
        }
        if !kept.is_empty() {
            paragraphs.push(kept);
        }
    }
    if paragraphs.is_empty() && max_words > 0 {
        let head: Vec<&str> = text.split_whitespace().take(max_words).collect();
        return format!("{}…", head.join(" "));
    }
    paragraphs
        .iter()
        .map(|p| p.join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A paragraph of one short sentence: a heading (or a caption) more likely than prose.
fn is_heading_like(paragraph: &[&str]) -> bool {
    paragraph.len() == 1 && word_count(paragraph[0]) <= 6
}

/// The paragraphs of `text`: runs separated by a blank line, trimmed, none empty. (What
/// `split("\n\n")` gives, found by looking for line breaks only: a substring search is several
/// times slower inside the sandbox, where it has no vector instructions.)
fn paragraphs_of(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut from = 0;
        while let Some(at) = current[from..].find('\n') {
            let cut = from + at;
            if current.as_bytes().get(cut + 1) == Some(&b'\n') {
                rest = Some(&current[cut + 2..]);
                return Some(&current[..cut]);
            }
            from = cut + 1;
        }
        rest = None;
        Some(current)
    })
    .map(str::trim)
    .filter(|p| !p.is_empty())
}

/// A body as a narrator reads it after its title (the rules every SDK applies the same way):
/// - a first paragraph that says the title again (a CMS's `<h1>`, a Markdown `# Title`) is not
///   spoken twice: it is dropped (compared by letters and digits, case aside);
/// - a paragraph that ends without a stop (a heading, a list item, a caption) gets one, so it is
///   its own sentence with a pause, not run into the next (`。` after CJK text, else `.`);
/// - a bare web address is read as its site: `https://www.example.com/a/b?x=1` → `example.com`;
/// - emoji and pictographs are not read (a speech engine names them: "party popper"), and a
///   paragraph left with no letter or digit (a callout's icon, a divider) is dropped.
///
/// Numbers, dates and currencies are left as written: each engine reads them in its language.
pub fn narration_body(title: &str, body: &str) -> String {
    let title_key: String = key(title).collect();
    let mut out: Vec<String> = Vec::new();
    for (i, paragraph) in paragraphs_of(body).enumerate() {
        // Compared letter by letter: a long first paragraph is not read whole to learn that it
        // is not the title.
        if i == 0 && !title_key.is_empty() && key(paragraph).eq(title_key.chars()) {
            continue;
        }
        let mut spoken = sites_for_addresses(&without_pictographs(paragraph));
        if !spoken.chars().any(char::is_alphanumeric) {
            continue;
        }
        if let Some(last) = spoken.chars().last() {
            if !ends_a_sentence(last) {
                spoken.push(if is_cjk(last) { '。' } else { '.' });
            }
        }
        out.push(spoken);
    }
    out.join("\n\n")
}

/// What a title and a first paragraph are compared by: letters and digits, lower case.
fn key(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
}

/// `text` without emoji and pictographs (and the joiners and selectors that build them), spaces
/// tidied where one was removed.
fn without_pictographs(text: &str) -> String {
    let pictograph = |c: char| {
        matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2190..=0x21FF
            | 0xFE0E | 0xFE0F | 0x200D | 0x20E3)
    };
    if text.is_ascii() || !text.chars().any(pictograph) {
        return text.to_string();
    }
    let kept: String = text.chars().filter(|c| !pictograph(*c)).collect();
    kept.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A rendered script's stops made right where a template wrote `{{title}}.` after a title that
/// ends in its own stop: `Why Ghost?.` → `Why Ghost?`, and a `.` after CJK text → `。`.
pub fn tidy_stops(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut previous: Option<char> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let ends = next.is_none_or(char::is_whitespace);
        match (c, previous) {
            ('.', Some(p)) if ends && "!?。！？…".contains(p) => continue,
            ('.', Some(p)) if ends && is_cjk(p) => out.push('。'),
            _ => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// Whether `c` ends a sentence (or a clause a heading may end with): stops in Latin, CJK, Arabic
/// and Devanagari scripts, and the closing quotes and brackets that may follow them.
fn ends_a_sentence(c: char) -> bool {
    ".!?…:;。！？؟۔।\"'”’»)]）」』".contains(c)
}

/// Chinese and Japanese script, whose sentences end with `。` (Korean ends them with `.`).
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF)
}

/// Each whitespace-separated word that is a web address, as its site's name (its punctuation
/// kept): a narrator does not spell out a URL.
fn sites_for_addresses(text: &str) -> String {
    if !mentions_an_address(text) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        match site_of(word) {
            Some(site) => out.push_str(&site),
            None => out.push_str(word),
        }
        let space_end = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..space_end]);
        rest = &after[space_end..];
    }
    out
}

/// Whether `text` contains `http://`, `https://` or `www.`: found from its (few) colons and
/// full stops, one pass each, rather than three substring searches over the whole text.
fn mentions_an_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(':').any(|(at, _)| {
        bytes[at + 1..].starts_with(b"//")
            && (bytes[..at].ends_with(b"http") || bytes[..at].ends_with(b"https"))
    }) || text
        .match_indices('.')
        .any(|(at, _)| bytes[..at].ends_with(b"www"))
}

/// `(https://www.example.com/path).` → `(example.com).`; none for a word that is not an address.
fn site_of(word: &str) -> Option<String> {
    let start = word
        .find("http://")
        .or_else(|| word.find("https://"))
        .or_else(|| word.find("www."))?;
    let (before, address) = word.split_at(start);
    let trail = address
        .char_indices()
        .rev()
        .take_while(|(_, c)| ".,;:!?)]}\"'”’»".contains(*c))
        .last()
        .map_or(address.len(), |(i, _)| i);
    let (address, after) = address.split_at(trail);
    let host = address
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.")
        .split(['/', '?', '#'])
        .next()?
        .split(':')
        .next()?;
    (!host.is_empty()).then(|| format!("{before}{host}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_and_keeps_punctuation() {
        let s = sentences("Hello world. How are you?! Fine.\n\nNew paragraph without stop\n\nEnd");
        assert_eq!(
            s,
            vec![
                "Hello world.",
                "How are you?!",
                "Fine.",
                "New paragraph without stop",
                "End"
            ]
        );
    }

    /// The line-break and colon scans find exactly what the substring searches they replace
    /// would.
    #[test]
    fn paragraphs_and_addresses_are_found_as_substring_searches_would() {
        for text in [
            "",
            "\n",
            "\n\n",
            "\n\n\n",
            "a\n\n\nb",
            "a\n\n\n\nb",
            "a\nb\n\n",
            "\n\na",
            "x\r\n\r\ny",
            "é\n\nü\n",
            "http://x",
            "see https://a.b",
            "www.",
            "wwww.",
            "ww.w.",
            "http:/",
            "http//",
            "https:",
            ":// www",
            "ttp://",
            "a.b www .c",
            "héttp://",
            "HTTP://x",
            "https:://",
        ] {
            let split: Vec<&str> = text
                .split("\n\n")
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            assert_eq!(paragraphs_of(text).collect::<Vec<_>>(), split, "{text:?}");
            let contains = ["http://", "https://", "www."]
                .iter()
                .any(|p| text.contains(p));
            assert_eq!(mentions_an_address(text), contains, "{text:?}");
        }
    }

    #[test]
    fn keeps_multibyte_text_intact() {
        assert_eq!(
            sentences("Größe zählt. Ça va? Ja!"),
            vec!["Größe zählt.", "Ça va?", "Ja!"]
        );
    }

    #[test]
    fn does_not_split_decimals() {
        assert_eq!(
            sentences("It costs 9.60 dollars. Cheap."),
            vec!["It costs 9.60 dollars.", "Cheap."]
        );
    }

    #[test]
    fn html_becomes_narration_text() {
        let html = "<h1>Title</h1><p>One &amp; <b>two</b>.</p><script>var x;</script>\
                    <p>Three<br>four</p><p>d&#8217;&eacute;t&#xE9;</p>";
        assert_eq!(
            html_to_text(html),
            "Title\n\nOne & two.\n\nThree\nfour\n\nd’été"
        );
    }

    #[test]
    fn estimates_speaking_time() {
        let text = "word ".repeat(175);
        assert!((speaking_seconds(&text, 175.0) - 60.0).abs() < 1e-9);
    }

    #[test]
    fn fits_whole_sentences_within_the_limit() {
        let text = "One two three. Four five six. Seven eight nine.";
        // 7 words at 60 wpm = 7 s: the first two sentences (6 words) fit, the third does not.
        assert_eq!(
            fit_to_seconds(text, 7.0, 60.0),
            "One two three. Four five six."
        );
        assert!(speaking_seconds(&fit_to_seconds(text, 7.0, 60.0), 60.0) <= 7.0);
    }

    #[test]
    fn cuts_a_single_long_sentence_at_words() {
        assert_eq!(fit_to_seconds("a b c d e f", 3.0, 60.0), "a b c…");
        assert_eq!(fit_to_seconds("a b c", 0.0, 60.0), "");
    }

    #[test]
    fn fitting_keeps_paragraphs_apart() {
        let text = "Heading.\n\nOne two three. Four five.\n\nSix seven eight.";
        assert_eq!(
            fit_to_seconds(text, 6.0, 60.0),
            "Heading.\n\nOne two three. Four five."
        );
        // A heading whose section is cut away is not said on its own.
        let text = "One two three four five six seven.\n\nNext part\n\nEight nine ten.";
        assert_eq!(
            fit_to_seconds(text, 10.0, 60.0),
            "One two three four five six seven."
        );
    }

    #[test]
    fn a_body_reads_as_a_narrator_would_after_its_title() {
        let body = "Welcome to vidhook\n\nvidhook turns articles into videos.\n\nHow it works\n\nSee https://www.example.com/docs/start?x=1.";
        assert_eq!(
            narration_body("Welcome to Vidhook!", body),
            "vidhook turns articles into videos.\n\nHow it works.\n\nSee example.com."
        );
        // Only a first paragraph that repeats the title is dropped; CJK gets its own stop.
        assert_eq!(
            narration_body("Other", "Welcome to vidhook\n\n東京の天気"),
            "Welcome to vidhook.\n\n東京の天気。"
        );
        assert_eq!(narration_body("", "A list item"), "A list item.");
        assert_eq!(
            narration_body("", "💡\n\nWe won! 🎉\n\nBack ↩︎"),
            "We won!\n\nBack."
        );
        assert_eq!(
            site_of("(http://localhost:8080/x),"),
            Some("(localhost),".into())
        );
        assert_eq!(site_of("word"), None);
    }

    #[test]
    fn a_templates_stop_after_a_title_with_its_own_is_not_doubled() {
        assert_eq!(
            tidy_stops("Why Ghost?.\n\nBody. Done..."),
            "Why Ghost?\n\nBody. Done..."
        );
        assert_eq!(
            tidy_stops("東京の新しい店舗.\n\n本文。"),
            "東京の新しい店舗。\n\n本文。"
        );
    }
}
