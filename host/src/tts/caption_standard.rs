//! Captions to a published standard: Netflix's Timed Text Style Guide (General Requirements, and
//! the English (USA) guide for closed captions): at most 2 lines; at most 42 characters a line
//! (13 for Japanese, 16 for Chinese and Korean, their language guides' full-width limits); a cue
//! shown from 5/6 s to 7 s; at most 20 characters a second (checked where it applies, not for
//! Chinese, Japanese and Korean; a cue an engine speaks faster than that is reported for
//! editors to condense, since timing alone cannot fix it); a line broken after
//! punctuation or before a conjunction or preposition, as balanced as it can be.
//!
//! A narration chunk's caption is cut into cues at sentence and clause boundaries, then words;
//! each boundary is placed on a pause found in the chunk's synthesised audio (a run of
//! near-silence) near where the text says it falls, so cues follow the engine's own timing. Only
//! where the audio has no pause near the spot is the boundary placed by the text's share of the
//! chunk. A cue stays up to 0.5 s (12 frames at 24 fps) after its words end, to its minimum
//! duration where the next cue leaves room; one still too short joins its neighbour. One too
//! fast to read may start up to 3 frames after its words (the guide's tolerance) to give the cue
//! before it time.

use super::captions::Cue;

/// One language's limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Standard {
    pub line_chars: usize,
    pub lines: usize,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Characters a second at most; none: not enforced.
    pub max_cps: Option<f64>,
}

/// How long a cue may stay after its words end (12 frames at 24 fps).
const LINGER: f64 = 0.5;
/// Timestamps are kept to the millisecond (as VTT and SRT write them): checks allow that much.
const MS: f64 = 0.001;
/// How late a cue may start after its words begin (3 frames at 24 fps).
const LATE: f64 = 3.0 / 24.0;
/// The gap kept between two cues (2 frames at 24 fps).
const GAP: f64 = 2.0 / 24.0;
/// A pause this long (or longer) in the audio can carry a cue boundary.
const PAUSE: f64 = 0.05;
/// What breaking a line after "the" or "a" costs: more than any imbalance of two lines.
const BAD_BREAK: f64 = 40.0;
/// Below this amplitude a sample is silence (as the narration's own trimming).
const QUIET: f32 = 0.01;

impl Standard {
    /// The limits for a BCP 47 language tag.
    pub fn for_language(tag: &str) -> Standard {
        let language = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let (line_chars, max_cps) = match language.as_str() {
            "ja" => (13, None),
            "zh" | "cmn" | "yue" | "ko" => (16, None),
            _ => (42, Some(20.0)),
        };
        Standard {
            line_chars,
            lines: 2,
            min_seconds: 5.0 / 6.0,
            max_seconds: 7.0,
            max_cps,
        }
    }

    /// `text` as the lines of one cue (balanced; broken after punctuation, before a conjunction or
    /// preposition where that costs little), or none if it does not fit.
    pub fn lines_of(&self, text: &str) -> Option<Vec<String>> {
        self.layout(text).map(|(lines, _)| lines)
    }

    /// Whether `text` makes one cue with a good line break (none that parts "the" from its noun):
    /// what two clauses must make to share a cue.
    fn lays_out_well(&self, text: &str) -> bool {
        self.layout(text).is_some_and(|(_, cost)| cost < BAD_BREAK)
    }

    /// The lines of `text` and what its break costs (lower is better).
    fn layout(&self, text: &str) -> Option<(Vec<String>, f64)> {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let chars: Vec<char> = text.chars().collect();
        if chars.len() <= self.line_chars {
            return Some((vec![text], 0.0));
        }
        if self.lines < 2 {
            return None;
        }
        let spaced = chars.contains(&' ');
        let mut best: Option<(f64, usize)> = None;
        for at in 1..chars.len() {
            // Break at a space (dropped), or anywhere in text written without spaces.
            let (first, second) = if spaced {
                if chars[at] != ' ' {
                    continue;
                }
                (at, chars.len() - at - 1)
            } else {
                (at, chars.len() - at)
            };
            if first > self.line_chars || second > self.line_chars {
                continue;
            }
            let mut cost = first.abs_diff(second) as f64;
            if ",.;:!?、。，".contains(chars[at - 1]) {
                cost -= 30.0;
            } else if spaced && starts_with_linking_word(&chars[at + 1..]) {
                cost -= 8.0;
            }
            if spaced && ends_with_determiner(&chars[..at]) {
                cost += BAD_BREAK;
            }
            if best.is_none_or(|(b, _)| cost < b) {
                best = Some((cost, at));
            }
        }
        let (cost, at) = best?;
        let skip = usize::from(spaced);
        Some((
            vec![
                chars[..at].iter().collect(),
                chars[at + skip..].iter().collect(),
            ],
            cost,
        ))
    }

