//! espeak-ng, the local default engine (Debian package `espeak-ng`): free, offline, robotic.
//! Text goes in on stdin (no length limit from the command line, no argument injection) and a
//! WAV comes out on stdout.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{Audio, SpeechRequest, Tts, TtsError};

const ENGINE: &str = "espeak-ng";

pub struct Espeak {
    binary: String,
    words_per_minute: u32,
    timeout: Duration,
    /// Language codes espeak-ng knows, read once from `espeak-ng --voices`.
    known: tokio::sync::OnceCell<Voices>,
}

impl Espeak {
    pub fn new(binary: String, words_per_minute: u32, timeout: Duration) -> Self {
        Espeak {
            binary,
            words_per_minute,
            timeout,
            known: tokio::sync::OnceCell::new(),
        }
    }

    /// espeak-ng silently falls back to English for a voice it does not know, which would narrate
    /// a German article in English. So the voice is resolved against the installed list: exact
    /// match, else the primary language ("de-de" -> "de"), else an error.
    async fn resolve_voice(&self, voice: &str) -> Result<String, TtsError> {
        let known = self
            .known
            .get_or_try_init(|| async {
                let out = crate::children::command(&self.binary)
                    .arg("--voices")
                    .output()
                    .await
                    .map_err(|e| TtsError::Engine {
                        engine: ENGINE,
                        message: format!("cannot start {}: {e}", self.binary),
                    })?;
                Ok::<_, TtsError>(Voices::parse(&String::from_utf8_lossy(&out.stdout)))
            })
            .await?;
        let (base, variant) = match voice.split_once('+') {
            Some((base, variant)) => (base, Some(variant)),
            None => (voice, None),
        };
        let base = base.to_ascii_lowercase();
        let primary = base.split('-').next().unwrap_or_default().to_string();
        // A bare language ("en", as CMSs often say) has no voice of its own in espeak-ng's list:
        // take its main regional voice (`fr-fr`), else the shortest one (`en-gb` before `en-029`).
        let regional = format!("{primary}-{primary}");
        let shortest_regional = known
            .languages
            .iter()
            .filter(|v| v.starts_with(&format!("{primary}-")))
            .min_by_key(|v| (v.len(), v.as_str()))
            .cloned();
        // Else a voice that lists the tag as another of its languages ("zh" → "cmn").
        let aliased = known
            .aliases
            .iter()
            .find(|(alias, _)| *alias == base || *alias == primary)
            .map(|(_, language)| language.clone());
        let found = [Some(base), Some(primary), Some(regional), shortest_regional]
            .into_iter()
            .flatten()
            .find(|v| known.languages.contains(v))
            .or(aliased);
        match (found, variant) {
            (Some(v), Some(variant)) => Ok(format!("{v}+{variant}")),
            (Some(v), None) => Ok(v),
            (None, _) => Err(TtsError::InvalidVoice(voice.to_string())),
        }
    }
}

/// What `espeak-ng --voices` lists: each voice's language (what `-v` takes), and the other
/// languages a voice says it speaks (`(zh 5)` on Mandarin's line), lower-cased.
#[derive(Debug, Default)]
struct Voices {
    languages: Vec<String>,
    /// (another language, the voice's language).
    aliases: Vec<(String, String)>,
}

impl Voices {
    fn parse(listing: &str) -> Voices {
        let mut voices = Voices::default();
        for line in listing.lines().skip(1) {
            let Some(language) = line.split_whitespace().nth(1).map(str::to_ascii_lowercase) else {
                continue;
            };
            for segment in line.split('(').skip(1) {
                let inside = segment.split(')').next().unwrap_or_default();
                if let [alias, priority] = inside.split_whitespace().collect::<Vec<_>>()[..] {
                    if priority.bytes().all(|b| b.is_ascii_digit()) {
                        voices
                            .aliases
                            .push((alias.to_ascii_lowercase(), language.clone()));
                    }
                }
            }
            voices.languages.push(language);
        }
        voices
    }
}

/// espeak-ng voice names: letters, digits, `-`, `_`, `+` (variants); never an option.
fn valid_voice(voice: &str) -> bool {
    !voice.is_empty()
        && voice.len() <= 64
        && !voice.starts_with('-')
        && voice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
}

