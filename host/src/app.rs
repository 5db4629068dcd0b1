//! `App`: everything a request handler or a worker needs, built once from the configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::cms::CmsAdapter;
use crate::config::Config;
use crate::media::MediaStore;
use crate::plugins::{PluginHost, Policy};
use crate::store::Store;
use crate::tts::Speakers;

/// The plugin host the configuration describes (also used by the `plugin` commands).
pub async fn plugin_host(config: &Config, store: Store) -> anyhow::Result<PluginHost> {
    let policy = Policy {
        max: config.plugins.max_limits(),
        allow_loopback_hosts: config.plugins.allow_loopback_hosts,
        secrets: config.plugins.secrets.clone(),
        audio_limits: config.audio_limits(),
    };
    PluginHost::new(store, config.data_dir.join("plugins"), policy).await
}

pub struct App {
    pub config: Config,
    pub store: Store,
    pub plugins: PluginHost,
    /// The speech engines, by name.
    pub tts: Speakers,
    pub media: MediaStore,
    /// The video hosts, and the order each source uses them in.
    pub hosts: crate::generation::Hosts,
    /// The local $0 preview provider, for the approval gate whatever the paid hosts are.
    pub preview: Arc<crate::generation::Preview>,
    pub sources: BTreeMap<String, Arc<dyn CmsAdapter>>,
    /// For input checks (fetching image and audio as the provider would).
    pub inputs: crate::checks::Fetcher,
    /// Every URL content or a plugin names passes it.
    pub guard: crate::outbound::Guard,
    /// Authenticated webhook work in flight (`max_inflight_webhooks`); see `ingress`.
    pub webhook_slots: tokio::sync::Semaphore,
    /// Workspace previews running at once (each runs the plugin chain; see `crate::preview`).
    pub preview_slots: tokio::sync::Semaphore,
    /// Authenticated deliveries per source per second (`[listener]`); `None`: no limit.
    pub delivery_rate: Option<governor::DefaultKeyedRateLimiter<String>>,
    /// Sign-ins per source address (`[listener] sign_ins_per_address_per_minute`).
    pub sign_in_rate: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// Wakes idle workers when new work is committed.
    pub wake: Notify,
    /// The URL at which providers and browsers reach this host.
    pub public_url: String,
    /// The ffmpeg executable (previews, posters).
    pub ffmpeg: String,
    hook_key: Vec<u8>,
}

/// The media store the configuration names (a local folder, or `[media.s3]`'s bucket), serving
/// under `public_url`, and its signing key.
pub fn media_store(config: &Config, public_url: &str) -> anyhow::Result<(MediaStore, Vec<u8>)> {
    let secret = match &config.media.signing_secret {
        Some(secret) => secret.as_bytes().to_vec(),
        None => MediaStore::load_or_create_key(&config.data_dir.join("media.key"))?,
    };
    let folder = config.data_dir.join("media");
    let store = match &config.media.s3 {
        None => MediaStore::local(
            folder,
            public_url.to_string(),
            secret.clone(),
            config.media.url_ttl_secs,
        ),
        Some(s3) => {
            let guard = crate::outbound::Guard::new(&config.outbound, config.allow_plain_http())
                .map_err(anyhow::Error::msg)?;
            let backend = crate::media::S3::new(s3, &guard)?;
            MediaStore::new(
                Arc::new(backend),
                folder.join(".scratch"),
                public_url.to_string(),
                secret.clone(),
                config.media.url_ttl_secs,
            )
        }
    };
    Ok((store, secret))
}

