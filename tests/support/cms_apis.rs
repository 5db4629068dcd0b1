//! Loopback contract servers for the hosted CMSs' write-back APIs (Contentful CMA, Ghost Admin,
//! Sanity mutations, Strapi REST, Directus items, Storyblok Management), following the documented
//! requests and their faults (version conflicts, 5xx, refusals). Like the real CMS, each one
//! fires its webhook again after vidhook writes the video URL — signed as that CMS signs — so a
//! test can check that the echo makes no second render. Each also sends the first publish webhook,
//! exactly once: like Ghost and Strapi, it never retries a delivery that failed.
//!
//! Each also lists its content as its documented listing endpoint does (the catch-up sweep's
//! input), honouring the documented filters: a draft item it holds is listed only to a caller
//! that forgets the published filter, and only items changed since the caller's time come back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

/// 64 characters: Contentful documents its signing secrets as exactly that long.
pub const SECRET: &str = "cms-webhook-secret-0123456789abcdef0123456789abcdef0123456789abc";
pub const TOKEN: &str = "Bearer cms-static-token";
pub const API_TOKEN: &str = "cms-api-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Contentful,
    Ghost,
    Sanity,
    Strapi,
    Directus,
    Storyblok,
}

#[derive(Default)]
struct Inner {
    /// The one entry this CMS holds (the document its webhooks carry).
    entry: Value,
    /// Contentful's `sys.version` / Ghost's `updated_at` counter.
    version: i64,
    /// Write requests (PUT/PATCH/mutate) that changed the entry, as received.
    writes: Vec<Value>,
    /// Statuses the next write requests answer instead of succeeding.
    failures: VecDeque<u16>,
    /// Answer the next write with a version conflict (someone else saved meanwhile).
    conflict_once: bool,
    /// vidhook's webhook URL for this source.
    hook: String,
    /// What vidhook answered to each webhook sent (the publish, then echoes).
    answers: Vec<u16>,
    /// Storyblok: an editor's saved, unpublished working version of the story's content.
    draft: Option<Value>,
    /// Storyblok: the title of a draft saved right after the next publish.
    draft_title: Option<String>,
    /// Ghost: text an editor appends to the footer just before vidhook's next write lands.
    footer_edit: Option<String>,
    /// When the entry last changed (unix ms): what the listing's time filter and order use.
    changed_at: i64,
    /// An unpublished item (another id) the CMS also holds.
    draft_item: Value,
    /// Listing requests answered so far, and how many of the next ones answer 503.
    lists: usize,
    list_failures: usize,
    /// Lists, before the entry, an item of the same shape without its id (a malformed entry).
    broken_item: bool,
    /// Storyblok: a content field an editor saves right after vidhook's nth next read of the
    /// story through the Management API (reads left, field, value).
    edit_after_read: Option<(usize, String, String)>,
    /// Entries published before the test began (backfill), by id: when each last changed, and
    /// the entry (its time fields stamped). A request naming one's id reads or writes it.
    others: std::collections::BTreeMap<String, (i64, Value)>,
    /// Ghost: the database its filters compare in.
    ghost_database: GhostDatabase,
    /// Every webhook sent, to send again late.
    sent: Vec<Sent>,
}

/// One webhook as sent: what it was made from (payload, entry) and its signed headers and body.
#[derive(Clone)]
struct Sent {
    payload: Value,
    entry: Value,
    headers: Vec<(&'static str, String)>,
    body: String,
}

#[derive(Clone)]
pub struct CmsApi {
    pub kind: Kind,
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    /// One entry request at a time: a request naming another entry swaps it in for its length.
    serial: Arc<tokio::sync::Mutex<()>>,
}

impl CmsApi {
    pub async fn start(kind: Kind) -> CmsApi {
        let inner = Arc::new(Mutex::new(Inner {
            version: 1,
            ..Inner::default()
        }));
        let api = CmsApi {
            kind,
            url: String::new(),
            inner,
            serial: Arc::new(tokio::sync::Mutex::new(())),
        };
        let router = Router::new().fallback(handle).with_state(api.clone());
        CmsApi {
            url: super::serve(router).await,
            ..api
        }
    }

    /// Sends the `n`th webhook sent so far again, byte for byte with its original signature and
    /// delivery id: a replay within the signature window (or a duplicate the network made).
    pub async fn replay(&self, n: usize) -> u16 {
        let (hook, headers, body) = {
            let state = self.inner.lock().unwrap();
            let sent = state.sent[n].clone();
            (state.hook.clone(), sent.headers, sent.body)
        };
        send(&self.inner, &hook, headers, body).await
    }

    /// Sends the `n`th webhook sent so far again as the CMS's own retry would, late: the same
    /// content, signed afresh (a new timestamp; a new delivery id where the CMS sends one).
    pub async fn retry_late(&self, n: usize) -> u16 {
        let (hook, payload, entry) = {
            let state = self.inner.lock().unwrap();
            let sent = state.sent[n].clone();
            (state.hook.clone(), sent.payload, sent.entry)
        };
        let (body, headers) = signed(self.kind, &hook, &payload, &entry);
        send(&self.inner, &hook, headers, body).await
    }

    /// Ghost: keep posts "in MySQL" (dates compared as dates) instead of SQLite (as text).
    pub fn use_ghost_database(&self, database: GhostDatabase) {
        self.inner.lock().unwrap().ghost_database = database;
    }