#[async_trait::async_trait]
impl Tts for Espeak {
    /// Text goes in on stdin: no limit of its own; chunks stay at `[tts] chunk_chars`.
    fn max_chars(&self) -> usize {
        usize::MAX
    }

    fn identity(&self) -> String {
        format!("{ENGINE}|{}|{}", self.binary, self.words_per_minute)
    }

    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, TtsError> {
        if request.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        if !valid_voice(&request.voice) {
            return Err(TtsError::InvalidVoice(request.voice.clone()));
        }
        let voice = self.resolve_voice(&request.voice).await?;
        let engine_error = |message: String| TtsError::Engine {
            engine: ENGINE,
            message,
        };
        let mut child = crate::children::command(&self.binary)
            .args([
                "-v",
                &voice,
                "-s",
                &self.words_per_minute.to_string(),
                "--stdin",
                "--stdout",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| engine_error(format!("cannot start {}: {e}", self.binary)))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let text = request.text.clone();
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
        });
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| TtsError::Timeout {
                engine: ENGINE,
                secs: self.timeout.as_secs(),
            })?
            .map_err(|e| engine_error(e.to_string()))?;
        let _ = feed.await;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        // espeak-ng may exit 0 after "Failed to read voice"; a WAV with no samples is a failure.
        if !output.status.success() || output.stdout.len() <= 44 || !stderr.is_empty() {
            // Its stderr can name local files: the log gets it, the render's error (which the
            // API shows) only what happened.
            tracing::warn!(voice, status = %output.status, stderr, "espeak-ng failed");
            let (how, _) = crate::children::ended(output.status);
            return Err(engine_error(format!(
                "espeak-ng {how}, {} bytes of audio{}; the service log has its output",
                output.stdout.len(),
                if stderr.is_empty() {
                    ""
                } else {
                    ", with errors"
                }
            )));
        }
        Ok(Audio {
            bytes: output.stdout,
            extension: "wav",
            voice_id: format!("{ENGINE}:{voice}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_are_validated() {
        assert!(valid_voice("en-us"));
        assert!(valid_voice("en+f3"));
        assert!(!valid_voice("-w/etc/passwd"));
        assert!(!valid_voice("en us"));
        assert!(!valid_voice(""));
    }

    #[tokio::test]
    async fn bare_languages_take_their_main_regional_voice() {
        let tts = Espeak::new("espeak-ng".into(), 175, Duration::from_secs(30));
        assert_eq!(tts.resolve_voice("en").await.unwrap(), "en-gb");
        assert_eq!(tts.resolve_voice("fr").await.unwrap(), "fr-fr");
        assert_eq!(tts.resolve_voice("de").await.unwrap(), "de");
        assert_eq!(tts.resolve_voice("en-US+f3").await.unwrap(), "en-us+f3");
        assert!(tts.resolve_voice("xx").await.is_err());
        // A language espeak-ng lists only as another name of a voice: Mandarin says "zh".
        assert_eq!(tts.resolve_voice("zh-cn").await.unwrap(), "cmn");
        assert_eq!(tts.resolve_voice("ko-kr").await.unwrap(), "ko");
    }

    #[tokio::test]
    async fn speaks_real_audio_with_espeak_ng() {
        let tts = Espeak::new("espeak-ng".into(), 175, Duration::from_secs(30));
        let audio = tts
            .synthesize(&SpeechRequest {
                text: "Hello from vidhook.".into(),
                voice: "en-us".into(),
                ..Default::default()
            })
            .await
            .expect("espeak-ng is installed by scripts/setup.sh");
        let info = crate::media::probe::audio_info(audio.bytes).unwrap();
        assert_eq!(info.format, "wav");
        assert!(info.seconds > 0.5 && info.seconds < 5.0, "{}", info.seconds);
        let bad = tts
            .synthesize(&SpeechRequest {
                text: "x".into(),
                voice: "xx-no-such-voice".into(),
                ..Default::default()
            })
            .await;
        assert!(matches!(bad, Err(TtsError::InvalidVoice(_))), "{bad:?}");
        assert_eq!(tts.resolve_voice("de-DE").await.unwrap(), "de");
        assert_eq!(tts.resolve_voice("en-US+f3").await.unwrap(), "en-us+f3");
    }
}
