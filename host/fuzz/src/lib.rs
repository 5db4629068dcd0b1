//! The fuzz harness: what every target in `fuzz_targets/` shares. Each target feeds its bytes to
//! one inbound parser or verifier of the host, exactly as the service calls it, and checks what
//! must hold whatever the bytes: no panic, and no forged request ever accepted.
//!
//! Webhook inputs are readable text, so seeds (`seeds/<target>/`) and crashes can be written and
//! read by hand: header lines, an empty line, the body —
//!
//! ```text
//! sign
//! x-contentful-topic: ContentManagement.Entry.publish
//!
//! {"sys": {…}, "fields": {…}}
//! ```
//!
//! A `sign` line makes the harness sign the body with the source's secret, the way the CMS does,
//! so the mutations reach the payload parser; without it, the headers go in as written (the
//! signature header parsers and verifiers get the mutations) and the delivery must be refused.
//! A `?…` line is the query string.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use vidhook::cms::{self, signing, CmsAdapter};
use vidhook::config::Config;

/// The secrets every fuzzed source is configured with (the harness signs with them); 64
/// characters, as Contentful requires of its signing secrets.
const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123";
const TOKEN: &str = "Bearer fuzz-token-0123456789abcdef";
const WHSEC: &str = "whsec_ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==";

/// One source per fuzzed CMS; API URLs are loopback, which the outbound guard (on, as shipped)
/// refuses before any connection: a thin payload's fetch fails fast and is answered 503.
pub const CONFIG: &str = r#"
data_dir = "/tmp/vidhook-fuzz"
[provider]
kind = "omnihuman"
api_key = "fuzz-api-key-0123456789"
webhook_secret = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"

[sources.wordpress]
cms = "wordpress"
secret = "whsec_ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
presenter_image = "https://cdn.example.com/p.jpg"

[sources.standard_webhooks]
cms = "standard-webhooks"
secret = "whsec_ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
presenter_image = "https://cdn.example.com/p.jpg"

[sources.contentful]
cms = "contentful"
signing_secret = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"
presenter_image = "https://cdn.example.com/p.jpg"

[sources.strapi]
cms = "strapi"
token = "Bearer fuzz-token-0123456789abcdef"
presenter_image = "https://cdn.example.com/p.jpg"

[sources.sanity]
cms = "sanity"
secret = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"
presenter_image = "https://cdn.example.com/p.jpg"

[sources.ghost]
cms = "ghost"
secret = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"
presenter_image = "https://cdn.example.com/p.jpg"

[sources.directus]
cms = "directus"
token = "Bearer fuzz-token-0123456789abcdef"
api_url = "http://127.0.0.1:9"
api_token = "fuzz-api-token-0123456789"
presenter_image = "https://cdn.example.com/p.jpg"

[sources.storyblok]
cms = "storyblok"
secret = "fuzz-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123"
api_url = "http://127.0.0.1:9"
management_token = "fuzz-management-token-0123456789"
presenter_image = "https://cdn.example.com/p.jpg"
"#;

/// The host's config and every source's adapter, built once per fuzzing process.
struct Harness {
    config: Config,
    adapters: BTreeMap<String, Arc<dyn CmsAdapter>>,
    runtime: tokio::runtime::Runtime,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let config = Config::parse(CONFIG, Path::new("fuzz.toml")).expect("the fuzz config loads");
        let adapters = cms::build(&config.sources).expect("the fuzz adapters build");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Harness {
            config,
            adapters,
            runtime,
        }
    })
}

/// A fuzzer's bytes read as a request: headers, whether to sign, query string, body.
pub struct Request {
    pub sign: bool,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// Reads `head\n\nbody`; bytes without an empty line are all body. Header lines that are
    /// not valid HTTP headers are skipped (the listener would have refused them).
    pub fn parse(data: &[u8]) -> Request {
        let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (&b""[..], data),
        };
        let mut request = Request {
            sign: false,
            headers: HeaderMap::new(),
            query: None,
            body: body.to_vec(),
        };
        for line in String::from_utf8_lossy(head).lines() {
            if line == "sign" {
                request.sign = true;
            } else if let Some(query) = line.strip_prefix('?') {
                request.query = Some(query.to_string());
            } else if let Some((name, value)) = line.split_once(':') {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                ) {
                    request.headers.append(name, value);
                }
            }
        }
        request
    }

    fn set(&mut self, name: &'static str, value: String) {
        self.headers.insert(
            name,
            HeaderValue::from_str(&value).expect("an ASCII header"),
        );
    }
}

