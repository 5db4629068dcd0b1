//! `vidhook lexicon`: a source's pronunciation lexicon (also under `/api/sources/{s}/lexicon`).

use clap::Subcommand;

use crate::config::Config;
use crate::store::{Audit, Store};

#[derive(Subcommand)]
pub enum LexiconAction {
    /// The source's terms and how they are said.
    List {
        /// The source whose narrations it applies to.
        #[arg(long)]
        source: String,
    },
    /// Say TERM as SPOKEN in the source's narrations (in one locale, or all).
    Set {
        /// The source whose narrations it applies to.
        #[arg(long)]
        source: String,
        /// A language ("de") or locale ("de-at"); default: every locale.
        #[arg(long, default_value = "")]
        locale: String,
        /// The word or name as it is written.
        term: String,
        /// How the narration should say it (spelled as it sounds).
        spoken: String,
    },
    /// Stop replacing TERM.
    Remove {
        /// The source whose narrations it applies to.
        #[arg(long)]
        source: String,
        /// The locale it was set for; default: the one for every locale.
        #[arg(long, default_value = "")]
        locale: String,
        /// The word or name as it is written.
        term: String,
    },
}

pub async fn run(config: &Config, store: &Store, action: LexiconAction) -> anyhow::Result<()> {
    let known = |source: &str| {
        anyhow::ensure!(
            config.sources.contains_key(source),
            "no source {source:?} in the configuration"
        );
        Ok(())
    };
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    match action {
        LexiconAction::List { source } => {
            known(&source)?;
            let entries = store.lexicon(&source).await?;
            if entries.is_empty() {
                println!("no terms for {source} yet: `vidhook lexicon set --source {source} TERM \"SPOKEN\"` adds one");
                return Ok(());
            }
            println!("{:<8} {:<24}    SPOKEN", "LOCALE", "TERM");
            for e in entries {
                let locale = if e.locale.is_empty() { "*" } else { &e.locale };
                println!("{locale:<8} {:<24} -> {}", e.term, e.spoken);
            }
        }
        LexiconAction::Set {
            source,
            locale,
            term,
            spoken,
        } => {
            known(&source)?;
            let locale = locale.to_ascii_lowercase();
            if let Some(problem) = crate::tts::lexicon_entry_problem(&locale, &term, &spoken) {
                anyhow::bail!(problem);
            }
            let audit = Audit {
                actor: &actor,
                action: "lexicon-set",
                reason: "",
            };
            store
                .set_lexicon_entry(&source, &locale, &term, &spoken, &audit)
                .await?;
            println!("{source}: {term} -> {spoken}");
        }
        LexiconAction::Remove {
            source,
            locale,
            term,
        } => {
            known(&source)?;
            let audit = Audit {
                actor: &actor,
                action: "lexicon-remove",
                reason: "",
            };
            let locale = locale.to_ascii_lowercase();
            anyhow::ensure!(
                store
                    .remove_lexicon_entry(&source, &locale, &term, &audit)
                    .await?,
                "{source} has no term {term:?} for locale {locale:?}"
            );
            println!("{source}: {term} removed");
        }
    }
    Ok(())
}
