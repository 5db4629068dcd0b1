//! A loopback OpenAI-compatible chat-completions server (`POST /v1/chat/completions`): checks the
//! Bearer key, records each request, answers with a fixed summary.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub const SUMMARY: &str =
    "Cut your bill by turning the heating down a degree. Seal draughts. Switch off standby.";

#[derive(Clone)]
pub struct Llm {
    pub base_url: String,
    pub authority: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Llm {
    pub async fn start(key: &str) -> Llm {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let key = format!("Bearer {key}");
        let state = (requests.clone(), key);
        let router = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(state);
        let base = super::serve(router).await;
        Llm {
            authority: base.trim_start_matches("http://").to_string(),
            base_url: format!("{base}/v1"),
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

async fn complete(
    State((requests, key)): State<(Arc<Mutex<Vec<Value>>>, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(key.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "invalid api key"}})),
        );
    }
    if body["messages"].as_array().is_none_or(|m| m.is_empty()) || body["model"].as_str().is_none()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "model and messages are required"}})),
        );
    }
    requests.lock().unwrap().push(body);
    (
        StatusCode::OK,
        Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": SUMMARY}, "finish_reason": "stop"}],
        })),
    )
}
