//! vidhook: turns published CMS content into AI presenter videos.
//!
//! One module per concept (see `../shared/DESIGN.md`):
//! - [`ingress`]: the HTTP surface (CMS webhooks, provider webhooks, media, API).
//! - [`cms`]: one adapter per CMS (verify, parse into [`content::Content`], write back).
//! - [`plugins`]: the wasmtime sandbox that runs the WASM plugins.
//! - [`templates`]: editor-configured Handlebars templates, versioned in the database.
//! - [`tts`]: text to speech. [`media`]: where audio/video bytes live, and their URLs.
//! - [`generation`]: the video providers. [`checks`]: input checks before a paid call.
//! - [`jobs`]: the durable render state machine and its workers. [`store`]: the database.
//! - [`catch_up`]: the sweep that lists what was published while no webhook arrived.
//! - [`metrics`]: Prometheus counters, histograms and queue gauges. [`telemetry`]: logs.
//! - [`children`]: ffmpeg and espeak-ng, each in its own process group.

pub mod app;
pub mod auth;
pub mod background;
pub mod catch_up;
pub mod checks;
pub mod children;
pub mod cli;
pub mod cms;
pub mod config;
pub mod content;
pub mod digests;
pub mod estimate;
pub mod generation;
pub mod ingress;
pub mod jobs;
pub mod listener;
pub mod media;
pub mod metrics;
pub mod outbound;
pub mod plugins;
pub mod preview;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod tts;
pub mod web;