    /// The `[sources.cms]` config lines for this CMS, pointing at this server.
    pub fn source_config(&self) -> String {
        let url = &self.url;
        match self.kind {
            Kind::Contentful => format!(
                "cms = \"contentful\"\nsigning_secret = \"{SECRET}\"\napi_url = \"{url}\"\n\
                 space_id = \"space1\"\nmanagement_token = \"{API_TOKEN}\"\n[sources.cms.fields]\nvideo = \"videoUrl\"\n"
            ),
            Kind::Ghost => format!(
                "cms = \"ghost\"\nsecret = \"{SECRET}\"\nadmin_url = \"{url}/ghost/api/admin\"\n\
                 admin_api_key = \"6571abc:00112233445566778899aabbccddeeff\"\n"
            ),
            Kind::Sanity => format!(
                "cms = \"sanity\"\nsecret = \"{SECRET}\"\napi_url = \"{url}\"\napi_token = \"{API_TOKEN}\"\n\
                 project_id = \"proj1\"\ncdn_url = \"{url}\"\n"
            ),
            Kind::Strapi => format!(
                "cms = \"strapi\"\ntoken = \"{TOKEN}\"\napi_url = \"{url}\"\napi_token = \"{API_TOKEN}\"\n\
                 collections = {{ article = \"articles\" }}\n"
            ),
            Kind::Directus => format!(
                "cms = \"directus\"\ntoken = \"{TOKEN}\"\napi_url = \"{url}\"\napi_token = \"{API_TOKEN}\"\n\
                 collections = [\"articles\"]\n"
            ),
            Kind::Storyblok => format!(
                "cms = \"storyblok\"\nsecret = \"{SECRET}\"\napi_url = \"{url}\"\nmanagement_token = \"{API_TOKEN}\"\n\
                 delivery_token = \"{CDN_TOKEN}\"\ndelivery_url = \"{url}\"\nspace_id = 123\n"
            ),
        }
    }

    /// A vidhook config with one source `cms` for this server, listening at `listen`, with
    /// `extra` lines in the source's table.
    pub fn host_config(&self, dir: &std::path::Path, listen: &str, extra: &str) -> String {
        host_config(dir, listen, &self.source_config(), extra)
    }

    /// The presenter photo's URL as vidhook must resolve this CMS's own image reference.
    pub fn expected_image(&self) -> String {
        let url = &self.url;
        match self.kind {
            Kind::Contentful => format!("{url}/images/presenter.png"),
            Kind::Ghost => format!("{url}/content/images/2026/11/presenter.png"),
            Kind::Sanity => {
                format!("{url}/images/proj1/production/Tb9Ew8CXIwaY6R1kjMvI0uRR-768x768.png")
            }
            Kind::Strapi => format!("{url}/uploads/presenter_3f9c2a.png"),
            Kind::Directus => format!("{url}/assets/{DIRECTUS_FILE}"),
            Kind::Storyblok => format!("{url}/f/12345/768x768/presenter.png"),
        }
    }

    /// Creates the entry (with its image as this CMS references one) and sends its publish
    /// webhook to `hook`; returns vidhook's status.
    pub async fn publish(&self, hook: &str, title: &str, body: &str) -> u16 {
        let entry = self.new_entry(title, body);
        let draft_item = draft_item(self.kind, &entry);
        let first = {
            let mut inner = self.inner.lock().unwrap();
            inner.entry = entry;
            inner.draft_item = draft_item;
            restamp(self.kind, &mut inner);
            let at = vidhook::cms::format_time(inner.changed_at);
            match self.kind {
                Kind::Strapi => inner.entry["publishedAt"] = json!(at),
                Kind::Storyblok => inner.entry["published_at"] = json!(at),
                Kind::Contentful => {
                    // Every publish is a new version of the entry.
                    inner.version += 1;
                    inner.entry["sys"]["version"] = json!(inner.version);
                }
                _ => {}
            }
            let entry = inner.entry.clone();
            inner.hook = hook.to_string();
            if let Some(title) = inner.draft_title.take() {
                let mut draft = inner.entry["content"].clone();
                draft["title"] = json!(title);
                inner.draft = Some(draft);
            }
            match self.kind {
                Kind::Ghost => json!({"post": {"current": entry, "previous": {"status": "draft"}}}),
                Kind::Directus => {
                    json!({"event": "items.create", "collection": "articles", "key": 12, "payload": entry})
                }
                _ => Value::Null,
            }
        };
        let entry = self.entry();
        fire(&self.inner, self.kind, first, entry).await
    }

    /// Ghost and Strapi: `n` entries published before the test began (no webhook is sent),
    /// titled `Existing 1` …, changed one minute apart after `first_ms`; ids as
    /// [`CmsApi::existing_id`] names them.
    pub fn seed_existing(&self, n: usize, first_ms: i64) {
        let mut others = std::collections::BTreeMap::new();
        for i in 1..=n {
            let mut entry = self.new_entry(
                &format!("Existing {i}"),
                &format!("Archive story number {i}."),
            );
            let changed = first_ms + 60_000 * i as i64;
            let id = self.existing_id(i);
            let time = vidhook::cms::format_time(changed);
            match self.kind {
                Kind::Ghost => {
                    entry["id"] = json!(id);
                    entry["updated_at"] = json!(time);
                }
                Kind::Strapi => {
                    entry["documentId"] = json!(id);
                    entry["id"] = json!(1000 + i);
                    entry["updatedAt"] = json!(time);
                    entry["publishedAt"] = json!(time);
                }
                other => panic!("{other:?}: existing entries are not modelled"),
            }
            others.insert(id, (changed, entry));
        }
        self.inner.lock().unwrap().others = others;
    }

