//! One evaluation: every tenant's hosted domains through the rules, and the alerts opened,
//! kept or resolved accordingly (with their notifications queued in the same transaction).
//!
//! A domain's alerts belong to the tenant hosting it now; alerts of a domain the tenant no
//! longer hosts (removed, or moved to another tenant) resolve.

use std::collections::BTreeMap;

use mtasts_proto::alerts::rules::{self, Evidence, FailureSeen, RecordMemory, TlsDay};
use mtasts_proto::alerts::suppression::{OpenAlert, Step, step};
use mtasts_proto::alerts::{Alert, Thresholds, evidence_since};
use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_proto::sts::mx_pattern::MxPattern;
use mtasts_store::host::{AlertRow, AlertSettings, Domain, DomainState, NewAlert};
use mtasts_store::reports::{Filter, Kind};

use super::{AlertError, Alerts, Round};
use crate::verification::{RecordStatus, Verification};

/// Evaluates every tenant.
pub(super) async fn evaluate_all(alerts: &Alerts) -> Result<Round, AlertError> {
    let mut round = Round::default();
    for tenant in alerts.db.list_tenants().await? {
        let settings = match alerts.db.alert_settings(tenant.id).await {
            Ok(settings) => settings,
            Err(error) => {
                // The alerts are still recorded and listed; only notifying waits for the key.
                tracing::warn!(tenant = %tenant.name, %error, "reading alert settings failed");
                None
            }
        };
        let (opened, resolved) = evaluate_tenant(alerts, tenant.id, settings.as_ref()).await?;
        round.opened += opened;
        round.resolved += resolved;
    }
    Ok(round)
}

/// The alerts that hold for one tenant's domains now, reconciled with its open ones; returns
/// how many opened and resolved.
async fn evaluate_tenant(
    alerts: &Alerts,
    tenant_id: i64,
    settings: Option<&AlertSettings>,
) -> Result<(u64, u64), AlertError> {
    let now = alerts.now();
    let thresholds = settings.map_or_else(Thresholds::default, |s| Thresholds {
        failure_permille: s.failure_permille,
        min_sessions: s.min_sessions,
    });
    let channels = alerts.channels(settings);
    let mut firing: Vec<Alert> = Vec::new();
    for domain in alerts.db.list_domains(Some(tenant_id)).await? {
        if domain.state != DomainState::Active {
            continue;
        }
        firing.extend(domain_alerts(alerts, &domain, thresholds, now).await?);
    }
    let mut open: BTreeMap<(String, String, String), AlertRow> = alerts
        .db
        .open_alerts(tenant_id)
        .await?
        .into_iter()
        .map(|row| ((row.domain.clone(), row.kind.clone(), row.key.clone()), row))
        .collect();
    let (mut opened, mut resolved) = (0, 0);
    for alert in &firing {
        let new = NewAlert {
            tenant_id,
            domain: &alert.domain,
            kind: alert.kind.as_str(),
            key: &alert.key,
            title: &alert.title,
            what: &alert.what,
            fix: &alert.fix,
            since: alert.since,
        };
        let key = (
            alert.domain.clone(),
            alert.kind.as_str().to_owned(),
            stored_key(&alert.key),
        );
        let row = open.remove(&key);
        let state = row.as_ref().map(|r| OpenAlert {
            notified_at: r.notified_at,
        });
        match (step(state, true, now), row) {
            (Some(Step::Open), _) => {
                alerts.db.open_alert(new, now, &channels).await?;
                opened += 1;
                tracing::info!(domain = %alert.domain, kind = %alert.kind, key = %alert.key, "alert opened");
            }
            (Some(Step::Keep { notify }), Some(row)) => {
                alerts
                    .db
                    .keep_alert(row.id, new, now, notify, &channels)
                    .await?;
            }
            _ => {}
        }
    }
    // What is still open no longer holds.
    for row in open.into_values() {
        let state = Some(OpenAlert {
            notified_at: row.notified_at,
        });
        if step(state, false, now) == Some(Step::Resolve)
            && alerts.db.resolve_alert(row.id, now, &channels).await?
        {
            resolved += 1;
            tracing::info!(domain = %row.domain, kind = %row.kind, key = %row.key, "alert resolved");
        }
    }
    Ok((opened, resolved))
}

