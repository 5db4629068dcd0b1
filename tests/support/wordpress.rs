//! A real WordPress on loopback: Debian's `wordpress` package served by PHP's built-in server,
//! a fresh MariaDB database (127.0.0.1:3306, root), the companion plugin from
//! `integrations/wordpress/` installed and activated, and an Application Password for `admin`.
//! scripts/setup-wordpress.sh installs the packages and starts MariaDB.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct WordPress {
    /// The site, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
    pub app_password: String,
    child: Child,
    config_file: PathBuf,
    database: String,
}

const WORDPRESS: &str = "/usr/share/wordpress";

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/wordpress")
}

fn mariadb(sql: &str) {
    let status = std::process::Command::new("mariadb")
        .args(["-h127.0.0.1", "-P3306", "-uroot", "-e", sql])
        .status()
        .expect("the mariadb client (scripts/setup-wordpress.sh installs it)");
    assert!(status.success(), "mariadb: {sql}");
}

impl WordPress {
    /// Starts a WordPress at `port` whose plugin sends to `vidhook_endpoint` with `secret`.
    pub async fn start(dir: &Path, port: u16, vidhook_endpoint: &str, secret: &str) -> WordPress {
        assert!(
            Path::new(WORDPRESS).join("wp-load.php").exists(),
            "WordPress is not installed: run scripts/setup-wordpress.sh"
        );
        let name = format!("vidhook-{}-{port}", std::process::id());
        let database = format!("wp_{}_{port}", std::process::id());
        mariadb(&format!(
            "DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}"
        ));
        let content = dir.join("wp-content");
        let plugin = content.join("plugins/vidhook");
        std::fs::create_dir_all(&plugin).unwrap();
        std::fs::create_dir_all(content.join("themes")).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations/wordpress");
        for file in ["vidhook.php", "README.md"] {
            std::fs::copy(source.join(file), plugin.join(file)).unwrap();
        }
        let url = format!("http://127.0.0.1:{port}");
        let config_file = PathBuf::from(format!("/etc/wordpress/config-{name}.php"));
        std::fs::create_dir_all("/etc/wordpress").unwrap();
        std::fs::write(
            &config_file,
            format!(
                "<?php\ndefine('DB_NAME', '{database}');\ndefine('DB_USER', 'root');\n\
                 define('DB_PASSWORD', '');\ndefine('DB_HOST', '127.0.0.1:3306');\n\
                 define('WP_CONTENT_DIR', '{content}');\ndefine('WP_HOME', '{url}');\n\
                 define('WP_SITEURL', '{url}');\ndefine('WP_ENVIRONMENT_TYPE', 'local');\n\
                 define('DISABLE_WP_CRON', true);\ndefine('VIDHOOK_ENDPOINT', '{vidhook_endpoint}');\n\
                 define('VIDHOOK_SECRET', '{secret}');\n$table_prefix = 'wp_';\n",
                content = content.display(),
            ),
        )
        .unwrap();
        let php = |step: &str| {
            let output = std::process::Command::new("php")
                .arg(here().join("setup.php"))
                .arg(step)
                .env("WORDPRESS_CONFIG", &name)
                .output()
                .expect("php (scripts/setup-wordpress.sh installs it)");
            assert!(
                output.status.success(),
                "setup.php {step}: {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        php("install");
        let app_password = php("activate");
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t", WORDPRESS])
            .arg(here().join("router.php"))
            .env("WORDPRESS_CONFIG", &name)
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("php-server.log")).unwrap())
            // Its own process group: PHP's server forks its workers, and ending the group (on
            // drop) ends them too; killing only the parent left four workers running.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let started = Instant::now();
        while reqwest::get(format!("{url}/?rest_route=/")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "WordPress did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        WordPress {
            url,
            app_password,
            child,
            config_file,
            database,
        }
    }

    /// A REST API URL (`route` like `/wp/v2/posts`), independent of permalink settings.
    pub fn rest(&self, route: &str) -> String {
        format!("{}/?rest_route={route}", self.url)
    }

    /// A request authenticated as `admin` with the Application Password.
    pub fn authed(&self, method: reqwest::Method, route: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.rest(route))
            .basic_auth("admin", Some(&self.app_password))
    }

    /// Creates a post through the REST API (`status` "publish" or "draft"); its id.
    pub async fn create_post(&self, title: &str, content_html: &str, status: &str) -> i64 {
        let created = self
            .authed(reqwest::Method::POST, "/wp/v2/posts")
            .json(&serde_json::json!({"title": title, "content": content_html, "status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
        created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    /// A post as the REST API shows it to an editor (its meta included).
    pub async fn post(&self, id: i64) -> serde_json::Value {
        self.authed(
            reqwest::Method::GET,
            &format!("/wp/v2/posts/{id}&context=edit"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    }
}

impl Drop for WordPress {
    fn drop(&mut self) {
        super::end_group(&mut self.child);
        let _ = std::fs::remove_file(&self.config_file);
        let _ = std::process::Command::new("mariadb")
            .args(["-h127.0.0.1", "-P3306", "-uroot", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS {}", self.database))
            .status();
    }
}
