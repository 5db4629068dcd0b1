//! A plugin's manifest (`vidhook-plugin.toml`): who it is, what it may touch, how much it may
//! use, and its default settings. Nothing is granted that the manifest does not name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Limits;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The WIT world a TypeScript or Python plugin implements (`plugin`, `shortening-plugin`,
    /// `digest`; default `plugin`): what `vidhook plugin build` builds it for. A Rust crate
    /// chooses by its export macro, and the host reads what a component exports either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    #[serde(default)]
    pub capabilities: Capabilities,
    #[serde(default)]
    pub limits: RequestedLimits,
    /// Default settings; a source's plugin `config` overrides them.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts reachable over `wasi:http`: `api.example.com`, `api.example.com:8443`, or
    /// `*.example.com`. Empty: no network at all.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Names of host secrets the plugin may read through `config(name)`.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// What the plugin asks for; the host clamps each to its maximum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedLimits {
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub output_kb: Option<u64>,
    /// Outbound HTTP requests per run.
    pub http_calls: Option<u32>,
}

/// The worlds of `wit/plugin.wit` a plugin may implement.
const WORLDS: &[&str] = &["plugin", "shortening-plugin", "digest"];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("manifest: {0}")]
    Invalid(String),
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text)?;
        let name_ok = !manifest.name.is_empty()
            && manifest.name.len() <= 64
            && manifest
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(ManifestError::Invalid(format!(
                "name {:?}: letters, digits, - and _",
                manifest.name
            )));
        }
        let version_ok = manifest.version.split('.').count() == 3
            && manifest
                .version
                .split('.')
                .all(|p| p.parse::<u64>().is_ok());
        if !version_ok {
            return Err(ManifestError::Invalid(format!(
                "version {:?} is not MAJOR.MINOR.PATCH",
                manifest.version
            )));
        }
        for host in &manifest.capabilities.allowed_hosts {
            if host.is_empty() || host.contains('/') || host.contains('@') {
                return Err(ManifestError::Invalid(format!(
                    "allowed host {host:?}: write host or host:port"
                )));
            }
        }
        if !WORLDS.contains(&manifest.world()) {
            return Err(ManifestError::Invalid(format!(
                "world {:?}: one of {}",
                manifest.world(),
                WORLDS.join(", ")
            )));
        }
        Ok(manifest)
    }

    /// The WIT world it implements, as built by `vidhook plugin build`.
    pub fn world(&self) -> &str {
        self.world.as_deref().unwrap_or("plugin")
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a manifest serialises")
    }

    /// The limits for a run: what the manifest asks, never more than the host's maxima.
    pub fn limits(&self, max: &Limits) -> Limits {
        let ask = &self.limits;
        Limits {
            fuel: ask.fuel.unwrap_or(max.fuel).min(max.fuel),
            deadline: ask
                .deadline_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(max.deadline)
                .min(max.deadline),
            memory_bytes: ask
                .memory_mb
                .map(|mb| (mb as usize) << 20)
                .unwrap_or(max.memory_bytes)
                .min(max.memory_bytes),
            output_bytes: ask
                .output_kb
                .map(|kb| (kb as usize) << 10)
                .unwrap_or(max.output_bytes)
                .min(max.output_bytes),
            http_calls: ask.http_calls.unwrap_or(max.http_calls).min(max.http_calls),
        }
    }

    /// Capabilities this manifest asks for that `previous` did not grant.
    pub fn added_capabilities(&self, previous: &Manifest) -> Vec<String> {
        let hosts = self
            .capabilities
            .allowed_hosts
            .iter()
            .filter(|h| !previous.capabilities.allowed_hosts.contains(h))
            .map(|h| format!("network: {h}"));
        let secrets = self
            .capabilities
            .secrets
            .iter()
            .filter(|s| !previous.capabilities.secrets.contains(s))
            .map(|s| format!("secret: {s}"));
        hosts.chain(secrets).collect()
    }
}

/// Whether `authority` (`host` or `host:port` of a request) matches an allowed-host rule.
/// `api.example.com` allows any port; `api.example.com:8443` only that port; `*.example.com`
/// any subdomain (not the apex).
pub fn host_allowed(rules: &[String], authority: &str) -> bool {
    let (host, port) = split_authority(authority);
    rules.iter().any(|rule| {
        let (rule_host, rule_port) = split_authority(rule);
        let host_matches = match rule_host.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host.eq_ignore_ascii_case(rule_host),
        };
        host_matches && (rule_port.is_none() || rule_port == port)
    })
}

/// Whether a host names this machine (never reachable unless the host configuration allows it).
pub fn is_loopback(authority: &str) -> bool {
    let (host, _) = split_authority(authority);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn split_authority(authority: &str) -> (&str, Option<&str>) {
    // [v6]:port, host:port, host
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':'));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(hosts: &[&str], secrets: &[&str]) -> Manifest {
        Manifest {
            name: "p".into(),
            version: "1.0.0".into(),
            description: String::new(),
            world: None,
            capabilities: Capabilities {
                allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
                secrets: secrets.iter().map(|s| s.to_string()).collect(),
            },
            limits: RequestedLimits::default(),
            config: BTreeMap::new(),
        }
    }

    #[test]
    fn host_rules() {
        let rules = vec![
            "api.openai.com".to_string(),
            "*.example.com".into(),
            "127.0.0.1:8080".into(),
        ];
        assert!(host_allowed(&rules, "api.openai.com"));
        assert!(host_allowed(&rules, "API.openai.com:443"));
        assert!(host_allowed(&rules, "a.b.example.com"));
        assert!(!host_allowed(&rules, "example.com"));
        assert!(!host_allowed(&rules, "evil-example.com"));
        assert!(host_allowed(&rules, "127.0.0.1:8080"));
        assert!(!host_allowed(&rules, "127.0.0.1:8081"));
        assert!(!host_allowed(&rules, "api.openai.com.evil.net"));
        assert!(is_loopback("localhost:1") && is_loopback("127.9.9.9") && is_loopback("[::1]:80"));
        assert!(!is_loopback("api.openai.com"));
    }

    #[test]
    fn limits_are_clamped_and_capability_increases_listed() {
        let mut m = manifest(&["a.com"], &[]);
        m.limits.memory_mb = Some(4096);
        m.limits.fuel = Some(10);
        let limits = m.limits(&Limits::default());
        assert_eq!(limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(limits.fuel, 10);
        let newer = manifest(&["a.com", "b.com"], &["KEY"]);
        assert_eq!(
            newer.added_capabilities(&m),
            vec!["network: b.com", "secret: KEY"]
        );
        assert!(m.added_capabilities(&newer).is_empty());
    }

    #[test]
    fn parses_and_validates() {
        let text =
            "name = \"x\"\nversion = \"1.2.3\"\n[capabilities]\nallowed_hosts = [\"a.com\"]\n";
        assert_eq!(
            Manifest::parse(text).unwrap().capabilities.allowed_hosts,
            vec!["a.com"]
        );
        assert!(Manifest::parse("name = \"x y\"\nversion = \"1.0.0\"").is_err());
        assert!(Manifest::parse("name = \"x\"\nversion = \"1\"").is_err());
        assert!(Manifest::parse("name = \"x\"\nversion = \"1.0.0\"\nsurprise = 1").is_err());
    }
}
