//! The one outbound guard for every fetch the host makes on someone else's behalf: input checks,
//! the preview provider, CMS reads and write-backs, and plugins' `wasi:http` requests. Content,
//! plugins and CMS payloads name URLs; none of them may make the host reach this machine, its
//! private network or the cloud's metadata service.
//!
//! The check is on addresses, not spellings: every host name is resolved by [`GuardedResolver`]
//! at connect time and only public addresses are handed to the connector (so `localhost.`, a
//! name that resolves to 127.0.0.1, and DNS rebinding all fail); IP literals (`127.1`,
//! `0177.0.0.1`, `[::ffff:127.0.0.1]` — the URL parser normalises them) are checked before the
//! request and on every redirect hop. Bodies are read with a cap while streaming, and errors say
//! what was wrong without quoting what the remote sent.
//!
//! Development and tests that serve from loopback name the ranges they need in
//! `[outbound] allow_private = ["127.0.0.0/8"]`; the guard is on by default everywhere else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

/// `[outbound]`: the guard's development switches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address ranges let through although they are loopback/private/link-local, e.g.
    /// `["127.0.0.0/8", "::1/128"]`. For development and tests only.
    pub allow_private: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("{host} is {reason} ({addr}); only public addresses may be fetched")]
    Forbidden {
        host: String,
        addr: IpAddr,
        reason: &'static str,
    },
    #[error("{host} resolves only to addresses that may not be fetched ({reason})")]
    NoPublicAddress { host: String, reason: String },
    #[error("{0:?} is not a URL that may be fetched: {1}")]
    BadUrl(String, &'static str),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

#[derive(Clone)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
    allow_plain_http: bool,
}

/// The process's guard, installed once at start-up from the configuration.
static INSTALLED: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();

impl Guard {
    /// No development ranges, https only: what applies until a configuration says otherwise.
    pub fn strict() -> Guard {
        Guard {
            allowed: Arc::new(Vec::new()),
            allow_plain_http: false,
        }
    }

    /// Makes this the guard of every client built later with [`Guard::installed`] (the first
    /// installation wins; a process serves one configuration).
    pub fn install(&self) {
        let _ = INSTALLED.set(self.clone());
    }

    /// The installed guard, or the strict one.
    pub fn installed() -> Guard {
        INSTALLED.get().cloned().unwrap_or_else(Guard::strict)
    }

    /// `allow_plain_http` lets `http:` URLs through (development); `https:` always passes.
    pub fn new(config: &Config, allow_plain_http: bool) -> Result<Guard, String> {
        let allowed = config
            .allow_private
            .iter()
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("[outbound] allow_private: {range:?} is not an address range")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Guard {
            allowed: Arc::new(allowed),
            allow_plain_http,
        })
    }

    /// `Err` if `ip` may not be reached (and no development range allows it).
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), GuardError> {
        match forbidden(ip) {
            Some(reason) if !self.allowed.iter().any(|range| range.contains(&ip)) => {
                Err(GuardError::Forbidden {
                    host: host.to_string(),
                    addr: ip,
                    reason,
                })
            }
            _ => Ok(()),
        }
    }

    /// For IP-literal hosts, the address (names are checked after resolution, by
    /// [`GuardedResolver`]). For URLs the operator configured (a CMS's API), whatever the scheme.
    pub fn check_address(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(GuardError::BadUrl(url.to_string(), "no host")),
        }
    }

    /// Scheme (https; http only where allowed) and the address: for URLs someone else named,
    /// and every redirect hop.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), GuardError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plain_http => {}
            "http" => {
                return Err(GuardError::BadUrl(
                    url.to_string(),
                    "plain http is not allowed (https only)",
                ))
            }
            _ => return Err(GuardError::BadUrl(url.to_string(), "only https URLs")),
        }
        self.check_address(url)
    }

    /// Parses a URL the operator configured (an API's base) and checks its address, whatever
    /// the scheme: a literal private address is refused unless allowed; names are checked where
    /// they resolve, by this guard's clients.
    pub fn configured_url(&self, text: &str) -> Result<reqwest::Url, GuardError> {
        let url = reqwest::Url::parse(text)
            .map_err(|_| GuardError::BadUrl(text.chars().take(200).collect(), "not a URL"))?;
        self.check_address(&url)?;
        Ok(url)
    }

    /// Parses and checks a URL someone else named.
    pub fn parse_url(&self, text: &str) -> Result<reqwest::Url, GuardError> {
        let url = reqwest::Url::parse(text)
            .map_err(|_| GuardError::BadUrl(text.chars().take(200).collect(), "not a URL"))?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// A client whose every connection and redirect hop passes the guard.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        let guard = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(GuardError::TooManyRedirects(MAX_REDIRECTS));
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(err) => attempt.error(err),
            }
        });
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(redirects)
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .build()
            .expect("a TLS backend is compiled in")
    }

    /// Whether a target the operator configured (a CMS's API, a write-back URL) may be reached:
    /// its literal address, or every address its name resolves to now. A name that does not
    /// resolve now is not judged here (`Ok`): each request is checked when it is made.
    pub async fn check_target(&self, text: &str) -> Result<(), GuardError> {
        let url = self.configured_url(text)?;
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        match self.check_authority(host, port).await {
            Err(GuardError::NoPublicAddress { reason, .. }) if reason == DOES_NOT_RESOLVE => Ok(()),
            checked => checked,
        }
    }

    /// Resolves `host:port` and checks every address (for connectors that are not reqwest's,
    /// such as `wasi:http`'s).
    pub async fn check_authority(&self, host: &str, port: u16) -> Result<(), GuardError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_ip(bare, ip);
        }
        let addrs = resolve(self, bare, port).await?;
        debug_assert!(!addrs.is_empty());
        Ok(())
    }
}