    /// What in `cues` breaks the standard, in words (empty: nothing).
    /// Cues whose words come faster than the reading speed, in words. Verbatim captions of a
    /// narration an engine speaks faster than that cannot meet it by timing alone: these are
    /// shown to editors, who may condense the words; they do not stop a render or an edit.
    pub fn too_fast(&self, cues: &[Cue]) -> Vec<String> {
        let Some(max) = self.max_cps else {
            return Vec::new();
        };
        cues.iter()
            .enumerate()
            .filter_map(|(i, cue)| {
                let chars = cue.text.chars().filter(|c| *c != '\n').count() as f64;
                let seconds = cue.end - cue.start;
                (chars / (seconds + MS) > max).then(|| {
                    format!(
                        "cue {} reads at {:.1} characters a second",
                        i + 1,
                        chars / seconds
                    )
                })
            })
            .collect()
    }

    /// What in `cues` breaks the standard's lines, lengths, durations and gaps, in words (empty:
    /// nothing); the reading speed is [`Standard::too_fast`].
    pub fn problems(&self, cues: &[Cue]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, cue) in cues.iter().enumerate() {
            let n = i + 1;
            let lines: Vec<&str> = cue.text.lines().collect();
            let seconds = cue.end - cue.start;
            if lines.len() > self.lines {
                out.push(format!("cue {n} has {} lines", lines.len()));
            }
            if let Some(long) = lines.iter().find(|l| l.chars().count() > self.line_chars) {
                out.push(format!(
                    "cue {n}: {long:?} is over {} characters",
                    self.line_chars
                ));
            }
            if seconds < self.min_seconds - MS || seconds > self.max_seconds + MS {
                out.push(format!("cue {n} lasts {seconds:.2} s"));
            }
            if let Some(next) = cues.get(i + 1) {
                if next.start - cue.end < GAP - MS {
                    out.push(format!("cue {n} ends less than 2 frames before the next"));
                }
            }
        }
        out
    }
}

/// Whether `before` ends with a word that must stay with the noun after it ("the", "a", "your").
fn ends_with_determiner(before: &[char]) -> bool {
    const WORDS: &[&str] = &[
        "a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "this", "these",
        "those", "every", "each", "no",
    ];
    let word: String = before
        .iter()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect();
    let word: String = word.chars().rev().collect();
    WORDS.contains(&word.to_lowercase().as_str())
}

fn starts_with_linking_word(rest: &[char]) -> bool {
    const WORDS: &[&str] = &[
        "and", "but", "or", "so", "because", "to", "of", "in", "on", "at", "for", "with", "from",
        "by", "that", "which", "when", "while",
    ];
    let word: String = rest.iter().take_while(|c| c.is_alphabetic()).collect();
    WORDS.contains(&word.to_lowercase().as_str())
}

