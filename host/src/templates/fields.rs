//! The fields a template can use: the context a plugin rendered it with, flattened into the
//! paths an editor types (`title`, `fields.tags`, and `this.title` inside `{{#each items}}`),
//! each with a short example. Bounded: a context is an article, and only its shape is wanted.

use serde::Serialize;
use serde_json::Value;

/// At most this many fields are listed.
const MAX_FIELDS: usize = 200;
/// Objects nested deeper than this are listed as one field.
const MAX_DEPTH: usize = 4;
/// Examples are cut to this many characters.
const EXAMPLE_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Field {
    /// What to type between `{{` and `}}`.
    pub path: String,
    /// Set for a list item's field: the list's path (`{{#each items}}{{this.title}}{{/each}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// The value in this content, shortened ("list of 3", "2 fields" for containers).
    pub example: String,
}

/// Every field of `context` (an object), by name.
pub fn list(context: &Value) -> Vec<Field> {
    let mut out = Vec::new();
    if let Value::Object(map) = context {
        for (key, value) in map {
            walk(key, None, value, 1, &mut out);
        }
    }
    out
}

fn walk(path: &str, within: Option<&str>, value: &Value, depth: usize, out: &mut Vec<Field>) {
    if out.len() >= MAX_FIELDS {
        return;
    }
    out.push(Field {
        path: path.to_string(),
        within: within.map(str::to_string),
        example: example(value),
    });
    if depth >= MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(&format!("{path}.{key}"), within, child, depth + 1, out);
            }
        }
        // A list of objects: its items' fields, as `this.KEY` inside `{{#each path}}`.
        Value::Array(items) if within.is_none() => {
            if let Some(Value::Object(first)) = items.first() {
                for (key, child) in first {
                    walk(&format!("this.{key}"), Some(path), child, depth + 1, out);
                }
            }
        }
        _ => {}
    }
}

fn example(value: &Value) -> String {
    match value {
        Value::String(text) => {
            let mut cut: String = text.chars().take(EXAMPLE_CHARS).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            cut
        }
        Value::Array(items) => format!("list of {}", items.len()),
        Value::Object(map) => format!("{} fields", map.len()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_what_an_editor_types_with_short_examples() {
        let context = json!({
            "title": "A title",
            "body": "x".repeat(100),
            "fields": {"tags": ["a", "b"], "author": {"name": "Ada"}},
            "items": [{"title": "One", "url": "https://e.com/1"}],
            "count": 3,
        });
        let fields = list(&context);
        let paths: Vec<(&str, Option<&str>)> = fields
            .iter()
            .map(|f| (f.path.as_str(), f.within.as_deref()))
            .collect();
        assert!(paths.contains(&("title", None)));
        assert!(paths.contains(&("fields.tags", None)));
        assert!(paths.contains(&("fields.author.name", None)));
        assert!(paths.contains(&("this.title", Some("items"))));
        let body = fields.iter().find(|f| f.path == "body").unwrap();
        assert_eq!(body.example.chars().count(), EXAMPLE_CHARS + 1);
        assert_eq!(
            fields.iter().find(|f| f.path == "items").unwrap().example,
            "list of 1"
        );
        assert_eq!(
            fields.iter().find(|f| f.path == "count").unwrap().example,
            "3"
        );
    }

    #[test]
    fn a_huge_or_deep_context_lists_a_bounded_number_of_fields() {
        let wide: serde_json::Map<String, Value> =
            (0..10_000).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(list(&Value::Object(wide)).len(), MAX_FIELDS);
        let mut deep = json!("leaf");
        for _ in 0..100 {
            deep = json!({ "a": deep });
        }
        let fields = list(&json!({ "root": deep }));
        assert_eq!(fields.len(), MAX_DEPTH);
    }
}
