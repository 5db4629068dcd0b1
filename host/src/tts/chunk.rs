//! Splitting a narration into chunks an engine accepts: at paragraphs first, then sentences, then
//! words, and only inside a word when one word alone is over the limit. Each chunk is also one
//! caption cue, so short sentences of a paragraph share a chunk up to the limit.

/// One piece of a narration.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub text: String,
    /// The last chunk of its paragraph: a longer pause follows.
    pub ends_paragraph: bool,
}

/// The chunks of `text`, each at most `max_chars` characters (at least 1).
pub fn split(text: &str, max_chars: usize) -> Vec<Chunk> {
    let max = max_chars.max(1);
    let mut chunks = Vec::new();
    for paragraph in paragraphs(text) {
        let mut pieces = Vec::new();
        for sentence in sentences(&paragraph) {
            if len(&sentence) <= max {
                pieces.push(sentence);
            } else {
                pieces.extend(pack(words(&sentence, max), max));
            }
        }
        let packed = pack(pieces, max);
        let last = packed.len().saturating_sub(1);
        chunks.extend(packed.into_iter().enumerate().map(|(i, text)| Chunk {
            text,
            ends_paragraph: i == last,
        }));
    }
    chunks
}

fn len(text: &str) -> usize {
    text.chars().count()
}

/// Paragraphs: separated by a blank line; inner line breaks are spaces.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                out.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

/// Sentences: each ends after `.`, `!`, `?`, `…` (or their CJK forms) followed by a space or
/// the end of the text; closing quotes and brackets stay with their sentence.
fn sentences(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = paragraph.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let ends = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？');
        if ends {
            while let Some(&close) = chars.peek() {
                if matches!(close, '"' | '\'' | '”' | '’' | ')' | ']' | '»') {
                    current.push(close);
                    chars.next();
                } else {
                    break;
                }
            }
            let cjk = matches!(c, '。' | '！' | '？');
            if cjk || chars.peek().is_none_or(|n| n.is_whitespace()) {
                let sentence = current.trim().to_string();
                if !sentence.is_empty() {
                    out.push(sentence);
                }
                current.clear();
            }
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Words, with any single word longer than `max` cut into `max`-character pieces.
fn words(sentence: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for word in sentence.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        out.extend(chars.chunks(max).map(|c| c.iter().collect::<String>()));
    }
    out
}

/// Joins consecutive pieces with a space while the result stays within `max`.
fn pack(pieces: Vec<String>, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in pieces {
        match out.last_mut() {
            Some(last) if len(last) + 1 + len(&piece) <= max => {
                last.push(' ');
                last.push_str(&piece);
            }
            _ => out.push(piece),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn paragraphs_then_sentences_then_words() {
        let text = "First sentence. Second one!\n\nA new paragraph? Yes.\n";
        let chunks = split(text, 30);
        assert_eq!(
            texts(&chunks),
            ["First sentence. Second one!", "A new paragraph? Yes."]
        );
        assert!(chunks.iter().all(|c| c.ends_paragraph));
        let chunks = split(text, 16);
        assert_eq!(
            texts(&chunks),
            ["First sentence.", "Second one!", "A new paragraph?", "Yes."]
        );
        assert_eq!(
            chunks.iter().map(|c| c.ends_paragraph).collect::<Vec<_>>(),
            [false, true, false, true]
        );
    }

    #[test]
    fn a_long_sentence_splits_at_words_and_a_long_word_inside() {
        let chunks = split("one two three four five six", 9);
        assert_eq!(texts(&chunks), ["one two", "three", "four five", "six"]);
        let chunks = split("Donaudampfschifffahrt", 8);
        assert_eq!(texts(&chunks), ["Donaudam", "pfschiff", "fahrt"]);
    }

    #[test]
    fn decimals_quotes_and_cjk() {
        let chunks = split("It costs 9.60 dollars. \"Really?\" she asked.", 22);
        assert_eq!(
            texts(&chunks),
            ["It costs 9.60 dollars.", "\"Really?\" she asked."]
        );
        let chunks = split("你好。世界！", 3);
        assert_eq!(texts(&chunks), ["你好。", "世界！"]);
    }

    #[test]
    fn every_chunk_is_within_the_limit_and_nothing_is_lost() {
        let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(200);
        for max in [1, 7, 50, 180, 4096] {
            let chunks = split(&text, max);
            assert!(chunks.iter().all(|c| len(&c.text) <= max), "max {max}");
            let joined: String = chunks.iter().map(|c| c.text.replace(' ', "")).collect();
            assert_eq!(joined, text.replace(' ', ""), "max {max}");
        }
    }
}