/// One chunk's caption, cut to the standard and timed on its audio: `samples` (at `rate`) are
/// the chunk's, placed at `offset` seconds in the narration.
pub fn chunk_cues(
    standard: &Standard,
    text: &str,
    samples: &[f32],
    rate: u32,
    offset: f64,
) -> Vec<Cue> {
    let seconds = samples.len() as f64 / f64::from(rate);
    let total: usize = text.chars().count().max(1);
    let pieces = pieces(standard, text, seconds, total);
    let pauses = pauses(samples, rate);
    let mut cues = Vec::with_capacity(pieces.len());
    let (mut start, mut before) = (0.0, 0usize);
    for (i, piece) in pieces.iter().enumerate() {
        before += piece.chars().count();
        let end = if i + 1 == pieces.len() {
            seconds
        } else {
            // Where the text says the boundary falls, moved onto the nearest pause near it.
            let guess = seconds * before as f64 / total as f64;
            let reach = (seconds / pieces.len() as f64 * 0.5).max(0.3);
            pauses
                .iter()
                .copied()
                .filter(|p| *p > start && (p - guess).abs() <= reach)
                .min_by(|a, b| (a - guess).abs().total_cmp(&(b - guess).abs()))
                .unwrap_or(guess)
        };
        cues.push(Cue {
            start: offset + start,
            end: offset + end,
            text: standard
                .lines_of(piece)
                .map_or_else(|| piece.clone(), |l| l.join("\n")),
        });
        start = end;
    }
    cues
}

/// The narration's cues held to the standard's durations: each stays up to [`LINGER`] after its
/// words (never closer than [`GAP`] to the next, never past `until`, the narration's end), to its
/// minimum where there is room; one still too short joins a neighbour it (nearly) touches, when
/// both fit one cue.
pub fn settle(standard: &Standard, mut cues: Vec<Cue>, until: f64) -> Vec<Cue> {
    give_reading_time(standard, &mut cues);
    let mut i = 0;
    while i < cues.len() {
        let lingered = linger(standard, cues[i..].iter().take(2).cloned().collect(), until);
        let short = lingered[0].end - lingered[0].start < standard.min_seconds - 1e-9;
        let with_next =
            short && i + 1 < cues.len() && join(standard, &cues[i], &cues[i + 1]).is_some();
        let with_previous =
            short && !with_next && i > 0 && join(standard, &cues[i - 1], &cues[i]).is_some();
        if with_next || with_previous {
            let at = if with_next { i } else { i - 1 };
            let joined = join(standard, &cues[at], &cues[at + 1]).expect("checked");
            cues.splice(at..at + 2, [joined]);
            i = at;
        } else {
            i += 1;
        }
    }
    linger(standard, cues, until)
}

/// A cue too fast to read in the time its words take gets up to [`LATE`] more from each side:
/// the next cue starts that much after its words begin, and this one that much before its own
/// (the guide's tolerance for timing to audio), where the cues around leave room.
fn give_reading_time(standard: &Standard, cues: &mut [Cue]) {
    let Some(max_cps) = standard.max_cps else {
        return;
    };
    let lacking = |cue: &Cue| {
        let chars = cue.text.chars().filter(|c| *c != '\n').count() as f64;
        chars / max_cps - (cue.end - cue.start)
    };
    for i in 0..cues.len() {
        if let Some(next) = cues.get(i + 1).map(|n| n.start) {
            // Counting the gap it must leave before the next cue.
            let short = lacking(&cues[i]) + GAP - (next - cues[i].end);
            if short > 0.0 {
                let late = short.min(LATE);
                cues[i].end += late;
                cues[i + 1].start += late;
            }
        }
        let short = lacking(&cues[i]) - if i + 1 < cues.len() { 0.0 } else { LINGER };
        if short > 0.0 {
            let earliest = if i == 0 { 0.0 } else { cues[i - 1].end + GAP };
            cues[i].start = (cues[i].start - short.min(LATE))
                .max(earliest)
                .min(cues[i].start);
        }
    }
}

/// Each cue's end moved later: [`LINGER`] after its words, at least its minimum, within the room
/// before the next cue (or `until`) and its maximum.
fn linger(standard: &Standard, mut cues: Vec<Cue>, until: f64) -> Vec<Cue> {
    for i in 0..cues.len() {
        let room = cues.get(i + 1).map_or(until, |next| next.start - GAP);
        let cue = &mut cues[i];
        let wanted = (cue.end + LINGER).max(cue.start + standard.min_seconds);
        let longest = cue.start + standard.max_seconds;
        // Up to the room before the next cue, and never into it: two frames apart.
        cue.end = cue.end.min(room).max(wanted.min(room).min(longest));
    }
    cues
}

