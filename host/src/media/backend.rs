//! Where media bytes live: a local folder (the default) or an S3-compatible bucket. The media
//! store above it owns keys, URLs and signatures; a backend only stores, streams and lists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MediaError;

/// How the media route answers for a key.
pub enum Serve {
    /// A local file, served with Range support.
    File(PathBuf),
    /// A short-lived presigned URL to redirect to (the bucket serves Range itself).
    Redirect(String),
    Missing,
}

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), MediaError>;
    /// Stores the local file `file` under `key` without reading it into memory (S3: a
    /// multipart upload in fixed parts); `file` may be consumed.
    async fn put_file(&self, key: &str, file: &Path) -> Result<(), MediaError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError>;
    /// Streams `key` into the local file `dest` (for ffmpeg); false if there is no such key.
    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, MediaError>;
    async fn exists(&self, key: &str) -> Result<bool, MediaError>;
    async fn delete(&self, key: &str) -> Result<(), MediaError>;
    /// Every key under `prefix` with its last modification (unix ms).
    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, MediaError>;
    async fn serve(&self, key: &str) -> Result<Serve, MediaError>;
    /// A URL the provider may fetch `key` from directly for `ttl` (a presigned GET), or `None`
    /// when only this host serves it.
    async fn direct_url(&self, key: &str, ttl: Duration) -> Result<Option<String>, MediaError>;
}
