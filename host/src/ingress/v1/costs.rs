//! Money at a glance: credits counted per day and source (as the budgets count them: a render's
//! actual figure once known, else its estimate; nothing for a render the provider never took),
//! and today's budget left, overall and per source.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{problem, store_down};
use crate::app::App;
use crate::ingress::problem::Problem;
use crate::store::ledger::{day_start_ms, today};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// How many days back, today included (1-366, default 30).
    #[param(minimum = 1, maximum = 366)]
    days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Costs {
    /// One entry per day, oldest first, days without spending included.
    days: Vec<DayCost>,
    /// Credits left today under the daily limit for all sources; none: no limit.
    budget_left_today: Option<i64>,
    daily_limit: Option<i64>,
    spent_today: i64,
    /// Per source: today's spending, its own limit and what is left under both limits.
    sources: Vec<SourceBudget>,
    /// Dollars per credit at the cheapest documented pack (Starter), to read credits as money.
    usd_per_credit: f64,
    credits_per_video: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DayCost {
    /// The day (UTC), `YYYY-MM-DD`.
    date: String,
    credits: i64,
    by_source: BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceBudget {
    source: String,
    spent_today: i64,
    daily_limit: Option<i64>,
    left_today: Option<i64>,
}

/// Credits per day and source, and the budget left today.
#[utoipa::path(
    get, path = "/costs", tag = "costs", params(CostQuery),
    responses(
        (status = 200, body = Costs),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn costs(State(app): State<Arc<App>>, Query(query): Query<CostQuery>) -> Response {
    let days = query.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return problem(StatusCode::BAD_REQUEST, "days must be 1-366");
    }
    match gather(&app, days).await {
        Ok(costs) => Json(costs).into_response(),
        Err(err) => store_down(err),
    }
}

async fn gather(app: &App, days: i64) -> Result<Costs, crate::store::StoreError> {
    let first = today() - (days - 1);
    let mut by_day: BTreeMap<i64, DayCost> = (first..=today())
        .map(|day| {
            let date = crate::cms::format_time(day_start_ms(day));
            let date = date.get(..10).unwrap_or(&date).to_string();
            (
                day,
                DayCost {
                    date,
                    credits: 0,
                    by_source: BTreeMap::new(),
                },
            )
        })
        .collect();
    for (day, source, credits) in app.store.credits_by_day(first).await? {
        if let Some(entry) = by_day.get_mut(&day) {
            entry.credits += credits;
            *entry.by_source.entry(source).or_default() += credits;
        }
    }
    // Today's spending is today's entry, counted by the same rule the budgets use.
    let today_spent = &by_day[&today()];
    let spent_all = today_spent.credits;
    let sources = app
        .config
        .sources
        .keys()
        .map(|name| {
            let budgets = app.config.budgets_for(name);
            let spent = today_spent.by_source.get(name).copied().unwrap_or(0);
            SourceBudget {
                source: name.clone(),
                spent_today: spent,
                daily_limit: budgets.this_source,
                left_today: budgets.left(spent_all, spent),
            }
        })
        .collect();
    let all = crate::store::ledger::Budgets {
        all_sources: app.config.budgets.daily_credits,
        this_source: None,
    };
    let (_, usd_per_credit) = crate::generation::CreditPack::default().price();
    Ok(Costs {
        days: by_day.into_values().collect(),
        budget_left_today: all.left(spent_all, 0),
        daily_limit: app.config.budgets.daily_credits,
        spent_today: spent_all,
        sources,
        usd_per_credit,
        credits_per_video: crate::generation::CREDITS_PER_VIDEO,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EstimateQuery {
    /// The source the videos are for (required when several are configured).
    source: Option<String>,
    /// How many events (1-1,000,000), priced at the source's observed videos per event.
    #[param(minimum = 1, maximum = 1_000_000)]
    events: Option<i64>,
    /// Or how many videos exactly (1-1,000,000): renders waiting for approval, say.
    #[param(minimum = 1, maximum = 1_000_000)]
    videos: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsEstimate {
    /// The events asked about (none when videos were).
    events: Option<i64>,
    /// Videos per event as this source has made them (a multilingual chain makes several);
    /// none when videos were asked about.
    fan_out: Option<crate::estimate::FanOut>,
    estimate: crate::estimate::Estimate,
}

/// What `events` events (or `videos` videos) of a source would cost: the same figures `vidhook
/// estimate --events` prints (the source's observed fan-out, its provider's price and
/// OmniHuman's beside it, the budget left today and what it would hold back).
#[utoipa::path(
    get, path = "/estimate", tag = "costs", params(EstimateQuery),
    responses(
        (status = 200, body = EventsEstimate),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn estimate(State(app): State<Arc<App>>, Query(query): Query<EstimateQuery>) -> Response {
    let counted = query.events.xor(query.videos);
    if !counted.is_some_and(|n| (1..=1_000_000).contains(&n)) {
        return problem(
            StatusCode::BAD_REQUEST,
            "give events=N or videos=N (1-1000000), not both",
        );
    }
    let source = match crate::estimate::choose_source(&app.config, query.source.as_deref()) {
        Ok(source) => source,
        Err(err @ crate::estimate::SourceChoice::Unknown { .. }) => {
            return problem(StatusCode::NOT_FOUND, err.to_string())
        }
        Err(err) => return problem(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let priced = async {
        let (fan_out, videos) = match (query.events, query.videos) {
            (Some(events), _) => {
                let fan_out = crate::estimate::FanOut::observed(&app.store, &source).await?;
                let videos = fan_out.videos(events);
                (Some(fan_out), videos)
            }
            (None, videos) => (None, videos.unwrap_or(0)),
        };
        let estimate = crate::estimate::price(&app.config, &app.store, &source, videos).await?;
        anyhow::Ok(EventsEstimate {
            events: query.events,
            fan_out,
            estimate,
        })
    };
    match priced.await {
        Ok(answer) => Json(answer).into_response(),
        Err(err) => store_down(err),
    }
}
