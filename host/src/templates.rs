//! Editor templates: Handlebars in strict mode (a missing variable is an error, not an empty
//! string that would be read aloud as nothing), stored in the database with versions and seeded
//! with defaults. A plan step takes a [`TemplateSet`] snapshot, so every template a plugin renders
//! in one run comes from the same versions, and the versions used are recorded with the render.
//! `crate::preview` runs an editor's draft through a source's real plugin chain before it is saved.

use std::collections::BTreeMap;
use std::sync::Mutex;

use handlebars::Handlebars;

use crate::store::{Store, StoreError};

/// The templates shipped with vidhook, saved as version 1 when absent.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("script", "{{title}}.\n\n{{body}}"),
    (
        "digest",
        "Good morning. Here is what was published since the last digest. \
         {{#each items}}{{this.title}}. {{this.summary}} {{/each}}That is all for now.",
    ),
    (
        "prompt",
        "A friendly presenter speaks directly to the camera in a bright, modern studio. Soft \
         key lighting, shallow depth of field, medium close-up framing, subtle natural gestures. \
         Topic: {{title}}.",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template named {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Render(RenderFailure),
    #[error("the context is not a JSON object: {0}")]
    Context(String),
    #[error("template does not compile: {message}")]
    Invalid {
        message: String,
        /// Line and column (from 1) of the problem, when the parser says.
        at: Option<(usize, usize)>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A template that failed to compile or render, and where (line and column, from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {name:?} v{version}: {message}")]
pub struct RenderFailure {
    pub name: String,
    /// 0: an unsaved draft.
    pub version: i64,
    pub message: String,
    pub at: Option<(usize, usize)>,
}

/// Where handlebars says a render failed.
fn render_position(err: &handlebars::RenderError) -> Option<(usize, usize)> {
    Some((err.line_no?, err.column_no?))
}

/// Saves the defaults that are not in the database yet.
pub async fn seed_defaults(store: &Store) -> Result<(), TemplateError> {
    for (name, body) in DEFAULTS {
        store.seed_template(name, body).await?;
    }
    Ok(())
}

/// Saves a new version after checking that it compiles.
pub async fn save(store: &Store, name: &str, body: &str) -> Result<i64, TemplateError> {
    check(body)?;
    Ok(store.save_template(name, body).await?)
}

/// Whether `body` compiles; `Err` says what and where.
pub fn check(body: &str) -> Result<(), TemplateError> {
    handlebars::Template::compile(body).map_err(|e| TemplateError::Invalid {
        message: e.to_string(),
        at: e.pos(),
    })?;
    Ok(())
}

/// The latest version of every template, compiled once, plus a record of which were used.
pub struct TemplateSet {
    registry: Handlebars<'static>,
    versions: BTreeMap<String, i64>,
    used: Mutex<BTreeMap<String, i64>>,
    /// The first render that failed (a plugin sees only its message; a preview shows where).
    failure: Mutex<Option<RenderFailure>>,
}

impl TemplateSet {
    pub async fn load(store: &Store) -> Result<TemplateSet, TemplateError> {
        TemplateSet::load_with(store, None).await
    }

    /// The latest templates, with `draft` (name, version, body) in place of its stored one: what
    /// a preview renders.
    pub async fn load_with(
        store: &Store,
        draft: Option<(&str, i64, &str)>,
    ) -> Result<TemplateSet, TemplateError> {
        let rows = store.latest_templates().await?;
        let stored = rows
            .iter()
            .filter(|r| draft.is_none_or(|(name, _, _)| r.name != name))
            .map(|r| (r.name.as_str(), r.version, r.body.as_str()));
        TemplateSet::compile(stored.chain(draft))
    }

    /// Compiles `(name, version, body)` templates: what [`TemplateSet::load`] does with the
    /// stored ones, and what the fuzz target feeds editor-written text to.
    pub fn compile<'t>(
        templates: impl IntoIterator<Item = (&'t str, i64, &'t str)>,
    ) -> Result<TemplateSet, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Narration is spoken, not HTML: "&" must stay "&".
        registry.register_escape_fn(handlebars::no_escape);
        let mut versions = BTreeMap::new();
        for (name, version, body) in templates {
            registry.register_template_string(name, body).map_err(|e| {
                TemplateError::Render(RenderFailure {
                    name: name.to_string(),
                    version,
                    message: e.to_string(),
                    at: e.pos(),
                })
            })?;
            versions.insert(name.to_string(), version);
        }
        Ok(TemplateSet {
            registry,
            versions,
            used: Mutex::new(BTreeMap::new()),
            failure: Mutex::new(None),
        })
    }

    /// Renders template `name` with a JSON object as context.
    pub fn render(&self, name: &str, context_json: &str) -> Result<String, TemplateError> {
        let version = *self
            .versions
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        let context: serde_json::Value = serde_json::from_str(context_json)
            .map_err(|e| TemplateError::Context(e.to_string()))?;
        if !context.is_object() {
            return Err(TemplateError::Context("expected an object".into()));
        }
        let out = self.registry.render(name, &context).map_err(|e| {
            let failure = RenderFailure {
                name: name.to_string(),
                version,
                message: e.to_string(),
                at: render_position(&e),
            };
            self.failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| failure.clone());
            TemplateError::Render(failure)
        })?;
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), version);
        Ok(out)
    }

    /// The first render of this set that failed, if one did.
    pub fn failure(&self) -> Option<RenderFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Templates rendered so far, with their versions (for provenance).
    pub fn used(&self) -> BTreeMap<String, i64> {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        (
            dir,
            Store::connect(&url, std::time::Duration::from_secs(10))
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn renders_latest_version_strictly_and_records_it() {
        let (_dir, store) = store().await;
        seed_defaults(&store).await.unwrap();
        assert_eq!(save(&store, "script", "{{title}} & more").await.unwrap(), 2);
        let set = TemplateSet::load(&store).await.unwrap();
        assert_eq!(
            set.render("script", r#"{"title":"Fish"}"#).unwrap(),
            "Fish & more"
        );
        assert_eq!(set.used().get("script"), Some(&2));
        let missing = set.render("script", "{}").unwrap_err().to_string();
        assert!(missing.contains("v2"), "{missing}");
        assert!(matches!(
            set.render("nope", "{}"),
            Err(TemplateError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn seeding_keeps_an_editors_version() {
        let (_dir, store) = store().await;
        seed_defaults(&store).await.unwrap();
        save(&store, "prompt", "custom").await.unwrap();
        seed_defaults(&store).await.unwrap();
        let set = TemplateSet::load(&store).await.unwrap();
        assert_eq!(set.render("prompt", "{}").unwrap(), "custom");
        assert!(save(&store, "bad", "{{#if}}").await.is_err());
    }
}
