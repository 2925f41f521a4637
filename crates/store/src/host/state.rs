//! The whole served state in one read, for the node's loader.

use std::collections::HashMap;

use super::error::db_error;
use super::sql::{self, CertRowRaw, ChallengeRowRaw, DomainRow, PublishedIdRow, VersionRow};
use super::types::{CertRow, ChallengeRow, Domain, HostState, PolicyVersion};
use super::{HostDb, HostDbError, bounded, limits, unix_now};

impl HostDb {
    /// Every domain with its latest version and published policy id, every certificate and
    /// the unexpired challenges, with the generation they are consistent with: all read in
    /// one transaction that sees one snapshot, so a change is either wholly in it (and counted
    /// by `generation`) or not at all.
    pub async fn load_state(&self) -> Result<HostState, HostDbError> {
        let now = unix_now();
        bounded(async {
            let (generation, domains, versions, published, certificates, challenges) =
                read_tx!(self, |tx| {
                    let generation: i64 = sqlx::query_scalar(sql::GENERATION)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let domains: Vec<DomainRow> = sqlx::query_as(sql::ALL_DOMAINS)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let versions: Vec<VersionRow> = sqlx::query_as(sql::LATEST_VERSIONS)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let published: Vec<PublishedIdRow> = sqlx::query_as(sql::PUBLISHED_IDS)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let certificates: Vec<CertRowRaw> = sqlx::query_as(sql::CERTIFICATES)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    let challenges: Vec<ChallengeRowRaw> = sqlx::query_as(sql::CHALLENGES)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    (
                        generation,
                        domains,
                        versions,
                        published,
                        certificates,
                        challenges,
                    )
                });
            let mut latest: HashMap<i64, PolicyVersion> = HashMap::with_capacity(versions.len());
            for row in versions {
                let version = PolicyVersion::try_from(row)?;
                latest.insert(version.domain_id, version);
            }
            let mut published: HashMap<i64, String> = published
                .into_iter()
                .map(|row| (row.domain_id, row.policy_id))
                .collect();
            let domains = domains
                .into_iter()
                .map(|row| {
                    let domain = Domain::try_from(row)?;
                    let version = latest.remove(&domain.id).ok_or_else(|| {
                        HostDbError::Corrupt(format!(
                            "domain {}: latest version {} is missing",
                            domain.name, domain.latest_version
                        ))
                    })?;
                    let published_id = published.remove(&domain.id);
                    Ok((domain, version, published_id))
                })
                .collect::<Result<Vec<_>, HostDbError>>()?;
            let domains = sql::sorted(domains, |(d, _, _)| &d.name);
            Ok(HostState {
                generation: limits::unsigned("generation", generation)?,
                domains,
                certificates: sql::sorted(
                    certificates
                        .into_iter()
                        .map(|row| self.open_certificate(CertRow::from(row)))
                        .collect::<Result<_, _>>()?,
                    |c| &c.domain,
                ),
                challenges: sql::sorted(
                    challenges
                        .into_iter()
                        .map(|row| self.open_challenge(ChallengeRow::from(row)))
                        .collect::<Result<_, _>>()?,
                    |c| &c.token,
                ),
            })
        })
        .await
    }
}
