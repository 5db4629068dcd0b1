//! Editor templates: Handlebars in strict mode (a missing variable is an error, not an empty
//! string that would be read aloud as nothing), stored in the database with versions and seeded
//! with defaults. A plan step takes a [`TemplateSet`] snapshot, so every template a plugin renders
//! in one run comes from the same versions, and the versions used are recorded with the render.
//! `crate::preview` runs an editor's draft through a source's real plugin chain before it is saved.

pub mod engine;
pub mod fields;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use engine::{Budget, EngineError};

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
    /// The template sandbox could not run (not the template's fault).
    #[error("the template engine is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A template that failed to compile or render, and where (line and column, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderFailure {
    pub name: String,
    /// 0: an unsaved draft.
    pub version: i64,
    pub message: String,
    pub at: Option<(usize, usize)>,
}

impl std::fmt::Display for RenderFailure {
    /// `the draft of "script": …` (an unsaved draft), else `template "script" v3: …`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            0 => write!(f, "the draft of {:?}: {}", self.name, self.message),
            version => write!(f, "template {:?} v{version}: {}", self.name, self.message),
        }
    }
}

impl std::error::Error for RenderFailure {}

/// Saves the defaults that are not in the database yet.
pub async fn seed_defaults(store: &Store) -> Result<(), TemplateError> {
    for (name, body) in DEFAULTS {
        store.seed_template(name, body).await?;
    }
    Ok(())
}

/// How long the test render before a save may take.
pub const CHECK_BUDGET: Duration = Duration::from_secs(2);

/// Saves a new version after test-rendering it beside the stored templates
/// ([`TemplateSet::test_render`]).
pub async fn save(
    store: &Store,
    name: &str,
    body: &str,
    by: crate::store::Authored<'_>,
) -> Result<i64, TemplateError> {
    TemplateSet::load_with(store, Some((name, 0, body)))
        .await?
        .test_render(name)
        .await?;
    Ok(store.save_template(name, body, by).await?)
}

/// Content shaped like what the bundled plugins render with (an article's fields, and a
/// digest's items): what a template is test-rendered against before it is saved.
pub fn sample_context() -> serde_json::Value {
    let item = |n: u32| {
        serde_json::json!({
            "title": format!("Sample story {n}"),
            "summary": "A short summary of the story.",
            "url": format!("https://example.com/{n}"),
            "locale": "en-US",
        })
    };
    serde_json::json!({
        "title": "A sample article",
        "body": "The first paragraph of a sample article.\n\nA second paragraph.",
        "locale": "en-US",
        "kind": "article",
        "url": "https://example.com/sample",
        "source": "sample",
        "fields": {"title": "A sample article", "tags": ["one", "two"]},
        "items": [item(1), item(2), item(3)],
        "count": 3,
    })
}

