//! Ghost (ghost.org/docs: "Webhooks" and the Admin API — token authentication, updating posts).
//!
//! Signature: `X-Ghost-Signature: sha256=<hex HMAC-SHA256(secret, raw body + t)>, t=<unix ms>`
//! (the timestamp appended to the body without a separator), checked in constant time with a
//! replay window. Payload: `{"post" | "page": {"current": {…}, "previous": {…}}}`, where
//! `previous` holds only the attributes that changed.
//!
//! What counts: the transition to published (`current.status` is `published` and `previous`
//! says it was something else — `post.published`), and an edit of a published post
//! (`post.published.edited`) only when a driving field (title, body, feature image) is among the
//! changed ones. Our write-back changes only the video field and `updated_at`: ignored.
//!
//! Write-back: `PUT {admin}/posts/{id}/` with `{"posts": [{field, "updated_at"}]}` under an Admin
//! API JWT (HS256, `kid` = key id, key = hex-decoded secret, `aud` `/admin/`, 5 min). Ghost
//! checks `updated_at` for collisions (409): the post is re-read and the write retried, so an
//! editor's change made between our read and our write survives. Ghost has no custom fields; the
//! default field is `codeinjection_foot`, which editors use for their own scripts and embeds:
//! vidhook's `<video>` lives there in its own marked block (`<!-- vidhook:video -->` …
//! `<!-- /vidhook:video -->`), replaced on the next render, with everything else in the field
//! kept byte for byte.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::mapping::{Defaults, Entry};
use super::{
    signing, CmsAdapter, Delivery, Inbound, InboundError, ListError, Listed, Page, Player,
    WriteBackError,
};
use crate::content::Content;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The webhook's secret.
    pub secret: String,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// `https://site/ghost/api/admin`; none = no write-back.
    pub admin_url: Option<String>,
    /// The Admin API key, `<id>:<hex secret>`.
    pub admin_api_key: Option<String>,
}

fn default_tolerance() -> u64 {
    300
}

const DEFAULTS: Defaults = Defaults {
    title: "title",
    body: "html",
    image: "feature_image",
    locale: "locale",
};
/// Attributes whose change makes an edited published post worth a new video.
const DRIVING: &[&str] = &[
    "title",
    "html",
    "plaintext",
    "lexical",
    "mobiledoc",
    "feature_image",
];
/// Write-back attempts when Ghost reports an update collision.
const COLLISION_RETRIES: usize = 3;

/// The Ghost adapter: its source name, [`Config`], field map and HTTP client.
pub type Ghost = super::Adapter<Config>;

impl Ghost {
    /// Checks `X-Ghost-Signature` against the raw body; `now_ms` in unix milliseconds.
    pub fn verify(&self, delivery: &Delivery<'_>, now_ms: i64) -> Result<(), InboundError> {
        let header = signing::header(delivery.headers, "x-ghost-signature")?;
        let (sig, t) = signing::pair(header, "x-ghost-signature", "sha256", "t")?;
        signing::check_window(
            signing::number(t, "t")?,
            now_ms,
            self.config.tolerance_secs as i64 * 1000,
            "ms",
        )?;
        let expected = signing::hmac_sha256(
            self.config.secret.as_bytes(),
            &[delivery.body, t.as_bytes()],
        );
        signing::check(
            &expected,
            &signing::unhex(sig, "sha256")?,
            "x-ghost-signature",
        )
    }

    fn parse(&self, body: &[u8]) -> Result<Inbound, InboundError> {
        let payload: Value = serde_json::from_slice(body)
            .map_err(|e| InboundError::Malformed(format!("not a Ghost webhook: {e}")))?;
        let (kind, item) = ["post", "page"]
            .iter()
            .find_map(|k| payload.get(*k).map(|v| (*k, v)))
            .ok_or_else(|| InboundError::Malformed("neither \"post\" nor \"page\"".into()))?;
        let current = &item["current"];
        let previous = &item["previous"];
        if !current.is_object() || !(previous.is_object() || previous.is_null()) {
            return Err(InboundError::Malformed(format!(
                "\"{kind}\" must be an object with a \"current\" object (and \"previous\")"
            )));
        }
        if current["status"] != "published" {
            return Ok(ignored("not published".into()));
        }
        let was_published = previous.get("status").is_none_or(|s| s == "published");
        if was_published {
            let changed = DRIVING.iter().any(|f| previous.get(*f).is_some());
            if !changed {
                return Ok(ignored(
                    "published post edited, but not its title, body or image".into(),
                ));
            }
        }
        if !self.fields.counts(kind) {
            return Ok(ignored(format!("{kind}s do not make videos")));
        }
        Ok(Inbound::Publish {
            delivery_id: None,
            contents: vec![self.post_content(kind, current)?],
        })
    }

