//! What videos would cost a source: one computation behind `vidhook estimate`, `batch`,
//! `backfill` and the workspace (`GET /api/v1/estimate`), so the figures an operator sees agree
//! wherever they look.
//!
//! Two prices are always given: what this source's first video host charges (nothing on the
//! local preview provider or a dry run) and what OmniHuman would charge at the source's credit
//! pack, so a rehearsal on the free provider still says what the real run costs and what today's
//! budget would hold back. Every configured host is priced beside them for the same videos (a
//! host paid by the second at the source's observed narration length), so an operator can
//! compare where to buy.

use serde::Serialize;

use crate::config::{Config, ProviderConfig};
use crate::generation::{CreditPack, Price, Resolution, CREDITS_PER_VIDEO};
use crate::store::Store;

/// How far back the observed fan-out (videos per event) and narration length of a source are
/// measured.
const WINDOW_MS: i64 = 30 * 86_400_000;

/// The cost of some videos for one source.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    pub source: String,
    pub videos: i64,
    /// Credits this source's first host charges for them (0 on the preview provider or a dry
    /// run). A host that prices in money counts a credit a cent.
    pub credits: i64,
    /// Dollars for `credits`: at the source's credit pack on OmniHuman, a cent a credit elsewhere.
    pub dollars: f64,
    /// Where the videos would be made: the source's first host, or `dry run`.
    pub provider: String,
    /// The credit pack OmniHuman prices are given at (`credit_pack` of the source).
    pub pack: &'static str,
    /// What OmniHuman would charge for the same videos at that pack (equal to `credits` when
    /// this source pays OmniHuman).
    pub paid_credits: i64,
    pub paid_dollars: f64,
    /// Of `videos`, how many today's budget left would hold back at the paid price; none when
    /// no budget is set.
    pub held_back_by_budget: Option<i64>,
    /// Credits left today under the source's budgets (none: no limit).
    pub budget_left: Option<i64>,
    /// The narration length a host paid by the second is priced at.
    pub seconds_per_video: f64,
    /// Where that length comes from, for a person.
    pub seconds_basis: String,
    /// Every configured host, priced for the same videos.
    pub hosts: Vec<HostEstimate>,
}