    /// The id of the `i`th entry [`CmsApi::seed_existing`] made.
    pub fn existing_id(&self, i: usize) -> String {
        match self.kind {
            Kind::Ghost => format!("65a1{i:020x}"),
            _ => format!("existing{i:016}"),
        }
    }

    /// An entry `seed_existing` made, as it is now.
    pub fn existing(&self, id: &str) -> Value {
        self.inner.lock().unwrap().others[id].1.clone()
    }

    /// Sets vidhook's webhook URL (for the echoes of its write-backs) without publishing.
    pub fn set_hook(&self, hook: &str) {
        self.inner.lock().unwrap().hook = hook.to_string();
    }

    /// The entry this CMS would hold for `title` and `body` (its image as the CMS references it).
    fn new_entry(&self, title: &str, body: &str) -> Value {
        let url = &self.url;
        match self.kind {
            Kind::Contentful => json!({
                "sys": {"id": "5KsDBWseXY6QegucYAoacS", "type": "Entry", "version": 1,
                        "contentType": {"sys": {"type": "Link", "linkType": "ContentType", "id": "article"}}},
                "fields": {"title": {"en-US": title}, "body": {"en-US": body},
                           "image": {"en-US": {"sys": {"type": "Link", "linkType": "Asset",
                                                       "id": "3wtvPBbBjiMKqKKga8I2Cu"}}}}}),
            Kind::Ghost => json!({"id": "6571", "status": "published", "title": title,
                "html": format!("<p>{body}</p>"), "updated_at": "2026-11-25T10:00:01.000Z",
                "feature_image": format!("{url}/content/images/2026/11/presenter.png"),
                "codeinjection_foot": GHOST_EDITOR_FOOTER}),
            Kind::Sanity => {
                json!({"_id": "post-123", "_type": "post", "_rev": "r1", "title": title,
                "body": [{"_type": "block", "children": [{"_type": "span", "text": body}]}],
                "image": {"_type": "image", "asset": {"_type": "reference",
                          "_ref": "image-Tb9Ew8CXIwaY6R1kjMvI0uRR-768x768-png"}}})
            }
            Kind::Strapi => {
                json!({"id": 1, "documentId": "hp2h4vps4ei4vp0a7fd8ed7g", "locale": "en",
                "publishedAt": "2026-11-25T10:00:00.000Z", "title": title, "content": body,
                "cover": {"id": 3, "documentId": "a1b2c3", "name": "presenter.png",
                          "mime": "image/png", "url": "/uploads/presenter_3f9c2a.png"}})
            }
            Kind::Directus => {
                json!({"id": 12, "status": "published", "title": title, "content": body,
                       "image": DIRECTUS_FILE})
            }
            Kind::Storyblok => {
                json!({"id": 456, "full_slug": "blog/x", "published_at": "2026-11-25T10:00:00.000Z",
                "content": {"component": "article", "title": title, "body": body,
                            "image": {"id": 98765, "fieldtype": "asset", "alt": "",
                                      "filename": format!("{url}/f/12345/768x768/presenter.png")}}})
            }
        }
    }

    /// The next `n` listing requests answer 503 (the CMS is down).
    pub fn fail_lists(&self, n: usize) {
        self.inner.lock().unwrap().list_failures = n;
    }

    /// From now on the listing also holds a malformed item (no id) before the entry.
    pub fn list_a_broken_item(&self) {
        self.inner.lock().unwrap().broken_item = true;
    }

    /// Listing requests received so far (failed ones included).
    pub fn lists(&self) -> usize {
        self.inner.lock().unwrap().lists
    }

    /// Storyblok: right after vidhook's `nth` next read of the story (Management API), an
    /// editor saves `value` into the content field `field`, so a write made from that read would
    /// undo the editor's change.
    pub fn editor_saves_after_read(&self, nth: usize, field: &str, value: &str) {
        self.inner.lock().unwrap().edit_after_read = Some((nth, field.into(), value.into()));
    }

    /// The next `n` writes answer `status`.
    pub fn fail_writes(&self, status: u16, n: usize) {
        self.inner
            .lock()
            .unwrap()
            .failures
            .extend(std::iter::repeat_n(status, n));
    }

    /// Storyblok: after the next publish, an editor saves a change to the title without
    /// publishing it (before vidhook reads the story).
    pub fn save_draft_title_after_publish(&self, title: &str) {
        self.inner.lock().unwrap().draft_title = Some(title.to_string());
    }

    /// Ghost: an editor edits the published post's body; Ghost fires `post.published.edited`.
    pub async fn edit_body(&self, body: &str) -> u16 {
        let payload = {
            let mut state = self.inner.lock().unwrap();
            let previous = json!({"html": state.entry["html"].clone(),
                                  "updated_at": state.entry["updated_at"].clone()});
            state.version += 1;
            state.entry["html"] = json!(format!("<p>{body}</p>"));
            restamp(Kind::Ghost, &mut state);
            json!({"post": {"current": state.entry.clone(), "previous": previous}})
        };
        let entry = self.entry();
        fire(&self.inner, self.kind, payload, entry).await
    }

    /// Ghost: the next time vidhook writes, an editor saves `addition` to the footer first (after
    /// vidhook read the post), so vidhook's write carries a stale `updated_at`.
    pub fn editor_saves_footer_before_next_write(&self, addition: &str) {
        self.inner.lock().unwrap().footer_edit = Some(addition.to_string());
    }

    pub fn conflict_once(&self) {
        self.inner.lock().unwrap().conflict_once = true;
    }

    /// Writes that changed the entry.
    pub fn writes(&self) -> Vec<Value> {
        self.inner.lock().unwrap().writes.clone()
    }