/// The alert key as the database keeps it (cut to its bound), so a long key still matches
/// its open row.
fn stored_key(key: &str) -> String {
    let max = mtasts_store::host::MAX_ALERT_KEY_BYTES;
    if key.len() <= max {
        return key.to_owned();
    }
    let mut end = max;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key[..end].to_owned()
}

/// The rules over one domain's evidence.
async fn domain_alerts(
    alerts: &Alerts,
    domain: &Domain,
    thresholds: Thresholds,
    now: i64,
) -> Result<Vec<Alert>, AlertError> {
    let filter = Filter {
        domain: Some(domain.name.clone()),
        since: Some(evidence_since(now)),
        until: None,
        kind: Some(Kind::TlsRpt),
    };
    let days: Vec<TlsDay> = alerts
        .reports
        .daily(&filter)
        .await?
        .into_iter()
        .map(|d| TlsDay {
            day: d.day,
            organization: d.organization,
            success: d.success,
            failure: d.failure,
        })
        .collect();
    let failures: Vec<FailureSeen> = alerts
        .reports
        .tls_failures(&filter)
        .await?
        .into_iter()
        .map(|f| FailureSeen {
            result: f.result,
            receiving_mx: f.receiving_mx,
            organization: f.organization,
            count: f.count,
            first_day: f.first_day,
            last_day: f.last_day,
        })
        .collect();
    let mx = served_mx(alerts, domain).await?;
    let records = remembered_records(alerts, domain).await?;
    Ok(rules::evaluate(
        &Evidence {
            domain: &domain.name,
            days: &days,
            failures: &failures,
            mx: mx.as_deref(),
            records: &records,
        },
        thresholds,
        now,
    ))
}

/// The `mx` patterns of the policy senders fetch now (the published version, else the
/// newest); `None` for `mode: none`.
async fn served_mx(alerts: &Alerts, domain: &Domain) -> Result<Option<Vec<MxPattern>>, AlertError> {
    let wanted = domain.published_version.unwrap_or(domain.latest_version);
    let versions = alerts.db.versions(domain.id).await?;
    let Some(version) = versions.iter().find(|v| v.version == wanted) else {
        return Ok(None);
    };
    if version.mode == "none" {
        return Ok(None);
    }
    Ok(Some(
        version.mx.iter().filter_map(|p| p.parse().ok()).collect(),
    ))
}

/// What the checks remember of the domain's delegated records, updated with the stored
/// verification (written back only when it changed).
async fn remembered_records(
    alerts: &Alerts,
    domain: &Domain,
) -> Result<Vec<(String, RecordMemory)>, AlertError> {
    let mut memory: BTreeMap<String, RecordMemory> = alerts
        .db
        .alert_records(&domain.name)
        .await?
        .into_iter()
        .collect();
    let verification = domain
        .verification
        .as_deref()
        .and_then(Verification::from_stored);
    if let Some(v) = verification {
        for kind in [
            RecordKind::StsRecord,
            RecordKind::PolicyHost,
            RecordKind::TlsRpt,
        ] {
            let Some(check) = v.records.get(kind) else {
                continue;
            };
            let verified = match check.status {
                RecordStatus::Verified => true,
                RecordStatus::Missing | RecordStatus::Wrong => false,
                RecordStatus::Unchecked => continue,
            };
            let name = record_name(kind, &domain.name);
            let before = memory.get(&name).cloned().unwrap_or_default();
            let after = before.clone().after_check(
                verified,
                v.checked_at,
                check.detail.as_deref().unwrap_or(""),
                check.fix.as_deref().unwrap_or(""),
            );
            if after != before {
                alerts
                    .db
                    .put_alert_record(&domain.name, &name, &after)
                    .await?;
                memory.insert(name, after);
            }
        }
    }
    Ok(memory.into_iter().collect())
}

/// The name an owner publishes for `kind`.
fn record_name(kind: RecordKind, domain: &str) -> String {
    match kind {
        RecordKind::StsRecord => mtasts_proto::sts::record_name(domain),
        RecordKind::PolicyHost => mtasts_proto::sts::policy_host(domain),
        RecordKind::TlsRpt => mtasts_proto::tlsrpt::record_name(domain),
    }
}
