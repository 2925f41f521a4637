//! What the ACME scheduler keeps: certificates, per-domain bookkeeping, accounts, and the
//! challenges every node must answer while an order is validated.

use super::error::db_error;
use super::secrets::{ACME_ACCOUNT, CERTIFICATE_KEY, CHALLENGE_KEY};
use super::sql::{self, AcmeStateRow, CertRowRaw, ChallengeRowRaw};
use super::types::{AcmeState, CertRow, ChallengeRow};
use super::{HostDb, HostDbError, bounded, limits};

/// Whose row a certificate, ACME state or challenge is: a hosted domain's (which must exist)
/// or the service's own (the report host `reports.<zone>`, no hosted domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Hosted,
    Service,
}

impl Owner {
    /// The statements' "any name" parameter.
    fn any_name(self) -> bool {
        self == Owner::Service
    }
}

/// `NotFound` when a hosted owner's statement touched nothing (its domain is not hosted).
fn stored(rows_affected: u64) -> Result<(), HostDbError> {
    if rows_affected == 0 {
        Err(HostDbError::NotFound)
    } else {
        Ok(())
    }
}

impl HostDb {
    /// Stores (or replaces) the certificate of `cert.domain`, which must be hosted
    /// ([`HostDbError::NotFound`] otherwise).
    pub async fn put_certificate(&self, cert: CertRow) -> Result<(), HostDbError> {
        self.put_certificate_of(cert, Owner::Hosted).await
    }

    /// Stores (or replaces) the service's own certificate, under `cert.domain` (the report
    /// host `reports.<zone>`, which no hosted domain can be). Read back like any other with
    /// [`HostDb::certificate`].
    pub async fn put_service_certificate(&self, cert: CertRow) -> Result<(), HostDbError> {
        self.put_certificate_of(cert, Owner::Service).await
    }

    async fn put_certificate_of(&self, cert: CertRow, owner: Owner) -> Result<(), HostDbError> {
        let domain = limits::domain(&cert.domain)?;
        limits::blob("certificate chain", &cert.chain_pem, limits::MAX_PEM_BYTES)?;
        limits::blob("private key", &cert.key_pem, limits::MAX_PEM_BYTES)?;
        limits::text("issuer", &cert.issued_by, limits::MAX_URL_BYTES)?;
        let key_pem = self.seal_secret(&CERTIFICATE_KEY, &domain, &cert.key_pem)?;
        bounded(async {
            write_tx!(self, |tx, _generation| sqlx::query(sql::PUT_CERTIFICATE)
                .bind(&domain)
                .bind(&cert.chain_pem)
                .bind(&key_pem)
                .bind(cert.not_before)
                .bind(cert.not_after)
                .bind(&cert.issued_by)
                .bind(cert.updated_at)
                .bind(owner.any_name())
                .execute(&mut *tx)
                .await
                .map_err(db_error)
                .map(|done| stored(done.rows_affected()))??);
            Ok(())
        })
        .await
    }

