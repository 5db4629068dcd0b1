//! Replay before rollout: run recorded real events through a new plugin version and the current
//! one, with the same draft and templates, and report how their decisions differ.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Decision, LoadedPlugin, PluginHost};
use crate::content::Content;
use crate::templates::TemplateSet;

/// How one event's decision changed.
#[derive(Debug, serde::Serialize)]
pub struct EventDiff {
    pub source: String,
    pub entry: String,
    pub locale: String,
    /// Human-readable differences; empty when both versions decided the same.
    pub changes: Vec<String>,
}

/// Runs `candidate` and `current` over each content (the preceding `draft_chain` plugins produce
/// the draft both receive) and lists the differences.
pub async fn replay(
    host: &PluginHost,
    candidate: &LoadedPlugin,
    current: &LoadedPlugin,
    draft_chain: &[(Arc<LoadedPlugin>, BTreeMap<String, String>)],
    config: &BTreeMap<String, String>,
    contents: &[Content],
    templates: Arc<TemplateSet>,
) -> Vec<EventDiff> {
    let mut diffs = Vec::with_capacity(contents.len());
    for content in contents {
        let mut draft = Vec::new();
        for (plugin, plugin_config) in draft_chain {
            if let Ok(run) = host
                .plan(plugin, content, &draft, templates.clone(), plugin_config)
                .await
            {
                if let Decision::Generate(plans) = run.decision {
                    draft = plans;
                }
            }
        }
        let new = host
            .plan(candidate, content, &draft, templates.clone(), config)
            .await;
        let old = host
            .plan(current, content, &draft, templates.clone(), config)
            .await;
        // Errors are compared without the plugin's own name@version, which always differs.
        let outcome = |r: Result<super::Run, super::PluginFailure>, plugin: &LoadedPlugin| match r {
            Ok(run) => serde_json::to_value(&run.decision).unwrap_or_default(),
            Err(e) => {
                serde_json::json!({"error": e.to_string().replace(&plugin.id(), "the plugin")})
            }
        };
        let mut changes = Vec::new();
        diff_values(
            "",
            &outcome(old, current),
            &outcome(new, candidate),
            &mut changes,
        );
        diffs.push(EventDiff {
            source: content.source.clone(),
            entry: content.id.clone(),
            locale: content.locale.clone(),
            changes,
        });
    }
    diffs
}

/// Field-by-field differences between two JSON values, as `path: old → new`.
fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_values(
                    &child,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let child = format!("{path}[{i}]");
                diff_values(
                    &child,
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
        _ => {}
    }
}

fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(119).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_the_changed_fields() {
        let old = serde_json::json!({"Generate": [{"script": "a", "voice": "en"}]});
        let new =
            serde_json::json!({"Generate": [{"script": "b", "voice": "en"}, {"script": "c"}]});
        let mut out = Vec::new();
        diff_values("", &old, &new, &mut out);
        assert_eq!(
            out,
            vec![
                r#"Generate[0].script: "a" → "b""#,
                r#"Generate[1]: null → {"script":"c"}"#
            ]
        );
    }
}
