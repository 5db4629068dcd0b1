//! Scheduled digests: at each tick of a source's schedule, one video of what the source published
//! since the last digest (the OmniHuman guide's daily news digest).
//!
//! A source with a `[sources.NAME.digest]` table (`schedule = "0 7 * * *"`, a `time_zone`, the
//! digest `plugin`) is checked every [`CHECK_EVERY`]: when the latest tick of its schedule is
//! newer than the last one recorded, the source's contents received since the last digest are
//! queued as one digest event (`cms = "digest"`, the items in its fields), which the plan step
//! hands to the digest plugin instead of the source's chain. Only the latest tick runs: after
//! downtime the missed ticks make one digest, not one each. The digest event's delivery id names
//! its tick, so instances that run the same tick at once queue it once (the event store's
//! uniqueness does it). The first check of a source only records the tick: what was published
//! before vidhook knew the schedule is not a digest's business.

mod delivery;

pub use delivery::{deliver, DeliveryConfig, Files};

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::Deserialize;

use crate::config::SourceSettings;
use crate::content::{Content, DIGEST_CMS};
use crate::store::{Ingested, Store, StoreError};

/// How often each schedule is checked.
const CHECK_EVERY: Duration = Duration::from_secs(30);
/// The most items one digest reads (the plugin trims to the audio limit).
pub const MAX_ITEMS: i64 = 100;

/// `[sources.NAME.digest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Cron, five fields: minute hour day-of-month month day-of-week ("0 7 * * *", "30 6 * * Mon-Fri").
    pub schedule: String,
    /// The IANA time zone the schedule is read in.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// The digest plugin (a component exporting `digest`).
    #[serde(default = "default_plugin")]
    pub plugin: String,
    /// Settings for the plugin, over its manifest's defaults.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Where each finished digest is announced (no CMS entry shows a digest).
    #[serde(default)]
    pub deliver: Option<DeliveryConfig>,
}

fn utc() -> String {
    "UTC".into()
}

fn default_plugin() -> String {
    "digest".into()
}

/// A schedule read in its time zone.
#[derive(Debug)]
pub struct Schedule {
    cron: jiff_cron::Schedule,
    zone: TimeZone,
}

impl DigestConfig {
    /// The schedule, or what is wrong with it. Day-of-week numbers are refused: crons disagree
    /// on them (0 or 7 is Sunday in one, 1 in another), so names (`Mon-Fri`) say it unambiguously.
    pub fn schedule(&self) -> Result<Schedule, String> {
        let fields: Vec<&str> = self.schedule.split_whitespace().collect();
        let [_, _, _, _, weekday] = fields.as_slice() else {
            return Err(format!(
                "schedule {:?}: five fields (minute hour day-of-month month day-of-week), like \"0 7 * * *\"",
                self.schedule
            ));
        };
        if weekday.chars().any(|c| c.is_ascii_digit()) {
            return Err(format!(
                "schedule {:?}: name the days of the week (Mon-Fri, Sat,Sun); numbers mean different days in different crons",
                self.schedule
            ));
        }
        // The library's expression has seconds first.
        let cron = jiff_cron::Schedule::from_str(&format!("0 {}", self.schedule))
            .map_err(|e| format!("schedule {:?}: {e}", self.schedule))?;
        let zone = TimeZone::get(&self.time_zone)
            .map_err(|e| format!("time_zone {:?}: {e}", self.time_zone))?;
        Ok(Schedule { cron, zone })
    }
}

impl Schedule {
    /// The latest tick at or before `now_ms`.
    pub fn latest_tick(&self, now_ms: i64) -> Option<Zoned> {
        let now = Timestamp::from_millisecond(now_ms + 1)
            .ok()?
            .to_zoned(self.zone.clone());
        self.cron.after(now).next_back()
    }
}