/// One configured host's price for the estimate's videos.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HostEstimate {
    pub name: String,
    pub kind: &'static str,
    /// Its price model: `960 credits a video`, `16¢ a second of output`, `free (made locally)`.
    pub price: String,
    pub credits: i64,
    pub dollars: f64,
    /// The longest narration it takes at 720p and 1080p.
    pub max_seconds_720p: f64,
    pub max_seconds_1080p: f64,
    /// Whether the source names it in `providers` (in that order).
    pub used_by_source: bool,
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
        } else if self.credits == 0 {
            format!(
                "0 credits on the {} provider (OmniHuman: {paid})",
                self.provider
            )
        } else {
            format!(
                "{} credits, ${:.2} on {} (OmniHuman: {paid})",
                self.credits, self.dollars, self.provider
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

    /// The hosts side by side, one line each.
    pub fn hosts_table(&self) -> String {
        let mut out = format!(
            "{:<12} {:<10} {:<24} {:>9} {:>11} {:>14}\n",
            "host", "kind", "price", "credits", "$", "longest 720p/1080p"
        );
        for host in &self.hosts {
            out.push_str(&format!(
                "{:<12} {:<10} {:<24} {:>9} {:>11} {:>14}{}\n",
                host.name,
                host.kind,
                host.price,
                host.credits,
                format!("${:.2}", host.dollars),
                format!(
                    "{:.0} s/{:.0} s",
                    host.max_seconds_720p, host.max_seconds_1080p
                ),
                if host.used_by_source {
                    ""
                } else {
                    "  (not in this source's providers)"
                }
            ));
        }
        out
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
    let hosts = config.video_hosts();
    let route = config.video_routes().remove(source);
    let order: Vec<String> = route.map(|r| r.hosts).unwrap_or_default();
    let first = order.first().and_then(|name| hosts.get_key_value(name));
    let (seconds, count) = store
        .narration_seconds(source, crate::store::now_ms() - WINDOW_MS)
        .await?;
    let (seconds_per_video, seconds_basis) = if count > 0 {
        let mean = seconds / count as f64;
        (
            mean,
            format!("{mean:.1} s a narration, the mean of {count} in the last 30 days"),
        )
    } else {
        // No narration measured yet: the longest the first host takes, so the estimate never
        // promises less than it costs.
        let longest = first.map_or(60.0, |(_, host)| host.max_audio_seconds(Resolution::P720));
        (
            longest,
            format!(
                "{longest:.0} s a narration, the longest the first host takes (none measured yet)"
            ),
        )
    };
    let provider = if config.is_dry_run(source) {
        "dry run".to_string()
    } else {
        first.map_or_else(|| "preview".to_string(), |(name, _)| name.clone())
    };
    let first = first
        .filter(|_| !config.is_dry_run(source))
        .map(|(_, host)| host);
    let budget_left = store
        .credits_left_today(source, config.budgets_for(source))
        .await?;
    let mut estimate = priced(
        source,
        videos,
        provider,
        first,
        pack,
        budget_left,
        seconds_per_video,
    );
    estimate.seconds_basis = seconds_basis;
    estimate.hosts = hosts
        .iter()
        .map(|(name, host)| {
            let (credits, dollars) = cost(host, pack, videos, seconds_per_video);
            HostEstimate {
                name: name.clone(),
                kind: host.kind(),
                price: host.price().describe(),
                credits,
                dollars,
                max_seconds_720p: host.max_audio_seconds(Resolution::P720),
                max_seconds_1080p: host.max_audio_seconds(Resolution::P1080),
                used_by_source: order.contains(name),
            }
        })
        .collect();
    Ok(estimate)
}

/// What `videos` of `seconds` cost on `host`: (credits, dollars). OmniHuman's credits are
/// priced at the source's pack; a host that prices in money counts a credit a cent.
fn cost(host: &ProviderConfig, pack: CreditPack, videos: i64, seconds: f64) -> (i64, f64) {
    let price = host.price();
    let credits = videos * price.credits(seconds);
    let dollars = match price {
        Price::PerVideo { .. } => credits as f64 * pack.price().1,
        Price::Free | Price::PerSecond { .. } => credits as f64 / 100.0,
    };
    (credits, dollars)
}

fn priced(
    source: &str,
    videos: i64,
    provider: String,
    first: Option<&ProviderConfig>,
    pack: CreditPack,
    budget_left: Option<i64>,
    seconds_per_video: f64,
) -> Estimate {
    let (pack_name, per_credit) = pack.price();
    let paid_credits = videos * CREDITS_PER_VIDEO;
    let (credits, dollars) =
        first.map_or((0, 0.0), |host| cost(host, pack, videos, seconds_per_video));
    // The budget holds back at the price the source pays, or OmniHuman's on a free host.
    let per_video = if credits > 0 {
        (credits + videos - 1) / videos.max(1)
    } else {
        CREDITS_PER_VIDEO
    };
    let fits = budget_left.map(|left| (left / per_video.max(1)).min(videos));
    Estimate {
        source: source.to_string(),
        videos,
        credits,
        dollars,
        provider,
        pack: pack_name,
        paid_credits,
        paid_dollars: paid_credits as f64 * per_credit,
        held_back_by_budget: fits.map(|fits| videos - fits),
        budget_left,
        seconds_per_video,
        seconds_basis: String::new(),
        hosts: Vec::new(),
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
        let since = crate::store::now_ms() - WINDOW_MS;
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

    fn omnihuman() -> ProviderConfig {
        toml::from_str("kind = \"omnihuman\"\napi_key = \"k\"").unwrap()
    }

    fn fal() -> ProviderConfig {
        toml::from_str("kind = \"fal\"\napi_key = \"k\"").unwrap()
    }

    #[test]
    fn a_free_provider_still_shows_the_paid_price_and_what_the_budget_holds_back() {
        let host = omnihuman();
        let paid = priced(
            "docs",
            5,
            "omnihuman".into(),
            Some(&host),
            CreditPack::Max,
            None,
            20.0,
        );
        assert_eq!((paid.credits, paid.paid_credits), (4800, 4800));
        assert_eq!(paid.cost(), "4800 credits, $40.00 at the Max pack");
        assert_eq!(paid.budget_line(), None);

        let free = priced(
            "docs",
            5,
            "preview".into(),
            None,
            CreditPack::Max,
            Some(1920),
            20.0,
        );
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
    fn a_host_paid_by_the_second_is_priced_at_the_narration_length_and_budgeted_at_it() {
        let host = fal();
        // 5 videos of 20.2 s at 16¢ a started second: 21 × 16 = 336¢ each.
        let fal = priced(
            "docs",
            5,
            "fal".into(),
            Some(&host),
            CreditPack::Max,
            Some(1000),
            20.2,
        );
        assert_eq!((fal.credits, fal.dollars), (1680, 16.80));
        assert_eq!(
            fal.cost(),
            "1680 credits, $16.80 on fal (OmniHuman: 4800 credits, $40.00 at the Max pack)"
        );
        assert_eq!(
            fal.held_back_by_budget,
            Some(3),
            "1000 credits hold 2 videos of 336"
        );
        assert_eq!(
            cost(&omnihuman(), CreditPack::Starter, 1000, 20.2).0,
            960_000
        );
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
