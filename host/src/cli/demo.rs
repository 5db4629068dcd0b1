//! `vidhook demo`: the whole path once, on embedded defaults, narrated step by step.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::jobs::State;
use crate::server::Server;
use crate::store::Ingested;

const SAMPLE_ARTICLE: &str = include_str!("../../../examples/content/welcome.md");
const SAMPLE_PHOTO: &[u8] = include_bytes!("../../../examples/content/presenter.png");

pub async fn run(dir: &Path, timeout: Duration) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let content = dir.join("content");
    std::fs::create_dir_all(&content)?;
    let article = content.join("welcome.md");
    std::fs::write(&article, SAMPLE_ARTICLE)?;
    std::fs::write(content.join("presenter.png"), SAMPLE_PHOTO)?;
    let mut config = Config::embedded_defaults(dir.join("data"), content.clone());
    config.listen = ([127, 0, 0, 1], 0).into();

    println!("vidhook demo — embedded defaults: SQLite, local media, espeak-ng, bundled presenter plugin,");
    println!("local preview provider (ffmpeg; no account, no network beyond loopback)\n");
    let server = Server::start(config).await?;
    let app = server.app.clone();
    println!("host listening on http://{}", server.addr);
    println!("publishing {}", article.display());

    let outcome = super::publish_files(
        &app.store,
        &app.config,
        "content",
        &content,
        std::slice::from_ref(&article),
    )
    .await?;
    let Some(Ingested::Accepted { render_id, .. }) = outcome.into_iter().next() else {
        anyhow::bail!("the sample article was not accepted");
    };
    app.wake.notify_waiters();
    println!("render {render_id}\n");

    let started = Instant::now();
    let mut shown = 0;
    let render = loop {
        let steps = app.store.steps(&render_id).await?;
        for step in &steps[shown..] {
            println!(
                "  {:<11} {:<8} {:>6}  {}",
                step.step,
                step.outcome,
                super::jobs::human_ms(step.finished_at - step.started_at),
                step.detail
            );
        }
        shown = steps.len();
        let render = app
            .store
            .render(&render_id)
            .await?
            .expect("the render exists");
        if State::parse(&render.state).is_some_and(|s| !s.is_runnable()) {
            break render;
        }
        if started.elapsed() > timeout {
            anyhow::bail!("the render is still at {} after {timeout:?}", render.state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let result = report(&app, &render, &article, started.elapsed()).await;
    server.shutdown(Duration::from_secs(10)).await;
    result
}

async fn report(
    app: &crate::app::App,
    render: &crate::store::RenderRow,
    article: &Path,
    took: Duration,
) -> anyhow::Result<()> {
    if render.state != State::Done.as_str() {
        anyhow::bail!(
            "the render ended as {}: {}",
            render.state,
            render.error.as_deref().unwrap_or("no error recorded")
        );
    }
    let video_url = render.video_url.as_deref().unwrap_or_default();
    let front_matter = std::fs::read_to_string(article)?;
    anyhow::ensure!(
        front_matter.contains(&format!("video_url: \"{video_url}\"")),
        "the article's front matter does not hold the video URL"
    );
    let key = video_url.split("/media/").nth(1).unwrap_or_default();
    let video_file = match app.media.serve(key).await? {
        crate::media::Serve::File(path) => path.display().to_string(),
        _ => "(not a local file)".to_string(),
    };
    println!("\ndone in {:.1} s", took.as_secs_f64());
    println!(
        "article  {}  (front matter now has video_url)",
        article.display()
    );
    println!("video    {video_url}");
    println!(
        "file     {}  ({:.2} s of narration)",
        video_file,
        render.audio_seconds.unwrap_or_default()
    );
    Ok(())
}
