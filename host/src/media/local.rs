//! The default media backend: a folder on this host's disk, served by the media route.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::backend::{Backend, Serve};
use super::MediaError;

pub struct Local {
    root: PathBuf,
}

impl Local {
    pub fn new(root: PathBuf) -> Local {
        Local { root }
    }

    /// The file of a key (keys are checked by the media store before they get here).
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MediaError + '_ {
    move |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

async fn parent_dir(path: &Path) -> Result<(), MediaError> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io(path))?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Backend for Local {
    /// Atomically: a temp file beside it, then a rename.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), MediaError> {
        let path = self.path(key);
        parent_dir(&path).await?;
        let tmp = path.with_extension(format!("tmp-{}", crate::store::new_id()));
        tokio::fs::write(&tmp, bytes).await.map_err(io(&tmp))?;
        tokio::fs::rename(&tmp, &path).await.map_err(io(&path))
    }

    /// Moved when on the same file system (the store's scratch folder is), else copied.
    async fn put_file(&self, key: &str, file: &Path) -> Result<(), MediaError> {
        let path = self.path(key);
        parent_dir(&path).await?;
        if tokio::fs::rename(file, &path).await.is_err() {
            let tmp = path.with_extension(format!("tmp-{}", crate::store::new_id()));
            tokio::fs::copy(file, &tmp).await.map_err(io(&tmp))?;
            tokio::fs::rename(&tmp, &path).await.map_err(io(&path))?;
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MediaError::Io { path, source }),
        }
    }

    async fn get_file(&self, key: &str, dest: &Path) -> Result<bool, MediaError> {
        let path = self.path(key);
        match tokio::fs::copy(&path, dest).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(MediaError::Io { path, source }),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, MediaError> {
        Ok(tokio::fs::metadata(self.path(key))
            .await
            .is_ok_and(|m| m.is_file()))
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(MediaError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, i64)>, MediaError> {
        let mut found = Vec::new();
        let mut folders = vec![self.root.join(prefix)];
        while let Some(folder) = folders.pop() {
            let mut entries = match tokio::fs::read_dir(&folder).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(MediaError::Io {
                        path: folder,
                        source,
                    })
                }
            };
            while let Some(entry) = entries.next_entry().await.map_err(io(&folder))? {
                let meta = entry.metadata().await.map_err(io(&folder))?;
                let path = entry.path();
                if meta.is_dir() {
                    folders.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                found.push((relative.to_string_lossy().into_owned(), modified));
            }
        }
        Ok(found)
    }

    async fn serve(&self, key: &str) -> Result<Serve, MediaError> {
        let path = self.path(key);
        Ok(
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                Serve::File(path)
            } else {
                Serve::Missing
            },
        )
    }

    async fn direct_url(&self, _key: &str, _ttl: Duration) -> Result<Option<String>, MediaError> {
        Ok(None)
    }
}
