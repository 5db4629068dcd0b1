//! `vidhook sources`: each configured source and what its catch-up sweep last did — when, how
//! many items the CMS listed, how many no webhook had delivered, how many deliveries the source
//! had refused before it, and its watermark. A sweep that keeps listing nothing while
//! deliveries are refused is the sign of a listing filter the CMS reads differently.

use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let states = store.catch_up_states().await?;
    if config.sources.is_empty() {
        println!("no sources configured: add a [sources.NAME] table to the config");
        return Ok(());
    }
    println!(
        "{:<16} {:<8} {:<20} {:>7} {:>6} {:>8}  {:<20} LAST ERROR",
        "SOURCE", "SWEEP", "LAST SWEEP", "LISTED", "FOUND", "REFUSED", "WATERMARK"
    );
    let time = |ms: Option<i64>| {
        ms.map_or("-".to_string(), |ms| {
            crate::cms::format_time_in(ms, "%Y-%m-%d %H:%M:%S")
        })
    };
    let count = |n: Option<i64>| n.map_or("-".to_string(), |n| n.to_string());
    for (name, source) in &config.sources {
        let every = match source.settings.catch_up_secs {
            0 => "off".to_string(),
            secs => format!("{secs}s"),
        };
        match states.iter().find(|s| &s.source == name) {
            Some(state) => println!(
                "{name:<16} {every:<8} {:<20} {:>7} {:>6} {:>8}  {:<20} {}",
                time(state.last_sweep_at),
                count(state.last_listed),
                count(state.last_found),
                count(state.refused_before),
                time(Some(state.watermark)),
                state.last_error.as_deref().unwrap_or("-"),
            ),
            None => println!(
                "{name:<16} {every:<8} {:<20} {:>7} {:>6} {:>8}  {:<20} -",
                "never", "-", "-", "-", "-"
            ),
        }
    }
    Ok(())
}