/// Why a name has no address to check.
const DOES_NOT_RESOLVE: &str = "it does not resolve";

/// Resolves `host` and keeps the addresses the guard allows; `Err` if none is left.
async fn resolve(guard: &Guard, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| GuardError::NoPublicAddress {
            host: host.to_string(),
            reason: DOES_NOT_RESOLVE.into(),
        })?
        .collect();
    let mut refused = None;
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|addr| match guard.check_ip(host, addr.ip()) {
            Ok(()) => true,
            Err(err) => {
                refused.get_or_insert(err);
                false
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(GuardError::NoPublicAddress {
            host: host.to_string(),
            reason: refused.map_or_else(|| "no address".into(), |e| e.to_string()),
        });
    }
    Ok(allowed)
}

/// reqwest's resolver: only allowed addresses reach the connector.
struct GuardedResolver(Guard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let addrs = resolve(&guard, name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why `ip` may not be fetched on someone else's behalf, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// IPv4 ranges never fetched on someone else's behalf: every range of IANA's IPv4
/// Special-Purpose Address Registry that is not globally reachable, plus multicast and the
/// deprecated 6to4 relay anycast.
const V4_FORBIDDEN: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (\"this network\")"),
    ("10.0.0.0/8", "a private (RFC 1918) address"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (the cloud metadata service lives there)",
    ),
    ("172.16.0.0/12", "a private (RFC 1918) address"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "the deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "a private (RFC 1918) address"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
];

/// IPv6 ranges never fetched: IANA's IPv6 Special-Purpose Address Registry's ranges that are
/// not globally reachable, the deprecated site-local range, and multicast. Ranges that embed an
/// IPv4 address ([`V6_EMBEDDING`]) are judged by that address before this table is read.
const V6_FORBIDDEN: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    (
        "2001::/23",
        "IETF protocol assignments (Teredo, ORCHID and the like)",
    ),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique-local (fc00::/7)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// IPv6 ranges that carry an IPv4 address, where (the bit offset of its 32 bits), and why such
/// an address is refused when the IPv4 address inside is.
const V6_EMBEDDING: &[(&str, u32, &str)] = &[
    (
        "::ffff:0:0/96",
        96,
        "an IPv4-mapped address of a forbidden range",
    ),
    (
        "::ffff:0:0:0/96",
        96,
        "an IPv4-translated (SIIT) address of a forbidden range",
    ),
    ("64:ff9b::/96", 96, "a NAT64 address of a forbidden range"),
    ("2002::/16", 16, "a 6to4 address of a forbidden range"),
    (
        "::/96",
        96,
        "an IPv4-compatible address of a forbidden range",
    ),
];

struct Tables {
    v4: Vec<(ipnet::Ipv4Net, &'static str)>,
    v6: Vec<(ipnet::Ipv6Net, &'static str)>,
    embedding: Vec<(ipnet::Ipv6Net, u32, &'static str)>,
}

fn tables() -> &'static Tables {
    static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| Tables {
        v4: V4_FORBIDDEN
            .iter()
            .map(|(net, why)| (net.parse().expect("a valid range"), *why))
            .collect(),
        v6: V6_FORBIDDEN
            .iter()
            .map(|(net, why)| (net.parse().expect("a valid range"), *why))
            .collect(),
        embedding: V6_EMBEDDING
            .iter()
            .map(|(net, at, what)| (net.parse().expect("a valid range"), *at, *what))
            .collect(),
    })
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    tables()
        .v4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let tables = tables();
    // :: and ::1 lie inside ::/96 but are themselves, not IPv4 addresses.
    if !ip.is_unspecified() && !ip.is_loopback() {
        if let Some((_, at, why)) = tables.embedding.iter().find(|(net, ..)| net.contains(&ip)) {
            let v4 = Ipv4Addr::from((u128::from(ip) >> (96 - at)) as u32);
            return forbidden_v4(v4).map(|_| *why);
        }
    }
    tables
        .v6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

/// A `Retry-After` given in seconds (the form rate-limited APIs use), if the answer has one.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads a body up to `max` bytes while it streams: an endless body is cut off, not buffered.
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(ReadError::Guard(GuardError::TooLarge(max)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(ReadError::Guard(GuardError::TooLarge(max)));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Guard(GuardError),
    #[error("the answer broke off: {}", describe(.0))]
    Transport(reqwest::Error),
}

/// What went wrong with a request, in words: the guard's refusal if that was it, else the kind
/// of failure (never the remote's bytes).
pub fn describe(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(inner) = source {
        if let Some(guard) = inner.downcast_ref::<GuardError>() {
            return guard.to_string();
        }
        source = inner.source();
    }
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "bad redirect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// Whether a failure refused by the guard (permanent) rather than the network (transient).
pub fn is_refusal(err: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(inner) = source {
        if inner.is::<GuardError>() {
            return true;
        }
        source = inner.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Guard {
        Guard::new(&Config::default(), false).unwrap()
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let guard = strict();
        for url in [
            "https://127.0.0.1/x",
            "https://127.1/x",
            "https://0177.0.0.1/x",
            "https://0x7f.0.0.1/x",
            "https://2130706433/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:7f00:1]/x",
            "https://[::127.0.0.1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            "https://[2002:7f00:1::]/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
        ] {
            let err = guard.parse_url(url).unwrap_err();
            assert!(matches!(err, GuardError::Forbidden { .. }), "{url}: {err}");
        }
        for url in [
            "file:///etc/passwd",
            "data:text/plain,x",
            "/etc/passwd",
            "ftp://x.org/",
            "http://example.org/",
        ] {
            assert!(
                matches!(guard.parse_url(url), Err(GuardError::BadUrl(..))),
                "{url}"
            );
        }
        assert!(guard.parse_url("https://93.184.215.14/x").is_ok());
        assert!(
            guard.parse_url("https://example.org/x").is_ok(),
            "names are checked at connect time"
        );
    }

    /// Every special-purpose range, with one address inside it (refused) and, for the ranges
    /// that embed an IPv4 address, a public one inside the same range (allowed).
    #[test]
    fn every_special_purpose_range_is_refused() {
        let refused = [
            "0.1.2.3",
            "10.9.8.7",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.2",
            "169.254.169.254",
            "172.31.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:0:0",
            "::ffff:10.0.0.1",
            "::ffff:0:a00:1",
            "::ffff:0:7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::808:808",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2001:20::1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
            "2002:7f00:1::",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "::10.0.0.1",
        ];
        for text in refused {
            let ip: IpAddr = text.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{text} was allowed");
        }
        let allowed = [
            "93.184.215.14",
            "8.8.8.8",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "2606:4700::1111",
            "2620:4f:8000::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for text in allowed {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{text} was refused");
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let guard = strict();
        for name in ["localhost", "localhost."] {
            let err = guard.check_authority(name, 80).await.unwrap_err();
            assert!(
                matches!(err, GuardError::NoPublicAddress { .. }),
                "{name}: {err}"
            );
        }
        let dev = Guard::new(
            &Config {
                allow_private: vec!["127.0.0.0/8".into(), "::1".into()],
            },
            true,
        )
        .unwrap();
        dev.check_authority("localhost", 80).await.unwrap();
        assert!(dev.parse_url("http://127.0.0.1:9/").is_ok());
        assert!(
            dev.parse_url("http://169.254.169.254/").is_err(),
            "only the named ranges"
        );
        assert!(Guard::new(
            &Config {
                allow_private: vec!["everything".into()]
            },
            false
        )
        .is_err());
    }
}
