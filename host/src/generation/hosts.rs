//! The video hosts the configuration names (`[providers.NAME]`, or the one `[provider]`) and the
//! order in which each source uses them. A render is made by one host at a time: the one recorded
//! on it (`renders.provider`, written in the same statement that marks it `submitting`), else its
//! source's first that accepts its narration. It moves on only when that host provably did not
//! accept it (see `jobs::provider_steps`), so a job is never paid on two hosts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::Breaker;
use super::config::ProviderConfig;
use super::{Provider, Resolution};
use crate::media::MediaStore;

/// One configured host: its name in the configuration, the provider behind its throttle, and
/// its circuit breaker.
pub struct Host {
    pub name: String,
    pub provider: Arc<dyn Provider>,
    pub breaker: Breaker,
}

impl Host {
    /// Whether the host accepts a narration of `seconds` at `resolution`.
    pub fn accepts(&self, seconds: f64, resolution: Resolution) -> bool {
        seconds <= self.provider.max_audio_seconds(resolution)
    }
}

/// How one source uses the hosts (`providers`, `failover_wait_secs` and `route_by_limits` in
/// `[sources.NAME]`).
#[derive(Debug, Clone)]
pub struct Route {
    /// Host names, in the order they are tried.
    pub hosts: Vec<String>,
    /// A 429 asking to wait longer than this moves the render to the next host.
    pub failover_wait: Duration,
    /// A narration longer than a host accepts goes to a later host that accepts it.
    pub by_limits: bool,
}

/// The longest narration a source on `route` is fitted to, given each named host's limit: its
/// first host's, or with routing by limits the longest of its hosts' (none: no host known). The
/// one rule behind the plugins' limit (`Config::audio_limits`) and the check step's.
pub fn longest_on_route(route: &Route, limit: impl Fn(&str) -> Option<f64>) -> Option<f64> {
    let mut limits = route.hosts.iter().filter_map(|name| limit(name));
    if route.by_limits {
        limits.reduce(f64::max)
    } else {
        limits.next()
    }
}

pub struct Hosts {
    by_name: BTreeMap<String, Arc<Host>>,
    routes: BTreeMap<String, Route>,
    /// For a render of a source no longer configured: every host in name order, no routing.
    unconfigured: Route,
}

impl Hosts {
    /// Builds every configured host; `routes` names, per source, hosts that are configured (the
    /// configuration's validation checked it).
    pub fn build(
        configs: &BTreeMap<String, ProviderConfig>,
        routes: BTreeMap<String, Route>,
        media: &MediaStore,
        inputs: &crate::checks::Fetcher,
    ) -> anyhow::Result<Hosts> {
        let mut by_name = BTreeMap::new();
        for (name, config) in configs {
            let host = Host {
                name: name.clone(),
                provider: super::build(config, media.clone(), inputs.clone())?,
                breaker: Breaker::default(),
            };
            by_name.insert(name.clone(), Arc::new(host));
        }
        anyhow::ensure!(!by_name.is_empty(), "no video host configured");
        Ok(Hosts::new(by_name, routes))
    }

    fn new(by_name: BTreeMap<String, Arc<Host>>, routes: BTreeMap<String, Route>) -> Hosts {
        let unconfigured = Route {
            hosts: by_name.keys().cloned().collect(),
            failover_wait: Duration::from_secs(60),
            by_limits: false,
        };
        Hosts {
            by_name,
            routes,
            unconfigured,
        }
    }

    /// The host named `name` in the configuration.
    pub fn get(&self, name: &str) -> Option<&Arc<Host>> {
        self.by_name.get(name)
    }

    /// How `source` uses the hosts: its own route, or every host in name order (a source that
    /// is not configured, which only happens to renders of a source removed since).
    pub fn route(&self, source: &str) -> &Route {
        self.routes.get(source).unwrap_or(&self.unconfigured)
    }

    fn ordered(&self, source: &str) -> Vec<&Arc<Host>> {
        self.route(source)
            .hosts
            .iter()
            .filter_map(|name| self.by_name.get(name))
            .collect()
    }

    /// The host a render of `source` is with: the one `recorded` on it, else the source's first.
    pub fn for_render(&self, recorded: Option<&str>, source: &str) -> &Arc<Host> {
        if let Some(host) = recorded.and_then(|name| self.by_name.get(name)) {
            return host;
        }
        if let Some(name) = recorded {
            tracing::warn!(
                host = name,
                source,
                "a render names a host no longer configured; using the source's first"
            );
        }
        self.ordered(source)
            .into_iter()
            .next()
            .or_else(|| self.by_name.values().next())
            .expect("at least one host (checked at build)")
    }

    /// Routing by limits: when `current` does not accept `seconds` at `resolution` and the
    /// source allows routing, the first host of its order that does.
    pub fn routed(
        &self,
        source: &str,
        current: &Arc<Host>,
        seconds: f64,
        resolution: Resolution,
    ) -> Option<&Arc<Host>> {
        if current.accepts(seconds, resolution) || !self.route(source).by_limits {
            return None;
        }
        self.ordered(source)
            .into_iter()
            .find(|host| host.accepts(seconds, resolution))
    }

