//! Retention: media of renders older than `[media] retention_days` is removed, except the
//! bundles (video, poster, captions: kept or pruned together) of what a CMS entry still shows
//! (the render whose content the entry was last written with), of every batch row (its results
//! file links to it) and of every digest made in the last `[media] linked_days`, and what
//! unfinished renders still need (their narration, their preview).
//! It works from what the store holds (listing `audio/`, `videos/`, `speech/` by age), so it
//! touches only media that exists, however many renders the database remembers. Presenter photos
//! (`images/`) are the operator's and never removed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{MediaError, MediaStore, PUBLIC_PREFIX};
use crate::store::Store;

/// How often the service prunes, when retention is on.
const EVERY: Duration = Duration::from_secs(6 * 3600);
/// The folders retention looks in.
const PRUNED: [&str; 4] = [
    "audio/",
    PUBLIC_PREFIX,
    crate::tts::narration::SPEECH_CACHE_PREFIX,
    super::PREVIEW_PREFIX,
];

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Default, PartialEq)]
pub struct Pruned {
    pub removed: Vec<String>,
    /// Old media kept, each with why: an entry shows it, a batch row or digest links to it, or
    /// an unfinished render needs it.
    pub kept: Vec<(String, &'static str)>,
}

/// How far back `prune` looks and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Media last modified before this (unix ms) goes, unless in use.
    pub modified_before_ms: i64,
    /// Batch rows' and digests' videos made since this are in use (linked).
    pub linked_since_ms: i64,
}

impl Cutoffs {
    /// Media older than `days`, with `[media] linked_days` from `config`.
    pub fn days(days: u64, config: &super::MediaConfig) -> Cutoffs {
        let ago = |days: u64| crate::store::now_ms() - (days * 86_400_000) as i64;
        Cutoffs {
            modified_before_ms: ago(days),
            linked_since_ms: ago(config.linked_days),
        }
    }
}

/// Removes media older than the cutoff that nothing needs; `dry` only lists it.
pub async fn prune(
    store: &Store,
    media: &MediaStore,
    cutoffs: Cutoffs,
    dry: bool,
) -> Result<Pruned, PruneError> {
    let cutoff_ms = cutoffs.modified_before_ms;
    let protected = protected_keys(store, cutoffs.linked_since_ms).await?;
    let mut pruned = Pruned::default();
    for prefix in PRUNED {
        for (key, modified) in media.list(prefix).await? {
            if modified >= cutoff_ms {
                continue;
            }
            if let Some(why) = protected.get(&key) {
                pruned.kept.push((key, why));
                continue;
            }
            if !dry {
                media.delete(&key).await?;
            }
            pruned.removed.push(key);
        }
    }
    pruned.removed.sort();
    pruned.kept.sort();
    Ok(pruned)
}

/// The keys that must stay: every file of a kept video's bundle (the MP4, its poster and
/// captions, kept or pruned together) for what an entry shows, a batch row and a digest, and
/// unfinished renders' inputs.
async fn protected_keys(
    store: &Store,
    linked_since_ms: i64,
) -> Result<BTreeMap<String, &'static str>, PruneError> {
    let mut keys = BTreeMap::new();
    for (render_id, url, shown) in store.kept_videos(linked_since_ms).await? {
        let why = if shown {
            "its bundle is the video an entry shows"
        } else {
            "its bundle is a batch row's or a digest's video (a results file or a delivered \
             digest links to it, for [media] linked_days)"
        };
        // The keep step names companions by the render (`videos/{render}.jpg`), whatever the
        // video's own key (the local preview's is `videos/preview-{render}.mp4`).
        let by_render = format!("{PUBLIC_PREFIX}{render_id}");
        let by_video = media_key(&url).map(|v| v.strip_suffix(".mp4").unwrap_or(v).to_string());
        for base in std::iter::once(by_render).chain(by_video) {
            for ext in ["mp4", "jpg", "vtt", "srt"] {
                keys.entry(format!("{base}.{ext}")).or_insert(why);
            }
        }
    }
    let unfinished = "an unfinished render needs it";
    for id in store.unfinished_render_ids().await? {
        for key in [
            format!("audio/{id}.wav"),
            crate::tts::captions::cues_key(&id),
            format!("{PUBLIC_PREFIX}preview-{id}.mp4"),
            format!("{}{id}.mp4", crate::media::PREVIEW_PREFIX),
        ] {
            keys.entry(key).or_insert(unfinished);
        }
    }
    Ok(keys)
}

/// Files grouped into their bundles for a person: `videos/ID.{jpg,mp4,vtt}` with the reason
/// they share (files of one stem and reason are one line; sorted).
pub fn bundles<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, &'a str)> {
    let mut grouped: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (key, why) in files {
        let name_at = key.rfind('/').map_or(0, |i| i + 1);
        let (stem, ext) = match key[name_at..].find('.') {
            Some(dot) => key.split_at(name_at + dot + 1),
            None => (key, ""),
        };
        grouped.entry((stem, why)).or_default().push(ext);
    }
    grouped
        .into_iter()
        .map(|((stem, why), exts)| {
            let line = match exts.as_slice() {
                [one] => format!("{stem}{one}"),
                many => format!("{stem}{{{}}}", many.join(",")),
            };
            (line, why)
        })
        .collect()
}

/// The key in one of our media URLs, whatever host name it was written with (the service's
/// public URL may have changed since, and `vidhook prune` runs without one).
fn media_key(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("/media/")?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// Prunes every [`EVERY`] while the service runs, if `retention_days` is set.
pub fn spawn(app: &std::sync::Arc<crate::app::App>, loops: &mut crate::background::Loops) {
    let days = app.config.media.retention_days;
    if days == 0 {
        return;
    }
    let app = app.clone();
    loops.spawn(move |mut stopped| async move {
        loop {
            let cutoffs = Cutoffs::days(days, &app.config.media);
            match prune(&app.store, &app.media, cutoffs, false).await {
                Ok(pruned) => tracing::info!(
                    removed = pruned.removed.len(),
                    kept = pruned.kept.len(),
                    "media retention"
                ),
                Err(err) => tracing::warn!(error = %err, "media retention failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stopped.changed() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_are_told_as_bundles() {
        let why = "old";
        let lines = super::bundles([
            ("videos/r1.mp4", why),
            ("videos/r1.jpg", why),
            ("videos/r1.vtt", why),
            ("audio/r1.cues.json", why),
            ("audio/r1.wav", why),
            ("videos/preview-r2.mp4", "shown"),
        ]);
        assert_eq!(
            lines,
            vec![
                ("audio/r1.{cues.json,wav}".to_string(), why),
                ("videos/preview-r2.mp4".to_string(), "shown"),
                ("videos/r1.{mp4,jpg,vtt}".to_string(), why),
            ]
        );
    }
}