    /// The certificate of hosted domain `domain`.
    pub async fn certificate(&self, domain: &str) -> Result<Option<CertRow>, HostDbError> {
        let domain = limits::domain(domain)?;
        bounded(async {
            let row: Option<CertRowRaw> = with_pool!(self, |pool| sqlx::query_as(sql::CERTIFICATE)
                .bind(&domain)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(|row| self.open_certificate(CertRow::from(row)))
                .transpose()
        })
        .await
    }

    /// Every stored certificate, sorted by domain.
    pub async fn certificates(&self) -> Result<Vec<CertRow>, HostDbError> {
        bounded(async {
            let rows: Vec<CertRowRaw> = with_pool!(self, |pool| sqlx::query_as(sql::CERTIFICATES)
                .fetch_all(pool)
                .await
                .map_err(db_error)?);
            let certs = rows
                .into_iter()
                .map(|row| self.open_certificate(CertRow::from(row)))
                .collect::<Result<_, _>>()?;
            Ok(sql::sorted(certs, |c| &c.domain))
        })
        .await
    }

    /// The ACME bookkeeping of hosted domain `domain`.
    pub async fn acme_state(&self, domain: &str) -> Result<Option<AcmeState>, HostDbError> {
        let domain = limits::domain(domain)?;
        bounded(async {
            let row: Option<AcmeStateRow> =
                with_pool!(self, |pool| sqlx::query_as(sql::ACME_STATE)
                    .bind(&domain)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?);
            row.map(AcmeState::try_from).transpose()
        })
        .await
    }

    /// Stores (or replaces) the ACME bookkeeping of `state.domain`, which must be hosted
    /// ([`HostDbError::NotFound`] otherwise). A `last_error` longer than
    /// [`super::MAX_ERROR_BYTES`] is cut, not refused, so the failure is still recorded. Does
    /// not bump the generation: only the scheduler reads it.
    pub async fn set_acme_state(&self, state: AcmeState) -> Result<(), HostDbError> {
        self.set_acme_state_of(state, Owner::Hosted).await
    }

    /// Stores (or replaces) the ACME bookkeeping of the service's own certificate, under
    /// `state.domain` (the report host), like [`HostDb::set_acme_state`].
    pub async fn set_service_acme_state(&self, state: AcmeState) -> Result<(), HostDbError> {
        self.set_acme_state_of(state, Owner::Service).await
    }

    async fn set_acme_state_of(&self, state: AcmeState, owner: Owner) -> Result<(), HostDbError> {
        let domain = limits::domain(&state.domain)?;
        let last_error = state
            .last_error
            .as_deref()
            .map(|e| limits::truncated(e, limits::MAX_ERROR_BYTES));
        bounded(async {
            with_pool!(self, |pool| sqlx::query(sql::SET_ACME_STATE)
                .bind(&domain)
                .bind(i64::from(state.failures))
                .bind(state.next_attempt_at)
                .bind(last_error)
                .bind(owner.any_name())
                .execute(pool)
                .await
                .map_err(db_error)
                .map(|done| stored(done.rows_affected()))??);
            Ok(())
        })
        .await
    }

    /// The stored account credentials (JSON) for the ACME directory at `directory_url`.
    pub async fn acme_account(&self, directory_url: &str) -> Result<Option<String>, HostDbError> {
        let directory_url = limits::text("directory URL", directory_url, limits::MAX_URL_BYTES)?;
        let stored: Option<String> = bounded(async {
            with_pool!(self, |pool| sqlx::query_scalar(sql::ACME_ACCOUNT)
                .bind(directory_url)
                .fetch_optional(pool)
                .await
                .map_err(db_error))
        })
        .await?;
        stored
            .map(|stored| self.open_secret(&ACME_ACCOUNT, directory_url, stored))
            .transpose()
    }

    /// Stores (or replaces) the account credentials (JSON) for the ACME directory at
    /// `directory_url`. Does not bump the generation: only the scheduler reads them.
    pub async fn put_acme_account(
        &self,
        directory_url: &str,
        credentials_json: &str,
    ) -> Result<(), HostDbError> {
        let directory_url =
            limits::required("directory URL", directory_url, limits::MAX_URL_BYTES)?;
        limits::blob(
            "account credentials",
            credentials_json,
            limits::MAX_PEM_BYTES,
        )?;
        let credentials_json = self.seal_secret(&ACME_ACCOUNT, directory_url, credentials_json)?;
        bounded(async {
            with_pool!(self, |pool| sqlx::query(sql::PUT_ACME_ACCOUNT)
                .bind(directory_url)
                .bind(&credentials_json)
                .execute(pool)
                .await
                .map_err(db_error)?
                .rows_affected());
            Ok(())
        })
        .await
    }

    /// Stores (or replaces) the challenge with `challenge.token`, for hosted domain
    /// `challenge.domain` ([`HostDbError::NotFound`] when it is not hosted). `kind` is
    /// `http-01` or `tls-alpn-01`; a TLS-ALPN-01 challenge carries its certificate and key.
    pub async fn put_challenge(&self, challenge: ChallengeRow) -> Result<(), HostDbError> {
        self.put_challenge_of(challenge, Owner::Hosted).await
    }

    /// Stores (or replaces) a challenge of an order for the service's own certificate, under
    /// `challenge.domain` (the report host), like [`HostDb::put_challenge`].
    pub async fn put_service_challenge(&self, challenge: ChallengeRow) -> Result<(), HostDbError> {
        self.put_challenge_of(challenge, Owner::Service).await
    }

    async fn put_challenge_of(
        &self,
        challenge: ChallengeRow,
        owner: Owner,
    ) -> Result<(), HostDbError> {
        let domain = limits::domain(&challenge.domain)?;
        limits::required("challenge token", &challenge.token, limits::MAX_TOKEN_BYTES)?;
        limits::required(
            "key authorization",
            &challenge.key_authorization,
            limits::MAX_TOKEN_BYTES,
        )?;
        match challenge.kind.as_str() {
            "http-01" => {}
            "tls-alpn-01" if challenge.cert_pem.is_some() && challenge.key_pem.is_some() => {}
            "tls-alpn-01" => {
                return Err(HostDbError::Invalid(
                    "a tls-alpn-01 challenge needs its certificate and key".to_string(),
                ));
            }
            other => {
                return Err(HostDbError::Invalid(format!(
                    "challenge kind {:?}: expected http-01 or tls-alpn-01",
                    other.escape_debug().to_string()
                )));
            }
        }
        for pem in [&challenge.cert_pem, &challenge.key_pem]
            .into_iter()
            .flatten()
        {
            limits::blob("challenge certificate", pem, limits::MAX_PEM_BYTES)?;
        }
        let key_pem = challenge
            .key_pem
            .as_deref()
            .map(|key| self.seal_secret(&CHALLENGE_KEY, &challenge.token, key))
            .transpose()?;
        bounded(async {
            write_tx!(self, |tx, _generation| sqlx::query(sql::PUT_CHALLENGE)
                .bind(&challenge.token)
                .bind(&domain)
                .bind(&challenge.kind)
                .bind(&challenge.key_authorization)
                .bind(&challenge.cert_pem)
                .bind(&key_pem)
                .bind(challenge.expires_at)
                .bind(owner.any_name())
                .execute(&mut *tx)
                .await
                .map_err(db_error)
                .map(|done| stored(done.rows_affected()))??);
            Ok(())
        })
        .await
    }

    /// Withdraws the challenge with `token`; `true` when it existed.
    pub async fn delete_challenge(&self, token: &str) -> Result<bool, HostDbError> {
        let token = limits::text("challenge token", token, limits::MAX_TOKEN_BYTES)?;
        bounded(async {
            write_tx!(self, |tx, _generation| {
                let deleted = sqlx::query(sql::DELETE_CHALLENGE)
                    .bind(token)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                // Nothing changed: roll back rather than bump the generation.
                if deleted == 0 {
                    return Ok(false);
                }
            });
            Ok(true)
        })
        .await
    }

    /// The challenges that expire after `now`, sorted by token.
    pub async fn challenges(&self, now: i64) -> Result<Vec<ChallengeRow>, HostDbError> {
        bounded(async {
            let rows: Vec<ChallengeRowRaw> =
                with_pool!(self, |pool| sqlx::query_as(sql::CHALLENGES)
                    .bind(now)
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?);
            let challenges = rows
                .into_iter()
                .map(|row| self.open_challenge(ChallengeRow::from(row)))
                .collect::<Result<_, _>>()?;
            Ok(sql::sorted(challenges, |c| &c.token))
        })
        .await
    }
}