/// Two neighbouring cues as one, if they (nearly) touch and fit one cue.
fn join(standard: &Standard, first: &Cue, second: &Cue) -> Option<Cue> {
    if second.start - first.end > LINGER || second.end - first.start > standard.max_seconds {
        return None;
    }
    let text = format!(
        "{} {}",
        first.text.replace('\n', " "),
        second.text.replace('\n', " ")
    );
    Some(Cue {
        start: first.start,
        end: second.end,
        text: standard.lines_of(&text)?.join("\n"),
    })
}

/// `text` in pieces of at most one cue: sentences, then clauses, then words (characters for text
/// without spaces), each also short enough to be said within the longest cue.
fn pieces(standard: &Standard, text: &str, seconds: f64, total: usize) -> Vec<String> {
    let per_char = seconds / total as f64;
    let said_in_time =
        |piece: &str| piece.chars().count() as f64 * per_char <= standard.max_seconds;
    let fits = |piece: &str| standard.lines_of(piece).is_some() && said_in_time(piece);
    // Two sentences or clauses share a cue only if its lines break well.
    let joins = |piece: &str| standard.lays_out_well(piece) && said_in_time(piece);
    // Whole sentences share a cue when they fit; a sentence that does not is cut at its clauses
    // (packed while they fit), and a clause that does not, at its words.
    let mut out: Vec<String> = Vec::new();
    for sentence in clauses(text, ".!?。！？") {
        match out.last_mut() {
            Some(last) if joins(&format!("{last} {sentence}")) => {
                last.push(' ');
                last.push_str(&sentence);
            }
            _ if fits(&sentence) => out.push(sentence),
            _ => {
                let mut parts: Vec<String> = Vec::new();
                for clause in clauses(&sentence, ".!?,;:—。！？、，；：") {
                    match parts.last_mut() {
                        Some(last) if joins(&format!("{last} {clause}")) => {
                            last.push(' ');
                            last.push_str(&clause);
                        }
                        _ if fits(&clause) => parts.push(clause),
                        _ => parts.extend(split_words(&clause, &fits)),
                    }
                }
                out.extend(parts);
            }
        }
    }
    out
}

/// `text` cut after each of `stops` (followed by a space, or a CJK stop), each stop kept.
fn clauses(text: &str, stops: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let cjk_stop = "。！？、，；：".contains(c) && stops.contains(c);
        let stop = stops.contains(c) && chars.peek().is_none_or(|n| n.is_whitespace());
        if cjk_stop || stop {
            let piece = current.trim().to_string();
            if !piece.is_empty() {
                out.push(piece);
            }
            current.clear();
        }
    }
    let piece = current.trim().to_string();
    if !piece.is_empty() {
        out.push(piece);
    }
    out
}

