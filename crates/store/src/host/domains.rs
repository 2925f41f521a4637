//! Hosted domains and their policy versions.
//!
//! A domain is created with its first version; every change of policy adds a version (never
//! edits one). The newest version is served at once; its id reaches the TXT record only when
//! the promoter publishes it, after every live node serves it.

use super::error::{conflict_as, db_error};
use super::sql::{self, DomainRow, VersionRow};
use super::types::{Domain, NewDomain, NewVersion, PolicyVersion};
use super::{HostDb, HostDbError, bounded, limits};

/// Inserts version `$number` of `$domain_id` inside the write transaction `$tx`; yields the
/// stored row. A macro, like the transaction it runs in, so it serves both drivers.
macro_rules! insert_version {
    ($tx:ident, $domain_id:expr, $number:expr, $version:expr, $mx:expr, $generation:expr) => {{
        let version: &NewVersion = $version;
        let row: VersionRow = sqlx::query_as(sql::INSERT_VERSION)
            .bind($domain_id)
            .bind($number)
            .bind(&version.policy_id)
            .bind(&version.mode)
            .bind($mx)
            .bind(version.max_age)
            .bind(&version.body)
            .bind(version.now)
            .bind($generation)
            .fetch_one(&mut *$tx)
            .await
            .map_err(conflict_as(|| {
                format!("policy id {} was used before", version.policy_id)
            }))?;
        row
    }};
}

/// Inside the write transaction `$tx`, after a change of `$domain_id` that did not apply:
/// returns [`HostDbError::Conflict`] with `$conflict` when the domain exists (it was not in the
/// state the change needs), [`HostDbError::NotFound`] when it does not.
macro_rules! not_applied {
    ($tx:ident, $domain_id:expr, $conflict:expr) => {{
        let exists: Option<i64> = sqlx::query_scalar(sql::DOMAIN_EXISTS)
            .bind($domain_id)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(db_error)?;
        return Err(match exists {
            Some(_) => HostDbError::Conflict($conflict),
            None => HostDbError::NotFound,
        });
    }};
}

