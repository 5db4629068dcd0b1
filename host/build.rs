//! Builds the guest plugins in `plugins/` for `wasm32-wasip2` and generates `bundled_plugins.rs`,
//! which embeds each component in the binary (pattern: wasmtime's `crates/test-programs/artifacts`).
//!
//! The nested cargo gets its own target directory inside OUT_DIR (so it never waits on the outer
//! build's lock) and a clean environment (the outer build's RUSTFLAGS are for the host target).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let plugins = manifest_dir.join("../plugins");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let target_dir = out_dir.join("wasm");

    for watched in ["Cargo.toml", "Cargo.lock", "sdk", "presenter"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../wit").display()
    );

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--workspace",
        ])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        build.env_remove(var);
    }
    let status = build.status().expect("failed to run cargo for the plugins");
    assert!(
        status.success(),
        "building plugins/ for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );

    let wasm_dir = target_dir.join("wasm32-wasip2/release");
    let mut entries = String::from("/// Bundled plugin components: (name, component bytes).\n");
    entries.push_str("pub static BUNDLED: &[(&str, &[u8])] = &[\n");
    for name in bundled_names(&wasm_dir) {
        let path = wasm_dir.join(format!("{name}.wasm"));
        entries.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    entries.push_str("];\n");
    std::fs::write(out_dir.join("bundled_plugins.rs"), entries).unwrap();
}

/// The components the plugin workspace produced, sorted for a stable binary.
fn bundled_names(wasm_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(wasm_dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "wasm").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}
