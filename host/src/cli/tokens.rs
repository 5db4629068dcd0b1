//! `vidhook tokens`: API tokens with roles (`crate::auth`). A token is shown once, at creation.

use clap::Subcommand;

use crate::auth::{self, Role};
use crate::store::Store;

#[derive(Subcommand)]
pub enum TokensAction {
    /// Create a token; it is printed once and stored hashed.
    Create {
        /// viewer (read), editor (also templates, approve/reject), admin (everything).
        #[arg(long)]
        role: String,
        /// A unique name: it appears in the audit log as who did what.
        #[arg(long)]
        name: String,
    },
    /// Tokens by name, role and state (never the tokens themselves).
    List,
    /// Revoke a token at once.
    Revoke {
        /// The token's name (`vidhook tokens list` shows them).
        name: String,
    },
}

pub async fn run(store: &Store, action: TokensAction) -> anyhow::Result<()> {
    match action {
        TokensAction::Create { role, name } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role {role:?}: use viewer, editor or admin"))?;
            anyhow::ensure!(!name.trim().is_empty(), "the name must not be blank");
            let token = auth::create(store, &name, role)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a token named {name:?} exists already"))?;
            // The only time the token is shown.
            println!("{token}");
            eprintln!(
                "{} token {name:?} created; it is not shown again",
                role.as_str()
            );
        }
        TokensAction::List => {
            let tokens = store.tokens().await?;
            if tokens.is_empty() {
                println!(
                    "no tokens yet: `vidhook tokens create --role editor --name NAME` makes one"
                );
                return Ok(());
            }
            println!("{:<24} {:<7} STATE", "NAME", "ROLE");
            for token in tokens {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!("{:<24} {:<7} {state}", token.name, token.role);
            }
        }
        TokensAction::Revoke { name } => {
            anyhow::ensure!(
                store.revoke_token(&name).await?,
                "no live token named {name:?}"
            );
            println!("{name}: revoked");
        }
    }
    Ok(())
}
