//! Domain claims: a tenant's token for proving, with a TXT record, that it controls a domain
//! (the record's name and text are [`mtasts_proto::hosted::claim`]'s). Claims are
//! bookkeeping no listener serves: they do not bump the generation. A claim is consumed by
//! [`HostDb::transfer_domain`], in the transaction that moves the domain.

use super::error::db_error;
use super::{HostDb, HostDbError, bounded, limits};

/// Longest claim token (the service issues 32 hex characters).
pub const MAX_CLAIM_TOKEN_BYTES: usize = 64;

/// An open claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainClaim {
    /// The claiming tenant.
    pub tenant_id: i64,
    /// The claimed domain (normalised).
    pub domain: String,
    /// The token the TXT record must carry.
    pub token: String,
    /// When it was issued (Unix seconds).
    pub created_at: i64,
    /// When it can no longer be proved (Unix seconds).
    pub expires_at: i64,
}

impl HostDb {
    /// The open claim of `tenant_id` on `domain`, or a new one with `token` issued at `now`
    /// and expiring at `expires_at`: asking again while a claim is open returns it unchanged,
    /// so a TXT record already published keeps proving it. The tenant's expired claims are
    /// purged first; [`HostDbError::Conflict`] when it already has `max_open` open claims,
    /// [`HostDbError::NotFound`] when the tenant does not exist.
    pub async fn open_claim(
        &self,
        tenant_id: i64,
        domain: &str,
        token: &str,
        now: i64,
        expires_at: i64,
        max_open: usize,
    ) -> Result<DomainClaim, HostDbError> {
        let domain = limits::domain(domain)?;
        limits::required("claim token", token, MAX_CLAIM_TOKEN_BYTES)?;
        let max_open = i64::try_from(max_open).unwrap_or(i64::MAX);
        bounded(async {
            let row: ClaimRow = with_pool!(self, |pool| {
                let mut tx = pool
                    .begin_with(self.backend.begin_write())
                    .await
                    .map_err(db_error)?;
                sqlx::query(PURGE_TENANT_CLAIMS)
                    .bind(tenant_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let existing: Option<ClaimRow> = sqlx::query_as(CLAIM)
                    .bind(tenant_id)
                    .bind(&domain)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let row = match existing {
                    Some(row) => row,
                    None => {
                        let open: i64 = sqlx::query_scalar(COUNT_TENANT_CLAIMS)
                            .bind(tenant_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_error)?;
                        if open >= max_open {
                            return Err(HostDbError::Conflict(format!(
                                "the tenant has {open} open claims, the most allowed; \
                                 a claim expires when its time is up"
                            )));
                        }
                        sqlx::query_as(INSERT_CLAIM)
                            .bind(tenant_id)
                            .bind(&domain)
                            .bind(token)
                            .bind(now)
                            .bind(expires_at)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_error)?
                    }
                };
                tx.commit().await.map_err(db_error)?;
                row
            });
            Ok(row.into())
        })
        .await
    }

    /// The claim of `tenant_id` on `domain` if it is still open at `now`.
    pub async fn open_claim_of(
        &self,
        tenant_id: i64,
        domain: &str,
        now: i64,
    ) -> Result<Option<DomainClaim>, HostDbError> {
        let domain = limits::domain(domain)?;
        bounded(async {
            let row: Option<ClaimRow> = with_pool!(self, |pool| sqlx::query_as(CLAIM)
                .bind(tenant_id)
                .bind(&domain)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            Ok(row
                .map(DomainClaim::from)
                .filter(|claim| claim.expires_at > now))
        })
        .await
    }

    /// Deletes the claim of `tenant_id` on `domain`; whether there was one.
    pub async fn delete_claim(&self, tenant_id: i64, domain: &str) -> Result<bool, HostDbError> {
        let domain = limits::domain(domain)?;
        Ok(bookkeeping!(self, DELETE_CLAIM, tenant_id, &domain)? > 0)
    }

    /// Deletes every claim that expired at or before `now`; returns how many.
    pub async fn purge_claims(&self, now: i64) -> Result<u64, HostDbError> {
        bookkeeping!(self, PURGE_CLAIMS, now)
    }
}

const CLAIM: &str = "SELECT tenant_id, domain, token, created_at, expires_at \
     FROM host_domain_claims WHERE tenant_id = $1 AND domain = $2";
const INSERT_CLAIM: &str = "INSERT INTO host_domain_claims \
     (tenant_id, domain, token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
     RETURNING tenant_id, domain, token, created_at, expires_at";
const COUNT_TENANT_CLAIMS: &str = "SELECT COUNT(*) FROM host_domain_claims WHERE tenant_id = $1";
const PURGE_TENANT_CLAIMS: &str =
    "DELETE FROM host_domain_claims WHERE tenant_id = $1 AND expires_at <= $2";
const PURGE_CLAIMS: &str = "DELETE FROM host_domain_claims WHERE expires_at <= $1";
pub(super) const DELETE_CLAIM: &str =
    "DELETE FROM host_domain_claims WHERE tenant_id = $1 AND domain = $2";

/// A claim as read back.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    tenant_id: i64,
    domain: String,
    token: String,
    created_at: i64,
    expires_at: i64,
}

impl From<ClaimRow> for DomainClaim {
    fn from(r: ClaimRow) -> DomainClaim {
        DomainClaim {
            tenant_id: r.tenant_id,
            domain: r.domain,
            token: r.token,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}
