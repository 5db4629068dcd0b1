//! The vidhook plugin SDK: the generated bindings for `vidhook:plugin` plus the helpers every
//! plugin author ends up writing (speaking-time estimates, fitting a script to the video model's
//! audio limit, rendering editor templates with a JSON context).
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`:
//! ```ignore
//! use vidhook_plugin_sdk::{Content, Decision, Plugin, PluginError, VideoPlan};
//! struct Mine;
//! impl Plugin for Mine {
//!     fn plan(content: Content, draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
//!         Ok(Decision::Skip(format!("not yet: {}", content.title)))
//!     }
//! }
//! vidhook_plugin_sdk::export_plugin!(Mine);
//! ```
//!
//! A digest plugin (many items, one video, on a source's schedule) implements [`Digest`] and
//! exports it with `export_digest!`. A plugin that can also shorten a plan whose narration came
//! out too long implements [`Shortening`] (`plan` and `shorten`) and exports it with
//! `export_shortening_plugin!`.

pub mod http;
pub mod locale;
pub mod text;

/// Bindings generated from `wit/` by wit-bindgen: no hand-written ABI glue.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "vidhook_plugin_sdk::bindings",
    });
}

/// Bindings for the `digest` world (since 0.1.1), sharing the `plugin` world's types and host.
pub mod digest_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "digest",
        with: {
            "vidhook:plugin/types@0.1.2": crate::bindings::vidhook::plugin::types,
            "vidhook:plugin/host@0.1.2": crate::bindings::vidhook::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_digest",
        default_bindings_module: "vidhook_plugin_sdk::digest_bindings",
    });
}

/// Bindings for the `shortening-plugin` world (since 0.1.2): `plan` and `shorten`.
pub mod shortening_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "shortening-plugin",
        with: {
            "vidhook:plugin/types@0.1.2": crate::bindings::vidhook::plugin::types,
            "vidhook:plugin/host@0.1.2": crate::bindings::vidhook::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_shortening_plugin",
        default_bindings_module: "vidhook_plugin_sdk::shortening_bindings",
    });
}

/// `export_shortening_plugin!(MyPlugin);` exports a [`Shortening`] implementation: `plan` and
/// `shorten` (asked when a narration came out over the limit).
pub use shortening_bindings::export_shortening_plugin;
/// The trait of a plugin that can also shorten its plans.
pub use shortening_bindings::Guest as Shortening;

/// `export_digest!(MyDigest);` exports a [`Digest`] implementation as the component's `digest`.
pub use digest_bindings::export_digest;
/// The trait a digest plugin implements: many items in, one plan out.
pub use digest_bindings::Guest as Digest;

/// `export_plugin!(MyPlugin);` exports a [`Plugin`] implementation as the component's `plan`.
pub use bindings::export_plugin;
pub use bindings::vidhook::plugin::host::{self, Level};
pub use bindings::vidhook::plugin::types::{
    Content, Decision, PluginError, Resolution, Speech, TooLong, VideoPlan,
};
/// The trait a plugin implements.
pub use bindings::Guest as Plugin;

/// The longest narration, in seconds, the source's video hosts accept at a resolution: what the
/// host says (the reserved settings `vidhook.max_audio_seconds.720p` and `….1080p`, from the
/// hosts the source names, e.g. 35 s on Replicate), else OmniHuman v1.5's documented limits
/// (60 s at 720p, 30 s at 1080p).
pub fn max_audio_seconds(resolution: Resolution) -> f64 {
    let (key, documented) = match resolution {
        Resolution::P720 => ("vidhook.max_audio_seconds.720p", 60.0),
        Resolution::P1080 => ("vidhook.max_audio_seconds.1080p", 30.0),
    };
    host::config(key)
        .and_then(|value| value.parse::<f64>().ok())
        .filter(|seconds| *seconds > 0.0)
        .unwrap_or(documented)
}

/// Parses "720p" / "1080p" as written in configuration.
pub fn parse_resolution(value: &str) -> Result<Resolution, PluginError> {
    match value.trim() {
        "720p" => Ok(Resolution::P720),
        "1080p" => Ok(Resolution::P1080),
        other => Err(PluginError::Config(format!(
            "resolution must be \"720p\" or \"1080p\", not {other:?}"
        ))),
    }
}

/// Renders an editor template with a JSON context, mapping failures to [`PluginError::Template`].
pub fn render(template: &str, context: &serde_json::Value) -> Result<String, PluginError> {
    host::render(template, &context.to_string())
        .map_err(|message| PluginError::Template(format!("template {template:?}: {message}")))
}

/// A setting from the plugin's configuration, or `default` when it is not set.
pub fn config_or(key: &str, default: &str) -> String {
    host::config(key).unwrap_or_else(|| default.to_string())
}

/// A numeric setting; a value that does not parse is a configuration error, not a silent default.
pub fn config_number(key: &str, default: f64) -> Result<f64, PluginError> {
    match host::config(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| PluginError::Config(format!("{key} must be a number, not {raw:?}"))),
    }
}

/// Logs at info level.
pub fn info(message: &str) {
    host::log(Level::Info, message);
}
