//! What videos would cost a source: one computation behind `vidhook estimate`, `batch`,
//! `backfill` and the workspace (`GET /api/v1/estimate`), so the figures an operator sees agree
//! wherever they look.
//!
//! Two prices are always given: what this source's provider charges (nothing on the local
//! preview provider or a dry run) and what OmniHuman would charge at the source's credit pack,
//! so a rehearsal on the free provider still says what the real run costs and what today's
//! budget would hold back.

use serde::Serialize;

use crate::config::{Config, ProviderConfig};
use crate::generation::{CreditPack, CREDITS_PER_VIDEO};
use crate::store::Store;

/// How far back the observed fan-out (videos per event) of a source is measured.
const FAN_OUT_WINDOW_MS: i64 = 30 * 86_400_000;

/// The cost of some videos for one source.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    pub source: String,
    pub videos: i64,
    /// Credits this source's provider charges for them (0 on the preview provider or a dry run).
    pub credits: i64,
    /// Dollars for `credits` at the source's credit pack.
    pub dollars: f64,
    /// Where the videos would be made: `omnihuman`, `preview` or `dry run`.
    pub provider: &'static str,
    /// The credit pack prices are given at (`credit_pack` of the source).
    pub pack: &'static str,
    /// What OmniHuman would charge for the same videos at that pack (equal to `credits` when
    /// this source pays).
    pub paid_credits: i64,
    pub paid_dollars: f64,
    /// Of `videos`, how many today's budget left would hold back at the paid price; none when
    /// no budget is set.
    pub held_back_by_budget: Option<i64>,
    /// Credits left today under the source's budgets (none: no limit).
    pub budget_left: Option<i64>,
}

impl Estimate {
    /// `4800 credits, $40.00 at the Max pack`, or on a provider that charges nothing
    /// `0 credits on the preview provider (OmniHuman: 4800 credits, $40.00 at the Max pack)`.
    pub fn cost(&self) -> String {
        let paid = format!(
            "{} credits, ${:.2} at the {} pack",
            self.paid_credits, self.paid_dollars, self.pack
        );
        if self.credits == self.paid_credits {
            paid
        } else {
            format!(
                "0 credits on the {} provider (OmniHuman: {paid})",
                self.provider
            )
        }
    }

    /// What the budget does to these videos, for a person: none when no budget is set.
    pub fn budget_line(&self) -> Option<String> {
        let left = self.budget_left?;
        let held = self.held_back_by_budget.unwrap_or(0);
        let rehearsal = if self.credits == self.paid_credits {
            ""
        } else {
            " at OmniHuman's price (a rehearsal: nothing is spent here)"
        };
        Some(if held == 0 {
            format!(
                "budget left today: {left} credits; all {} videos fit{rehearsal}",
                self.videos
            )
        } else {
            format!(
                "budget left today: {left} credits; it would hold back {held} of {} videos{rehearsal}",
                self.videos
            )
        })
    }
}

/// Which source an estimate is for, when the person did not say (or said one that is not there).
#[derive(Debug, thiserror::Error)]
pub enum SourceChoice {
    #[error("no source named {asked:?}; the configured sources: {names}")]
    Unknown { asked: String, names: String },
    #[error("several sources are configured ({names}): name the one you mean (--source, or ?source= in the API)")]
    Ambiguous { names: String },
}

/// `asked` if configured; else the only configured source; else an error naming them all.
pub fn choose_source(config: &Config, asked: Option<&str>) -> Result<String, SourceChoice> {
    let names = || {
        config
            .sources
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        Some(asked) if config.sources.contains_key(asked) => Ok(asked.to_string()),
        Some(asked) => Err(SourceChoice::Unknown {
            asked: asked.to_string(),
            names: names(),
        }),
        None if config.sources.len() == 1 => Ok(names()),
        None => Err(SourceChoice::Ambiguous { names: names() }),
    }
}

