//! Where audio, photos and videos live, and the URLs by which a provider fetches them.
//!
//! The bytes live in a [`Backend`]: a local folder served by this host (the default) or an
//! S3-compatible bucket. Inputs (audio, photos) are reachable only through signed URLs that
//! expire (HMAC-SHA256 over key and expiry), because they are unpublished material; finished
//! videos and their companions (`videos/…`) are public, because their URL is written into the
//! CMS and embedded in pages. With a bucket, the provider gets presigned bucket URLs for inputs,
//! and our lasting video links redirect to a fresh presigned URL.

mod backend;
mod local;
pub mod probe;
pub mod retention;
mod s3;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use backend::{Backend, Serve};
pub use local::Local;
pub use s3::{S3Config, S3};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid media key {0:?}")]
    InvalidKey(String),
    #[error("media {0:?}: missing, expired or invalid signature")]
    Unauthorized(String),
    #[error("media {0:?} does not exist")]
    NotFound(String),
    #[error("media I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object storage: {0}")]
    Remote(String),
}

/// Keys under this prefix (finished videos the CMS embeds) are served without a signature.
pub const PUBLIC_PREFIX: &str = "videos/";

/// The $0 previews of renders awaiting approval: private (a signed URL only), given out only to
/// editors and up, each link short-lived ([`PREVIEW_LINK_TTL`]).
pub const PREVIEW_PREFIX: &str = "previews/";

/// How long a link to an approval preview works.
pub const PREVIEW_LINK_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct MediaStore {
    backend: Arc<dyn Backend>,
    /// Work files (downloads, posters) on local disk, beside a local backend's folder.
    scratch_root: PathBuf,
    public_base: String,
    secret: Vec<u8>,
    ttl_secs: u64,
}

impl MediaStore {
    /// `public_base` is the URL prefix at which this host is reached (no trailing slash).
    pub fn new(
        backend: Arc<dyn Backend>,
        scratch_root: PathBuf,
        public_base: String,
        secret: Vec<u8>,
        ttl_secs: u64,
    ) -> Self {
        MediaStore {
            backend,
            scratch_root,
            public_base: public_base.trim_end_matches('/').to_string(),
            secret,
            ttl_secs,
        }
    }

    /// A store on the local folder `root` (scratch files in `root/.scratch`).
    pub fn local(root: PathBuf, public_base: String, secret: Vec<u8>, ttl_secs: u64) -> Self {
        let scratch = root.join(".scratch");
        MediaStore::new(
            Arc::new(Local::new(root)),
            scratch,
            public_base,
            secret,
            ttl_secs,
        )
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

    /// `key` if it is a relative path without `..` (and not a scratch file).
    pub fn check_key(key: &str) -> Result<&str, MediaError> {
        let relative = Path::new(key);
        let safe = !key.is_empty()
            && !key.starts_with(".scratch")
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if safe {
            Ok(key)
        } else {
            Err(MediaError::InvalidKey(key.to_string()))
        }
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), MediaError> {
        self.backend
            .put(Self::check_key(key)?, bytes.to_vec())
            .await
    }

    /// Stores a local file without reading it into memory; the file is consumed.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), MediaError> {
        self.backend.put_file(Self::check_key(key)?, file).await
    }

