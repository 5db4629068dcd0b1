//! Builds the guest plugins in `plugins/` for `wasm32-wasip2` and generates `bundled_plugins.rs`,
//! which embeds each bundled plugin (a folder with a `vidhook-plugin.toml`) with its manifest in
//! the binary (pattern: wasmtime's `crates/test-programs/artifacts`). Test programs
//! (`plugins/test-programs/*`) are not embedded: tests find them in `VIDHOOK_TEST_WASM_DIR`.
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

    // The Rust crates and the workspace files; not the TypeScript and Python plugins, their
    // toolchains (`node_modules`, `.venv`) or the build output.
    for entry in std::fs::read_dir(&plugins).unwrap().flatten() {
        let path = entry.path();
        let crate_or_workspace_file = path.join("Cargo.toml").exists()
            || path.is_file()
            || entry.file_name() == "test-programs";
        if crate_or_workspace_file && entry.file_name() != "target" {
            println!("cargo:rerun-if-changed={}", path.display());
        }
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
    println!(
        "cargo:rustc-env=VIDHOOK_TEST_WASM_DIR={}",
        wasm_dir.display()
    );
    // The template engine is not a plugin: the host embeds it on its own (crate::templates).
    std::fs::copy(
        wasm_dir.join("template_engine.wasm"),
        out_dir.join("template_engine.wasm"),
    )
    .expect("plugins/template-engine was built");
    let mut entries =
        String::from("/// Bundled plugins: (name, component bytes, manifest TOML).\n");
    entries.push_str("pub static BUNDLED: &[(&str, &[u8], &str)] = &[\n");
    for name in bundled_names(&plugins) {
        let wasm = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        let manifest = plugins.join(&name).join("vidhook-plugin.toml");
        entries.push_str(&format!(
            "    ({name:?}, include_bytes!({:?}), include_str!({:?})),\n",
            wasm.display().to_string(),
            manifest.display().to_string()
        ));
    }
    entries.push_str("];\n");
    std::fs::write(out_dir.join("bundled_plugins.rs"), entries).unwrap();
}

/// Plugin crates (folders with a manifest and a Cargo.toml), sorted for a stable binary. The
/// TypeScript and Python plugins beside them are built by `vidhook plugin build`, not bundled.
fn bundled_names(plugins: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(plugins)
        .unwrap()
        .filter_map(|e| {
            let entry = e.ok()?;
            let bundled = entry.path().join("vidhook-plugin.toml").exists()
                && entry.path().join("Cargo.toml").exists();
            bundled.then(|| entry.file_name().to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}
