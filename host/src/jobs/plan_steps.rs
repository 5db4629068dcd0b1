//! The plan step: the source's plugin chain (or a digest plugin) turns content into plans, one
//! render per plan; the photo a plan uses is resolved here.

use serde_json::json;

use super::steps::{advance, fail, plugin_failed, Outcome};
use super::{Category, State};
use crate::app::App;
use crate::content::Content;
use crate::plugins::{Decision, Plan};
use crate::store::{RenderRow, Transition};

/// The plugin chain a render runs, each with the source's settings for it: the versions pinned
/// when its event was accepted (the source's chain for older renders).
pub(crate) fn chain(
    render: &RenderRow,
    source: &crate::config::SourceConfig,
) -> anyhow::Result<Vec<(String, std::collections::BTreeMap<String, String>)>> {
    let references: Vec<String> = match &render.plugins_json {
        Some(json) => serde_json::from_str(json)?,
        None => source
            .settings
            .plugins
            .iter()
            .map(|p| p.name.clone())
            .collect(),
    };
    Ok(references
        .into_iter()
        .map(|reference| {
            let name = crate::plugins::config::plugin_name(&reference);
            let config = source
                .settings
                .plugins
                .iter()
                .find(|p| p.plugin() == name)
                .map(|p| p.config.clone())
                .unwrap_or_default();
            (reference, config)
        })
        .collect())
}

/// Runs the source's plugin chain over the content; one render per plan it returns.
pub(super) async fn plan(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut content = app.store.event_content(&render.event_id).await?;
    let Some(source) = app.config.sources.get(&content.source) else {
        return Ok(fail(
            Category::Internal,
            format!("source {:?} is no longer configured", content.source),
        ));
    };
    if content.cms == crate::content::DIGEST_CMS {
        return plan_digest(app, content, source).await;
    }
    let presenter_key = match resolve_image(app, source, &mut content).await {
        Ok(key) => key,
        Err(reason) => return Ok(fail(Category::InputInvalid, reason)),
    };
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    let mut draft: Vec<Plan> = Vec::new();
    let mut runs = Vec::new();
    for (reference, config) in chain(render, source)? {
        let plugin = match app.plugins.resolve_for(&content.source, &reference).await {
            Ok(plugin) => plugin,
            Err(err) => return Ok(fail(Category::PluginError, err)),
        };
        let run = match app
            .plugins
            .plan(&plugin, &content, &draft, templates.clone(), &config)
            .await
        {
            Ok(run) => run,
            Err(err) => return Ok(plugin_failed(&templates, err)),
        };
        runs.push(json!({
            "plugin": plugin.id(), "digest": plugin.digest, "usage": run.usage, "logs": run.logs,
        }));
        match run.decision {
            Decision::Skip(reason) => {
                let provenance = provenance(&content, &runs, &templates);
                return Ok(skipped(
                    provenance,
                    format!("{} skipped: {reason}", plugin.id()),
                ));
            }
            Decision::Generate(plans) => draft = plans,
        }
    }
    if let Some(problem) = draft
        .iter()
        .find_map(|p| p.narration_problem(&content.title))
    {
        return Ok(fail(Category::InputInvalid, problem));
    }
    for plan in &mut draft {
        plan.note_shortening(&content);
    }
    let mut provenance = provenance(&content, &runs, &templates);
    if let Some(key) = presenter_key {
        provenance["presenter_image_key"] = json!(key);
    }
    generate(draft, provenance)
}

/// The photo a content names (an https URL the outbound guard allows), else the source's
/// `presenter_image` (a local file is copied into the media store: its key is returned). Content
/// may never name a local file.
async fn resolve_image(
    app: &App,
    source: &crate::config::SourceConfig,
    content: &mut Content,
) -> Result<Option<String>, String> {
    let mut presenter_key = None;
    content.image = match (&content.image, &source.settings.presenter_image) {
        (Some(named), _) => match app.guard.parse_url(named) {
            Ok(url) => Some(url.to_string()),
            Err(err) => {
                return Err(format!(
                    "the entry's image: {err}; content may name only https URLs"
                ))
            }
        },
        (None, Some(configured)) => {
            let (url, key) = app.presenter_image(configured).await?;
            presenter_key = key;
            Some(url)
        }
        (None, None) => None,
    };
    Ok(presenter_key)
}

