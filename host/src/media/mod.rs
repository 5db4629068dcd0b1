//! Where audio, photos and videos live, and the URLs by which a provider fetches them.
//!
//! The default is a local folder served by this host. Inputs (audio, photos) are reachable only
//! through signed URLs that expire (HMAC-SHA256 over key and expiry), because they are unpublished
//! material; finished videos (`videos/…`) are public, because their URL is written into the CMS
//! and embedded in pages.

pub mod probe;

use std::path::{Component, Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid media key {0:?}")]
    InvalidKey(String),
    #[error("media {0:?}: missing, expired or invalid signature")]
    Unauthorized(String),
    #[error("media I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Keys under this prefix (finished videos the CMS embeds) are served without a signature.
pub const PUBLIC_PREFIX: &str = "videos/";

#[derive(Clone)]
pub struct MediaStore {
    root: PathBuf,
    public_base: String,
    secret: Vec<u8>,
    ttl_secs: u64,
}

impl MediaStore {
    /// `public_base` is the URL prefix at which this host is reached (no trailing slash).
    pub fn new(root: PathBuf, public_base: String, secret: Vec<u8>, ttl_secs: u64) -> Self {
        MediaStore {
            root,
            public_base: public_base.trim_end_matches('/').to_string(),
            secret,
            ttl_secs,
        }
    }

    /// Loads the signing key from `path`, creating a random one on first use, so signed URLs
    /// survive restarts.
    pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, MediaError> {
        let io = |source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read(path) {
            Ok(key) if key.len() >= 32 => Ok(key),
            _ => {
                let key: [u8; 32] = rand::random();
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(path, key).map_err(io)?;
                Ok(key.to_vec())
            }
        }
    }

    /// The file behind a key. Keys are relative paths without `..`.
    pub fn path(&self, key: &str) -> Result<PathBuf, MediaError> {
        let relative = Path::new(key);
        let safe = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(MediaError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(relative))
    }

    /// Writes bytes under `key` (atomically: temp file + rename).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<PathBuf, MediaError> {
        let path = self.path(key)?;
        let io = |source| MediaError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", crate::store::new_id()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(path)
    }

    /// A folder for work files on the store's own file system, so [`MediaStore::put_file`]
    /// moves them in place instead of copying.
    pub async fn scratch(&self) -> Result<tempfile::TempDir, MediaError> {
        let dir = self.root.join(".scratch");
        let io = |source| MediaError::Io {
            path: dir.clone(),
            source,
        };
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(&dir)
            .map_err(io)
    }

    /// Stores the file at `file` under `key` (moved when it is on the same file system, else
    /// copied and then removed), without reading it into memory.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), MediaError> {
        let path = self.path(key)?;
        let io = |source| MediaError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        if tokio::fs::rename(file, &path).await.is_err() {
            let tmp = path.with_extension(format!("tmp-{}", crate::store::new_id()));
            tokio::fs::copy(file, &tmp).await.map_err(io)?;
            tokio::fs::rename(&tmp, &path).await.map_err(io)?;
            let _ = tokio::fs::remove_file(file).await;
        }
        Ok(())
    }

    /// The bytes under `key`, or `None` if there are none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MediaError::Io { path, source }),
        }
    }

    /// The URL of a key: public for videos, signed and expiring for everything else.
    pub fn url(&self, key: &str) -> String {
        if key.starts_with(PUBLIC_PREFIX) {
            return format!("{}/media/{key}", self.public_base);
        }
        let expires = crate::store::now_ms() / 1000 + self.ttl_secs as i64;
        let sig = hex::encode(self.mac(key, expires).finalize().into_bytes());
        format!(
            "{}/media/{key}?expires={expires}&sig={sig}",
            self.public_base
        )
    }

    /// The key of one of our own media URLs, if `url` is one.
    pub fn own_key<'u>(&self, url: &'u str) -> Option<&'u str> {
        let rest = url
            .strip_prefix(&self.public_base)?
            .strip_prefix("/media/")?;
        Some(rest.split('?').next().unwrap_or(rest))
    }

    /// A fresh URL for one of our own media URLs whose key is in `keys` (signatures expire; a
    /// render may wait longer), or `url` unchanged otherwise. A plan may name only its own
    /// render's media: any other key of ours keeps whatever signature it came with (none, for a
    /// key a plugin made up), so it cannot be used to publish another render's inputs.
    pub fn refresh(&self, url: &str, keys: &[impl AsRef<str>]) -> String {
        match self.own_key(url) {
            Some(key) if keys.iter().any(|k| k.as_ref() == key) => self.url(key),
            _ => url.to_string(),
        }
    }

    /// For one of our own media URLs: its bytes read from the store, after checking its
    /// signature exactly as the media route does (`None` if the URL is not ours). Our own inputs
    /// never go out to the network and back.
    pub async fn read_own(&self, url: &str) -> Option<Result<Vec<u8>, MediaError>> {
        let key = self.own_key(url)?;
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let mut expires = None;
        let mut sig = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "expires" => expires = value.parse::<i64>().ok(),
                "sig" => sig = Some(value.into_owned()),
                _ => {}
            }
        }
        if !self.authorize(key, expires, sig.as_deref()) {
            return Some(Err(MediaError::Unauthorized(key.to_string())));
        }
        let path = match self.path(key) {
            Ok(path) => path,
            Err(err) => return Some(Err(err)),
        };
        Some(
            tokio::fs::read(&path)
                .await
                .map_err(|source| MediaError::Io { path, source }),
        )
    }

    /// Copies a local file into the store under a content-addressed key and returns that key.
    pub async fn import_file(&self, prefix: &str, file: &Path) -> Result<String, MediaError> {
        use sha2::Digest;
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|source| MediaError::Io {
                path: file.to_path_buf(),
                source,
            })?;
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("bin")
            .to_ascii_lowercase();
        let key = format!(
            "{prefix}/{}.{ext}",
            hex::encode(sha2::Sha256::digest(&bytes))
        );
        if !self.path(&key)?.exists() {
            self.put(&key, &bytes).await?;
        }
        Ok(key)
    }

    /// Whether a request for `key` may be served.
    pub fn authorize(&self, key: &str, expires: Option<i64>, sig: Option<&str>) -> bool {
        if key.starts_with(PUBLIC_PREFIX) {
            return true;
        }
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return false;
        };
        if expires < crate::store::now_ms() / 1000 {
            return false;
        }
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        // Constant-time, length-checked comparison.
        self.mac(key, expires).verify_slice(&sig).is_ok()
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key size");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

