//! A loopback CMS that receives vidhook's Standard Webhooks write-back, verifies its signature,
//! and records what was written.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

/// Verified write-backs as (webhook-id, body), in arrival order.
type Deliveries = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

#[derive(Clone)]
pub struct Cms {
    pub url: String,
    /// Verified write-backs as (webhook-id, body), in arrival order.
    received: Deliveries,
}

impl Cms {
    pub async fn start() -> Cms {
        let received = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/video-ready", post(receive))
            .with_state(received.clone());
        let base = super::serve(router).await;
        Cms {
            url: format!("{base}/video-ready"),
            received,
        }
    }

    /// Verified write-backs, in arrival order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.deliveries()
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    /// Verified write-backs with their `webhook-id` (the same id again is a redelivery).
    pub fn deliveries(&self) -> Vec<(String, serde_json::Value)> {
        self.received.lock().unwrap().clone()
    }

    pub async fn wait_for_write_backs(
        &self,
        count: usize,
        timeout: std::time::Duration,
    ) -> Vec<serde_json::Value> {
        let started = std::time::Instant::now();
        while self.received().len() < count && started.elapsed() < timeout {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.received()
    }
}

async fn receive(
    State(received): State<Deliveries>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let secret = vidhook::cms::standard_webhooks::Secret::parse(super::SECRET).unwrap();
    if secret
        .verify(&headers, &body, 300, super::now_secs())
        .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(value) = serde_json::from_slice(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    received.lock().unwrap().push((id, value));
    StatusCode::OK
}