/// What one check of a source did.
#[derive(Debug, PartialEq, Eq)]
pub enum Ticked {
    /// The source's latest tick was recorded already.
    NotDue,
    /// The first check: the tick is recorded, nothing is queued.
    Started { tick: String },
    /// Nothing was published since the last digest.
    Empty { tick: String },
    /// A digest of `items` contents is queued (or was, by another instance: `duplicate`).
    Queued {
        tick: String,
        items: usize,
        event_id: String,
        duplicate: bool,
    },
    /// A rehearsal ([`tick`] without `record`): a digest of `items` contents would be queued
    /// now; nothing was queued or recorded.
    WouldQueue { tick: String, items: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("source {0:?} has no [digest] schedule")]
    NoSchedule(String),
    #[error("{0}")]
    Schedule(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `source`'s schedule as of `now_ms` and queues its digest if a new tick is due. The
/// host calls it with the clock; `vidhook digests tick --at` with any time.
pub async fn tick(
    store: &Store,
    source: &str,
    settings: &SourceSettings,
    now_ms: i64,
    record: bool,
) -> Result<Ticked, DigestError> {
    let digest = settings
        .digest
        .as_ref()
        .ok_or_else(|| DigestError::NoSchedule(source.to_string()))?;
    let schedule = digest.schedule().map_err(DigestError::Schedule)?;
    let Some(tick) = schedule.latest_tick(now_ms) else {
        return Ok(Ticked::NotDue);
    };
    let tick_ms = tick.timestamp().as_millisecond();
    let tick_text = tick.strftime("%Y-%m-%dT%H:%M%:z[%Q]").to_string();
    let (last_tick, covered_to) = match store.digest_state(source).await? {
        None => {
            // First sight: coverage starts now (by the database's clock of received events).
            if record {
                store
                    .record_digest(source, tick_ms, crate::store::now_ms())
                    .await?;
            }
            return Ok(Ticked::Started { tick: tick_text });
        }
        Some(state) => state,
    };
    if tick_ms <= last_tick {
        return Ok(Ticked::NotDue);
    }
    let received = store.received_since(source, covered_to, MAX_ITEMS).await?;
    let Some(newest) = received.iter().map(|(at, _)| *at).max() else {
        if record {
            store.record_digest(source, tick_ms, covered_to).await?;
        }
        return Ok(Ticked::Empty { tick: tick_text });
    };
    // One item per entry and locale: its newest accepted content.
    let mut latest: BTreeMap<(String, String), (i64, Content)> = BTreeMap::new();
    for (at, content) in received {
        latest.insert((content.id.clone(), content.locale.clone()), (at, content));
    }
    let mut items: Vec<(i64, Content)> = latest.into_values().collect();
    items.sort_by_key(|(at, _)| *at);
    let items: Vec<Content> = items.into_iter().map(|(_, c)| c).collect();
    if !record {
        return Ok(Ticked::WouldQueue {
            tick: tick_text,
            items: items.len(),
        });
    }
    let content = digest_content(source, &tick, &tick_text, &items);
    let delivery = format!("digest:{tick_ms}");
    let outcome = crate::jobs::accept(
        store,
        &settings.plugins,
        source,
        Some(&delivery),
        None,
        &[content],
    )
    .await?
    .into_iter()
    .next()
    .expect("one outcome per content");
    store.record_digest(source, tick_ms, newest).await?;
    Ok(Ticked::Queued {
        tick: tick_text,
        items: items.len(),
        event_id: outcome.event_id().to_string(),
        duplicate: matches!(outcome, Ingested::Duplicate { .. }),
    })
}

/// The digest event: its items in `fields.items`, named by its tick.
fn digest_content(source: &str, tick: &Zoned, tick_text: &str, items: &[Content]) -> Content {
    let titles: Vec<&str> = items.iter().map(|c| c.title.as_str()).collect();
    Content {
        source: source.to_string(),
        cms: DIGEST_CMS.into(),
        id: format!("digest-{}", tick.timestamp().as_millisecond()),
        revision: tick_text.to_string(),
        kind: "digest".into(),
        locale: items.first().map(|c| c.locale.clone()).unwrap_or_default(),
        title: format!("Digest of {}", tick.strftime("%Y-%m-%d %H:%M")),
        body_html: String::new(),
        body_text: titles.join("\n\n"),
        url: None,
        image: None,
        fields: serde_json::json!({ "tick": tick_text, "items": items }),
    }
}

/// Starts a check loop for every source with a `[digest]` table.
pub fn spawn(app: &Arc<crate::app::App>, loops: &mut crate::background::Loops) {
    for (source, settings) in &app.config.sources {
        if settings.settings.digest.is_none() {
            continue;
        }
        let (app, source) = (app.clone(), source.clone());
        loops.spawn(move |mut stopped| async move {
            let settings = &app.config.sources[&source].settings;
            loop {
                let now = crate::store::now_ms();
                match tick(&app.store, &source, settings, now, true).await {
                    Ok(Ticked::Queued { tick, items, .. }) => {
                        tracing::info!(source, tick, items, "digest queued");
                        app.wake.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(err) => {
                        crate::telemetry::warn_rejected!(source, error = %err, "digest check failed")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(CHECK_EVERY) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: &str) -> Result<Schedule, String> {
        DigestConfig {
            schedule: cron.into(),
            time_zone: zone.into(),
            plugin: default_plugin(),
            config: BTreeMap::new(),
            deliver: None,
        }
        .schedule()
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_latest_tick_is_read_in_the_schedules_time_zone() {
        let berlin = schedule("0 7 * * *", "Europe/Berlin").unwrap();
        // 05:59Z is 06:59 in Berlin (winter): the latest tick is yesterday's 07:00.
        let tick = berlin.latest_tick(ms("2030-01-02T05:59:00Z")).unwrap();
        assert_eq!(tick.timestamp(), "2030-01-01T06:00:00Z".parse().unwrap());
        // 06:00Z exactly is the tick itself.
        let tick = berlin.latest_tick(ms("2030-01-02T06:00:00Z")).unwrap();
        assert_eq!(tick.timestamp(), "2030-01-02T06:00:00Z".parse().unwrap());
        // Summer time: 07:00 in Berlin is 05:00Z.
        let tick = berlin.latest_tick(ms("2030-07-02T05:30:00Z")).unwrap();
        assert_eq!(tick.timestamp(), "2030-07-02T05:00:00Z".parse().unwrap());
        let weekdays = schedule("30 6 * * Mon-Fri", "UTC").unwrap();
        // Sunday 2030-01-06: the latest weekday tick is Friday's.
        let tick = weekdays.latest_tick(ms("2030-01-06T12:00:00Z")).unwrap();
        assert_eq!(tick.timestamp(), "2030-01-04T06:30:00Z".parse().unwrap());
    }

    #[test]
    fn ambiguous_or_malformed_schedules_are_refused() {
        assert!(schedule("0 7 * * 1-5", "UTC")
            .unwrap_err()
            .contains("name the days"));
        assert!(schedule("0 7 * *", "UTC")
            .unwrap_err()
            .contains("five fields"));
        assert!(schedule("61 7 * * *", "UTC").is_err());
        assert!(schedule("0 7 * * *", "Mars/Olympus")
            .unwrap_err()
            .contains("time_zone"));
    }
}