    /// The bytes under `key`, or `None` if there are none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        self.backend.get(Self::check_key(key)?).await
    }

    /// Streams `key` into the local file `dest`.
    pub async fn get_file(&self, key: &str, dest: &Path) -> Result<(), MediaError> {
        match self.backend.get_file(Self::check_key(key)?, dest).await? {
            true => Ok(()),
            false => Err(MediaError::NotFound(key.to_string())),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, MediaError> {
        self.backend.exists(Self::check_key(key)?).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        self.backend.delete(Self::check_key(key)?).await
    }

    /// Keys under `prefix` with their last modification (unix ms).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, MediaError> {
        self.backend.list(prefix).await
    }

    /// How the media route answers for `key`.
    pub async fn serve(&self, key: &str) -> Result<Serve, MediaError> {
        self.backend.serve(Self::check_key(key)?).await
    }

    /// A folder for work files, removed when dropped.
    pub async fn scratch(&self) -> Result<tempfile::TempDir, MediaError> {
        let dir = &self.scratch_root;
        let io = |source| MediaError::Io {
            path: dir.clone(),
            source,
        };
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(dir)
            .map_err(io)
    }

    /// The URL of a key: public for videos, signed and expiring for everything else.
    pub fn url(&self, key: &str) -> String {
        self.url_for(key, Duration::from_secs(self.ttl_secs))
    }

    /// A link to the approval preview a render keeps (its key; an older render's full URL is
    /// returned as it is), signed and valid for [`PREVIEW_LINK_TTL`].
    pub fn preview_link(&self, stored: &str) -> String {
        if stored.contains("://") {
            return stored.to_string();
        }
        self.url_for(stored, PREVIEW_LINK_TTL)
    }

    /// [`MediaStore::url`] with its own lifetime for a signed URL.
    fn url_for(&self, key: &str, ttl: Duration) -> String {
        if key.starts_with(PUBLIC_PREFIX) {
            return format!("{}/media/{key}", self.public_base);
        }
        let expires = crate::store::now_ms() / 1000 + ttl.as_secs() as i64;
        let sig = hex::encode(self.mac(key, expires).finalize().into_bytes());
        format!(
            "{}/media/{key}?expires={expires}&sig={sig}",
            self.public_base
        )
    }

    /// The URL a provider should fetch one of our (signed, valid) media URLs by: with a bucket,
    /// a presigned bucket URL valid as long as ours; otherwise `url` itself.
    pub async fn external_url(&self, url: &str) -> Result<String, MediaError> {
        let Some(Ok(key)) = self.signed_own_key(url) else {
            return Ok(url.to_string());
        };
        let ttl = Duration::from_secs(self.ttl_secs.max(60));
        Ok(self
            .backend
            .direct_url(Self::check_key(key)?, ttl)
            .await?
            .unwrap_or_else(|| url.to_string()))
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
        let key = match self.signed_own_key(url)? {
            Ok(key) => key,
            Err(err) => return Some(Err(err)),
        };
        Some(match self.get(key).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(MediaError::NotFound(key.to_string())),
            Err(err) => Err(err),
        })
    }

    /// For one of our own media URLs (`None` otherwise): its key if its signature holds, as the
    /// media route checks it.
    fn signed_own_key<'u>(&self, url: &'u str) -> Option<Result<&'u str, MediaError>> {
        let key = self.own_key(url)?;
        let (expires, sig) = signature_of(url);
        Some(if self.authorize(key, expires, sig.as_deref()) {
            Ok(key)
        } else {
            Err(MediaError::Unauthorized(key.to_string()))
        })
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
        if !self.exists(&key).await? {
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

/// The `expires` and `sig` query parameters of one of our media URLs.
fn signature_of(url: &str) -> (Option<i64>, Option<String>) {
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
    (expires, sig)
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
    /// Remove media of renders older than this many days (0: keep everything), except what a
    /// CMS entry still shows.
    pub retention_days: u64,
    /// A batch row's or a digest's video (no CMS entry shows it; a results file or a delivered
    /// digest links to it) is kept this many days after it was made, whatever `retention_days`.
    pub linked_days: u64,
    /// An S3-compatible bucket instead of the local folder (`[media.s3]`).
    pub s3: Option<S3Config>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            signing_secret: None,
            url_ttl_secs: 6 * 3600,
            keep_videos: true,
            max_video_bytes: 2 * 1024 * 1024 * 1024,
            retention_days: 0,
            linked_days: 90,
            s3: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MediaStore {
        MediaStore::local("/tmp/m".into(), "http://h:1/".into(), b"k".repeat(32), 60)
    }

    #[test]
    fn signed_urls_verify_and_resist_tampering() {
        let media = store();
        let url = media.url("audio/a.wav");
        assert!(url.starts_with("http://h:1/media/audio/a.wav?expires="));
        let (expires, sig) = signature_of(&url);
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
        let (expires, sig) = signature_of(&fresh);
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
        let media = MediaStore::local(dir.path().into(), "http://h:1".into(), b"k".repeat(32), 60);
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
        assert!(MediaStore::check_key("../etc/passwd").is_err());
        assert!(MediaStore::check_key("/etc/passwd").is_err());
        assert!(MediaStore::check_key(".scratch/work-1/video.mp4").is_err());
        assert!(MediaStore::check_key("a/./b").is_ok());
    }
}
