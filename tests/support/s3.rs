//! A real S3-compatible server on loopback for the media-store tests: moto's server mode
//! (`pip install 'moto[server]'`, installed by scripts/setup-tests.sh), one per test, in its own process
//! group that is ended on drop. It speaks the S3 REST API (multipart uploads, listing, Range,
//! presigned URLs); it does not check signatures, which the AWS SDKs' own tests cover.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub const BUCKET: &str = "vidhook-media";
pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key";

pub struct S3Server {
    pub url: String,
    child: Child,
}

impl S3Server {
    /// Starts moto on a free port and creates [`BUCKET`].
    pub async fn start(log_dir: &std::path::Path) -> S3Server {
        let port = super::free_port();
        let url = format!("http://127.0.0.1:{port}");
        // As a module, so no console-script shim needs to be on PATH.
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log_dir.join("moto.log")).unwrap())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs moto (installed by scripts/setup-tests.sh)");
        let server = S3Server { url, child };
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            // An unsigned CreateBucket (moto does not check signatures).
            match client.put(format!("{}/{BUCKET}", server.url)).send().await {
                Ok(response) if response.status().is_success() => break,
                _ if started.elapsed() > Duration::from_secs(30) => panic!("moto did not start"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        server
    }

    /// The `[media.s3]` table for this server.
    pub fn config(&self) -> String {
        format!(
            "\n[media.s3]\nbucket = \"{BUCKET}\"\nendpoint = \"{}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\nprefix = \"vh/\"\n",
            self.url
        )
    }

    /// Every key in the bucket (ListObjectsV2).
    pub async fn keys(&self) -> Vec<String> {
        let listing = reqwest::get(format!("{}/{BUCKET}?list-type=2", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        super::end_group(&mut self.child);
    }
}
