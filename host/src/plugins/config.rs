//! `[plugins]`: the plugin host's maxima and grants, and a source's chain entries.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The plugin host's maxima and grants. A plugin's manifest asks; these bound what it gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub max_fuel: u64,
    pub max_deadline_ms: u64,
    pub max_memory_mb: u64,
    pub max_output_kb: u64,
    pub max_http_calls: u32,
    /// Let manifests allow loopback hosts (127.0.0.0/8, ::1, localhost): development and tests.
    pub allow_loopback_hosts: bool,
    /// Secrets a plugin may read if its manifest names them: `OPENAI_API_KEY = "${OPENAI_API_KEY}"`.
    pub secrets: BTreeMap<String, String>,
    /// Bearer token for the admin API (`POST /api/plugins`); none = admin API disabled.
    pub admin_token: Option<String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            max_fuel: 5_000_000_000,
            max_deadline_ms: 30_000,
            max_memory_mb: 128,
            max_output_kb: 1024,
            max_http_calls: 16,
            allow_loopback_hosts: false,
            secrets: BTreeMap::new(),
            admin_token: None,
        }
    }
}

impl PluginsConfig {
    /// The host maxima as run limits.
    pub fn max_limits(&self) -> super::Limits {
        super::Limits {
            fuel: self.max_fuel,
            deadline: std::time::Duration::from_millis(self.max_deadline_ms),
            memory_bytes: (self.max_memory_mb as usize) << 20,
            output_bytes: (self.max_output_kb as usize) << 10,
            http_calls: self.max_http_calls,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// `name` (the latest installed version) or `name@version`.
    pub name: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl PluginRef {
    /// The plugin's name, without a pinned version.
    pub fn plugin(&self) -> &str {
        plugin_name(&self.name)
    }
}

/// The plugin a reference (`name` or `name@version`) names.
pub fn plugin_name(reference: &str) -> &str {
    reference.split('@').next().unwrap_or(reference)
}
