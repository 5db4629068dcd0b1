//! `vidhook plugin new NAME --lang rust|ts|python`: a plugin folder that builds as is with
//! `vidhook plugin build`, with the WIT, the language's SDK and its toolchain's lock vendored
//! (so it builds anywhere the language's own tools run), two passing test cases and a sample
//! event. The three scaffolds plan the same and pass the same cases.

use std::path::{Path, PathBuf};

use super::build::Language;

/// The Rust SDK crate, vendored.
const RUST_SDK: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        include_str!("../../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/text.rs",
        include_str!("../../../../plugins/sdk/src/text.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../../plugins/sdk/src/http.rs"),
    ),
    (
        "src/locale.rs",
        include_str!("../../../../plugins/sdk/src/locale.rs"),
    ),
    ("Cargo.toml", include_str!("scaffold/sdk.Cargo.toml.in")),
];

/// The Rust SDK's HTML reader, the host's own (`plugins/text`), vendored beside it.
const RUST_TEXT: &[(&str, &str)] = &[
    (
        "src/lib.rs",
        include_str!("../../../../plugins/text/src/lib.rs"),
    ),
    ("Cargo.toml", include_str!("scaffold/text.Cargo.toml.in")),
];

/// The TypeScript SDK with its types generated from `wit/` by `jco guest-types`.
const TS_SDK: &[(&str, &str)] = &[
    (
        "index.ts",
        include_str!("../../../../plugins/sdk-ts/index.ts"),
    ),
    (
        "text.ts",
        include_str!("../../../../plugins/sdk-ts/text.ts"),
    ),
    (
        "locale.ts",
        include_str!("../../../../plugins/sdk-ts/locale.ts"),
    ),
    (
        "types/plugin.d.ts",
        include_str!("../../../../plugins/sdk-ts/types/plugin.d.ts"),
    ),
    (
        "types/shortening-plugin.d.ts",
        include_str!("../../../../plugins/sdk-ts/types/shortening-plugin.d.ts"),
    ),
    (
        "types/digest.d.ts",
        include_str!("../../../../plugins/sdk-ts/types/digest.d.ts"),
    ),
    (
        "types/interfaces/vidhook-plugin-host.d.ts",
        include_str!("../../../../plugins/sdk-ts/types/interfaces/vidhook-plugin-host.d.ts"),
    ),
    (
        "types/interfaces/vidhook-plugin-types.d.ts",
        include_str!("../../../../plugins/sdk-ts/types/interfaces/vidhook-plugin-types.d.ts"),
    ),
];

/// The Python SDK's package (componentize-py generates the `wit_world` bindings at build time):
/// vendored by the scaffold, and put on the build's path for a plugin that has no copy.
pub(super) const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../../plugins/sdk-py/vidhook_sdk/__init__.py"),
    ),
    (
        "text.py",
        include_str!("../../../../plugins/sdk-py/vidhook_sdk/text.py"),
    ),
    (
        "locale.py",
        include_str!("../../../../plugins/sdk-py/vidhook_sdk/locale.py"),
    ),
];

/// Writes a plugin folder in `language` with the SDK, the WIT and the toolchain's lock vendored.
pub fn scaffold(name: &str, language: Language, parent: &Path) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    anyhow::ensure!(valid, "plugin names use a-z, 0-9 and '-'");
    let root = parent.join(name);
    anyhow::ensure!(!root.exists(), "{} exists already", root.display());
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    // An interpreter's heap and its engine's start-up need more than a Rust plugin.
    let (world, fuel, memory_mb) = match language {
        Language::Rust => ("", "1_000_000_000", "32"),
        Language::Ts | Language::Python => ("world = \"plugin\"\n", "4_000_000_000", "96"),
    };
    let manifest = fill(include_str!("scaffold/manifest.toml.in"))
        .replace("{{world}}\n", world)
        .replace("{{fuel}}", fuel)
        .replace("{{memory_mb}}", memory_mb);
    let mut files: Vec<(PathBuf, String)> = vec![
        (root.join("vidhook-plugin.toml"), manifest),
        (
            root.join("wit/plugin.wit"),
            include_str!("../../../../wit/plugin.wit").to_string(),
        ),
        (
            root.join("sample-content.json"),
            include_str!("../../../../examples/sample-content.json").to_string(),
        ),
        (
            root.join("tests/cases.toml"),
            include_str!("scaffold/cases.toml.in").to_string(),
        ),
    ];
    let vendored = |folder: &str, sdk: &[(&str, &str)]| -> Vec<(PathBuf, String)> {
        sdk.iter()
            .map(|(file, text)| (root.join(folder).join(file), text.to_string()))
            .collect()
    };
    let next = match language {
        Language::Rust => {
            files.extend([
                (
                    root.join("Cargo.toml"),
                    fill(include_str!("scaffold/Cargo.toml.in")),
                ),
                (
                    root.join("src/lib.rs"),
                    fill(include_str!("scaffold/lib.rs.in")),
                ),
                (
                    root.join("Cargo.lock"),
                    include_str!("../../../../plugins/Cargo.lock").to_string(),
                ),
                (root.join(".gitignore"), "/target\n".to_string()),
            ]);
            files.extend(vendored("vendor/vidhook-plugin-sdk", RUST_SDK));
            files.extend(vendored("vendor/vidhook-text", RUST_TEXT));
            format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            )
        }
        Language::Ts => {
            // The toolchain's lock, as the repository's own TypeScript plugins build with it.
            let named = |text: &str| text.replace("\"vidhook-plugin\"", &format!("{name:?}"));
            files.extend([
                (
                    root.join("package.json"),
                    named(include_str!("../../../../plugins/package.json")),
                ),
                (
                    root.join("package-lock.json"),
                    named(include_str!("../../../../plugins/package-lock.json")),
                ),
                (
                    root.join("tsconfig.json"),
                    include_str!("scaffold/tsconfig.json.in").to_string(),
                ),
                (
                    root.join("src/index.ts"),
                    fill(include_str!("scaffold/index.ts.in")),
                ),
                (
                    root.join(".gitignore"),
                    "/node_modules\n/dist\n".to_string(),
                ),
            ]);
            files.extend(vendored("vidhook", TS_SDK));
            format!("dist/{name}.wasm")
        }
        Language::Python => {
            files.extend([
                (
                    root.join("requirements.txt"),
                    include_str!("../../../../plugins/requirements.txt").to_string(),
                ),
                (
                    root.join("app.py"),
                    fill(include_str!("scaffold/app.py.in")),
                ),
                (
                    root.join(".gitignore"),
                    "/.venv\n/dist\n__pycache__/\n".to_string(),
                ),
            ]);
            files.extend(vendored("vidhook_sdk", PYTHON_SDK));
            format!("dist/{name}.wasm")
        }
    };
    for (path, text) in files {
        std::fs::create_dir_all(path.parent().expect("files have a parent"))?;
        std::fs::write(&path, text)?;
    }
    println!("created plugin {name} ({language}) in {}", root.display());
    println!(
        "next: vidhook plugin test {0} (builds it and runs tests/cases.toml), then vidhook plugin test {0}/{next} --content {0}/sample-content.json",
        root.display()
    );
    Ok(())
}
