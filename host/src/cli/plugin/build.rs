//! `vidhook plugin build DIR`: a plugin folder into a component with its language's own tool —
//! cargo for Rust, jco (componentize-js) for TypeScript, componentize-py for Python — against the
//! same `wit/`. The TypeScript and Python tools are pinned and locked (`package-lock.json`,
//! `requirements.txt` with hashes); when the plugin (or a folder above it) has none installed,
//! the build installs them into the plugin's folder first (`npm ci`, a `.venv`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// A plugin's language, known by the file its tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    #[value(alias = "typescript")]
    Ts,
    #[value(alias = "py")]
    Python,
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Ts => "TypeScript",
            Language::Python => "Python",
        })
    }
}

impl Language {
    /// `Cargo.toml` → Rust, `package.json` or `src/index.ts` → TypeScript, `app.py` → Python.
    pub fn of(dir: &Path) -> anyhow::Result<Language> {
        if dir.join("Cargo.toml").exists() {
            Ok(Language::Rust)
        } else if dir.join("package.json").exists() || dir.join("src/index.ts").exists() {
            Ok(Language::Ts)
        } else if dir.join("app.py").exists() {
            Ok(Language::Python)
        } else {
            anyhow::bail!(
                "{} holds no plugin: no Cargo.toml (Rust), package.json (TypeScript) or app.py (Python)",
                dir.display()
            )
        }
    }
}

/// The driver that runs jco with the filesystem visible to its tools (see the file).
const JCO_DRIVER: &str = include_str!("../../../../plugins/sdk-ts/jco.mjs");

/// Builds the plugin in `dir` and reports the component.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let wasm = match Language::of(dir)? {
        Language::Rust => cargo(dir)?,
        Language::Ts => jco(dir)?,
        Language::Python => componentize_py(dir)?,
    };
    let bytes =
        std::fs::read(&wasm).with_context(|| format!("{} was not produced", wasm.display()))?;
    use sha2::Digest;
    println!(
        "built {} ({} KB, sha256 {})",
        wasm.display(),
        bytes.len() / 1024,
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    Ok(wasm)
}

fn cargo(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    let package: toml::Value = toml::from_str(&std::fs::read_to_string(&manifest)?)?;
    let name = package["package"]["name"]
        .as_str()
        .context("Cargo.toml has no package.name")?
        .replace('-', "_");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(&manifest))?;
    Ok(dir
        .join("target/wasm32-wasip2/release")
        .join(format!("{name}.wasm")))
}

/// What a TypeScript or Python build needs from the folder: the manifest (its name and world),
/// the WIT (the plugin's own `wit/`, else the nearest above it) and where the component goes.
struct Target {
    world: String,
    wit: PathBuf,
    out: PathBuf,
    /// Whether the manifest grants any host: if not, the component is built without wasi:http.
    network: bool,
}

impl Target {
    fn of(dir: &Path) -> anyhow::Result<Target> {
        // The tools run in the plugin's folder: every path they are given is absolute.
        let dir = &dir
            .canonicalize()
            .with_context(|| format!("no folder {}", dir.display()))?;
        let manifest = super::manifest_in(dir)?;
        let wit = above(dir, "wit/plugin.wit")
            .map(|root| root.join("wit"))
            .with_context(|| format!("no wit/plugin.wit in or above {}", dir.display()))?;
        std::fs::create_dir_all(dir.join("dist"))?;
        Ok(Target {
            world: manifest.world().to_string(),
            wit,
            out: dir.join("dist").join(format!("{}.wasm", manifest.name)),
            network: !manifest.capabilities.allowed_hosts.is_empty(),
        })
    }
}

fn jco(dir: &Path) -> anyhow::Result<PathBuf> {
    let target = Target::of(dir)?;
    let tools = match above(dir, "node_modules/@bytecodealliance/jco/package.json") {
        Some(root) => root.join("node_modules"),
        None => {
            anyhow::ensure!(
                dir.join("package-lock.json").exists(),
                "jco is not installed and {} has no package-lock.json to install it from",
                dir.display()
            );
            println!(
                "installing the TypeScript toolchain (npm ci) in {}",
                dir.display()
            );
            run(Command::new("npm")
                .args([
                    "ci",
                    "--prefer-offline",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(dir))?;
            dir.join("node_modules")
        }
    };
    // Bundling strips types without checking them: check them first (TypeScript ships with jco).
    if dir.join("tsconfig.json").exists() {
        run(Command::new(tools.join(".bin/tsc"))
            .args(["--noEmit", "-p"])
            .arg(dir))?;
    }
    let driver = tempfile::Builder::new()
        .prefix("vidhook-jco-")
        .suffix(".mjs")
        .tempfile()?;
    std::fs::write(driver.path(), JCO_DRIVER)?;
    // jco may add WIT imports of its own to the world it reads (a Node API the bundle uses): it
    // gets a copy, so the plugin's contract is never rewritten by a build.
    let wit = tempfile::tempdir()?;
    copy_dir(&target.wit, wit.path())?;
    let mut jco = Command::new("node");
    jco.arg(driver.path())
        .args(["componentize", "src/index.ts", "--wit"])
        .arg(wit.path())
        .args(["--world-name", &target.world, "-o"])
        .arg(&target.out)
        .current_dir(dir);
    if !target.network {
        jco.args(["--disable", "http"]);
    }
    run(&mut jco)?;
    Ok(target.out)
}

fn componentize_py(dir: &Path) -> anyhow::Result<PathBuf> {
    let target = Target::of(dir)?;
    let tool = match above(dir, ".venv/bin/componentize-py") {
        Some(root) => root.join(".venv/bin/componentize-py"),
        None => {
            anyhow::ensure!(
                dir.join("requirements.txt").exists(),
                "componentize-py is not installed and {} has no requirements.txt to install it from",
                dir.display()
            );
            println!(
                "installing the Python toolchain (.venv, pip --require-hashes) in {}",
                dir.display()
            );
            run(Command::new("python3")
                .args(["-m", "venv", ".venv"])
                .current_dir(dir))?;
            run(Command::new(dir.join(".venv/bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--require-hashes",
                    "-r",
                    "requirements.txt",
                ])
                .current_dir(dir))?;
            dir.join(".venv/bin/componentize-py")
        }
    };
    let sdk = tempfile::tempdir()?;
    // The SDK goes on the module path after the plugin's own folder, so a copy vendored in the
    // plugin (as `plugin new` writes it) wins.
    std::fs::create_dir_all(sdk.path().join("vidhook_sdk"))?;
    for (file, text) in super::scaffold::PYTHON_SDK {
        std::fs::write(sdk.path().join("vidhook_sdk").join(file), text)?;
    }
    run(Command::new(tool)
        .arg("-d")
        .arg(&target.wit)
        .args(["-w", &target.world, "componentize", "app", "-p", "."])
        .arg("-p")
        .arg(sdk.path())
        .arg("-o")
        .arg(&target.out)
        .current_dir(dir))?;
    Ok(target.out)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The nearest of `dir` and its ancestors that holds `relative`.
fn above(dir: &Path, relative: &str) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors()
        .find(|folder| folder.join(relative).exists())
        .map(Path::to_path_buf)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .status()
        .with_context(|| format!("running {program} (is it installed?)"))?;
    anyhow::ensure!(status.success(), "{program} failed ({status})");
    Ok(())
}