/// The latest version of every template, plus a record of which were used. Rendering happens in
/// the template sandbox ([`engine`]), each render within the caller's deadline.
pub struct TemplateSet {
    /// (name, body) of every template, in name order.
    templates: Vec<(String, String)>,
    versions: BTreeMap<String, i64>,
    used: Mutex<BTreeMap<String, i64>>,
    /// The first render that failed (a plugin sees only its message; a preview shows where).
    failure: Mutex<Option<RenderFailure>>,
    /// The last context each template was rendered with, kept only when a preview asks
    /// ([`TemplateSet::recording_contexts`]): the fields an editor can use.
    contexts: Option<Mutex<BTreeMap<String, serde_json::Value>>>,
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
        Ok(TemplateSet::new(stored.chain(draft)))
    }

    /// A set of `(name, version, body)` templates: what [`TemplateSet::load`] makes of the
    /// stored ones, and what the fuzz target feeds editor-written text to. Nothing is compiled
    /// here: each render compiles in the sandbox, where a template cannot harm the host.
    pub fn new<'t>(templates: impl IntoIterator<Item = (&'t str, i64, &'t str)>) -> TemplateSet {
        let mut versions = BTreeMap::new();
        let mut bodies: BTreeMap<String, String> = BTreeMap::new();
        for (name, version, body) in templates {
            versions.insert(name.to_string(), version);
            bodies.insert(name.to_string(), body.to_string());
        }
        TemplateSet {
            templates: bodies.into_iter().collect(),
            versions,
            used: Mutex::new(BTreeMap::new()),
            failure: Mutex::new(None),
            contexts: None,
        }
    }

    /// Keeps the last context each template is rendered with (a preview's: the fields the
    /// plugins give a template, for the editor's list and completion).
    pub fn recording_contexts(mut self) -> TemplateSet {
        self.contexts = Some(Mutex::new(BTreeMap::new()));
        self
    }

    /// The fields template `name` was given, if it was rendered while recording.
    pub fn fields_of(&self, name: &str) -> Option<Vec<fields::Field>> {
        let contexts = self
            .contexts
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        contexts.get(name).map(fields::list)
    }

    /// Whether template `name` compiles and renders within its budget: it is test-rendered (not
    /// strictly, so every branch a missing variable would stop at runs) against
    /// [`sample_context`], with the set's other templates as partials. A template that recurses,
    /// nests past the stack, or takes longer than [`CHECK_BUDGET`] is refused here, before any
    /// render depends on it. `Err` says what and where.
    pub async fn test_render(&self, name: &str) -> Result<(), TemplateError> {
        let budget = Budget {
            deadline: Instant::now() + CHECK_BUDGET,
            strict: false,
        };
        let context = sample_context().to_string();
        match engine::render(&self.templates, name, &context, budget).await {
            Ok(_) => Ok(()),
            Err(EngineError::Template {
                template,
                message,
                at,
            }) if template == name => Err(TemplateError::Invalid { message, at }),
            Err(EngineError::Template {
                template, message, ..
            }) => Err(TemplateError::Invalid {
                message: format!("in {template:?}: {message}"),
                at: None,
            }),
            Err(EngineError::Budget(message)) => Err(TemplateError::Invalid { message, at: None }),
            Err(EngineError::Unavailable(message)) => Err(TemplateError::Unavailable(message)),
        }
    }

    /// Renders template `name` with a JSON object as context, in strict mode, on `session`'s
    /// instance, failing once `deadline` passes (the caller's: a plugin's run, a preview).
    pub async fn render(
        &self,
        session: &mut engine::Session,
        name: &str,
        context_json: &str,
        deadline: Instant,
    ) -> Result<String, TemplateError> {
        let version = *self
            .versions
            .get(name)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        let context: serde_json::Value = serde_json::from_str(context_json)
            .map_err(|e| TemplateError::Context(e.to_string()))?;
        if !context.is_object() {
            return Err(TemplateError::Context("expected an object".into()));
        }
        if let Some(contexts) = &self.contexts {
            let mut contexts = contexts.lock().unwrap_or_else(|p| p.into_inner());
            // The last: a plugin that fits a script renders it several times, and the last
            // context is the one its plan used.
            contexts.insert(name.to_string(), context);
        }
        let budget = Budget {
            deadline,
            strict: true,
        };
        let failure = match session
            .render(&self.templates, name, context_json, budget)
            .await
        {
            Ok(out) => {
                self.used
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_string(), version);
                return Ok(out);
            }
            Err(EngineError::Unavailable(message)) => {
                return Err(TemplateError::Unavailable(message))
            }
            Err(EngineError::Template {
                template,
                message,
                at,
            }) => RenderFailure {
                version: self.versions.get(&template).copied().unwrap_or(version),
                name: template,
                message,
                at,
            },
            Err(EngineError::Budget(message)) => RenderFailure {
                name: name.to_string(),
                version,
                message,
                at: None,
            },
        };
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| failure.clone());
        Err(TemplateError::Render(failure))
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
        assert_eq!(
            save(&store, "script", "{{title}} & more", Default::default())
                .await
                .unwrap(),
            2
        );
        let set = TemplateSet::load(&store).await.unwrap();
        assert_eq!(
            set.render(
                &mut Default::default(),
                "script",
                r#"{"title":"Fish"}"#,
                soon()
            )
            .await
            .unwrap(),
            "Fish & more"
        );
        assert_eq!(set.used().get("script"), Some(&2));
        let missing = set
            .render(&mut Default::default(), "script", "{}", soon())
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("v2"), "{missing}");
        assert!(matches!(
            set.render(&mut Default::default(), "nope", "{}", soon())
                .await,
            Err(TemplateError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn seeding_keeps_an_editors_version() {
        let (_dir, store) = store().await;
        seed_defaults(&store).await.unwrap();
        save(&store, "prompt", "custom", Default::default())
            .await
            .unwrap();
        seed_defaults(&store).await.unwrap();
        let set = TemplateSet::load(&store).await.unwrap();
        assert_eq!(
            set.render(&mut Default::default(), "prompt", "{}", soon())
                .await
                .unwrap(),
            "custom"
        );
        assert!(save(&store, "bad", "{{#if}}", Default::default())
            .await
            .is_err());
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_template_that_recurses_or_runs_long_is_refused_before_it_is_saved() {
        let (_dir, store) = store().await;
        seed_defaults(&store).await.unwrap();
        let recursive = r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#;
        let err = save(&store, "script", recursive, Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nests too deeply"), "{err}");
        // A template that includes another stored one which includes it back.
        save(&store, "outro", "{{> script}}", Default::default())
            .await
            .unwrap();
        let err = save(
            &store,
            "script",
            "{{title}} {{> outro}}",
            Default::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("nests too deeply"), "{err}");
        // Strict mode is off for the test render: an unknown field is not a reason to refuse.
        assert_eq!(
            save(
                &store,
                "script",
                "{{fields.subtitle}} {{title}}",
                Default::default()
            )
            .await
            .unwrap(),
            2
        );
        let set = TemplateSet::load(&store).await.unwrap();
        assert_eq!(
            set.render(
                &mut Default::default(),
                "script",
                r#"{"title":"T","fields":{"subtitle":"S"}}"#,
                soon()
            )
            .await
            .unwrap(),
            "S T"
        );
    }
}
