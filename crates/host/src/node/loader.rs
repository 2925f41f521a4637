//! Database state → [`Snapshot`]: what this node serves.

use std::collections::HashMap;
use std::sync::Arc;

use mtasts_store::host::{CertRow, ChallengeRow, HostState};
use rustls::sign::CertifiedKey;

use crate::policy_host::certified_key_from_pem;
use crate::snapshot::{Challenges, Freshness, HostedDomain, Snapshot, ZoneSettings};

/// Parsed certificates kept between loads, so an unchanged certificate is not parsed again
/// every time any domain changes.
#[derive(Default)]
pub(crate) struct CertCache {
    /// Domain → (the chain PEM it was parsed from, the parsed key).
    by_domain: HashMap<String, (String, Arc<CertifiedKey>)>,
}

impl CertCache {
    fn get(&mut self, row: &CertRow) -> Option<Arc<CertifiedKey>> {
        // Compared by content, not by `updated_at` (whole seconds): a replacement within the
        // same second must be seen.
        if let Some((chain, key)) = self.by_domain.get(&row.domain)
            && *chain == row.chain_pem
        {
            return Some(key.clone());
        }
        match certified_key_from_pem(&row.chain_pem, &row.key_pem) {
            Ok(key) => {
                self.by_domain
                    .insert(row.domain.clone(), (row.chain_pem.clone(), key.clone()));
                Some(key)
            }
            Err(error) => {
                tracing::warn!(domain = %row.domain, %error, "stored certificate is unusable; not serving it");
                None
            }
        }
    }
}

/// Builds the snapshot for `state` in the zone of `settings`, reusing parsed certificates
/// from `cache`.
pub(crate) fn build_snapshot(
    settings: &ZoneSettings,
    state: HostState,
    cache: &mut CertCache,
    freshness: &Arc<Freshness>,
) -> Snapshot {
    let mut certificates: HashMap<String, Arc<CertifiedKey>> = HashMap::new();
    for row in &state.certificates {
        if let Some(key) = cache.get(row) {
            certificates.insert(row.domain.clone(), key);
        }
    }
    cache
        .by_domain
        .retain(|domain, _| certificates.contains_key(domain));
    let domains = state
        .domains
        .into_iter()
        .map(|(domain, latest, published_id)| {
            let hosted = HostedDomain {
                name: domain.name.clone(),
                tenant_id: domain.tenant_id,
                policy_body: Arc::from(latest.body.as_str()),
                txt_id: published_id,
                tlsrpt: settings.tlsrpt_record(domain.rua.as_deref(), domain.reports_to_service),
                reports_to_service: domain.reports_to_service,
                certificate: certificates.get(&domain.name).cloned(),
            };
            (domain.name, hosted)
        })
        .collect();
    Snapshot {
        generation: state.generation,
        domains,
        challenges: challenges(&state.challenges, &super::service_hosts(settings)),
        freshness: Some(freshness.clone()),
        service_certificate: certificates.get(settings.reports().host()).cloned(),
    }
}

/// The challenges of `rows`; those of the service's own certificate are kept under their
/// host (one of `service_hosts`), the others under their domain.
fn challenges(rows: &[ChallengeRow], service_hosts: &[String]) -> Challenges {
    let mut out = Challenges::default();
    // A TLS-ALPN-01 challenge left behind by an earlier order (never withdrawn) must not
    // shadow the current one for the same host: the newest (latest expiry) wins.
    let mut rows: Vec<&ChallengeRow> = rows.iter().collect();
    rows.sort_by_key(|row| row.expires_at);
    for row in rows {
        match row.kind.as_str() {
            "http-01" => {
                out.http01
                    .insert(row.token.clone(), row.key_authorization.clone());
            }
            "tls-alpn-01" => {
                let (Some(cert), Some(key)) = (&row.cert_pem, &row.key_pem) else {
                    continue;
                };
                match certified_key_from_pem(cert, key) {
                    Ok(key) => {
                        let host = if service_hosts.contains(&row.domain) {
                            row.domain.clone()
                        } else {
                            format!("mta-sts.{}", row.domain)
                        };
                        out.tls_alpn01.insert(host, key);
                    }
                    Err(error) => {
                        tracing::warn!(host = %row.domain, %error, "unusable TLS-ALPN-01 challenge certificate")
                    }
                }
            }
            other => tracing::warn!(kind = other, "unknown challenge kind in the database"),
        }
    }
    out
}