    /// A post (or page) as the Admin API and the webhook both write it, as content.
    fn post_content(&self, kind: &str, post: &Value) -> Result<Content, InboundError> {
        let id = post["id"]
            .as_str()
            .ok_or_else(|| InboundError::Malformed(format!("a {kind} without an id")))?;
        self.fields.content(
            &DEFAULTS,
            Entry {
                source: &self.source,
                cms: "ghost",
                id: id.to_string(),
                revision: post["updated_at"].as_str().unwrap_or_default().into(),
                kind: kind.to_string(),
                locale: None,
                url: post["url"].as_str().map(str::to_owned),
            },
            post,
        )
    }

    /// An Admin API token: HS256 JWT, `kid` = key id, valid 5 minutes for `/admin/`.
    fn token(&self, key: &str) -> Result<String, WriteBackError> {
        let (id, secret) = key.split_once(':').ok_or_else(|| {
            WriteBackError::Permanent("admin_api_key is not <id>:<secret>".into())
        })?;
        let secret = hex::decode(secret)
            .map_err(|_| WriteBackError::Permanent("admin_api_key's secret is not hex".into()))?;
        let now = crate::store::now_ms() / 1000;
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT", "kid": id}).to_string());
        let claims = URL_SAFE_NO_PAD
            .encode(json!({"iat": now, "exp": now + 300, "aud": "/admin/"}).to_string());
        let signing_input = format!("{header}.{claims}");
        let signature = signing::hmac_sha256(&secret, &[signing_input.as_bytes()]);
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

fn ignored(reason: String) -> Inbound {
    Inbound::Ignored { reason }
}

/// What goes into `field`: a `<video>` element for the code-injection fields, else the URL.
/// The markers around vidhook's block in a code-injection field.
const BLOCK_START: &str = "<!-- vidhook:video -->";
const BLOCK_END: &str = "<!-- /vidhook:video -->";

/// The field's new value: for a code-injection field, `current` with vidhook's block (the player:
/// video, poster, captions track) put in (the first block replaced in place, any others removed,
/// or one appended); anything else, the video's URL.
fn field_value(field: &str, current: &str, player: &Player) -> String {
    if !field.starts_with("codeinjection_") {
        return player.video_url.clone();
    }
    let attribute = |value: &str| {
        value
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
    };
    let poster = player
        .poster_url
        .as_deref()
        .map(|url| format!(r#" poster="{}""#, attribute(url)))
        .unwrap_or_default();
    let track = player
        .captions
        .as_ref()
        .map(|(url, language)| {
            format!(
                r#"<track kind="captions" src="{}" srclang="{}" label="Captions" default>"#,
                attribute(url),
                attribute(language)
            )
        })
        .unwrap_or_default();
    let block = format!(
        r#"{BLOCK_START}<video src="{}"{poster} controls preload="metadata" crossorigin="anonymous">{track}</video>{BLOCK_END}"#,
        attribute(&player.video_url)
    );
    let mut rest = current;
    let mut out = String::with_capacity(current.len() + block.len() + 1);
    let mut placed = false;
    while let Some(start) = rest.find(BLOCK_START) {
        let Some(len) = rest[start..].find(BLOCK_END) else {
            break;
        };
        out.push_str(&rest[..start]);
        if !placed {
            out.push_str(&block);
            placed = true;
        }
        rest = &rest[start + len + BLOCK_END.len()..];
    }
    out.push_str(rest);
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&block);
    }
    out
}

#[async_trait::async_trait]
impl CmsAdapter for Ghost {
    fn kind(&self) -> &'static str {
        "ghost"
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("admin_url", self.config.admin_url.as_deref())
    }

    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        self.verify(delivery, crate::store::now_ms())?;
        self.parse(delivery.body)
    }