impl HostDb {
    /// Creates a domain for `domain.tenant_id` with `version` as its version 1 (its
    /// `created_at` is `version.now`). [`HostDbError::Conflict`] when any tenant hosts the
    /// name, [`HostDbError::NotFound`] when the tenant does not exist.
    pub async fn create_domain(
        &self,
        domain: NewDomain,
        version: NewVersion,
    ) -> Result<(Domain, PolicyVersion), HostDbError> {
        let name = limits::domain(&domain.name)?;
        if let Some(rua) = &domain.rua {
            limits::required("rua", rua, limits::MAX_RUA_BYTES)?;
        }
        limits::version(&version)?;
        let mx = mx_json(&version.mx)?;
        bounded(async {
            let (row, version_row): (DomainRow, VersionRow) = write_tx!(self, |tx, generation| {
                let row: DomainRow = sqlx::query_as(sql::INSERT_DOMAIN)
                    .bind(domain.tenant_id)
                    .bind(&name)
                    .bind(&domain.rua)
                    .bind(version.now)
                    .bind(domain.reports_to_service)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_as(|| format!("domain {name} is already hosted")))?;
                let version_row = insert_version!(tx, row.id, 1_i64, &version, &mx, generation);
                (row, version_row)
            });
            Ok((row.try_into()?, version_row.try_into()?))
        })
        .await
    }

    /// The domain named `name` (normalised first, so case and a trailing dot do not matter).
    pub async fn domain(&self, name: &str) -> Result<Option<Domain>, HostDbError> {
        let name = limits::domain(name)?;
        bounded(async {
            let row: Option<DomainRow> =
                with_pool!(self, |pool| sqlx::query_as(sql::DOMAIN_BY_NAME)
                    .bind(&name)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?);
            row.map(Domain::try_from).transpose()
        })
        .await
    }

    /// The domain with database id `id`.
    pub async fn domain_by_id(&self, id: i64) -> Result<Option<Domain>, HostDbError> {
        bounded(async {
            let row: Option<DomainRow> = with_pool!(self, |pool| sqlx::query_as(sql::DOMAIN_BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(Domain::try_from).transpose()
        })
        .await
    }

    /// The domains of `tenant_id` (`None`: of every tenant), sorted by name.
    pub async fn list_domains(&self, tenant_id: Option<i64>) -> Result<Vec<Domain>, HostDbError> {
        bounded(async {
            let rows: Vec<DomainRow> = with_pool!(self, |pool| match tenant_id {
                Some(id) => {
                    sqlx::query_as(sql::TENANT_DOMAINS)
                        .bind(id)
                        .fetch_all(pool)
                        .await
                }
                None => sqlx::query_as(sql::ALL_DOMAINS).fetch_all(pool).await,
            }
            .map_err(db_error)?);
            Ok(sql::sorted(sql::convert(rows)?, |d: &Domain| &d.name))
        })
        .await
    }

    /// Adds the next version (latest + 1) to `domain_id`; its `created_generation` is the
    /// generation this change creates. Allowed in either state (refusing changes to a domain
    /// being removed is the caller's policy). [`HostDbError::Conflict`] when the policy id was
    /// used by an earlier version, [`HostDbError::NotFound`] when there is no such domain.
    pub async fn add_version(
        &self,
        domain_id: i64,
        version: NewVersion,
    ) -> Result<PolicyVersion, HostDbError> {
        limits::version(&version)?;
        let mx = mx_json(&version.mx)?;
        bounded(async {
            let row: VersionRow = write_tx!(self, |tx, generation| {
                let number: i64 = sqlx::query_scalar(sql::NEXT_VERSION)
                    .bind(domain_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                insert_version!(tx, domain_id, number, &version, &mx, generation)
            });
            row.try_into()
        })
        .await
    }

    /// Every version of `domain_id`, newest first. [`HostDbError::NotFound`] when there is no
    /// such domain.
    pub async fn versions(&self, domain_id: i64) -> Result<Vec<PolicyVersion>, HostDbError> {
        bounded(async {
            let rows: Vec<VersionRow> = with_pool!(self, |pool| sqlx::query_as(sql::VERSIONS)
                .bind(domain_id)
                .fetch_all(pool)
                .await
                .map_err(db_error)?);
            // A domain always has its first version: none means no domain.
            if rows.is_empty() {
                return Err(HostDbError::NotFound);
            }
            sql::convert(rows)
        })
        .await
    }

    /// Sets (or, with `None`, removes) the TLS-RPT `rua=` value of `domain_id`.
    pub async fn set_rua(&self, domain_id: i64, rua: Option<&str>) -> Result<(), HostDbError> {
        if let Some(rua) = rua {
            limits::required("rua", rua, limits::MAX_RUA_BYTES)?;
        }
        bounded(async {
            write_tx!(self, |tx, _generation| found(
                sqlx::query(sql::SET_RUA)
                    .bind(domain_id)
                    .bind(rua)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected()
            )?);
            Ok(())
        })
        .await
    }

    /// Sets whether the `_smtp._tls` record of `domain_id` names the service's own report
    /// addresses besides the owner's `rua`. [`HostDbError::NotFound`] when there is no such
    /// domain.
    pub async fn set_reports_to_service(
        &self,
        domain_id: i64,
        to_service: bool,
    ) -> Result<(), HostDbError> {
        bounded(async {
            write_tx!(self, |tx, _generation| found(
                sqlx::query(sql::SET_REPORTS_TO_SERVICE)
                    .bind(domain_id)
                    .bind(to_service)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected()
            )?);
            Ok(())
        })
        .await
    }

    /// Makes `version` the one whose id the TXT record carries (recording `now` as its
    /// `published_at` the first time). Publishing the published version again is allowed;
    /// publishing an older one than the published one is [`HostDbError::Conflict`] (a
    /// rollback is a new version). [`HostDbError::NotFound`] when the domain or the version
    /// does not exist.
    pub async fn publish_version(
        &self,
        domain_id: i64,
        version: i64,
        now: i64,
    ) -> Result<(), HostDbError> {
        bounded(async {
            write_tx!(self, |tx, _generation| {
                let published: Option<i64> = sqlx::query_scalar(sql::PUBLISHED_VERSION)
                    .bind(domain_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if let Some(published) = published
                    && version < published
                {
                    return Err(HostDbError::Conflict(format!(
                        "version {published} is published; {version} is older"
                    )));
                }
                let marked = sqlx::query(sql::MARK_PUBLISHED)
                    .bind(domain_id)
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected();
                found(marked)?;
                sqlx::query(sql::SET_PUBLISHED)
                    .bind(domain_id)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
            });
            Ok(())
        })
        .await
    }

    /// Starts removing `domain_id` (RFC 8461 §8.3): adds `version` (normally `mode: none`) as
    /// the next version and marks the domain [`super::DomainState::Removing`] until
    /// `remove_after`. [`HostDbError::Conflict`] when the domain is already being removed or
    /// the policy id was used before, [`HostDbError::NotFound`] when there is no such domain.
    pub async fn start_removal(
        &self,
        domain_id: i64,
        remove_after: i64,
        version: NewVersion,
    ) -> Result<PolicyVersion, HostDbError> {
        limits::version(&version)?;
        let mx = mx_json(&version.mx)?;
        bounded(async {
            let row: VersionRow = write_tx!(self, |tx, generation| {
                let number: Option<i64> = sqlx::query_scalar(sql::START_REMOVAL)
                    .bind(domain_id)
                    .bind(remove_after)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some(number) = number else {
                    not_applied!(
                        tx,
                        domain_id,
                        format!("domain {domain_id} is already being removed")
                    )
                };
                insert_version!(tx, domain_id, number, &version, &mx, generation)
            });
            row.try_into()
        })
        .await
    }

    /// Cancels the removal of `domain_id` (RFC 8461 §8.3): the domain is active again, with
    /// no removal deadline, and `version` (normally the policy served before the removal,
    /// under a new id) is added as its next version, to be published like any change.
    /// [`HostDbError::Conflict`] when the domain is not being removed or the policy id was
    /// used before, [`HostDbError::NotFound`] when there is no such domain.
    pub async fn restore_domain(
        &self,
        domain_id: i64,
        version: NewVersion,
    ) -> Result<PolicyVersion, HostDbError> {
        limits::version(&version)?;
        let mx = mx_json(&version.mx)?;
        bounded(async {
            let row: VersionRow = write_tx!(self, |tx, generation| {
                let number: Option<i64> = sqlx::query_scalar(RESTORE_DOMAIN)
                    .bind(domain_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some(number) = number else {
                    not_applied!(
                        tx,
                        domain_id,
                        format!("domain {domain_id} is not being removed")
                    )
                };
                insert_version!(tx, domain_id, number, &version, &mx, generation)
            });
            row.try_into()
        })
        .await
    }

    /// Moves `domain_id` from tenant `from_tenant` to `to_tenant`, which proved control of
    /// it: the domain becomes active (a removal under way is cancelled), takes `rua` and
    /// `reports_to_service`, forgets
    /// its delegation check (the CNAME targets carry the tenant), and `version` is added as
    /// its next version, so the policy id keeps changing forward. `to_tenant`'s claim on the
    /// name is deleted in the same transaction. Versions, certificate and ACME state stay.
    /// [`HostDbError::Conflict`] when the domain no longer belongs to `from_tenant` or the
    /// policy id was used before, [`HostDbError::NotFound`] when there is no such domain.
    pub async fn transfer_domain(
        &self,
        domain_id: i64,
        from_tenant: i64,
        to_tenant: i64,
        rua: Option<&str>,
        reports_to_service: bool,
        version: NewVersion,
    ) -> Result<PolicyVersion, HostDbError> {
        if let Some(rua) = rua {
            limits::required("rua", rua, limits::MAX_RUA_BYTES)?;
        }
        limits::version(&version)?;
        let mx = mx_json(&version.mx)?;
        bounded(async {
            let row: VersionRow = write_tx!(self, |tx, generation| {
                let moved: Option<(i64, String)> = sqlx::query_as(TRANSFER_DOMAIN)
                    .bind(domain_id)
                    .bind(from_tenant)
                    .bind(to_tenant)
                    .bind(rua)
                    .bind(reports_to_service)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let Some((number, name)) = moved else {
                    not_applied!(
                        tx,
                        domain_id,
                        format!("domain {domain_id} no longer belongs to tenant {from_tenant}")
                    )
                };
                sqlx::query(super::claims::DELETE_CLAIM)
                    .bind(to_tenant)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                insert_version!(tx, domain_id, number, &version, &mx, generation)
            });
            row.try_into()
        })
        .await
    }

    /// Deletes `domain_id` if it is still being removed and its removal deadline is at or
    /// before `now`: the node's end of a removal, which must not delete a domain whose
    /// removal was cancelled (or that moved to another tenant) since it was listed as due.
    /// Whether it was deleted.
    pub async fn delete_removed_domain(
        &self,
        domain_id: i64,
        now: i64,
    ) -> Result<bool, HostDbError> {
        bounded(async {
            let deleted = write_tx!(self, |tx, _generation| sqlx::query(DELETE_REMOVED_DOMAIN)
                .bind(domain_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?
                .rows_affected());
            Ok(deleted > 0)
        })
        .await
    }

    /// Deletes `domain_id` with its versions, certificate, ACME state and challenges.
    /// [`HostDbError::NotFound`] when there is no such domain.
    pub async fn delete_domain(&self, domain_id: i64) -> Result<(), HostDbError> {
        bounded(async {
            write_tx!(self, |tx, _generation| found(
                sqlx::query(sql::DELETE_DOMAIN)
                    .bind(domain_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected()
            )?);
            Ok(())
        })
        .await
    }

    /// The domains being removed whose `remove_after` is at or before `now`, sorted by name.
    pub async fn domains_due_for_removal(&self, now: i64) -> Result<Vec<Domain>, HostDbError> {
        bounded(async {
            let rows: Vec<DomainRow> =
                with_pool!(self, |pool| sqlx::query_as(sql::DUE_FOR_REMOVAL)
                    .bind(now)
                    .fetch_all(pool)
                    .await
                    .map_err(db_error)?);
            Ok(sql::sorted(sql::convert(rows)?, |d: &Domain| &d.name))
        })
        .await
    }

    /// Records the result of a delegation check (`json`, a JSON document) made at `now`. Does
    /// not bump the generation: no listener serves it. [`HostDbError::NotFound`] when there
    /// is no such domain.
    pub async fn set_verification(
        &self,
        domain_id: i64,
        json: &str,
        now: i64,
    ) -> Result<(), HostDbError> {
        limits::blob("verification", json, limits::MAX_JSON_BYTES)?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
            return Err(HostDbError::Invalid(format!(
                "verification is not JSON: {e}"
            )));
        }
        bounded(async {
            found(with_pool!(self, |pool| sqlx::query(sql::SET_VERIFICATION)
                .bind(domain_id)
                .bind(json)
                .bind(now)
                .execute(pool)
                .await
                .map_err(db_error)?
                .rows_affected()))?;
            Ok(())
        })
        .await
    }
}

const RESTORE_DOMAIN: &str = "UPDATE host_domains SET state = 'active', remove_after = NULL, \
     latest_version = latest_version + 1 WHERE id = $1 AND state = 'removing' \
     RETURNING latest_version";
const TRANSFER_DOMAIN: &str = "UPDATE host_domains SET tenant_id = $3, state = 'active', \
     remove_after = NULL, rua = $4, reports_to_service = $5, verification = NULL, \
     verified_at = NULL, \
     latest_version = latest_version + 1 WHERE id = $1 AND tenant_id = $2 \
     RETURNING latest_version, name";
// Versions, certificate, ACME state and challenges go with it (ON DELETE CASCADE).
const DELETE_REMOVED_DOMAIN: &str = "DELETE FROM host_domains \
     WHERE id = $1 AND state = 'removing' AND remove_after <= $2";

/// `NotFound` when an update touched nothing.
fn found(rows_affected: u64) -> Result<(), HostDbError> {
    if rows_affected == 0 {
        Err(HostDbError::NotFound)
    } else {
        Ok(())
    }
}

/// The stored form of the `mx` patterns: a JSON list.
fn mx_json(mx: &[String]) -> Result<String, HostDbError> {
    serde_json::to_string(mx).map_err(|e| HostDbError::Invalid(format!("mx patterns: {e}")))
}
