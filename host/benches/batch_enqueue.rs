//! Enqueueing a large batch (issue #14): `vidhook batch FILE --yes --detach` with 10,000 rows —
//! read, estimated through the source's real plugin chain, checked against what already has a
//! video, and queued under one run — against the same command with an empty file, both run by
//! this process as the user runs them (the release binary, a fresh SQLite database each).
//! Reports the wall time and the peak resident memory of each, and the growth.
//!
//! `cargo bench -p vidhook --bench batch_enqueue [-- ROWS]` (default 10,000).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let empty = run(0);
    let full = run(rows);
    println!(
        "empty batch: {:.2} s, peak RSS {:.1} MB",
        empty.0.as_secs_f64(),
        empty.1 as f64 / 1024.0
    );
    println!(
        "{rows}-row batch: {:.2} s, peak RSS {:.1} MB",
        full.0.as_secs_f64(),
        full.1 as f64 / 1024.0
    );
    println!(
        "growth over the empty run: +{:.2} s, +{:.1} MB peak RSS (targets: under 10 s, under 100 MB)",
        (full.0.saturating_sub(empty.0)).as_secs_f64(),
        (full.1 as f64 - empty.1 as f64) / 1024.0
    );
}

/// Runs `vidhook batch` on `rows` rows in a fresh folder: (wall time, peak RSS in KiB).
fn run(rows: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vidhook.toml");
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let presenter = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/content/presenter.png");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\n\n[sources.outreach]\ncms = \"markdown\"\n\
             folder = \"{folder}\"\npresenter_image = \"{image}\"\ncatch_up_secs = 0\n",
            data = dir.path().join("data").display(),
            folder = dir.path().join("content").display(),
            image = presenter.display(),
        ),
    )
    .unwrap();
    let file = dir.path().join("prospects.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    writeln!(out, "id,first_name,company,trigger").unwrap();
    for n in 0..rows {
        writeln!(
            out,
            "p{n},Person {n},Company {n},\"opened an office in city {n}, country {}\"",
            n % 40
        )
        .unwrap();
    }
    drop(out);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .arg("--config")
        .arg(&config)
        .args([
            "batch",
            file.to_str().unwrap(),
            "--source",
            "outreach",
            "--yes",
            "--detach",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let exit = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(exit.success(), "vidhook batch failed:\n{printed}");
    if rows > 0 {
        assert!(
            printed.contains(&format!("{rows} items queued")),
            "every row queued:\n{printed}"
        );
    }
    (took, peak_kib)
}
