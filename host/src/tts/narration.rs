//! A whole narration from one engine: the script is split into chunks under the engine's limit
//! (and `[tts] chunk_chars`), the chunks are synthesised a few at a time, each retried on its
//! own when the engine is busy or failing (never the whole article), then decoded and joined
//! into one WAV: edges trimmed of the engine's own silence, 8 ms fades so no join clicks, and a
//! pause of our choosing between sentences and paragraphs. Where each chunk lands in the joined
//! samples, and where its own audio pauses, time its caption cues (`caption_standard`).

use std::time::Duration;

use futures_util::{stream, FutureExt, StreamExt};

use super::caption_standard::{chunk_cues, settle, Standard};
use super::captions::Cue;
use super::chunk::{self, Chunk};
use super::{Lexicon, SpeechRequest, Tts, TtsError};
use crate::media::probe::{decode_mono, Pcm};
use crate::media::MediaStore;

/// Silence between two chunks of one paragraph, and after a paragraph.
const SENTENCE_PAUSE: f64 = 0.25;
const PARAGRAPH_PAUSE: f64 = 0.5;
/// Fade at each chunk edge: long enough to remove a click, too short to hear.
const FADE: f64 = 0.008;
/// Below this amplitude a chunk's leading and trailing samples are the engine's silence.
const SILENCE: f32 = 0.01;
/// Sound kept before and after the first and last loud sample of a chunk.
const MARGIN: f64 = 0.02;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub chunk_chars: usize,
    pub parallel: usize,
    pub attempts: u32,
}

impl From<&super::TtsConfig> for Options {
    fn from(config: &super::TtsConfig) -> Self {
        Options {
            chunk_chars: config.chunk_chars,
            parallel: config.parallel,
            attempts: config.chunk_attempts,
        }
    }
}

/// One joined narration.
#[derive(Debug, Clone)]
pub struct Narration {
    /// Mono 16-bit PCM WAV.
    pub wav: Vec<u8>,
    /// Measured from the joined samples.
    pub seconds: f64,
    pub cues: Vec<Cue>,
    /// Requests the text was spoken in.
    pub chunks: usize,
    /// Engine and voice, as the engine names them.
    pub voice_id: String,
    /// Chunk requests that had to be repeated.
    pub retries: u32,
}

/// `text` in the chunks `engine` is sent, each as written and as said (the lexicon applied).
fn spoken_chunks(
    engine: &dyn Tts,
    text: &str,
    lexicon: &Lexicon,
    options: Options,
) -> (Vec<Chunk>, Vec<String>) {
    let chunks = chunk::split(text, options.chunk_chars.min(engine.max_chars()));
    let spoken = chunks.iter().map(|c| lexicon.apply(&c.text).0).collect();
    (chunks, spoken)
}

/// The characters [`narrate`] sends `engine` for `text`: what a hosted engine bills for it.
pub fn characters_sent(engine: &dyn Tts, text: &str, lexicon: &Lexicon, options: Options) -> usize {
    let (_, spoken) = spoken_chunks(engine, text, lexicon, options);
    spoken.iter().map(|s| s.chars().count()).sum()
}

/// Synthesises `text` with `engine` in `voice`, each chunk said as `lexicon` says (its cue keeps
/// the written words). With a `cache`, each chunk already spoken the
/// same way (engine, voice, language, text and neighbours) is read back instead of paid for
/// again: a step retried after one chunk gave up re-synthesises only the chunks that failed.
pub async fn narrate(
    engine: &dyn Tts,
    voice: &str,
    language: &str,
    text: &str,
    lexicon: &Lexicon,
    options: Options,
    cache: Option<&MediaStore>,
) -> Result<Narration, TtsError> {
    let (chunks, spoken) = spoken_chunks(engine, text, lexicon, options);
    if chunks.is_empty() {
        return Err(TtsError::EmptyText);
    }
    let requests: Vec<SpeechRequest> = (0..chunks.len())
        .map(|i| SpeechRequest {
            text: spoken[i].clone(),
            voice: voice.to_string(),
            language: language.to_string(),
            previous_text: i.checked_sub(1).map(|p| spoken[p].clone()),
            next_text: spoken.get(i + 1).cloned(),
        })
        .collect();
    // The first chunk goes alone: a refused key or voice then costs one request, not `parallel`.
    let first = cached_chunk(engine, &requests[0], options.attempts, cache).await?;
    // Boxed so the compiler sees one concrete `Send` future type per chunk.
    let jobs: Vec<_> = requests[1..]
        .iter()
        .map(|request| cached_chunk(engine, request, options.attempts, cache).boxed())
        .collect();
    // Every chunk is let finish, even after one has failed: what the others bring is paid for
    // and, cached, is not asked for again when the step is retried.
    let finished: Vec<Result<(Pcm, String, u32), TtsError>> = stream::iter(jobs)
        .buffered(options.parallel.max(1))
        .collect()
        .await;
    let rest = finished.into_iter().collect::<Result<Vec<_>, _>>()?;
    let spoken: Vec<(Pcm, String, u32)> = std::iter::once(first).chain(rest).collect();
    let voice_id = spoken[0].1.clone();
    let retries = spoken.iter().map(|s| s.2).sum();
    let pcm: Vec<Pcm> = spoken.into_iter().map(|s| s.0).collect();
    let standard = super::caption_standard::Standard::for_language(language);
    let (samples, rate, cues) = join(&chunks, pcm, &standard);
    Ok(Narration {
        seconds: samples.len() as f64 / f64::from(rate),
        wav: Pcm { rate, samples }.to_wav(),
        cues,
        chunks: chunks.len(),
        voice_id,
        retries,
    })
}