    /// `GET {admin}/posts/?filter=status:published+updated_at:>='YYYY-MM-DD HH:mm:ss'&order=updated_at asc`
    /// (the Admin API's NQL filter and page paging; `formats=html` as the webhook carries it).
    async fn list_published(
        &self,
        since_ms: i64,
        cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let (Some(admin), Some(key)) = (&self.config.admin_url, &self.config.admin_api_key) else {
            return Ok(None);
        };
        if !self.fields.counts("post") {
            return Ok(Some(Page::default()));
        }
        let page = cursor.unwrap_or("1");
        let url = format!("{}/posts/", admin.trim_end_matches('/'));
        // Ghost's own filter examples write dates as 'YYYY-MM-DD HH:mm:ss' (UTC). On SQLite, its
        // default for small sites, the literal is compared with the stored text as text: an
        // RFC 3339 literal ("…T…Z") is after every time of its day and lists nothing.
        let filter = format!(
            "status:published+updated_at:>='{}'",
            super::format_time_in(since_ms, "%Y-%m-%d %H:%M:%S")
        );
        let request = self
            .http
            .get(&url)
            .header("authorization", format!("Ghost {}", self.token(key)?))
            .query(&[
                ("filter", filter.as_str()),
                ("order", "updated_at asc"),
                ("limit", "50"),
                ("page", page),
                ("formats", "html"),
            ]);
        let answer = super::http::send(request, &format!("GET {url}")).await?;
        let posts = answer["posts"]
            .as_array()
            .ok_or_else(|| ListError(format!("GET {url}: no \"posts\" list")))?;
        let mut items = Vec::with_capacity(posts.len());
        for post in posts {
            items.push(Listed::new(
                super::parse_time(&post["updated_at"]).unwrap_or(since_ms),
                self.post_content("post", post).map(|c| vec![c]),
            ));
        }
        let next = answer["meta"]["pagination"]["next"]
            .as_i64()
            .map(|n| n.to_string());
        Ok(Some(Page { items, next }))
    }

    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError> {
        let player = Player {
            video_url: video_url.to_string(),
            ..Player::default()
        };
        self.write_player(content, field, &player).await
    }