/// Prices `videos` for `source` (known to be configured), with today's budget left.
pub async fn price(
    config: &Config,
    store: &Store,
    source: &str,
    videos: i64,
) -> anyhow::Result<Estimate> {
    let pack = config
        .sources
        .get(source)
        .map(|s| s.settings.credit_pack)
        .unwrap_or_default();
    let provider = if config.is_dry_run(source) {
        "dry run"
    } else {
        match config.provider {
            ProviderConfig::Omnihuman(_) => "omnihuman",
            ProviderConfig::Fal(_) => "fal",
            ProviderConfig::Replicate(_) => "replicate",
            ProviderConfig::Preview { .. } => "preview",
        }
    };
    let budget_left = store
        .credits_left_today(source, config.budgets_for(source))
        .await?;
    Ok(priced(source, videos, provider, pack, budget_left))
}

fn priced(
    source: &str,
    videos: i64,
    provider: &'static str,
    pack: CreditPack,
    budget_left: Option<i64>,
) -> Estimate {
    let (pack_name, per_credit) = pack.price();
    let paid_credits = videos * CREDITS_PER_VIDEO;
    let credits = if provider == "omnihuman" {
        paid_credits
    } else {
        0
    };
    let fits = budget_left.map(|left| (left / CREDITS_PER_VIDEO).min(videos));
    Estimate {
        source: source.to_string(),
        videos,
        credits,
        dollars: credits as f64 * per_credit,
        provider,
        pack: pack_name,
        paid_credits,
        paid_dollars: paid_credits as f64 * per_credit,
        held_back_by_budget: fits.map(|fits| videos - fits),
        budget_left,
    }
}

/// Videos one event of `source` makes, as observed: a multilingual chain makes one per
/// translation, a skipping plugin none.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FanOut {
    /// Videos per event (1 when nothing was observed yet).
    pub per_event: f64,
    /// Events of the last 30 days it was measured on (0: not measured, 1 assumed).
    pub events_seen: i64,
}

impl FanOut {
    /// The source's fan-out over the last 30 days.
    pub async fn observed(store: &Store, source: &str) -> anyhow::Result<FanOut> {
        let since = crate::store::now_ms() - FAN_OUT_WINDOW_MS;
        let (videos, events) = store.videos_and_events(source, since).await?;
        Ok(if events == 0 {
            FanOut {
                per_event: 1.0,
                events_seen: 0,
            }
        } else {
            FanOut {
                per_event: videos as f64 / events as f64,
                events_seen: events,
            }
        })
    }

    /// Videos for `events` events (rounded up: an estimate never promises less than it costs).
    pub fn videos(&self, events: i64) -> i64 {
        (events as f64 * self.per_event).ceil() as i64
    }

    /// For a person: `2.50 videos per event (measured on 40 events of the last 30 days)`.
    pub fn describe(&self) -> String {
        if self.events_seen == 0 {
            "1 video per event assumed (no events of this source in the last 30 days; a \
             multilingual chain makes one per translation)"
                .into()
        } else {
            format!(
                "{:.2} videos per event (measured on {} events of the last 30 days)",
                self.per_event, self.events_seen
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_provider_still_shows_the_paid_price_and_what_the_budget_holds_back() {
        let paid = priced("docs", 5, "omnihuman", CreditPack::Max, None);
        assert_eq!((paid.credits, paid.paid_credits), (4800, 4800));
        assert_eq!(paid.cost(), "4800 credits, $40.00 at the Max pack");
        assert_eq!(paid.budget_line(), None);

        let free = priced("docs", 5, "preview", CreditPack::Max, Some(1920));
        assert_eq!((free.credits, free.dollars), (0, 0.0));
        assert_eq!(
            free.cost(),
            "0 credits on the preview provider (OmniHuman: 4800 credits, $40.00 at the Max pack)"
        );
        assert_eq!(free.held_back_by_budget, Some(3));
        assert!(free
            .budget_line()
            .unwrap()
            .contains("hold back 3 of 5 videos at OmniHuman's price"));
    }

    #[test]
    fn a_fan_out_rounds_up() {
        let fan_out = FanOut {
            per_event: 2.5,
            events_seen: 4,
        };
        assert_eq!(fan_out.videos(3), 8);
        assert!(fan_out.describe().starts_with("2.50 videos per event"));
    }
}
