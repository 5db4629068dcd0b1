//! A misspelt key is a start-up error that names the key, its table and the closest valid key
//! (`daily_credit` in `[budgets]` → did you mean `daily_credits`?). Every config struct denies
//! unknown fields; this module turns serde's terse message into one a person can act on.

use serde::de::{self, Deserializer, Visitor};

/// The field names serde's derive gives a struct (no instance needed): a probe deserializer that
/// records the list the derive passes to `deserialize_struct`, then stops.
pub fn field_names<'de, T: de::Deserialize<'de>>() -> Vec<&'static str> {
    let mut fields = Vec::new();
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

struct Probe<'a>(&'a mut Vec<&'static str>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.extend_from_slice(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" into a message naming the
/// table that holds `x` and the closest valid key; `None` if `message` is another error.
/// `extra` adds candidates for tables whose keys come from two structs (a source's settings).
pub fn explain(message: &str, config: &toml::Value, extra: &[&str]) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (key, rest) = rest.split_once('`')?;
    let mut candidates: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| !c.is_empty())
        .collect();
    let tables = tables_holding(config, key, "");
    let in_source = tables.iter().any(|t| t.starts_with("sources."));
    if in_source {
        candidates.extend_from_slice(extra);
    }
    let table = match tables.as_slice() {
        [] => "the top level".to_string(),
        [only] if only.is_empty() => "the top level".to_string(),
        tables => tables
            .iter()
            .map(|t| format!("[{t}]"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let hint = closest(key, &candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_else(|| {
            let mut valid = candidates.clone();
            valid.sort_unstable();
            valid.dedup();
            format!("; valid keys: {}", valid.join(", "))
        });
    Some(format!("unknown key `{key}` in {table}{hint}"))
}

/// Paths of the tables (`a.b`) that hold `key`.
fn tables_holding(value: &toml::Value, key: &str, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    match value {
        toml::Value::Table(table) => {
            if table.contains_key(key) {
                found.push(path.to_string());
            }
            for (name, inner) in table {
                let inner_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                found.extend(tables_holding(inner, key, &inner_path));
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                found.extend(tables_holding(item, key, path));
            }
        }
        _ => {}
    }
    found
}

/// The candidate nearest to `key`, if it is near enough to be a typo.
fn closest<'c>(key: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(key, c), *c))
        .filter(|(distance, c)| *distance <= (c.len().max(key.len()) / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_derive() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Example {
            daily_credits: Option<i64>,
            dry_run: bool,
        }
        assert_eq!(field_names::<Example>(), ["daily_credits", "dry_run"]);
    }

    #[test]
    fn a_typo_names_its_table_and_the_closest_key() {
        let config: toml::Value = toml::from_str("[budgets]\ndaily_credit = 5\n").unwrap();
        let message = "unknown field `daily_credit`, expected `daily_credits`";
        assert_eq!(
            explain(message, &config, &[]).unwrap(),
            "unknown key `daily_credit` in [budgets]; did you mean `daily_credits`?"
        );
        let far = "unknown field `zzz`, expected one of `a_long_key`, `another_key`";
        let config: toml::Value = toml::from_str("zzz = 1").unwrap();
        assert_eq!(
            explain(far, &config, &[]).unwrap(),
            "unknown key `zzz` in the top level; valid keys: a_long_key, another_key"
        );
        assert!(explain("missing field `api_key`", &config, &[]).is_none());
    }
}