    async fn write_player(
        &self,
        content: &Content,
        field: &str,
        player: &Player,
    ) -> Result<(), WriteBackError> {
        let (Some(admin), Some(key)) = (&self.config.admin_url, &self.config.admin_api_key) else {
            return Ok(());
        };
        let field = match self.fields.video.as_deref() {
            Some(mapped) => mapped,
            None if field == "video_url" => "codeinjection_foot",
            None => field,
        };
        let collection = if content.kind == "page" {
            "pages"
        } else {
            "posts"
        };
        let url = format!(
            "{}/{collection}/{}/",
            admin.trim_end_matches('/'),
            super::http::segment(&content.id)
        );
        let mut last = None;
        for _ in 0..COLLISION_RETRIES {
            let auth = format!("Ghost {}", self.token(key)?);
            let current = super::http::send(
                self.http.get(&url).header("authorization", &auth),
                &format!("GET {url}"),
            )
            .await?;
            let post = &current[collection][0];
            let now = post[field].as_str().unwrap_or_default();
            let value = field_value(field, now, player);
            // Only our field, under the `updated_at` we read: a save in between is a 409.
            let body =
                json!({collection: [{field: value, "updated_at": post["updated_at"].clone()}]});
            let put = self
                .http
                .put(&url)
                .header("authorization", &auth)
                .json(&body);
            match super::http::send(put, &format!("PUT {url}")).await {
                Err(WriteBackError::Conflict(message)) => last = Some(message),
                other => return other.map(drop),
            }
        }
        Err(WriteBackError::Transient(format!(
            "still colliding after {COLLISION_RETRIES} attempts: {}",
            last.unwrap_or_default()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::mapping::FieldMap;
    use axum::http::HeaderMap;

    const SECRET: &str = "ghost-test-secret";
    const BODY: &[u8] = br#"{"post":{"current":{"id":"6571","status":"published","title":"Hello","html":"<p>World.</p>","updated_at":"2026-11-25T10:00:00.000Z"},"previous":{"status":"draft","updated_at":"2026-11-25T09:00:00.000Z"}}}"#;
    const T: i64 = 1700000000000;
    /// hex(HMAC-SHA256("ghost-test-secret", BODY + "1700000000000")), computed with Python's
    /// hmac from the documented algorithm.
    const SIG: &str = "7be9c167d7063c406521883bfce69ff96eb1edcc045c87ceed93224b7b312fab";

    fn ghost() -> Ghost {
        let config = Config {
            secret: SECRET.into(),
            tolerance_secs: 300,
            admin_url: None,
            admin_api_key: None,
        };
        Ghost::new("blog".into(), &config, &FieldMap::default())
    }

    fn check(value: Option<&str>, body: &[u8], now: i64) -> Result<(), InboundError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert("x-ghost-signature", value.parse().unwrap());
        }
        ghost().verify(&Delivery::post(&headers, body), now)
    }

    #[test]
    fn verifies_the_documented_signature_and_refuses_the_rest() {
        let good = format!("sha256={SIG}, t={T}");
        check(Some(&good), BODY, T + 500).unwrap();
        assert!(check(Some(&good), b"{}", T).is_err(), "tampered body");
        assert!(check(Some(&good), BODY, T + 301_000).is_err(), "stale");
        assert!(
            check(Some(&format!("sha256={}, t={T}", &SIG[..40])), BODY, T).is_err(),
            "truncated"
        );
        assert!(
            check(Some(&format!("sha256={SIG}, t={}", T + 1)), BODY, T).is_err(),
            "other t"
        );
        assert!(check(None, BODY, T).is_err(), "missing header");
        let mut other = ghost();
        other.config.secret = "wrong".into();
        let mut headers = HeaderMap::new();
        headers.insert("x-ghost-signature", good.parse().unwrap());
        assert!(other.verify(&Delivery::post(&headers, BODY), T).is_err());
    }

    #[test]
    fn only_publishing_or_editing_what_drives_the_video_counts() {
        let Inbound::Publish { contents, .. } = ghost().parse(BODY).unwrap() else {
            panic!()
        };
        assert_eq!(
            (contents[0].id.as_str(), contents[0].body_text.as_str()),
            ("6571", "World.")
        );
        // post.published.edited by our write-back: only the video field and updated_at changed.
        let echo = br#"{"post":{"current":{"id":"6571","status":"published","title":"Hello","html":"<p>World.</p>"},"previous":{"codeinjection_foot":null,"updated_at":"x"}}}"#;
        assert!(matches!(
            ghost().parse(echo).unwrap(),
            Inbound::Ignored { .. }
        ));
        let retitled = br#"{"post":{"current":{"id":"6571","status":"published","title":"Hello again","html":"<p>World.</p>"},"previous":{"title":"Hello"}}}"#;
        assert!(matches!(
            ghost().parse(retitled).unwrap(),
            Inbound::Publish { .. }
        ));
        let draft =
            br#"{"post":{"current":{"id":"1","status":"draft","title":"x"},"previous":{}}}"#;
        assert!(matches!(
            ghost().parse(draft).unwrap(),
            Inbound::Ignored { .. }
        ));
        assert!(matches!(
            ghost().parse(b"{}"),
            Err(InboundError::Malformed(_))
        ));
    }

    #[test]
    fn the_admin_token_is_an_hs256_jwt_for_admin() {
        let token = ghost().token("65a1:00ff").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some("HS256"), Some("65a1"))
        );
        let expected = signing::hmac_sha256(
            &[0x00, 0xff],
            &[format!("{}.{}", parts[0], parts[1]).as_bytes()],
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), expected);
    }

    /// Only a video URL.
    fn video(url: &str) -> Player {
        Player {
            video_url: url.into(),
            ..Player::default()
        }
    }

    #[test]
    fn the_block_is_a_player_with_its_poster_and_captions_track() {
        let player = Player {
            video_url: "https://m/v.mp4".into(),
            poster_url: Some("https://m/v.jpg?a=1&b=2".into()),
            captions: Some(("https://m/v.vtt".into(), "de-AT".into())),
        };
        let block = field_value("codeinjection_foot", "", &player);
        assert_eq!(
            block,
            "<!-- vidhook:video --><video src=\"https://m/v.mp4\" poster=\"https://m/v.jpg?a=1&amp;b=2\" \
             controls preload=\"metadata\" crossorigin=\"anonymous\"><track kind=\"captions\" \
             src=\"https://m/v.vtt\" srclang=\"de-AT\" label=\"Captions\" default></video>\
             <!-- /vidhook:video -->"
        );
    }

    #[test]
    fn the_video_block_is_ours_and_the_editors_footer_is_kept_byte_for_byte() {
        let editor = "<script src=\"https://stats.example/x.js\"></script>\r\n  <!-- keep -->";
        let once = field_value("codeinjection_foot", editor, &video("https://v/1.mp4"));
        assert!(once.starts_with(editor), "{once}");
        let twice = field_value(
            "codeinjection_foot",
            &once,
            &video("https://v/2.mp4?a=1&b=2"),
        );
        assert!(twice.starts_with(editor));
        assert_eq!(twice.matches(BLOCK_START).count(), 1, "{twice}");
        assert!(twice.contains("https://v/2.mp4?a=1&amp;b=2") && !twice.contains("1.mp4"));
        // An editor's text after our block stays after it.
        let after = format!("{once}\n<p>footer note</p>");
        let replaced = field_value("codeinjection_foot", &after, &video("https://v/3.mp4"));
        assert!(replaced.ends_with("\n<p>footer note</p>"), "{replaced}");
        assert_eq!(
            field_value("codeinjection_foot", "", &video("https://v/4.mp4")).find(BLOCK_START),
            Some(0)
        );
        assert_eq!(
            field_value("video", "ignored", &video("https://v/5.mp4")),
            "https://v/5.mp4"
        );
    }

    #[test]
    fn malformed_shapes_are_malformed_not_ignored() {
        let ghost = ghost();
        for body in [
            &br#"{"post": []}"#[..],
            br#"{"post": {"current": "x"}}"#,
            br#"{"page": {"current": {}, "previous": 3}}"#,
            br#"{"post": null}"#,
        ] {
            assert!(
                matches!(ghost.parse(body), Err(InboundError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