/// `[media]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Key for signed media URLs; default: a random key kept in `<data_dir>/media.key`.
    pub signing_secret: Option<String>,
    /// How long a signed URL (audio, photo) stays valid.
    pub url_ttl_secs: u64,
    /// Copy each finished video into this store (with captions and a poster) and write that
    /// lasting URL back, instead of the provider's, which expires.
    pub keep_videos: bool,
    /// The largest video copied; a larger one is refused.
    pub max_video_bytes: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            signing_secret: None,
            url_ttl_secs: 6 * 3600,
            keep_videos: true,
            max_video_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MediaStore {
        MediaStore::new("/tmp/m".into(), "http://h:1/".into(), b"k".repeat(32), 60)
    }

    fn query(url: &str) -> (Option<i64>, Option<String>) {
        let q = url.split_once('?').unwrap().1;
        let mut expires = None;
        let mut sig = None;
        for pair in q.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().ok(),
                ("sig", v) => sig = Some(v.to_string()),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn signed_urls_verify_and_resist_tampering() {
        let media = store();
        let url = media.url("audio/a.wav");
        assert!(url.starts_with("http://h:1/media/audio/a.wav?expires="));
        let (expires, sig) = query(&url);
        assert!(media.authorize("audio/a.wav", expires, sig.as_deref()));
        assert!(!media.authorize("audio/b.wav", expires, sig.as_deref()));
        assert!(!media.authorize("audio/a.wav", expires.map(|e| e + 1), sig.as_deref()));
        assert!(!media.authorize("audio/a.wav", expires, Some("")));
        assert!(!media.authorize("audio/a.wav", None, None));
        let past = crate::store::now_ms() / 1000 - 1;
        let sig = hex::encode(media.mac("audio/a.wav", past).finalize().into_bytes());
        assert!(
            !media.authorize("audio/a.wav", Some(past), Some(&sig)),
            "expired"
        );
    }

    #[test]
    fn refresh_resigns_only_the_renders_own_keys() {
        let media = store();
        let old = "http://h:1/media/audio/a.wav?expires=1&sig=00";
        let fresh = media.refresh(old, &["audio/a.wav"]);
        let (expires, sig) = query(&fresh);
        assert!(media.authorize("audio/a.wav", expires, sig.as_deref()));
        assert_eq!(
            media.refresh("https://cdn/x.png", &["audio/a.wav"]),
            "https://cdn/x.png"
        );
        // Another render's audio named in a plan keeps its (here: expired) signature.
        let other = "http://h:1/media/audio/other.wav?expires=1&sig=00";
        assert_eq!(media.refresh(other, &["audio/a.wav"]), other);
    }

    #[tokio::test]
    async fn our_own_urls_are_read_from_the_store_only_when_signed() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path().into(), "http://h:1".into(), b"k".repeat(32), 60);
        media.put("audio/a.wav", b"RIFF").await.unwrap();
        let signed = media.url("audio/a.wav");
        assert_eq!(media.read_own(&signed).await.unwrap().unwrap(), b"RIFF");
        let forged = "http://h:1/media/audio/a.wav?expires=99999999999&sig=00";
        assert!(media.read_own(forged).await.unwrap().is_err());
        assert!(media
            .read_own("http://h:1/media/../data/vidhook.db")
            .await
            .unwrap()
            .is_err());
        assert!(media.read_own("https://elsewhere/x").await.is_none());
    }

    #[test]
    fn videos_are_public_and_keys_cannot_escape() {
        let media = store();
        assert_eq!(media.url("videos/r.mp4"), "http://h:1/media/videos/r.mp4");
        assert!(media.authorize("videos/r.mp4", None, None));
        assert!(media.path("../etc/passwd").is_err());
        assert!(media.path("/etc/passwd").is_err());
        assert!(media.path("a/./b").is_ok());
    }
}
