//! Installing plugins and finding them again: versions in the database, component bytes in
//! `<data_dir>/plugins/<sha256>.wasm`, compiled code in `<data_dir>/plugins/cache/` keyed by
//! digest and engine configuration (a restart loads instead of recompiling). Installing a new
//! version takes effect for the next render without a restart; a version that asks for more
//! capabilities than its predecessor needs an explicit grant.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::manifest::{Manifest, ManifestError};
use super::{
    bindings, digest_bindings, shortening_bindings, Entry, LoadedPlugin, PluginFailure, PluginHost,
    WIT_PACKAGE, WIT_VERSION,
};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component was built for {found}; this host supports {WIT_PACKAGE}@{WIT_VERSION} (0.1.x). Rebuild it against this host's wit/")]
    UnsupportedWit { found: String },
    #[error("the component does not fit {WIT_PACKAGE}@{WIT_VERSION}: {0}")]
    Incompatible(String),
    #[error("{id} is already installed with other contents (digest {existing}): give the new build a new version")]
    VersionExists { id: String, existing: String },
    #[error("{id} asks for more than {previous} was granted:\n  + {}\nInstall again with --grant (API: \"grant\": true) to allow this", added.join("\n  + "))]
    NeedsGrant {
        id: String,
        previous: String,
        added: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("plugin files: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of an install.
pub struct Installed {
    pub plugin: Arc<LoadedPlugin>,
    /// Capabilities granted beyond the previous version's (empty for a first install).
    pub granted: Vec<String>,
    /// The same bytes were installed under this version already.
    pub unchanged: bool,
}

impl PluginHost {
    /// Checks and installs a component: its WIT version, that it instantiates against this host,
    /// and that it asks for no capability the previous version lacked unless `grant` is given.
    pub async fn install(
        &self,
        bytes: &[u8],
        manifest: Manifest,
        grant: bool,
    ) -> Result<Installed, InstallError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let id = format!("{}@{}", manifest.name, manifest.version);
        if let Some(existing) = self
            .db
            .plugin(&manifest.name, Some(&manifest.version))
            .await?
        {
            if existing.digest != digest {
                return Err(InstallError::VersionExists {
                    id,
                    existing: existing.digest,
                });
            }
            let plugin = self
                .load(&existing.digest, manifest)
                .await
                .map_err(|e| InstallError::Incompatible(e.to_string()))?;
            return Ok(Installed {
                plugin,
                granted: Vec::new(),
                unchanged: true,
            });
        }
        let granted = match self.db.plugin(&manifest.name, None).await? {
            Some(previous) => {
                let previous_manifest = Manifest::parse(&previous.manifest)?;
                let added = manifest.added_capabilities(&previous_manifest);
                if !added.is_empty() && !grant {
                    let previous = format!("{}@{}", previous.name, previous.version);
                    return Err(InstallError::NeedsGrant {
                        id,
                        previous,
                        added,
                    });
                }
                added
            }
            None => Vec::new(),
        };
        let plugin = self.prepare(bytes, &digest, manifest.clone()).await?;
        self.db
            .put_plugin(
                &manifest.name,
                &manifest.version,
                &digest,
                &manifest.to_toml(),
                false,
            )
            .await?;
        tracing::info!(plugin = %id, digest = %digest, ?granted, "plugin installed");
        Ok(Installed {
            plugin,
            granted,
            unchanged: false,
        })
    }

    /// Registers a plugin shipped inside this binary (trusted: no grant needed).
    pub(super) async fn install_bundled(
        &self,
        bytes: &[u8],
        manifest: Manifest,
    ) -> anyhow::Result<()> {
        let digest = hex::encode(Sha256::digest(bytes));
        self.prepare(bytes, &digest, manifest.clone()).await?;
        self.db
            .put_plugin(
                &manifest.name,
                &manifest.version,
                &digest,
                &manifest.to_toml(),
                true,
            )
            .await?;
        Ok(())
    }

    /// Stores the bytes by digest, compiles (or loads the cached compilation) and checks the WIT.
    async fn prepare(
        &self,
        bytes: &[u8],
        digest: &str,
        manifest: Manifest,
    ) -> Result<Arc<LoadedPlugin>, InstallError> {
        let path = self.dir.join(format!("{digest}.wasm"));
        if !path.exists() {
            tokio::fs::create_dir_all(&self.dir).await?;
            let tmp = path.with_extension(format!("tmp-{}", crate::store::new_id()));
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &path).await?;
        }
        self.load(digest, manifest).await
    }

    /// A plugin for a source's chain entry: `name` (latest installed) or `name@version`.
    pub async fn resolve(&self, reference: &str) -> Result<Arc<LoadedPlugin>, PluginFailure> {
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        let row = self
            .db
            .plugin(name, version)
            .await
            .map_err(|e| PluginFailure::Load {
                plugin: reference.into(),
                message: e.to_string(),
            })?
            .ok_or_else(|| PluginFailure::NotInstalled(reference.to_string()))?;
        self.load_stored(reference, &row.digest, &row.manifest)
            .await
    }

    /// The plugin a chain entry of `source` runs: a development build serving that source
    /// (`vidhook plugin dev`) if there is one, else [`PluginHost::resolve`].
    pub async fn resolve_for(
        &self,
        source: &str,
        reference: &str,
    ) -> Result<Arc<LoadedPlugin>, PluginFailure> {
        let name = super::config::plugin_name(reference);
        match self.db.dev_build(source, name).await {
            Ok(Some((digest, manifest))) => self.load_stored(reference, &digest, &manifest).await,
            Ok(None) => self.resolve(reference).await,
            Err(e) => Err(PluginFailure::Load {
                plugin: reference.into(),
                message: e.to_string(),
            }),
        }
    }

    /// A stored component (by digest) with its stored manifest, for chain entry `reference`.
    async fn load_stored(
        &self,
        reference: &str,
        digest: &str,
        manifest: &str,
    ) -> Result<Arc<LoadedPlugin>, PluginFailure> {
        let load_error = |message: String| PluginFailure::Load {
            plugin: reference.into(),
            message,
        };
        let manifest = Manifest::parse(manifest).map_err(|e| load_error(e.to_string()))?;
        self.load(digest, manifest)
            .await
            .map_err(|e| load_error(e.to_string()))
    }

    /// Makes `plugin` (loaded with [`PluginHost::load_uninstalled`], so its bytes are stored)
    /// serve `source` in place of the installed versions of its name, in every host process on
    /// this database, until [`PluginHost::end_dev_build`].
    pub async fn serve_dev_build(
        &self,
        source: &str,
        plugin: &LoadedPlugin,
    ) -> Result<(), InstallError> {
        self.db
            .put_dev_build(
                source,
                &plugin.manifest.name,
                &plugin.digest,
                &plugin.manifest.to_toml(),
            )
            .await?;
        Ok(())
    }

    /// Ends [`PluginHost::serve_dev_build`].
    pub async fn end_dev_build(&self, source: &str, name: &str) -> Result<(), InstallError> {
        self.db.end_dev_build(source, name).await?;
        Ok(())
    }

    /// A component that is not installed (for `vidhook plugin test`, `plugin dev` and the
    /// tests): compiled off the runtime's threads and cached on disk by digest like an installed
    /// one, so a second run of a 13 MB JavaScript component loads instead of compiling again.
    pub async fn load_uninstalled(
        &self,
        bytes: &[u8],
        manifest: Manifest,
    ) -> Result<Arc<LoadedPlugin>, InstallError> {
        self.prepare(bytes, &hex::encode(Sha256::digest(bytes)), manifest)
            .await
    }

    async fn load(
        &self,
        digest: &str,
        manifest: Manifest,
    ) -> Result<Arc<LoadedPlugin>, InstallError> {
        let key = format!("{digest}/{}@{}", manifest.name, manifest.version);
        if let Some(plugin) = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if plugin.manifest == manifest {
                return Ok(plugin.clone());
            }
        }
        let component = self.compile_cached(digest).await?;
        let plugin = self.link(component, digest.to_string(), manifest)?;
        self.loaded
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, plugin.clone());
        Ok(plugin)
    }

    fn link(
        &self,
        component: Component,
        digest: String,
        manifest: Manifest,
    ) -> Result<Arc<LoadedPlugin>, InstallError> {
        check_wit_version(&self.engine, &component)?;
        let incompatible = |e: wasmtime::Error| InstallError::Incompatible(format!("{e:#}"));
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(incompatible)?;
        let pre = if let Ok(shortening) = shortening_bindings::ShorteningPluginPre::new(pre.clone())
        {
            Entry::Shortening(shortening)
        } else {
            match bindings::PluginPre::new(pre.clone()) {
                Ok(plan) => Entry::Plan(plan),
                // Not a chain plugin: a digest plugin, or neither (the first error says why).
                Err(not_plan) => digest_bindings::DigestPre::new(pre)
                    .map(Entry::Digest)
                    .map_err(|_| incompatible(not_plan))?,
            }
        };
        Ok(Arc::new(LoadedPlugin {
            manifest,
            digest,
            pre,
        }))
    }

    /// The compiled component, from the on-disk cache when this engine compiled it before.
    async fn compile_cached(&self, digest: &str) -> Result<Component, InstallError> {
        let cache = self.cache_path(digest);
        if cache.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (part of the file name), in our own data directory.
            match unsafe { Component::deserialize_file(&self.engine, &cache) } {
                Ok(component) => {
                    tracing::info!(digest, "plugin loaded from the compiled cache");
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(digest, error = %e, "compiled cache unreadable; recompiling")
                }
            }
        }
        let bytes = tokio::fs::read(self.dir.join(format!("{digest}.wasm"))).await?;
        let engine = self.engine.clone();
        let started = std::time::Instant::now();
        let (component, compiled) = tokio::task::spawn_blocking(move || {
            let component = Component::new(&engine, &bytes)?;
            let compiled = component.serialize()?;
            Ok::<_, wasmtime::Error>((component, compiled))
        })
        .await
        .map_err(|e| InstallError::NotAComponent(e.to_string()))?
        .map_err(|e| InstallError::NotAComponent(format!("{e:#}")))?;
        tokio::fs::create_dir_all(cache.parent().expect("cache has a parent")).await?;
        let tmp = cache.with_extension(format!("tmp-{}", crate::store::new_id()));
        tokio::fs::write(&tmp, compiled).await?;
        tokio::fs::rename(&tmp, &cache).await?;
        tracing::info!(
            digest,
            ms = started.elapsed().as_millis() as u64,
            "plugin compiled and cached"
        );
        Ok(component)
    }

    fn cache_path(&self, digest: &str) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        self.dir
            .join("cache")
            .join(format!("{digest}-{:016x}.cwasm", hasher.finish()))
    }
}

/// Refuses a component that imports another version of our WIT package, naming both versions.
/// Below 1.0 a minor version is a major one; within it, the linker binds older patch releases.
fn check_wit_version(engine: &wasmtime::Engine, component: &Component) -> Result<(), InstallError> {
    let host: Vec<u64> = WIT_VERSION
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    for (name, _) in component.component_type().imports(engine) {
        let Some(rest) = name.strip_prefix(&format!("{WIT_PACKAGE}/")) else {
            continue;
        };
        let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        let found: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        let compatible = found.len() == 3
            && found[0] == host[0]
            && (host[0] > 0 || found[1] == host[1])
            && (found[1] < host[1] || (found[1] == host[1] && found[2] <= host[2]));
        if !compatible {
            return Err(InstallError::UnsupportedWit {
                found: format!("{WIT_PACKAGE}@{version}"),
            });
        }
    }
    Ok(())
}
