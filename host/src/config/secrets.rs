//! Secrets must be real. A key whose `${VAR}` expands to an empty string, an empty credential, or
//! an HMAC secret shorter than its CMS documents (else 16 bytes) is a start-up error naming the
//! key: an empty admin token would open approval (spending money) and plugin installs, and an
//! empty or short HMAC secret makes signatures forgeable.

use super::{Config, ConfigError, ProviderConfig};
use crate::config::CmsConfig;

/// The shortest HMAC secret or bearer token accepted where the documentation names no minimum.
pub const MIN_SECRET_BYTES: usize = 16;

/// A secret-bearing key: its dotted path, its value, the least length it may have (1: non-empty).
type Secret<'a> = (String, &'a str, usize);

/// Every secret in `config`, with its minimum length.
fn secrets(config: &Config) -> Vec<Secret<'_>> {
    let mut all: Vec<Secret<'_>> = Vec::new();
    if let Some(token) = &config.plugins.admin_token {
        all.push(("plugins.admin_token".into(), token, MIN_SECRET_BYTES));
    }
    for (name, value) in &config.plugins.secrets {
        all.push((format!("plugins.secrets.{name}"), value, 1));
    }
    if let Some(key) = &config.media.signing_secret {
        all.push(("media.signing_secret".into(), key, MIN_SECRET_BYTES));
    }
    let table = |name: &str| {
        if config.providers.is_empty() {
            "provider".to_string()
        } else {
            format!("providers.{name}")
        }
    };
    let named = config
        .providers
        .iter()
        .map(|(name, host)| (name.as_str(), host));
    for (name, host) in named.chain(config.provider.iter().map(|host| ("", host))) {
        let table = table(name);
        match host {
            ProviderConfig::Omnihuman(provider) => {
                all.push((format!("{table}.api_key"), &provider.api_key, 1));
                if let Some(secret) = &provider.webhook_secret {
                    all.push((format!("{table}.webhook_secret"), secret, MIN_SECRET_BYTES));
                }
            }
            ProviderConfig::Fal(provider) => {
                all.push((format!("{table}.api_key"), &provider.api_key, 1))
            }
            ProviderConfig::Replicate(provider) => {
                all.push((format!("{table}.api_token"), &provider.api_token, 1));
                if let Some(secret) = &provider.webhook_secret {
                    all.push((format!("{table}.webhook_secret"), secret, MIN_SECRET_BYTES));
                }
            }
            ProviderConfig::Preview { .. } => {}
        }
    }
    for (name, engine) in &config.tts.providers {
        all.push((
            format!("tts.providers.{name}.api_key"),
            engine.engine.api_key(),
            1,
        ));
    }
    for (source, settings) in &config.sources {
        for (key, value, min) in cms_secrets(&settings.cms) {
            all.push((format!("sources.{source}.{key}"), value, min));
        }
    }
    all
}

/// A CMS's secrets: HMAC secrets and static webhook tokens at their minimum, API credentials
/// non-empty. Contentful documents its signing secret as exactly 64 characters.
fn cms_secrets(cms: &CmsConfig) -> Vec<(&'static str, &str, usize)> {
    let hmac = MIN_SECRET_BYTES;
    fn optional<'c>(
        key: &'static str,
        value: &'c Option<String>,
        min: usize,
    ) -> Option<(&'static str, &'c str, usize)> {
        value.as_deref().map(|v| (key, v, min))
    }
    let mut out: Vec<(&'static str, &str, usize)> = Vec::new();
    match cms {
        CmsConfig::Markdown { .. } => {}
        // `whsec_…` keys are checked for 16 decoded bytes when the source is built.
        CmsConfig::StandardWebhooks(c) => out.push(("secret", &c.secret, 1)),
        CmsConfig::Wordpress(c) => {
            out.push(("secret", &c.secret, 1));
            out.extend(optional("application_password", &c.application_password, 1));
        }
        CmsConfig::Contentful(c) => {
            out.extend(optional("signing_secret", &c.signing_secret, 64));
            out.extend(optional("token", &c.token, hmac));
            out.extend(optional("management_token", &c.management_token, 1));
        }
        CmsConfig::Strapi(c) => {
            out.push(("token", &c.token, hmac));
            out.extend(optional("api_token", &c.api_token, 1));
        }
        CmsConfig::Sanity(c) => {
            out.push(("secret", &c.secret, hmac));
            out.extend(optional("api_token", &c.api_token, 1));
        }
        CmsConfig::Ghost(c) => {
            out.push(("secret", &c.secret, hmac));
            out.extend(optional("admin_api_key", &c.admin_api_key, 1));
        }
        CmsConfig::Directus(c) => {
            out.push(("token", &c.token, hmac));
            out.extend(optional("api_token", &c.api_token, 1));
        }
        CmsConfig::Storyblok(c) => {
            out.push(("secret", &c.secret, hmac));
            out.push(("management_token", &c.management_token, 1));
            out.extend(optional("delivery_token", &c.delivery_token, 1));
        }
    }
    out
}

/// `Err` names the first secret that is empty or too short.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    for (key, value, min) in secrets(config) {
        if value.trim().is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{key} is empty: set it (an empty secret would let anyone through)"
            )));
        }
        if value.len() < min {
            return Err(ConfigError::Invalid(format!(
                "{key} is {} bytes; it must be at least {min}",
                value.len()
            )));
        }
    }
    Ok(())
}
