//! Text helpers that run inside the sandbox: sentence splitting, speaking-time estimates, and
//! fitting a narration to a time limit without cutting a sentence in half.

/// Splits text into sentences at `.`, `!`, `?` (and their run, e.g. `?!`) followed by whitespace,
/// and at blank lines. Sentences keep their punctuation and are trimmed.
pub fn sentences(text: &str) -> Vec<&str> {
    // Works on bytes: the delimiters are ASCII, which never occurs inside a multi-byte UTF-8
    // character, so every cut is on a character boundary. No per-character allocation.
    let bytes = text.as_bytes();
    let is_stop = |b: u8| matches!(b, b'.' | b'!' | b'?');
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if is_stop(b) || b == b'\n' {
            let mut j = i + 1;
            while j < bytes.len() && (is_stop(bytes[j]) || matches!(bytes[j], b'"' | b'\'' | b')'))
            {
                j += 1;
            }
            let at_boundary = j >= bytes.len() || bytes[j].is_ascii_whitespace();
            if at_boundary && (b != b'\n' || bytes.get(j) == Some(&b'\n')) {
                push_trimmed(&mut out, &text[start..j]);
                start = j;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if !piece.is_empty() {
        out.push(piece);
    }
}

/// HTML to the plain text a narrator reads: tags dropped, block elements become paragraph
/// breaks, the common entities decoded, `<script>`/`<style>` content skipped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        rest = &rest[open + close + 1..];
        let name = tag
            .trim_start_matches('/')
            .split([' ', '/'])
            .next()
            .unwrap_or_default()
            .to_string();
        if !tag.starts_with('/') && (name == "script" || name == "style") {
            let end = format!("</{name}");
            rest = rest.find(&end).map_or("", |i| &rest[i..]);
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "div"
                | "br"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "tr"
                | "section"
                | "article"
        ) {
            out.push_str("\n\n");
        }
    }
    out.push_str(&decode_entities(rest));
    let paragraphs: Vec<String> = out
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    paragraphs.join("\n\n")
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&rsquo;", "’")
        .replace("&amp;", "&")
}

/// Number of words (whitespace-separated runs).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Estimated speaking time in seconds at `words_per_minute`.
pub fn speaking_seconds(text: &str, words_per_minute: f64) -> f64 {
    word_count(text) as f64 * 60.0 / words_per_minute
}

/// The longest prefix of `text` that is estimated to be spoken within `seconds`: whole sentences
/// while they fit; if not even the first sentence fits, its leading words with an ellipsis.
pub fn fit_to_seconds(text: &str, seconds: f64, words_per_minute: f64) -> String {
    let max_words = (seconds * words_per_minute / 60.0).floor().max(0.0) as usize;
    let mut kept: Vec<&str> = Vec::new();
    let mut words = 0;
    for sentence in sentences(text) {
        let n = word_count(sentence);
        if words + n > max_words {
            break;
        }
        words += n;
        kept.push(sentence);
    }
    if kept.is_empty() && max_words > 0 {
        let head: Vec<&str> = text.split_whitespace().take(max_words).collect();
        return format!("{}…", head.join(" "));
    }
    kept.join(" ")
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
        let html =
            "<h1>Title</h1><p>One &amp; <b>two</b>.</p><script>var x;</script><p>Three<br>four</p>";
        assert_eq!(html_to_text(html), "Title\n\nOne & two.\n\nThree\n\nfour");
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
}