/// A scheduled digest: its items (in the event's fields) go to the source's digest plugin.
async fn plan_digest(
    app: &App,
    content: Content,
    source: &crate::config::SourceConfig,
) -> anyhow::Result<Outcome> {
    let Some(digest) = &source.settings.digest else {
        return Ok(fail(
            Category::Internal,
            format!("source {:?} no longer has a [digest] table", content.source),
        ));
    };
    let mut items: Vec<Content> = serde_json::from_value(content.fields["items"].clone())?;
    let mut presenter_key = None;
    for item in &mut items {
        match resolve_image(app, source, item).await {
            Ok(key) => presenter_key = presenter_key.or(key),
            Err(reason) => {
                tracing::warn!(source = %content.source, entry = %item.id, reason, "digest item's image left out");
                item.image = None;
            }
        }
    }
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    let plugin = match app.plugins.resolve(&digest.plugin).await {
        Ok(plugin) => plugin,
        Err(err) => return Ok(fail(Category::PluginError, err)),
    };
    let run = match app
        .plugins
        .digest(&plugin, &items, templates.clone(), &digest.config)
        .await
    {
        Ok(run) => run,
        Err(err) => return Ok(plugin_failed(&templates, err)),
    };
    let runs = [json!({
        "plugin": plugin.id(), "digest": plugin.digest, "usage": run.usage, "logs": run.logs,
    })];
    let mut provenance = provenance(&content, &runs, &templates);
    provenance["items"] = items.iter().map(|i| json!(i.id)).collect();
    if let Some(key) = presenter_key {
        provenance["presenter_image_key"] = json!(key);
    }
    match run.decision {
        Decision::Skip(reason) => Ok(skipped(
            provenance,
            format!("{} skipped: {reason}", plugin.id()),
        )),
        Decision::Generate(plans) => generate(plans, provenance),
    }
}

/// A plugin decided there is no video to make.
pub(super) fn skipped(provenance: serde_json::Value, detail: String) -> Outcome {
    let set = Transition {
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    advance(State::Skipped, set, detail)
}

/// The plans the last plugin returned: this render takes the first, a sibling render each other.
fn generate(plans: Vec<Plan>, provenance: serde_json::Value) -> anyhow::Result<Outcome> {
    let provenance = provenance.to_string();
    let mut plans = plans.into_iter();
    let first = plans
        .next()
        .expect("the last plugin returned at least one plan");
    let siblings: Vec<(String, String, String)> = plans
        .map(|p| {
            Ok((
                p.key.clone(),
                serde_json::to_string(&p)?,
                State::Speak.as_str().to_string(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let detail = format!(
        "{} video(s); this one {:?}: {} words at {}{}",
        siblings.len() + 1,
        first.key,
        first.script.split_whitespace().count(),
        first.resolution.as_str(),
        first
            .shortened
            .map(|s| format!("; {s}"))
            .unwrap_or_default()
    );
    let set = Transition {
        plan_key: Some(first.key.clone()),
        plan_json: Some(serde_json::to_string(&first)?),
        provenance_json: Some(provenance),
        ..Default::default()
    };
    Ok(Outcome::Advance {
        to: State::Speak,
        set: Box::new(set),
        run_after: None,
        detail,
        siblings,
    })
}

/// What made this render: content, plugins (digest, version, usage), templates, WIT version.
fn provenance(
    content: &Content,
    runs: &[serde_json::Value],
    templates: &crate::templates::TemplateSet,
) -> serde_json::Value {
    json!({
        "content": {"source": content.source, "id": content.id, "revision": content.revision,
                    "fingerprint": content.fingerprint(), "locale": content.locale},
        "wit": format!("{}@{}", crate::plugins::WIT_PACKAGE, crate::plugins::WIT_VERSION),
        "plugins": runs,
        "templates": templates.used(),
    })
}