/// Signs `request` the way CMS `kind` does, with the fuzz config's secret.
fn sign(kind: &str, path: &str, request: &mut Request) {
    let body = request.body.clone();
    let t = vidhook::store::now_ms().to_string();
    match kind {
        "ghost" => {
            let sig = signing::hmac_sha256(SECRET.as_bytes(), &[&body, t.as_bytes()]);
            request.set(
                "x-ghost-signature",
                format!("sha256={}, t={t}", hex::encode(sig)),
            );
        }
        "sanity" => {
            let sig = signing::hmac_sha256(SECRET.as_bytes(), &[t.as_bytes(), b".", &body]);
            request.set(
                "sanity-webhook-signature",
                format!("t={t},v1={}", URL_SAFE_NO_PAD.encode(sig)),
            );
        }
        "storyblok" => {
            let sig = signing::hmac_sha1(SECRET.as_bytes(), &body);
            request.set("webhook-signature", hex::encode(sig));
        }
        "strapi" | "directus" => request.set("authorization", TOKEN.into()),
        "wordpress" | "standard_webhooks" => {
            let secret = cms::standard_webhooks::Secret::parse(WHSEC).expect("a whsec secret");
            let now = vidhook::store::now_ms() / 1000;
            request.set("webhook-id", "msg_fuzz".into());
            request.set("webhook-timestamp", now.to_string());
            request.set("webhook-signature", secret.sign("msg_fuzz", now, &body));
        }
        "contentful" => {
            let signed = "x-contentful-signed-headers,x-contentful-timestamp";
            request.set("x-contentful-signed-headers", signed.into());
            request.set("x-contentful-timestamp", t.clone());
            let canonical = format!(
                "POST\n{}\nx-contentful-signed-headers:{signed};x-contentful-timestamp:{t}\n",
                cms::contentful::canonical_path(path, request.query.as_deref())
            );
            let sig = signing::hmac_sha256(SECRET.as_bytes(), &[canonical.as_bytes(), &body]);
            request.set("x-contentful-signature", hex::encode(sig));
        }
        other => panic!("no signer for {other}"),
    }
}

/// One webhook delivery to source `kind`: never a panic; unsigned, never accepted.
pub fn webhook(kind: &str, data: &[u8]) {
    let harness = harness();
    let adapter = &harness.adapters[kind];
    let path = format!("/hooks/{kind}");
    let mut request = Request::parse(data);
    if request.sign {
        sign(kind, &path, &mut request);
    }
    let delivery = cms::Delivery {
        method: "POST",
        path: &path,
        query: request.query.as_deref(),
        headers: &request.headers,
        body: &request.body,
    };
    let outcome = harness.runtime.block_on(adapter.receive(&delivery));
    if !request.sign {
        assert!(
            matches!(outcome, Err(cms::InboundError::Unauthorized(_))),
            "an unsigned delivery to {kind} was not refused as unauthorized: {outcome:?}"
        );
    }
}

/// A provider webhook: the signature check, then the job id the body announces.
pub fn provider_webhook(data: &[u8]) {
    let harness = harness();
    let vidhook::config::ProviderConfig::Omnihuman(settings) = &harness.config.provider else {
        panic!("the fuzz config names omnihuman");
    };
    static PROVIDER: OnceLock<vidhook::generation::OmniHuman> = OnceLock::new();
    let provider = PROVIDER
        .get_or_init(|| vidhook::generation::OmniHuman::new(settings.clone()).expect("omnihuman"));
    let mut request = Request::parse(data);
    if request.sign {
        let t = (vidhook::store::now_ms() / 1000).to_string();
        let sig = signing::hmac_sha256(SECRET.as_bytes(), &[t.as_bytes(), b".", &request.body]);
        request.set(
            "x-seedance-signature",
            format!("t={t},v1={}", hex::encode(sig)),
        );
    }
    use vidhook::generation::Provider;
    let verified = provider.verify_webhook(&request.headers, &request.body);
    assert!(
        request.sign || verified.is_err(),
        "an unsigned provider webhook was accepted"
    );
    let _ = vidhook::generation::announced_job(&request.body);
}

/// A Markdown file: front matter and body; and the write-back into its front matter, after
/// which the file must still parse, with the video URL in it.
pub fn markdown(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let folder = cms::markdown::MarkdownFolder::new("docs".into(), "/nonexistent".into());
    let parse = |text: &str| folder.parse(text, "fuzz.md".into(), "r1".into(), "fuzz.md");
    if parse(text).is_err() {
        return;
    }
    let url = "https://media.example.com/v.mp4?sig=a:b#c";
    let written = cms::markdown::set_front_matter_field(text, "video_url", url);
    let reread = parse(&written)
        .unwrap_or_else(|e| panic!("the written file no longer parses: {e}\n{written}"));
    assert_eq!(
        reread.fields["video_url"].as_str(),
        Some(url),
        "the written file does not hold the URL:\n{written}"
    );
}

/// A config file's text: parse, expand, validate; never a panic.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, Path::new("/nonexistent/fuzz.toml"));
    }
}

/// An editor's template (before the first NUL) rendered with a content context (after it) in
/// the template sandbox: strict mode, no escaping, within a deadline, never a panic.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (body, context) = text.split_once('\0').unwrap_or((text, "{}"));
    let set = vidhook::templates::TemplateSet::new([("script", 1, body)]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _ = runtime.block_on(set.render("script", context, deadline));
}

/// A `/media/{key}?expires=…&sig=…` request: a key outside the store is never a path, and an
/// unsigned key is served only under the public prefix.
pub fn media(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (key, expires, sig) = (
        parts.next().unwrap_or_default(),
        parts.next().and_then(|e| e.parse::<i64>().ok()),
        parts.next(),
    );
    let root = Path::new("/srv/media");
    let store = vidhook::media::MediaStore::local(
        root.into(),
        "https://v.example.com".into(),
        SECRET.as_bytes().to_vec(),
        60,
    );
    if let Ok(key) = vidhook::media::MediaStore::check_key(key) {
        let path = root.join(key);
        assert!(
            path.starts_with(root) && path != root && !key.starts_with(".scratch"),
            "{key:?} maps to {}",
            path.display()
        );
        assert!(
            Path::new(key)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{key:?} is not a plain relative path"
        );
    }
    if store.authorize(key, expires, sig) {
        assert!(
            key.starts_with(vidhook::media::PUBLIC_PREFIX),
            "{key:?} served without a valid signature"
        );
    }
}
