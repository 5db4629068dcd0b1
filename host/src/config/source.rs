//! `[sources.NAME]`: which CMS a source is, and what vidhook does with its content.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::PluginRef;

/// One CMS (or folder) that publishes content to us: `[sources.NAME]` holds the CMS's own keys
/// (`cms = "…"` and its connection) and the source's settings side by side. The table is split by
/// key (see the `Deserialize` impl) rather than with `#[serde(flatten)]`, which would silently
/// accept a misspelt key such as `daily_credit`.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub cms: CmsConfig,
    pub settings: SourceSettings,
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(deserializer)?;
        let own = super::unknown_keys::field_names::<SourceSettings>();
        let (settings, cms): (toml::Table, toml::Table) = table
            .into_iter()
            .partition(|(key, _)| own.contains(&key.as_str()));
        Ok(SourceConfig {
            cms: CmsConfig::deserialize(toml::Value::Table(cms)).map_err(D::Error::custom)?,
            settings: SourceSettings::deserialize(toml::Value::Table(settings))
                .map_err(D::Error::custom)?,
        })
    }
}

/// A source's settings, whatever its CMS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// The plugin chain; default: the bundled presenter.
    #[serde(default = "default_chain")]
    pub plugins: Vec<PluginRef>,
    /// Default presenter photo: an https URL or a local file.
    pub presenter_image: Option<String>,
    /// When the narration is longer than 1080p allows (30 s) but fits 720p (60 s); "shorten"
    /// applies whenever a narration is over its resolution's limit.
    #[serde(default)]
    pub too_long_for_1080p: TooLongPolicy,
    /// This source's daily credit limit; none = only the global one.
    pub daily_credits: Option<i64>,
    /// Run everything except the paid call for this source.
    #[serde(default)]
    pub dry_run: bool,
    /// Make a $0 local preview first; the paid generation waits for an editor's approval.
    #[serde(default)]
    pub approval: bool,
    /// What happens to a paid submit whose outcome stayed unknown for the whole reconcile window.
    #[serde(default)]
    pub ambiguous_submit: AmbiguousSubmitPolicy,
    /// Which CMS fields feed title/body/image/locale, where the URL goes, which types count.
    #[serde(default)]
    pub fields: crate::cms::mapping::FieldMap,
    /// How often the catch-up sweep lists what was published since its watermark (and once at
    /// start-up), for publishes whose webhook never arrived; 0 turns it off.
    #[serde(default = "default_catch_up_secs")]
    pub catch_up_secs: u64,
    /// The credit pack this source's spending is priced at in estimates (backfill, batch).
    #[serde(default)]
    pub credit_pack: crate::generation::CreditPack,
    /// The video hosts (`[providers.NAME]`) this source's renders go to, in order: a render
    /// moves to the next only when the previous provably did not take it. Default: the only host.
    #[serde(default)]
    pub providers: Vec<String>,
    /// A host's 429 asking to wait longer than this moves the render to the next host.
    #[serde(default = "default_failover_wait_secs")]
    pub failover_wait_secs: u64,
    /// A narration longer than the first host accepts at the plan's resolution goes to a later
    /// host of `providers` that accepts it, rather than being shortened or failed.
    #[serde(default = "yes")]
    pub route_by_limits: bool,
    /// A scheduled digest of what this source publishes (`[sources.NAME.digest]`).
    pub digest: Option<crate::digests::DigestConfig>,
    /// The speech engine (a `[tts.providers.NAME]`, or "espeak", the default) ...
    pub tts: Option<String>,
    /// ... and per locale ("de" or "de-at" → engine name), which wins over `tts`.
    #[serde(default)]
    pub tts_locales: BTreeMap<String, String>,
}

impl SourceSettings {
    /// The speech engine for `language`: by exact locale, else by its language, else the
    /// source's engine, else espeak-ng. A plan that names an engine overrides all of these.
    pub fn tts_engine(&self, language: &str) -> &str {
        crate::tts::by_locale(&self.tts_locales, language)
            .or(self.tts.as_ref())
            .map_or(crate::tts::ESPEAK, String::as_str)
    }
}

fn default_failover_wait_secs() -> u64 {
    60
}
fn yes() -> bool {
    true
}
fn default_catch_up_secs() -> u64 {
    300
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TooLongPolicy {
    /// Fail the render (`input_invalid`) and say how to fix it.
    #[default]
    Fail,
    /// Make the video at 720p instead.
    #[serde(rename = "fallback_720p")]
    Fallback720p,
    /// At any resolution: ask the chain's last plugin that exports `shorten` (WIT 0.1.2), once,
    /// for a shorter script, given the limit and the measured duration.
    Shorten,
}

/// The source's choice for a paid submit that may or may not have created a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmbiguousSubmitPolicy {
    /// `needs_attention`: a person checks the provider's dashboard, then `vidhook jobs adopt` or
    /// `vidhook jobs resubmit --accept-double-charge`. Nothing is paid again automatically.
    #[default]
    Park,
    /// Submit again with the same `Idempotency-Key`. Only for providers that honour the key:
    /// with one that does not (OmniHuman as documented), this may pay twice.
    Resubmit,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            plugins: default_chain(),
            presenter_image: None,
            too_long_for_1080p: TooLongPolicy::default(),
            daily_credits: None,
            dry_run: false,
            approval: false,
            ambiguous_submit: AmbiguousSubmitPolicy::default(),
            fields: crate::cms::mapping::FieldMap::default(),
            catch_up_secs: default_catch_up_secs(),
            credit_pack: crate::generation::CreditPack::default(),
            providers: Vec::new(),
            failover_wait_secs: default_failover_wait_secs(),
            route_by_limits: true,
            digest: None,
            tts: None,
            tts_locales: BTreeMap::new(),
        }
    }
}

fn default_chain() -> Vec<PluginRef> {
    vec![PluginRef {
        name: "presenter".into(),
        config: BTreeMap::new(),
    }]
}

impl SourceConfig {
    /// The presenter photo for an entry: its own, else the source's default.
    pub fn image_for(&self, content: &crate::content::Content) -> Option<String> {
        content
            .image
            .clone()
            .or_else(|| self.settings.presenter_image.clone())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "cms", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CmsConfig {
    /// A folder of Markdown files with YAML front matter; `vidhook publish FILE` publishes one,
    /// and the video URL is written into its front matter.
    Markdown {
        folder: PathBuf,
    },
    /// Any system that sends Standard Webhooks-signed JSON.
    StandardWebhooks(crate::cms::standard_webhooks::Config),
    /// WordPress with the companion plugin (`integrations/wordpress/`).
    Wordpress(crate::cms::wordpress::Config),
    Contentful(crate::cms::contentful::Config),
    /// Strapi v5 (and v4 ids).
    Strapi(crate::cms::strapi::Config),
    Sanity(crate::cms::sanity::Config),
    Ghost(crate::cms::ghost::Config),
    /// Directus Flows (event hook + webhook operation).
    Directus(crate::cms::directus::Config),
    Storyblok(crate::cms::storyblok::Config),
}
