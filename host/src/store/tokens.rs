//! API tokens as stored: name, role and the hash of the secret (the secret itself is shown once,
//! at creation, and never stored).

use sqlx::FromRow;

use super::{now_ms, Result, Store};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// False if a token of that name exists already.
    pub async fn insert_token(&self, id: &str, name: &str, role: &str, hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (id, name, role, secret_hash, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(role)
        .bind(hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query(
            "SELECT id, name, role, secret_hash, created_at, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| TokenRow::from_row(&r)).transpose()?)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT id, name, role, secret_hash, created_at, revoked_at FROM api_tokens
             ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TokenRow::from_row(r)?)).collect()
    }

    /// False if no live token has that name.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
