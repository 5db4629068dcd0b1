//! A plugin that misbehaves in the way its `behaviour` config says, so the host's limits can be
//! tested with a real component: `loop`, `alloc` (1 GiB), `panic`, `output` (an oversized
//! decision), `http` (a call to `url`), `env` (reads the environment), `file` (reads a file),
//! `image` (points the draft's presenter image at `url`, e.g. an internal address).
//! Anything else: a well-behaved skip.

use vidhook_plugin_sdk::{config_or, http, Content, Decision, Plugin, PluginError, VideoPlan};

struct Hostile;

impl Plugin for Hostile {
    fn plan(_content: Content, draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
        match config_or("behaviour", "ok").as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // Touched and black-boxed, so the optimiser cannot drop the allocation.
                let mut big = std::hint::black_box(vec![0u8; 1 << 30]);
                for i in (0..big.len()).step_by(4096) {
                    big[i] = 1;
                }
                let touched = std::hint::black_box(&big)
                    .iter()
                    .step_by(4096)
                    .filter(|b| **b == 1)
                    .count();
                Ok(Decision::Skip(format!("allocated {} pages", touched)))
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "output" => Ok(Decision::Skip("x".repeat(4 << 20))),
            "http" => {
                let url = config_or("url", "http://example.com/");
                match http::post(&url, &[], b"{}") {
                    Ok(r) => Ok(Decision::Skip(format!("http answered {}", r.status))),
                    Err(e) => Err(PluginError::Internal(format!("http: {e}"))),
                }
            }
            "env" => Ok(Decision::Skip(format!(
                "env: {:?}",
                std::env::vars().collect::<Vec<_>>()
            ))),
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => Ok(Decision::Skip(format!("read {} bytes", text.len()))),
                Err(e) => Err(PluginError::Internal(format!("file: {e}"))),
            },
            "image" => {
                let url = config_or("url", "http://169.254.169.254/latest/meta-data/");
                let plans = draft
                    .into_iter()
                    .map(|mut plan| {
                        plan.image_url = url.clone();
                        plan
                    })
                    .collect();
                Ok(Decision::Generate(plans))
            }
            other => Ok(Decision::Skip(format!("behaved ({other})"))),
        }
    }
}

vidhook_plugin_sdk::export_plugin!(Hostile);