/// A clause too long for one cue, halved at its best word boundary (near the middle, before a
/// linking word, never after "the" or "a"), and again while a half does not fit.
fn split_words(clause: &str, fits: &dyn Fn(&str) -> bool) -> Vec<String> {
    if fits(clause) {
        return vec![clause.to_string()];
    }
    let chars: Vec<char> = clause.chars().collect();
    let spaced = chars.contains(&' ');
    let middle = chars.len() as f64 / 2.0;
    let best = (1..chars.len())
        .filter(|at| !spaced || chars[*at] == ' ')
        .map(|at| {
            let mut cost = (at as f64 - middle).abs();
            if spaced && starts_with_linking_word(&chars[at + 1..]) {
                cost -= 6.0;
            }
            if spaced && ends_with_determiner(&chars[..at]) {
                cost += 40.0;
            }
            (cost, at)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let Some((_, at)) = best else {
        return vec![clause.to_string()];
    };
    let first: String = chars[..at].iter().collect();
    let second: String = chars[at..].iter().collect();
    let mut out = split_words(first.trim(), fits);
    out.extend(split_words(second.trim(), fits));
    out
}

/// The middles of the pauses in `samples`, in seconds.
fn pauses(samples: &[f32], rate: u32) -> Vec<f64> {
    let shortest = (PAUSE * f64::from(rate)) as usize;
    let mut out = Vec::new();
    let mut run_start = None;
    for (i, s) in samples.iter().enumerate() {
        match (s.abs() < QUIET, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(from)) => {
                if i - from >= shortest {
                    out.push((from + i) as f64 / 2.0 / f64::from(rate));
                }
                run_start = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_balanced_and_broken_after_punctuation() {
        let english = Standard::for_language("en-US");
        assert_eq!(english.lines_of("Short."), Some(vec!["Short.".to_string()]));
        assert_eq!(
            english.lines_of("The spring collection arrives in stores, with twelve new pieces."),
            Some(vec![
                "The spring collection arrives in stores,".to_string(),
                "with twelve new pieces.".to_string()
            ])
        );
        assert_eq!(english.lines_of(&"word ".repeat(30)), None);
        let japanese = Standard::for_language("ja-JP");
        let lines = japanese
            .lines_of("来月、東京に新しい店舗を開きます。")
            .unwrap();
        assert!(lines.iter().all(|l| l.chars().count() <= 13), "{lines:?}");
        assert_eq!(lines.concat(), "来月、東京に新しい店舗を開きます。");
    }

    /// Speech with a pause after every clause, as an engine makes it.
    fn speech(clauses: &[f64], rate: u32) -> Vec<f32> {
        let mut out = Vec::new();
        for seconds in clauses {
            out.extend(std::iter::repeat_n(
                0.5,
                (seconds * f64::from(rate)) as usize,
            ));
            out.extend(std::iter::repeat_n(0.0, (0.12 * f64::from(rate)) as usize));
        }
        out
    }

    #[test]
    fn a_long_chunk_is_cut_at_clauses_on_the_pauses_of_its_audio() {
        let english = Standard::for_language("en");
        let text = "Every step is recorded, so a crash or a restart never loses an event, \
                    and never pays twice for the same revision of the same article.";
        let rate = 16_000;
        // Three clauses; the audio's pauses are not where the characters' share would put them.
        let samples = speech(&[1.5, 2.9, 3.9], rate);
        let cues = chunk_cues(&english, text, &samples, rate, 10.0);
        assert!(cues.len() >= 2, "{cues:?}");
        let settled = settle(
            &english,
            cues.clone(),
            10.0 + samples.len() as f64 / 16_000.0,
        );
        let problems = english.problems(&settled);
        assert!(problems.is_empty(), "{problems:?}\n{settled:?}");
        // Each inner boundary sits in a pause of the audio.
        for cue in &cues[..cues.len() - 1] {
            let at = ((cue.end - 10.0) * f64::from(rate)) as usize;
            assert_eq!(
                samples[at], 0.0,
                "boundary at {:.3} s is not in a pause",
                cue.end
            );
        }
    }

    #[test]
    fn short_cues_linger_or_join_and_long_ones_never_pass_seven_seconds() {
        let english = Standard::for_language("en");
        let cues = vec![
            Cue {
                start: 0.0,
                end: 0.4,
                text: "Hi.".into(),
            },
            Cue {
                start: 0.5,
                end: 2.0,
                text: "Welcome to the news.".into(),
            },
            Cue {
                start: 5.0,
                end: 5.5,
                text: "Bye.".into(),
            },
        ];
        let settled = settle(&english, cues, 10.0);
        assert_eq!(settled.len(), 2, "{settled:?}");
        assert_eq!(settled[0].text, "Hi. Welcome to the news.");
        assert!((settled[0].end - 2.5).abs() < 1e-9);
        // It stays 0.5 s after its words: longer than the shortest a cue may be.
        assert!((settled[1].end - 6.0).abs() < 1e-9);
        // Never past the narration's end.
        let bye = Cue {
            start: 5.0,
            end: 5.5,
            text: "Bye.".into(),
        };
        assert!((settle(&english, vec![bye], 5.9)[0].end - 5.9).abs() < 1e-9);
        assert!(
            english.problems(&settled).is_empty(),
            "{:?}",
            english.problems(&settled)
        );
        let too_fast = [Cue {
            start: 0.0,
            end: 1.0,
            text: "x".repeat(30),
        }];
        assert_eq!(
            english.too_fast(&too_fast),
            ["cue 1 reads at 30.0 characters a second"]
        );
    }
}
