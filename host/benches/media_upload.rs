//! Uploading a large video to an S3-compatible bucket (issue #13): a 500 MB file stored through
//! the media store's S3 backend (`MediaStore::put_file`: multipart, fixed parts) against a real
//! S3 server on loopback (moto, started here). Reports this process's peak resident memory
//! before and after, against a 5 MB upload in the same run: the growth must not follow the size.
//!
//! `cargo bench -p vidhook --bench media_upload [-- MB]` (default 500).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vidhook::media::{MediaStore, S3Config, S3};

/// Peak resident set size so far (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A file of `mb` MiB of incompressible-looking bytes, written in 1 MiB blocks.
fn big_file(dir: &std::path::Path, name: &str, mb: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for n in 0..mb {
        block[0] = n as u8;
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
    path
}

fn main() {
    let mb: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut moto = std::process::Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto is installed by scripts/setup.sh");
    let endpoint = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while !client
            .put(format!("{endpoint}/bench"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let config = S3Config {
            bucket: "bench".into(),
            region: "us-east-1".into(),
            endpoint: Some(endpoint.clone()),
            access_key_id: "bench".into(),
            secret_access_key: "bench".into(),
            prefix: String::new(),
        };
        // The loopback server passes the outbound guard only by its development allowlist.
        let dev = vidhook::outbound::Config {
            allow_private: vec!["127.0.0.0/8".into()],
        };
        let guard = vidhook::outbound::Guard::new(&dev, true).unwrap();
        let backend = S3::new(&config, &guard).unwrap();
        let media = MediaStore::new(
            Arc::new(backend),
            dir.path().join("scratch"),
            "http://127.0.0.1:1".into(),
            vec![7; 32],
            60,
        );
        let small = big_file(dir.path(), "small.mp4", 5);
        media.put_file("videos/small.mp4", &small).await.unwrap();
        let before = peak_rss_kib();
        let large = big_file(dir.path(), "large.mp4", mb);
        let started = Instant::now();
        media.put_file("videos/large.mp4", &large).await.unwrap();
        let took = started.elapsed();
        let after = peak_rss_kib();
        let stored = client
            .head(format!("{endpoint}/bench/videos/large.mp4"))
            .send()
            .await
            .unwrap()
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        (before, after, took, stored)
    });
    let _ = moto.kill();
    let _ = moto.wait();
    let (before, after, took, stored) = result;
    assert_eq!(
        stored,
        Some((mb as u64) << 20),
        "the whole file is in the bucket"
    );
    println!(
        "peak RSS after a 5 MB upload: {:.1} MB; after a {mb} MB upload: {:.1} MB",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "growth: +{:.1} MB for {mb} MB uploaded in {:.1} s (target: under 64 MB)",
        (after - before) as f64 / 1024.0,
        took.as_secs_f64()
    );
}