/// One chunk from the cache, else from the engine (and then into the cache).
async fn cached_chunk(
    engine: &dyn Tts,
    request: &SpeechRequest,
    attempts: u32,
    cache: Option<&MediaStore>,
) -> Result<(Pcm, String, u32), TtsError> {
    let Some(cache) = cache else {
        let (pcm, voice_id, retries, _) = speak_chunk(engine, request, attempts).await?;
        return Ok((pcm, voice_id, retries));
    };
    let key = cache_key(engine, request);
    if let Ok(Some(entry)) = cache.get(&key).await {
        if let Some((voice_id, pcm)) = read_cached(entry).await {
            return Ok((pcm, voice_id, 0));
        }
    }
    let (pcm, voice_id, retries, bytes) = speak_chunk(engine, request, attempts).await?;
    let mut entry = format!("{voice_id}\n").into_bytes();
    entry.extend_from_slice(&bytes);
    if let Err(err) = cache.put(&key, &entry).await {
        tracing::warn!(error = %err, "could not keep a synthesised chunk in the speech cache");
    }
    Ok((pcm, voice_id, retries))
}

/// The cache key of one chunk request: everything that changes what it sounds like.
fn cache_key(engine: &dyn Tts, request: &SpeechRequest) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [
        engine.identity().as_str(),
        &request.voice,
        &request.language,
        &request.text,
        request.previous_text.as_deref().unwrap_or(""),
        request.next_text.as_deref().unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("{SPEECH_CACHE_PREFIX}{}", hex::encode(hash.finalize()))
}

/// Where chunks already spoken are kept (retention removes them with other old media).
pub const SPEECH_CACHE_PREFIX: &str = "speech/";

/// A cache entry: the voice id line, then the audio; `None` if it does not decode.
async fn read_cached(entry: Vec<u8>) -> Option<(String, Pcm)> {
    let newline = entry.iter().position(|b| *b == b'\n')?;
    let voice_id = String::from_utf8(entry[..newline].to_vec()).ok()?;
    let audio = entry[newline + 1..].to_vec();
    let pcm = tokio::task::spawn_blocking(move || decode_mono(audio))
        .await
        .ok()?
        .ok()?;
    Some((voice_id, pcm))
}

/// One chunk, tried up to `attempts` times while its failure is transient; decoded.
async fn speak_chunk(
    engine: &dyn Tts,
    request: &SpeechRequest,
    attempts: u32,
) -> Result<(Pcm, String, u32, Vec<u8>), TtsError> {
    let mut tried = 0;
    loop {
        tried += 1;
        let err = match engine.synthesize(request).await {
            Ok(audio) => {
                let bytes = audio.bytes.clone();
                let pcm = tokio::task::spawn_blocking(move || decode_mono(bytes))
                    .await
                    .map_err(|e| TtsError::BadAudio(e.to_string()))?;
                match pcm {
                    Ok(pcm) => return Ok((pcm, audio.voice_id, tried - 1, audio.bytes)),
                    // A truncated answer is the network's fault more often than the engine's.
                    Err(err) => TtsError::BadAudio(err.to_string()),
                }
            }
            Err(err) => err,
        };
        if !err.is_transient() || tried >= attempts.max(1) {
            return Err(err);
        }
        let backoff = Duration::from_millis(500 * 2u64.pow(tried - 1)).min(Duration::from_secs(10));
        let delay = match &err {
            TtsError::RateLimited {
                retry_after: Some(after),
                ..
            } => (*after).min(Duration::from_secs(60)),
            _ => backoff,
        };
        tracing::info!(error = %err, attempt = tried, ?delay, "TTS chunk failed; trying it again");
        tokio::time::sleep(delay).await;
    }
}

/// Joins decoded chunks into one signal at the first chunk's rate, with the cue of each chunk.
fn join(chunks: &[Chunk], pcm: Vec<Pcm>, standard: &Standard) -> (Vec<f32>, u32, Vec<Cue>) {
    let rate = pcm[0].rate;
    let seconds = |n: usize| n as f64 / f64::from(rate);
    let samples_in = |s: f64| (s * f64::from(rate)).round() as usize;
    let mut out: Vec<f32> = Vec::new();
    let mut cues = Vec::with_capacity(chunks.len());
    for (i, (chunk, pcm)) in chunks.iter().zip(pcm).enumerate() {
        let mut piece = resample(pcm, rate);
        trim(&mut piece, samples_in(MARGIN));
        if piece.is_empty() {
            continue;
        }
        fade(&mut piece, samples_in(FADE));
        if i > 0 {
            let pause = if chunks[i - 1].ends_paragraph {
                PARAGRAPH_PAUSE
            } else {
                SENTENCE_PAUSE
            };
            out.resize(out.len() + samples_in(pause), 0.0);
        }
        let start = seconds(out.len());
        cues.extend(chunk_cues(standard, &chunk.text, &piece, rate, start));
        out.extend_from_slice(&piece);
    }
    let end = seconds(out.len());
    (out, rate, settle(standard, cues, end))
}

