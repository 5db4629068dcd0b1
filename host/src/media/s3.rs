//! S3-compatible object storage through the `object_store` crate (AWS S3, MinIO, Ceph, R2, …).
//! Uploads are multipart in fixed-size parts, so memory stays flat whatever the file's size; the
//! provider fetches inputs by presigned GET URLs; our lasting video links redirect to a fresh
//! presigned URL on each request, so they outlive any one signature. Requests to the bucket go
//! through the outbound guard's client, like every request vidhook makes.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::ClientOptions;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::backend::{Backend, Serve};
use super::MediaError;
use crate::outbound::Guard;

/// Parts of a multipart upload: S3's minimum is 5 MiB (but for the last).
const PART_BYTES: usize = 8 << 20;
/// Parts in flight at once: with [`PART_BYTES`], the memory an upload may hold.
const PARTS_IN_FLIGHT: usize = 2;
/// How long a redirect from one of our lasting links stays valid.
const REDIRECT_TTL: Duration = Duration::from_secs(3600);
/// Longest one request to the bucket may take (a part is 8 MiB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Hands `object_store` the outbound guard's client instead of one of its own.
#[derive(Debug)]
struct Guarded(reqwest::Client);

impl HttpConnector for Guarded {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

/// `[media.s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// For S3-compatible servers ("https://minio.example.com"); default: AWS.
    pub endpoint: Option<String>,
    /// Write `access_key_id = "${S3_ACCESS_KEY_ID}"`.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every key ("vidhook/").
    #[serde(default)]
    pub prefix: String,
}

fn default_region() -> String {
    "us-east-1".into()
}

pub struct S3 {
    store: AmazonS3,
    prefix: String,
}

fn s3_error(key: &str) -> impl FnOnce(object_store::Error) -> MediaError + '_ {
    move |e| MediaError::Remote(format!("{key}: {e}"))
}

impl S3 {
    /// The endpoint passes `guard` (https, or plain http where the guard allows it; a private
    /// address only where allowed), and every request goes through the guard's client.
    pub fn new(config: &S3Config, guard: &Guard) -> Result<S3, MediaError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_http_connector(Guarded(guard.client(REQUEST_TIMEOUT)));
        if let Some(endpoint) = &config.endpoint {
            let url = guard
                .parse_url(endpoint)
                .map_err(|e| MediaError::Remote(format!("[media.s3] endpoint: {e}")))?;
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(url.scheme() == "http");
        }
        let store = builder
            .build()
            .map_err(|e| MediaError::Remote(format!("[media.s3]: {e}")))?;
        Ok(S3 {
            store,
            prefix: config.prefix.clone(),
        })
    }

    fn object(&self, key: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{key}", self.prefix))
    }
}

#[async_trait::async_trait]
impl Backend for S3 {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), MediaError> {
        self.store
            .put(&self.object(key), PutPayload::from(bytes))
            .await
            .map_err(s3_error(key))?;
        Ok(())
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<(), MediaError> {
        let io = |source| MediaError::Io {
            path: file.to_path_buf(),
            source,
        };
        let upload = self
            .store
            .put_multipart(&self.object(key))
            .await
            .map_err(s3_error(key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut reader = tokio::fs::File::open(file).await.map_err(io)?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = reader.read(&mut buffer).await.map_err(io)?;
            if read == 0 {
                break;
            }
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(s3_error(key))?;
            writer.write(&buffer[..read]);
        }
        writer.finish().await.map_err(s3_error(key))?;
        let _ = tokio::fs::remove_file(file).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        match self.store.get(&self.object(key)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(s3_error(key))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error(key)(e)),
        }
    }

    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, MediaError> {
        let result = match self.store.get(&self.object(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(s3_error(key)(e)),
        };
        let io = |source| MediaError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(s3_error(key))?)
                .await
                .map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok(true)
    }

    async fn exists(&self, key: &str) -> Result<bool, MediaError> {
        match self.store.head(&self.object(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_error(key)(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        match self.store.delete(&self.object(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_error(key)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, MediaError> {
        let under = self.object(prefix.trim_end_matches('/'));
        let mut listing = self.store.list(Some(&under));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(s3_error(prefix))?;
            let location = meta.location.to_string();
            let key = location
                .strip_prefix(&self.prefix)
                .unwrap_or(&location)
                .to_string();
            found.push((key, meta.last_modified.timestamp_millis()));
        }
        Ok(found)
    }

    async fn serve(&self, key: &str) -> Result<Serve, MediaError> {
        if !self.exists(key).await? {
            return Ok(Serve::Missing);
        }
        Ok(Serve::Redirect(
            self.direct_url(key, REDIRECT_TTL)
                .await?
                .unwrap_or_default(),
        ))
    }

    async fn direct_url(&self, key: &str, ttl: Duration) -> Result<Option<String>, MediaError> {
        let url = self
            .store
            .signed_url(http::Method::GET, &self.object(key), ttl)
            .await
            .map_err(s3_error(key))?;
        Ok(Some(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> S3Config {
        S3Config {
            bucket: "b".into(),
            region: default_region(),
            endpoint: Some(endpoint.into()),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            prefix: String::new(),
        }
    }

    #[test]
    fn the_endpoint_passes_the_outbound_guard() {
        let strict = Guard::strict();
        let err = S3::new(&config("https://127.0.0.1:9"), &strict)
            .err()
            .unwrap();
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = S3::new(&config("http://s3.example.com"), &strict)
            .err()
            .unwrap();
        assert!(err.to_string().contains("plain http"), "{err}");
        assert!(S3::new(&config("https://s3.example.com"), &strict).is_ok());
        let dev = crate::outbound::Config {
            allow_private: vec!["127.0.0.0/8".into()],
        };
        let guard = Guard::new(&dev, true).unwrap();
        assert!(S3::new(&config("http://127.0.0.1:9"), &guard).is_ok());
    }
}