    /// The longest narration any host `source` may be routed to accepts at `resolution` (its
    /// current host's limit when it does not route by limits).
    pub fn longest_accepted(
        &self,
        source: &str,
        current: &Arc<Host>,
        resolution: Resolution,
    ) -> f64 {
        let own = current.provider.max_audio_seconds(resolution);
        let route = self.route(source);
        if !route.by_limits {
            return own;
        }
        let limit = |name: &str| {
            let host = self.by_name.get(name)?;
            Some(host.provider.max_audio_seconds(resolution))
        };
        longest_on_route(route, limit).map_or(own, |longest| longest.max(own))
    }

    /// Failover: the next host after `current` in `source`'s order that accepts the narration,
    /// preferring one whose breaker is closed.
    pub fn next_after(
        &self,
        source: &str,
        current: &str,
        seconds: f64,
        resolution: Resolution,
    ) -> Option<&Arc<Host>> {
        let later: Vec<&Arc<Host>> = self
            .ordered(source)
            .into_iter()
            .skip_while(|host| host.name != current)
            .skip(1)
            .filter(|host| host.accepts(seconds, resolution))
            .collect();
        later
            .iter()
            .find(|host| !host.breaker.is_open())
            .or_else(|| later.first())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that accepts up to `limit` seconds at every resolution.
    struct Limited(f64);

    #[async_trait::async_trait]
    impl Provider for Limited {
        fn name(&self) -> &'static str {
            "limited"
        }
        fn model(&self) -> &'static str {
            "m"
        }
        fn max_audio_seconds(&self, _resolution: Resolution) -> f64 {
            self.0
        }
        fn price(&self) -> super::super::Price {
            super::super::Price::Free
        }
        fn following(&self) -> super::super::Following {
            super::super::Following::from_secs(false, 1, 1, None)
        }
        async fn submit(
            &self,
            _request: &super::super::SubmitRequest,
        ) -> Result<super::super::Submitted, super::super::ProviderError> {
            unreachable!("not called")
        }
        async fn status(
            &self,
            _job_id: &str,
        ) -> Result<super::super::JobStatus, super::super::ProviderError> {
            unreachable!("not called")
        }
    }

    fn hosts(limits: &[(&str, f64)], order: &[&str], by_limits: bool) -> Hosts {
        let by_name = limits
            .iter()
            .map(|(name, limit)| {
                let host = Host {
                    name: name.to_string(),
                    provider: Arc::new(Limited(*limit)),
                    breaker: Breaker::default(),
                };
                (name.to_string(), Arc::new(host))
            })
            .collect();
        let route = Route {
            hosts: order.iter().map(|s| s.to_string()).collect(),
            failover_wait: Duration::from_secs(60),
            by_limits,
        };
        Hosts::new(by_name, BTreeMap::from([("blog".to_string(), route)]))
    }

    #[test]
    fn a_narration_too_long_for_the_first_host_is_routed_to_one_that_accepts_it() {
        let hosts = hosts(
            &[("replicate", 35.0), ("seedance", 60.0)],
            &["replicate", "seedance"],
            true,
        );
        let first = hosts.for_render(None, "blog");
        assert_eq!(first.name, "replicate");
        let routed = hosts.routed("blog", first, 45.0, Resolution::P720).unwrap();
        assert_eq!(routed.name, "seedance");
        assert!(hosts
            .routed("blog", first, 30.0, Resolution::P720)
            .is_none());
        assert!(hosts
            .routed("blog", first, 61.0, Resolution::P720)
            .is_none());
        assert_eq!(
            hosts.longest_accepted("blog", first, Resolution::P720),
            60.0
        );
        let fixed = self::hosts(
            &[("replicate", 35.0), ("seedance", 60.0)],
            &["replicate", "seedance"],
            false,
        );
        let first = fixed.for_render(None, "blog");
        assert!(fixed
            .routed("blog", first, 45.0, Resolution::P720)
            .is_none());
        assert_eq!(
            fixed.longest_accepted("blog", first, Resolution::P720),
            35.0
        );
    }

    #[test]
    fn failover_skips_hosts_that_refuse_the_narration_and_prefers_closed_breakers() {
        let hosts = hosts(
            &[("a", 60.0), ("b", 20.0), ("c", 60.0), ("d", 60.0)],
            &["a", "b", "c", "d"],
            true,
        );
        assert_eq!(
            hosts
                .next_after("blog", "a", 30.0, Resolution::P720)
                .unwrap()
                .name,
            "c"
        );
        for _ in 0..super::super::breaker::OPENS_AFTER {
            hosts.get("c").unwrap().breaker.refused();
        }
        assert_eq!(
            hosts
                .next_after("blog", "a", 30.0, Resolution::P720)
                .unwrap()
                .name,
            "d"
        );
        assert!(hosts
            .next_after("blog", "d", 30.0, Resolution::P720)
            .is_none());
        assert_eq!(hosts.for_render(Some("c"), "blog").name, "c");
        assert_eq!(hosts.for_render(Some("gone"), "blog").name, "a");
    }
}