    /// vidhook's answers to the webhooks sent: the publish first, then the echoes.
    pub fn answers(&self) -> Vec<u16> {
        self.inner.lock().unwrap().answers.clone()
    }

    pub fn entry(&self) -> Value {
        self.inner.lock().unwrap().entry.clone()
    }
}

/// A vidhook config with one source `cms` configured by `source` (the lines after
/// `[sources.cms]`, a `[sources.cms.fields]` table last) and `extra` lines, listening at
/// `listen`, fast retries, the loopback allowlist turned on explicitly.
pub fn host_config(dir: &std::path::Path, listen: &str, source: &str, extra: &str) -> String {
    let (source, fields) = match source.split_once("[sources.cms.fields]") {
        Some((source, fields)) => (source.to_string(), format!("[sources.cms.fields]{fields}")),
        None => (source.to_string(), String::new()),
    };
    format!(
        "listen = \"{listen}\"\ndata_dir = \"{data}\"\nworkers = 2\n\n[retry]\nbase_delay_ms = 50\nmax_delay_ms = 300\nmax_attempts = 4\n\n\
         # Loopback contract servers: the outbound guard's development allowlist, explicitly.\n\
         [outbound]\nallow_private = [\"127.0.0.0/8\"]\n[checks]\nallow_plain_http = true\n\n\
         [sources.cms]\n{source}presenter_image = \"{image}\"\n{extra}{fields}",
        data = dir.join("data").display(),
        image = super::presenter_png().display(),
    )
}

/// What an editor keeps in a Ghost post's footer (exact bytes, CRLF included).
pub const GHOST_EDITOR_FOOTER: &str =
    "<script src=\"https://stats.example/track.js\" data-site=\"42\"></script>\r\n<!-- editor: keep -->";

/// Storyblok's public Content Delivery API token.
pub const CDN_TOKEN: &str = "cdn-public-token";

/// A Directus file id (files are served at `/assets/{id}`).
const DIRECTUS_FILE: &str = "4a3e5a1e-3b0f-4b5e-9a0e-6f8b2c1d7e90";

/// Sends this CMS's webhook for the current entry (`payload` if given, else the CMS's default
/// shape), signed as the CMS signs; records vidhook's status.
async fn fire(inner: &Arc<Mutex<Inner>>, kind: Kind, payload: Value, entry: Value) -> u16 {
    let hook = inner.lock().unwrap().hook.clone();
    let (body, headers) = signed(kind, &hook, &payload, &entry);
    inner.lock().unwrap().sent.push(Sent {
        payload,
        entry,
        headers: headers.clone(),
        body: body.clone(),
    });
    send(inner, &hook, headers, body).await
}

/// Sends one delivery to vidhook; records and returns its status (0: no answer).
async fn send(
    inner: &Arc<Mutex<Inner>>,
    hook: &str,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> u16 {
    let mut request = reqwest::Client::new()
        .post(hook)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let status = request
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    inner.lock().unwrap().answers.push(status);
    status
}

/// A delivery's body and headers, signed now as this CMS signs.
fn signed(
    kind: Kind,
    hook: &str,
    payload: &Value,
    entry: &Value,
) -> (String, Vec<(&'static str, String)>) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    match kind {
        Kind::Contentful => {
            let body = entry.to_string();
            // Signed as Contentful signs: the hook URL's path and query, canonicalised.
            let url = reqwest::Url::parse(hook).unwrap();
            let path = vidhook::cms::contentful::canonical_path(url.path(), url.query());
            let topic = "ContentManagement.Entry.publish";
            let signed = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic";
            let canonical = format!(
                "POST\n{path}\nx-contentful-signed-headers:{signed};x-contentful-timestamp:{now_ms};x-contentful-topic:{topic}\n{body}"
            );
            let signature = hex::encode(vidhook::cms::signing::hmac_sha256(
                SECRET.as_bytes(),
                &[canonical.as_bytes()],
            ));
            let headers = vec![
                (
                    "content-type",
                    "application/vnd.contentful.management.v1+json".to_string(),
                ),
                ("x-contentful-topic", topic.to_string()),
                ("x-contentful-signed-headers", signed.to_string()),
                ("x-contentful-timestamp", now_ms.to_string()),
                ("x-contentful-signature", signature),
                (
                    "x-contentful-idempotency-key",
                    uuid::Uuid::now_v7().to_string(),
                ),
            ];
            (body, headers)
        }
        Kind::Ghost => {
            let body = payload.to_string();
            let signature = hex::encode(vidhook::cms::signing::hmac_sha256(
                SECRET.as_bytes(),
                &[body.as_bytes(), now_ms.to_string().as_bytes()],
            ));
            let headers = vec![(
                "x-ghost-signature",
                format!("sha256={signature}, t={now_ms}"),
            )];
            (body, headers)
        }
        Kind::Sanity => {
            let body = entry.to_string();
            let digest = vidhook::cms::signing::hmac_sha256(
                SECRET.as_bytes(),
                &[now_ms.to_string().as_bytes(), b".", body.as_bytes()],
            );
            let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            let headers = vec![
                (
                    "sanity-webhook-signature",
                    format!("t={now_ms},v1={signature}"),
                ),
                ("idempotency-key", uuid::Uuid::now_v7().to_string()),
            ];
            (body, headers)
        }
        Kind::Strapi => {
            let body = json!({"event": "entry.publish", "createdAt": "2026-11-25T10:00:00.000Z",
                "model": "article", "uid": "api::article.article", "entry": entry})
            .to_string();
            let headers = vec![
                ("authorization", TOKEN.to_string()),
                ("x-strapi-event", "entry.publish".to_string()),
            ];
            (body, headers)
        }
        Kind::Directus => (
            payload.to_string(),
            vec![("authorization", TOKEN.to_string())],
        ),
        Kind::Storyblok => {
            let body = json!({"text": "The user published the Story", "action": "published",
                "space_id": 123, "story_id": entry["id"], "full_slug": entry["full_slug"]})
            .to_string();
            let signature = hex::encode(vidhook::cms::signing::hmac_sha1(
                SECRET.as_bytes(),
                body.as_bytes(),
            ));
            (body, vec![("webhook-signature", signature)])
        }
    }
}

fn authorized(kind: Kind, headers: &HeaderMap) -> bool {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match kind {
        Kind::Ghost => auth.starts_with("Ghost ") && auth.matches('.').count() == 2,
        Kind::Storyblok => auth == API_TOKEN,
        _ => auth == format!("Bearer {API_TOKEN}"),
    }
}

/// Every API request: reads answer the entry; writes check auth, faults and versions, change the
/// entry, then fire the CMS's webhook again as the real CMS would.
async fn handle(
    State(api): State<CmsApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Published images are public, as on the CMSs' CDNs and asset routes.
    let path = uri.path();
    if method == Method::GET && (path.ends_with(".png") || path.starts_with("/assets/")) {
        return std::fs::read(super::presenter_png())
            .unwrap()
            .into_response();
    }
    if method == Method::GET && api.kind == Kind::Storyblok && uri.path() == "/v2/cdn/stories" {
        return list(&api, &uri);
    }
    if method == Method::GET && api.kind == Kind::Storyblok && uri.path().starts_with("/v2/cdn/") {
        // The Content Delivery API: the published version, with a public token in the query.
        let query = uri.query().unwrap_or_default();
        if !query.contains("version=published") || !query.contains(&format!("token={CDN_TOKEN}")) {
            return (StatusCode::UNAUTHORIZED, "bad token").into_response();
        }
        let entry = api.inner.lock().unwrap().entry.clone();
        return Json(json!({"story": entry})).into_response();
    }
    if !authorized(api.kind, &headers) {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    if method == Method::GET && is_listing(api.kind, uri.path()) {
        return list(&api, &uri);
    }
    let _one_at_a_time = api.serial.lock().await;
    let other = {
        let state = api.inner.lock().unwrap();
        let mut segments = uri.path().split('/');
        segments
            .find(|segment| state.others.contains_key(*segment))
            .map(str::to_owned)
    };
    if let Some(id) = &other {
        swap_in(&api, id);
    }
    let response = entry_request(&api, method, uri, headers, body).await;
    if let Some(id) = &other {
        swap_in(&api, id);
    }
    response
}

/// Exchanges the entry with the earlier entry `id` (twice puts both back).
fn swap_in(api: &CmsApi, id: &str) {
    let mut state = api.inner.lock().unwrap();
    let state = &mut *state;
    let (changed, entry) = state.others.get_mut(id).expect("an earlier entry");
    std::mem::swap(&mut state.entry, entry);
    std::mem::swap(&mut state.changed_at, changed);
}

/// A request about one entry: reads answer it; writes check auth, faults and versions, change
/// it, then fire the CMS's webhook again as the real CMS would.
async fn entry_request(
    api: &CmsApi,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = api.kind;
    let inner = &api.inner;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if method == Method::GET && kind == Kind::Contentful && uri.path().contains("/assets/") {
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        return Json(json!({
            "sys": {"id": "3wtvPBbBjiMKqKKga8I2Cu", "type": "Asset"},
            "fields": {"title": {"en-US": "Presenter"},
                       "file": {"en-US": {"url": format!("//{host}/images/presenter.png"),
                                          "contentType": "image/png", "fileName": "presenter.png"}}}
        }))
        .into_response();
    }
    if method == Method::GET {
        let mut state = inner.lock().unwrap();
        let mut entry = state.entry.clone();
        if let Some((reads_left, field, value)) = state.edit_after_read.take() {
            if reads_left <= 1 {
                // The editor's save lands after this read (the answer below is the old story).
                state.entry["content"][field] = json!(value);
                state.changed_at = vidhook::store::now_ms();
            } else {
                state.edit_after_read = Some((reads_left - 1, field, value));
            }
        }
        if kind == Kind::Storyblok {
            // The Management API answers the working version.
            entry["unpublished_changes"] = json!(state.draft.is_some());
            if let Some(draft) = &state.draft {
                entry["content"] = draft.clone();
            }
        }
        return Json(match kind {
            Kind::Contentful => entry,
            Kind::Ghost => json!({"posts": [entry]}),
            Kind::Directus => json!({"data": entry}),
            Kind::Storyblok => json!({"story": entry}),
            _ => entry,
        })
        .into_response();
    }
    // Contentful publishes with a body-less PUT …/published after the PATCH.
    if kind == Kind::Contentful && uri.path().ends_with("/published") {
        let version = {
            let mut state = inner.lock().unwrap();
            let asked = header_number(&headers, "x-contentful-version");
            if asked != Some(state.version) {
                return (StatusCode::CONFLICT, "VersionMismatch").into_response();
            }
            state.version += 1;
            let version = state.version;
            state.entry["sys"]["version"] = json!(version);
            version
        };
        let (inner, entry) = (inner.clone(), inner.lock().unwrap().entry.clone());
        tokio::spawn(async move { fire(&inner, kind, Value::Null, entry).await });
        return Json(json!({"sys": {"version": version}})).into_response();
    }
    let echo = {
        let mut state = inner.lock().unwrap();
        if let Some(status) = state.failures.pop_front() {
            return (StatusCode::from_u16(status).unwrap(), "injected failure").into_response();
        }
        if let Some(addition) = state.footer_edit.take() {
            // The editor's save lands between vidhook's read and its write.
            let footer = state.entry["codeinjection_foot"]
                .as_str()
                .unwrap_or("")
                .to_string();
            state.entry["codeinjection_foot"] = json!(format!("{footer}{addition}"));
            state.version += 1;
            restamp(kind, &mut state);
        }
        if std::mem::take(&mut state.conflict_once) {
            // Someone else saved meanwhile: the version the writer read is stale now.
            state.version += 1;
            let version = state.version;
            state.entry["sys"]["version"] = json!(version);
            restamp(kind, &mut state);
            return (StatusCode::CONFLICT, "conflict: the entry changed").into_response();
        }
        if kind == Kind::Storyblok && request["publish"] != json!(1) {
            // Saved, not published: the working version changes, no webhook fires.
            state.draft = Some(request["story"]["content"].clone());
            state.writes.push(request.clone());
            return Json(json!({"story": state.entry})).into_response();
        }
        match apply(kind, &mut state, &headers, &request) {
            Ok(echo) => {
                state.writes.push(request.clone());
                echo
            }
            Err(status) => return (status, "refused").into_response(),
        }
    };
    let entry = inner.lock().unwrap().entry.clone();
    let answer = Json(entry.clone()).into_response();
    let inner = inner.clone();
    if kind != Kind::Contentful {
        tokio::spawn(async move { fire(&inner, kind, echo, entry).await });
    }
    answer
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

/// Applies one documented write to the entry; returns the payload of the webhook it fires.
fn apply(
    kind: Kind,
    state: &mut Inner,
    headers: &HeaderMap,
    request: &Value,
) -> Result<Value, StatusCode> {
    let entry = &mut state.entry;
    match kind {
        Kind::Contentful => {
            if header_number(headers, "x-contentful-version") != Some(state.version) {
                return Err(StatusCode::CONFLICT);
            }
            for op in request.as_array().ok_or(StatusCode::BAD_REQUEST)? {
                let path: Vec<&str> = op["path"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .split('/')
                    .collect();
                match path.as_slice() {
                    ["fields", field] => entry["fields"][*field] = op["value"].clone(),
                    ["fields", field, locale] => {
                        entry["fields"][*field][*locale] = op["value"].clone()
                    }
                    _ => return Err(StatusCode::UNPROCESSABLE_ENTITY),
                }
            }
            state.version += 1;
            entry["sys"]["version"] = json!(state.version);
            restamp(kind, state);
            Ok(Value::Null)
        }
        Kind::Ghost => {
            let update = &request["posts"][0];
            if update["updated_at"] != entry["updated_at"] {
                return Err(StatusCode::CONFLICT);
            }
            let mut previous = json!({"updated_at": entry["updated_at"]});
            for (key, value) in update.as_object().ok_or(StatusCode::BAD_REQUEST)? {
                if key != "updated_at" {
                    previous[key] = entry.get(key).cloned().unwrap_or(Value::Null);
                    entry[key] = value.clone();
                }
            }
            state.version += 1;
            restamp(kind, state);
            Ok(json!({"post": {"current": state.entry.clone(), "previous": previous}}))
        }
        Kind::Sanity => {
            let patch = &request["mutations"][0]["patch"];
            if patch["id"] != entry["_id"] {
                return Err(StatusCode::NOT_FOUND);
            }
            for (key, value) in patch["set"].as_object().ok_or(StatusCode::BAD_REQUEST)? {
                entry[key] = value.clone();
            }
            entry["_rev"] = json!(format!("r{}", state.version + 1));
            state.version += 1;
            restamp(kind, state);
            Ok(Value::Null)
        }
        Kind::Strapi => {
            for (key, value) in request["data"].as_object().ok_or(StatusCode::BAD_REQUEST)? {
                entry[key] = value.clone();
            }
            restamp(kind, state);
            Ok(Value::Null)
        }
        Kind::Directus => {
            for (key, value) in request.as_object().ok_or(StatusCode::BAD_REQUEST)? {
                entry[key] = value.clone();
            }
            restamp(kind, state);
            Ok(
                json!({"event": "items.update", "collection": "articles", "keys": ["12"], "payload": request}),
            )
        }
        Kind::Storyblok => {
            entry["content"] = request["story"]["content"].clone();
            state.draft = None;
            Ok(Value::Null)
        }
    }
}

/// Marks the entry changed now, as the real CMS would: its change time moves forward (by at
/// least a second, so that Ghost's whole seconds tell each change apart) and the kind's revision
/// field says so. Storyblok's
/// `published_at` and Strapi's `publishedAt` move on a publish only; Contentful's `sys.version`
/// is counted by its writes.
fn restamp(kind: Kind, state: &mut Inner) {
    state.changed_at = vidhook::store::now_ms().max(state.changed_at + 1000);
    let at = vidhook::cms::format_time(state.changed_at);
    let entry = &mut state.entry;
    match kind {
        Kind::Ghost => entry["updated_at"] = json!(at),
        Kind::Strapi => entry["updatedAt"] = json!(at),
        Kind::Sanity => entry["_updatedAt"] = json!(sanity_time(state.changed_at)),
        Kind::Directus => entry["date_updated"] = json!(at),
        Kind::Contentful => entry["sys"]["updatedAt"] = json!(at),
        Kind::Storyblok => {}
    }
}

/// An unpublished item beside the entry: same shape, another id, this CMS's draft marker.
fn draft_item(kind: Kind, entry: &Value) -> Value {
    let mut draft = entry.clone();
    match kind {
        Kind::Contentful => draft["sys"]["id"] = json!("draft-entry"),
        Kind::Ghost => {
            draft["id"] = json!("draft-post");
            draft["status"] = json!("draft");
        }
        Kind::Sanity => draft["_id"] = json!("drafts.post-123"),
        Kind::Strapi => {
            draft["documentId"] = json!("draftdocument0000000000");
            draft["publishedAt"] = Value::Null;
        }
        Kind::Directus => {
            draft["id"] = json!(13);
            draft["status"] = json!("draft");
        }
        Kind::Storyblok => {
            draft["id"] = json!(457);
            draft["published_at"] = Value::Null;
        }
    }
    draft["title"] = json!("An unpublished draft");
    if let Some(content) = draft.get_mut("content").filter(|c| c.is_object()) {
        content["title"] = json!("An unpublished draft");
    }
    if let Some(fields) = draft.get_mut("fields").filter(|f| f.is_object()) {
        fields["title"] = json!({"en-US": "An unpublished draft"});
    }
    draft
}

/// Whether `path` is this CMS's listing endpoint (rather than one entry's).
fn is_listing(kind: Kind, path: &str) -> bool {
    match kind {
        Kind::Ghost => path == "/ghost/api/admin/posts/",
        Kind::Contentful => path.ends_with("/entries"),
        Kind::Sanity => path.contains("/data/query/"),
        Kind::Strapi => path == "/api/articles",
        Kind::Directus => path == "/items/articles",
        Kind::Storyblok => path == "/v2/cdn/stories",
    }
}

/// The CMS's listing: the entry (with its change time in this CMS's field) and the draft when
/// the request's filters let it through, in this CMS's envelope.
fn list(api: &CmsApi, uri: &Uri) -> Response {
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut state = api.inner.lock().unwrap();
    state.lists += 1;
    if state.list_failures > 0 {
        state.list_failures -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let changed = vidhook::cms::format_time(state.changed_at);
    let mut entry = state.entry.clone();
    let mut draft = state.draft_item.clone();
    // (whether the request's time filter lets an entry changed at a time through, published
    // only?). Each compares the way its CMS does: a filter in another format than the one the
    // CMS documents finds what the real CMS would find, often nothing.
    let (passes, published_only): (Box<dyn Fn(i64) -> bool>, bool) = match api.kind {
        Kind::Ghost => {
            entry["updated_at"] = json!(changed);
            draft["updated_at"] = json!(changed);
            let filter = query.get("filter").cloned().unwrap_or_default();
            let literal = filter
                .split("updated_at:>='")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .map(str::to_owned);
            let database = state.ghost_database;
            let passes = move |changed_ms: i64| match &literal {
                None => true,
                Some(literal) => ghost_compares(database, changed_ms, literal),
            };
            (Box::new(passes), filter.contains("status:published"))
        }
        Kind::Contentful => {
            entry["sys"]["updatedAt"] = json!(changed);
            draft["sys"]["updatedAt"] = json!(changed);
            // `/public/entries` holds published entries only; `/entries` drafts too.
            (
                iso_at_least(query.get("sys.updatedAt[gte]")),
                uri.path().ends_with("/public/entries"),
            )
        }
        Kind::Sanity => {
            // Sanity keeps `_updatedAt` to the second, as "2026-11-25T10:00:01Z"; GROQ compares
            // strings as text, and datetimes (`dateTime(…)`) as times.
            let stored = sanity_time(state.changed_at);
            entry["_updatedAt"] = json!(stored);
            draft["_updatedAt"] = json!(stored);
            let groq = query.get("query").cloned().unwrap_or_default();
            let since = query.get("$since").map(|s| s.trim_matches('"').to_string());
            let passes: Box<dyn Fn(i64) -> bool> =
                if groq.contains("dateTime(_updatedAt) >= dateTime($since)") {
                    iso_at_least(since.as_ref())
                } else if groq.contains("_updatedAt >= $since") {
                    Box::new(move |changed_ms: i64| {
                        since
                            .as_deref()
                            .is_none_or(|since| sanity_time(changed_ms).as_str() >= since)
                    })
                } else {
                    Box::new(|_| true)
                };
            (passes, groq.contains("!(_id in path(\"drafts.**\"))"))
        }
        Kind::Strapi => {
            entry["updatedAt"] = json!(changed);
            draft["updatedAt"] = json!(changed);
            // Strapi 5's REST API answers published versions unless asked for `status=draft`.
            (
                iso_at_least(query.get("filters[updatedAt][$gte]")),
                query.get("status").is_none_or(|s| s == "published"),
            )
        }
        Kind::Directus => {
            entry["date_updated"] = json!(changed);
            draft["date_updated"] = json!(changed);
            let filter: Value = query
                .get("filter")
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or(Value::Null);
            let text = filter.to_string();
            let since = text
                .split("\"date_updated\":{\"_gte\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_owned);
            (
                iso_at_least(since.as_ref()),
                text.contains("\"status\":{\"_eq\":\"published\"}"),
            )
        }
        Kind::Storyblok => {
            if query.get("token").map(String::as_str) != Some(CDN_TOKEN) {
                return (StatusCode::UNAUTHORIZED, "bad token").into_response();
            }
            entry["published_at"] = json!(changed);
            // Storyblok documents its date filters in minutes, "2018-03-03 10:00"; anything
            // else is refused here.
            let since = match query.get("published_at_gt") {
                None => None,
                Some(s) => match jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s) {
                    Ok(minute) => Some(
                        minute
                            .to_zoned(jiff::tz::TimeZone::UTC)
                            .unwrap()
                            .timestamp()
                            .as_millisecond(),
                    ),
                    Err(_) => {
                        return (
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("published_at_gt {s:?}: use the format 2018-03-03 10:00"),
                        )
                            .into_response()
                    }
                },
            };
            (
                Box::new(move |changed_ms: i64| since.is_none_or(|since| changed_ms > since)),
                query.get("version").map(String::as_str) == Some("published"),
            )
        }
    };
    let fresh = !state.entry.is_null() && passes(state.changed_at);
    let mut items = Vec::new();
    if fresh {
        if state.broken_item {
            let mut broken = entry.clone();
            for id in ["id", "documentId", "_id"] {
                broken.as_object_mut().unwrap().remove(id);
            }
            if let Some(sys) = broken.get_mut("sys").and_then(Value::as_object_mut) {
                sys.remove("id");
            }
            items.push(broken);
        }
        items.push(entry);
        if !published_only {
            items.push(draft);
        }
    }
    // The entries published before the test, in the CMS's order (oldest change first), the
    // newest entry after them.
    let mut older: Vec<&(i64, Value)> = state
        .others
        .values()
        .filter(|(changed, _)| passes(*changed))
        .collect();
    older.sort_by_key(|(changed, _)| *changed);
    let items: Vec<Value> = older
        .into_iter()
        .map(|(_, e)| e.clone())
        .chain(items)
        .collect();
    Json(envelope(api.kind, items, &query)).into_response()
}

/// Which database a Ghost stand-in keeps its posts in: Ghost's small-site default compares a
/// filter's date literal with its stored text, MySQL converts the literal to a date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GhostDatabase {
    #[default]
    Sqlite,
    Mysql,
}

/// Whether Ghost lets a post changed at `changed_ms` through `updated_at:>='literal'`. Ghost
/// stores `updated_at` as `YYYY-MM-DD HH:MM:SS` (UTC, whole seconds). On SQLite the literal is
/// compared with that text as text (so `'2026-12-06T03:19:17.000Z'` is after every stored
/// time of that day: ' ' < 'T'); on MySQL it is read as a date (a `T` and a fraction accepted,
/// a zone suffix dropped with a warning).
fn ghost_compares(database: GhostDatabase, changed_ms: i64, literal: &str) -> bool {
    let stored = jiff::Timestamp::from_millisecond(changed_ms)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    match database {
        GhostDatabase::Sqlite => stored.as_str() >= literal,
        GhostDatabase::Mysql => {
            let trimmed = literal.trim_end_matches('Z').replace('T', " ");
            let seconds = trimmed.split('.').next().unwrap_or_default();
            match jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", seconds) {
                Ok(at) => stored.as_str() >= at.strftime("%Y-%m-%d %H:%M:%S").to_string().as_str(),
                Err(_) => false,
            }
        }
    }
}

/// Sanity's `_updatedAt` form: RFC 3339 to the second, `Z`.
fn sanity_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A filter `>= since` where the CMS reads `since` as an ISO 8601 / RFC 3339 time (Contentful,
/// Strapi, Directus, GROQ's `dateTime`): a value it cannot read filters everything out.
fn iso_at_least(since: Option<&String>) -> Box<dyn Fn(i64) -> bool> {
    match since {
        None => Box::new(|_| true),
        Some(text) => match text.parse::<jiff::Timestamp>() {
            Ok(since) => {
                let since = since.as_millisecond();
                Box::new(move |changed_ms| changed_ms >= since)
            }
            Err(_) => Box::new(|_| false),
        },
    }
}

/// The page the query asks for, in this CMS's parameters (1-based page, page size); Ghost and
/// Strapi page, the others answer everything at once.
fn page_asked(kind: Kind, query: &std::collections::HashMap<String, String>) -> (usize, usize) {
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match kind {
        // Ghost's Admin API: `limit` (default 15) and `page`.
        Kind::Ghost => (number("page", 1), number("limit", 15)),
        // Strapi 5: `pagination[page]` and `pagination[pageSize]` (default 25).
        Kind::Strapi => (
            number("pagination[page]", 1),
            number("pagination[pageSize]", 25),
        ),
        _ => (1, usize::MAX),
    }
}

/// The page of `items` the query asks for, in this CMS's envelope.
fn envelope(
    kind: Kind,
    items: Vec<Value>,
    query: &std::collections::HashMap<String, String>,
) -> Value {
    let total = items.len();
    let (page, size) = page_asked(kind, query);
    let size = size.max(1);
    let pages = total.div_ceil(size).max(1);
    let items: Vec<Value> = items
        .into_iter()
        .skip((page.max(1) - 1).saturating_mul(size))
        .take(size)
        .collect();
    match kind {
        Kind::Ghost => {
            let next = (page < pages).then_some(page + 1);
            let prev = (page > 1).then(|| page - 1);
            json!({"posts": items, "meta": {"pagination": {"page": page, "limit": size,
                "pages": pages, "total": total, "next": next, "prev": prev}}})
        }
        Kind::Contentful => {
            json!({"sys": {"type": "Array"}, "total": total, "skip": 0, "limit": 100, "items": items})
        }
        Kind::Sanity => json!({"result": items}),
        Kind::Strapi => json!({"data": items,
            "meta": {"pagination": {"page": page, "pageSize": size, "pageCount": pages, "total": total}}}),
        Kind::Directus => json!({"data": items}),
        Kind::Storyblok => json!({"stories": items}),
    }
}