impl App {
    /// Connects the database (running migrations), seeds templates, loads plugins, and builds
    /// the adapters and providers the configuration names.
    pub async fn build(config: Config, public_url: String) -> anyhow::Result<Arc<App>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = Store::connect(&config.database_url(), config.database_timeout()).await?;
        crate::templates::seed_defaults(&store).await?;
        let (media, secret) = media_store(&config, &public_url)?;
        let guard = crate::outbound::Guard::new(&config.outbound, config.allow_plain_http())
            .map_err(anyhow::Error::msg)?;
        // CMS clients (built next) and plugins' requests go through the same guard.
        guard.install();
        let tts = Speakers::build(&config.tts, &guard).map_err(anyhow::Error::msg)?;
        let inputs = crate::checks::Fetcher::new(guard.clone(), media.clone());
        let video_hosts = config.video_hosts();
        let hosts =
            crate::generation::Hosts::build(&video_hosts, config.video_routes(), &media, &inputs)?;
        let ffmpeg = video_hosts
            .values()
            .find_map(|host| match host {
                crate::config::ProviderConfig::Preview { ffmpeg_binary, .. } => {
                    Some(ffmpeg_binary.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| "ffmpeg".to_string());
        // The approval preview shows editors the captions too, burned in: what they approve.
        let preview = Arc::new(
            crate::generation::Preview::new(ffmpeg.clone(), media.clone(), inputs.clone())?
                .with_captions(true),
        );
        let sources = crate::cms::build(&config.sources)?;
        crate::cms::check_write_back_targets(&sources, &guard)
            .await
            .map_err(anyhow::Error::msg)?;
        let plugins = plugin_host(&config, store.clone()).await?;
        let mut hook_key = b"provider-webhook\n".to_vec();
        hook_key.extend_from_slice(&secret);
        let webhook_slots = tokio::sync::Semaphore::new(config.max_inflight_webhooks);
        let delivery_rate = std::num::NonZeroU32::new(
            config.listener.deliveries_per_source_per_second,
        )
        .map(|per_second| {
            let burst = per_second.saturating_mul(std::num::NonZeroU32::new(2).expect("2"));
            governor::RateLimiter::keyed(governor::Quota::per_second(per_second).allow_burst(burst))
        });
        let sign_in_rate = std::num::NonZeroU32::new(
            config.listener.sign_ins_per_address_per_minute,
        )
        .map(|per_minute| governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)));
        Ok(Arc::new(App {
            config,
            store,
            plugins,
            tts,
            media,
            hosts,
            preview,
            sources,
            inputs,
            guard,
            webhook_slots,
            preview_slots: tokio::sync::Semaphore::new(crate::preview::MAX_AT_ONCE),
            delivery_rate,
            sign_in_rate,
            wake: Notify::new(),
            public_url,
            ffmpeg,
            hook_key,
        }))
    }

    /// The per-render URL a provider calls back: it names the render and carries an HMAC token,
    /// so a completion is matched even if we never recorded the provider's job id.
    pub fn provider_webhook_url(&self, host: &str, render_id: &str) -> String {
        format!(
            "{}/provider-hooks/{host}/{render_id}?token={}",
            self.public_url.trim_end_matches('/'),
            hex::encode(self.hook_mac(render_id).finalize().into_bytes())
        )
    }

    /// Constant-time check of a provider webhook token.
    pub fn verify_provider_token(&self, render_id: &str, token: &str) -> bool {
        let Ok(token) = hex::decode(token) else {
            return false;
        };
        self.hook_mac(render_id).verify_slice(&token).is_ok()
    }

    fn hook_mac(&self, render_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.hook_key).expect("any key size");
        mac.update(render_id.as_bytes());
        mac
    }

    /// A URL the provider can fetch for the presenter photo the operator configured: an https
    /// URL passes through; a local file is copied into the media store and served by signed URL
    /// (its key is returned, so that the render may have that URL re-signed later). Only the
    /// configuration may name a local file.
    pub async fn presenter_image(
        &self,
        configured: &str,
    ) -> Result<(String, Option<String>), String> {
        if configured.starts_with("https://") || configured.starts_with("http://") {
            return Ok((configured.to_string(), None));
        }
        let key = self
            .media
            .import_file("images", Path::new(configured))
            .await
            .map_err(|e| format!("presenter image: {e}"))?;
        Ok((self.media.url(&key), Some(key)))
    }
}
