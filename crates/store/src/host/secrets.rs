//! Which columns of the hosting database hold secrets, how [`HostDb`] seals and opens them
//! with its [`Sealer`], and resealing them all under the current key (after a key is first
//! configured, or rotated).

use std::sync::Arc;

use super::error::db_error;
use super::seal::{self, SEALED_MARK, Sealer};
use super::types::{CertRow, ChallengeRow};
use super::{HostDb, HostDbError, bounded};

/// A column holding a secret: its name (part of each sealed value's associated data) and the
/// statements that reseal it.
pub(super) struct SecretColumn {
    /// `table.column`.
    name: &'static str,
    /// Up to [`RESEAL_BATCH`] rows (row key, value) after row key `$1`, in row-key order,
    /// whose value is not like `$2` (sealed under the current key).
    stale: &'static str,
    /// One row (row key, value) whose value is sealed under any key.
    any_sealed: &'static str,
    /// Replaces the value `$3` of row `$2` with `$1`, only if it is still `$3`.
    replace: &'static str,
}

/// The private keys of certificates; the row key is the domain.
pub(super) const CERTIFICATE_KEY: SecretColumn = SecretColumn {
    name: "host_certificates.key_pem",
    stale: "SELECT domain, key_pem FROM host_certificates \
            WHERE domain > $1 AND key_pem NOT LIKE $2 ORDER BY domain LIMIT 100",
    any_sealed: "SELECT domain, key_pem FROM host_certificates \
                 WHERE key_pem LIKE 'mtasts-sealed:%' LIMIT 1",
    replace: "UPDATE host_certificates SET key_pem = $1 WHERE domain = $2 AND key_pem = $3",
};

/// ACME account credentials (JSON holding the account's private key); the row key is the
/// directory URL.
pub(super) const ACME_ACCOUNT: SecretColumn = SecretColumn {
    name: "host_acme_accounts.credentials_json",
    stale: "SELECT directory_url, credentials_json FROM host_acme_accounts \
            WHERE directory_url > $1 AND credentials_json NOT LIKE $2 \
            ORDER BY directory_url LIMIT 100",
    any_sealed: "SELECT directory_url, credentials_json FROM host_acme_accounts \
                 WHERE credentials_json LIKE 'mtasts-sealed:%' LIMIT 1",
    replace: "UPDATE host_acme_accounts SET credentials_json = $1 \
              WHERE directory_url = $2 AND credentials_json = $3",
};

/// The private keys of TLS-ALPN-01 challenge certificates; the row key is the token.
pub(super) const CHALLENGE_KEY: SecretColumn = SecretColumn {
    name: "host_challenges.key_pem",
    stale: "SELECT token, key_pem FROM host_challenges \
            WHERE token > $1 AND key_pem IS NOT NULL AND key_pem NOT LIKE $2 \
            ORDER BY token LIMIT 100",
    any_sealed: "SELECT token, key_pem FROM host_challenges \
                 WHERE key_pem LIKE 'mtasts-sealed:%' LIMIT 1",
    replace: "UPDATE host_challenges SET key_pem = $1 WHERE token = $2 AND key_pem = $3",
};

/// The shared secrets of tenants' alert webhooks; the row key is the tenant id in decimal
/// (compared as text, which orders digit strings the same in every collation).
pub(super) const ALERT_WEBHOOK_SECRET: SecretColumn = SecretColumn {
    name: "host_alert_settings.webhook_secret",
    stale: "SELECT CAST(tenant_id AS TEXT), webhook_secret FROM host_alert_settings \
            WHERE CAST(tenant_id AS TEXT) > $1 AND webhook_secret IS NOT NULL \
            AND webhook_secret NOT LIKE $2 ORDER BY CAST(tenant_id AS TEXT) LIMIT 100",
    any_sealed: "SELECT CAST(tenant_id AS TEXT), webhook_secret FROM host_alert_settings \
                 WHERE webhook_secret LIKE 'mtasts-sealed:%' LIMIT 1",
    replace: "UPDATE host_alert_settings SET webhook_secret = $1 \
              WHERE CAST(tenant_id AS TEXT) = $2 AND webhook_secret = $3",
};