/// `pcm` at `rate` (linear interpolation; chunks of one engine normally share a rate already).
fn resample(pcm: Pcm, rate: u32) -> Vec<f32> {
    if pcm.rate == rate || pcm.samples.is_empty() {
        return pcm.samples;
    }
    let ratio = f64::from(pcm.rate) / f64::from(rate);
    let len = (pcm.samples.len() as f64 / ratio) as usize;
    (0..len)
        .map(|i| {
            let at = i as f64 * ratio;
            let j = at as usize;
            let next = pcm.samples.get(j + 1).copied().unwrap_or(pcm.samples[j]);
            let t = (at - j as f64) as f32;
            pcm.samples[j] * (1.0 - t) + next * t
        })
        .collect()
}

/// Drops leading and trailing silence, keeping `margin` samples of it.
fn trim(samples: &mut Vec<f32>, margin: usize) {
    let loud = |s: &f32| s.abs() >= SILENCE;
    let Some(first) = samples.iter().position(loud) else {
        samples.clear();
        return;
    };
    let last = samples.iter().rposition(loud).unwrap_or(first);
    let end = (last + 1 + margin).min(samples.len());
    samples.truncate(end);
    samples.drain(..first.saturating_sub(margin));
}

/// Linear fade in over the first `len` samples and out over the last.
fn fade(samples: &mut [f32], len: usize) {
    let len = len.min(samples.len() / 2).max(1);
    let total = samples.len();
    for i in 0..len {
        let gain = i as f32 / len as f32;
        samples[i] *= gain;
        samples[total - 1 - i] *= gain;
    }
}

/// The longest run of silence in `pcm`, in seconds, and the largest step between two
/// neighbouring samples (a click is a step no voice makes): what a listener would notice.
pub fn gaps_and_steps(pcm: &Pcm) -> (f64, f32) {
    let mut longest = 0usize;
    let mut run = 0usize;
    let mut step = 0f32;
    for (i, s) in pcm.samples.iter().enumerate() {
        if s.abs() < SILENCE {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
        if i > 0 {
            step = step.max((s - pcm.samples[i - 1]).abs());
        }
    }
    (longest as f64 / f64::from(pcm.rate), step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_text_is_chunked_spoken_in_parallel_and_joined_without_long_gaps() {
        let tts = super::super::Espeak::new("espeak-ng".into(), 175, Duration::from_secs(30));
        let text = "Vidhook turns articles into videos. It speaks every sentence.\n\n\
                    A second paragraph follows here. And then it ends.";
        let options = Options {
            chunk_chars: 40,
            parallel: 3,
            attempts: 2,
        };
        let lexicon = Lexicon::default();
        let narration = narrate(&tts, "en-us", "en", text, &lexicon, options, None)
            .await
            .unwrap();
        assert_eq!(narration.cues.len(), 4);
        assert_eq!(narration.cues[2].text, "A second paragraph follows here.");
        let pcm = decode_mono(narration.wav.clone()).unwrap();
        let measured = pcm.samples.len() as f64 / f64::from(pcm.rate);
        assert!((measured - narration.seconds).abs() < 0.01);
        assert!((narration.cues[3].end - narration.seconds).abs() < 0.01);
        // A cue stays a little after its words, and is gone two frames before the next.
        for pair in narration.cues.windows(2) {
            let gap = pair[1].start - pair[0].end;
            assert!(
                (2.0 / 24.0 - 0.001..=PARAGRAPH_PAUSE + 0.01).contains(&gap),
                "{gap}"
            );
        }
        let (longest_silence, _) = gaps_and_steps(&pcm);
        assert!(longest_silence < 0.8, "{longest_silence}");
    }

    #[test]
    fn joins_fade_so_a_loud_edge_does_not_click() {
        let loud = Pcm {
            rate: 8000,
            samples: vec![0.9; 800],
        };
        let chunks = [
            Chunk {
                text: "a".into(),
                ends_paragraph: false,
            },
            Chunk {
                text: "b".into(),
                ends_paragraph: true,
            },
        ];
        let english = Standard::for_language("en");
        let (samples, rate, cues) = join(&chunks, vec![loud.clone(), loud], &english);
        let (gap, step) = gaps_and_steps(&Pcm { rate, samples });
        assert!(step < 0.2, "{step}");
        assert!((gap - SENTENCE_PAUSE).abs() < 0.01, "{gap}");
        // Two chunks of 0.1 s each: one cue, to the narration's end.
        assert_eq!(cues.len(), 1, "{cues:?}");
        assert_eq!(cues[0].text, "a b");
    }
}