const SECRET_COLUMNS: [&SecretColumn; 4] = [
    &CERTIFICATE_KEY,
    &ACME_ACCOUNT,
    &CHALLENGE_KEY,
    &ALERT_WEBHOOK_SECRET,
];

/// Rows read per resealing statement (the `LIMIT` of [`SecretColumn::stale`]).
const RESEAL_BATCH: usize = 100;

impl HostDb {
    /// This database sealing the secrets it writes with `sealer` and opening them with it.
    /// Without one (as opened), secrets are written in plaintext and a sealed one read is
    /// [`HostDbError::Sealed`] naming the key it needs.
    pub fn with_secret_keys(mut self, sealer: Sealer) -> HostDb {
        self.sealer = Some(Arc::new(sealer));
        self
    }

    /// The sealer in use, if any.
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_deref()
    }

    /// Reseals every secret that is plaintext or sealed under a previous key under the current
    /// key, and returns how many it changed. Without a sealer it only checks that nothing is
    /// sealed (else [`HostDbError::Sealed`] naming the key). Safe to run again and on several
    /// nodes at once: each row is replaced only if it still holds what was read, so a value
    /// written meanwhile is kept. Callers take an advisory lock to avoid duplicated work.
    pub async fn reseal_secrets(&self) -> Result<u64, HostDbError> {
        let Some(sealer) = self.sealer() else {
            for column in SECRET_COLUMNS {
                let row: Option<(String, String)> = bounded(async {
                    with_pool!(self, |pool| sqlx::query_as(column.any_sealed)
                        .fetch_optional(pool)
                        .await
                        .map_err(db_error))
                })
                .await?;
                if let Some((key, value)) = row {
                    seal::open(None, column.name, &key, &value)?;
                }
            }
            return Ok(0);
        };
        let current = sealer.current_pattern();
        let mut resealed = 0;
        for column in SECRET_COLUMNS {
            let mut after = String::new();
            loop {
                let rows: Vec<(String, String)> = bounded(async {
                    with_pool!(self, |pool| sqlx::query_as(column.stale)
                        .bind(&after)
                        .bind(&current)
                        .fetch_all(pool)
                        .await
                        .map_err(db_error))
                })
                .await?;
                let full = rows.len() >= RESEAL_BATCH;
                for (key, value) in rows {
                    let plain = sealer.open(column.name, &key, &value)?;
                    let sealed = sealer.seal(column.name, &key, &plain)?;
                    resealed += bounded(async {
                        with_pool!(self, |pool| sqlx::query(column.replace)
                            .bind(&sealed)
                            .bind(&key)
                            .bind(&value)
                            .execute(pool)
                            .await
                            .map(|done| done.rows_affected())
                            .map_err(db_error))
                    })
                    .await?;
                    after = key;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(resealed)
    }

    /// `plain` as stored in `column` of row `row`: sealed when a sealer is configured.
    pub(super) fn seal_secret(
        &self,
        column: &SecretColumn,
        row: &str,
        plain: &str,
    ) -> Result<String, HostDbError> {
        match self.sealer() {
            Some(sealer) => Ok(sealer.seal(column.name, row, plain)?),
            None => Ok(plain.to_owned()),
        }
    }

    /// The plaintext of `stored` in `column` of row `row`.
    pub(super) fn open_secret(
        &self,
        column: &SecretColumn,
        row: &str,
        stored: String,
    ) -> Result<String, HostDbError> {
        if !stored.starts_with(SEALED_MARK) {
            return Ok(stored);
        }
        Ok(seal::open(self.sealer(), column.name, row, &stored)?)
    }

    /// `cert` with its private key opened.
    pub(super) fn open_certificate(&self, mut cert: CertRow) -> Result<CertRow, HostDbError> {
        cert.key_pem = self.open_secret(&CERTIFICATE_KEY, &cert.domain, cert.key_pem)?;
        Ok(cert)
    }

    /// `challenge` with its private key (TLS-ALPN-01) opened.
    pub(super) fn open_challenge(
        &self,
        mut challenge: ChallengeRow,
    ) -> Result<ChallengeRow, HostDbError> {
        if let Some(key) = challenge.key_pem.take() {
            challenge.key_pem = Some(self.open_secret(&CHALLENGE_KEY, &challenge.token, key)?);
        }
        Ok(challenge)
    }
}
