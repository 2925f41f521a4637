//! The background work of a node besides loading: publishing ids once every node serves the
//! new policy, removing domains whose §8.3 grace period is over, verifying delegations, and
//! ordering certificates.

use std::sync::Arc;
use std::time::Duration;

use mtasts_check::Checker;
use mtasts_proto::hosted::versions::publishable;
use mtasts_store::host::{AcmeState, CertRow, Domain, HostDbError};

use super::NodeContext;
use super::verify::{VerifyInput, inspect_domain};
use crate::acme::{AcmeError, Issuer, renewal_due, retry_delay};
use crate::verification::Verification;

/// Ids ever published for a domain, newest first: an owner's resolver may still cache one.
async fn known_ids(ctx: &NodeContext, domain: &Domain) -> Result<Vec<String>, HostDbError> {
    Ok(ctx
        .db
        .versions(domain.id)
        .await?
        .into_iter()
        .map(|v| v.policy_id)
        .collect())
}

/// Publishes the newest version's id of every domain whose newest body every live node now
/// serves (RFC 8461 §8.1). Runs under a lock so two nodes do not race on the same change.
pub(crate) async fn promote(ctx: &NodeContext) -> Result<(), HostDbError> {
    let Some(_lock) = ctx.db.try_lock("promoter").await? else {
        return Ok(());
    };
    let now = (ctx.clock)();
    // Liveness on the database's clock: node clocks may differ.
    let window = i64::try_from(ctx.options.live_window.as_secs()).unwrap_or(i64::MAX);
    let loaded: Vec<u64> = ctx
        .db
        .live_nodes_within(window)
        .await?
        .iter()
        .map(|n| n.loaded_generation)
        .collect();
    for domain in ctx.db.list_domains(None).await? {
        if domain.published_version == Some(domain.latest_version) {
            continue;
        }
        // One domain's failure (say, removed meanwhile) must not hold back the others.
        if let Err(error) = promote_one(ctx, &domain, &loaded, now).await {
            tracing::warn!(domain = %domain.name, %error, "publishing the new id failed");
        }
    }
    Ok(())
}

async fn promote_one(
    ctx: &NodeContext,
    domain: &Domain,
    loaded: &[u64],
    now: i64,
) -> Result<(), HostDbError> {
    let versions = ctx.db.versions(domain.id).await?;
    let Some(latest) = versions.iter().find(|v| v.version == domain.latest_version) else {
        return Ok(());
    };
    if publishable(latest.created_generation.max(0) as u64, loaded) {
        ctx.db
            .publish_version(domain.id, latest.version, now)
            .await?;
        tracing::info!(domain = %domain.name, id = %latest.policy_id, "every node serves the new policy; its id is now published");
    }
    Ok(())
}

/// Deletes domains whose removal deadline has passed, expired sessions, expired domain
/// claims, and the rows of nodes that are gone.
pub(crate) async fn clean_up(ctx: &NodeContext) -> Result<(), HostDbError> {
    let now = (ctx.clock)();
    for domain in ctx.db.domains_due_for_removal(now).await? {
        // Only if still due: the removal may have been cancelled since it was listed.
        match ctx.db.delete_removed_domain(domain.id, now).await {
            Ok(true) => {
                tracing::info!(domain = %domain.name, "removal period over; the domain is no longer hosted")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(domain = %domain.name, %error, "deleting a removed domain failed")
            }
        }
    }
    ctx.db.purge_sessions(now).await?;
    ctx.db.purge_claims(now).await?;
    forget_gone_nodes(ctx).await?;
    Ok(())
}

/// Deletes the rows of nodes not seen for the node retention (on the database's clock, as
/// liveness is judged), so the table does not keep every node that ever ran. The retention
/// is never shorter than the liveness window: a node the promoter counts as live keeps its
/// row, and the promoter's judgement is the same with or without this cleanup (a gone node
/// is not live either way).
async fn forget_gone_nodes(ctx: &NodeContext) -> Result<(), HostDbError> {
    let retention = ctx.options.node_retention.max(ctx.options.live_window);
    let retention_secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let deleted = ctx.db.delete_nodes_unseen_for(retention_secs).await?;
    if deleted > 0 {
        tracing::info!(
            deleted,
            retention_secs,
            "removed the rows of nodes not seen for the node retention"
        );
    }
    Ok(())
}

fn stored_verification(domain: &Domain) -> Option<Verification> {
    domain
        .verification
        .as_deref()
        .and_then(Verification::from_stored)
}

/// Whether a domain is due for verification: never verified, or verified longer ago than the
/// interval (domains that do not point here yet are looked at more often, so a certificate
/// follows soon after the owner publishes the CNAME).
fn verification_due(ctx: &NodeContext, domain: &Domain, now: i64) -> bool {
    let interval = match stored_verification(domain) {
        Some(v) if v.points_here => ctx.options.verify_interval,
        _ => ctx.options.pending_verify_interval,
    };
    domain
        .verified_at
        .is_none_or(|at| now - at >= interval.as_secs() as i64)
}

/// Verifies one domain now, without storing the result; the checker engine runs only once
/// the policy host points here (before that only the records matter, and a checker run can
/// take a minute).
pub(crate) async fn run_verification(
    ctx: &NodeContext,
    domain: &Domain,
    check_deadline: Duration,
) -> Result<Verification, HostDbError> {
    let ids = known_ids(ctx, domain).await?;
    let tlsrpt = ctx
        .settings
        .tlsrpt_record(domain.rua.as_deref(), domain.reports_to_service);
    let now = (ctx.clock)();
    let selectors = match &ctx.checker {
        Some(checker) => dkim_selectors(ctx, checker, &domain.name, now).await,
        None => Vec::new(),
    };
    Ok(inspect_domain(
        ctx.dns.as_ref(),
        ctx.checker.as_deref(),
        &ctx.settings.delegation,
        &ctx.settings.public_ips,
        VerifyInput {
            domain: &domain.name,
            tenant_id: domain.tenant_id,
            known_ids: &ids,
            tlsrpt: tlsrpt.as_deref(),
            dkim_selectors: &selectors,
        },
        now,
        check_deadline,
    )
    .await)
}

/// How far back the DMARC reports whose DKIM selectors are checked go: a selector no report
/// names for a month is no longer in use.
const SELECTORS_SEEN_WITHIN: i64 = 30 * 86_400;
/// Selectors checked per domain at most (each is one TXT query per check).
const MAX_CHECKED_SELECTORS: usize = 10;

/// The DKIM selectors to check for `domain`: the configured ones, then those its DMARC
/// reports of the last month name for signatures by the domain itself (most messages
/// first). A reports database that cannot answer costs only the reported selectors.
async fn dkim_selectors(
    ctx: &NodeContext,
    checker: &Checker,
    domain: &str,
    now: i64,
) -> Vec<String> {
    let mut selectors = checker.options().dkim_selectors.clone();
    if let Some(reports) = &ctx.reports {
        let limit = MAX_CHECKED_SELECTORS as u32;
        match reports
            .dkim_selectors_of(domain, now - SELECTORS_SEEN_WITHIN, limit)
            .await
        {
            Ok(seen) => selectors.extend(seen.into_iter().map(|s| s.selector)),
            Err(error) => {
                tracing::warn!(%error, domain, "the DKIM selectors of the DMARC reports are unknown this round");
            }
        }
    }
    let mut unique = std::collections::HashSet::new();
    selectors.retain(|s| unique.insert(s.to_ascii_lowercase()));
    selectors.truncate(MAX_CHECKED_SELECTORS.max(checker.options().dkim_selectors.len()));
    selectors
}

/// Verifies one domain now and stores the result.
pub(crate) async fn verify_now(
    ctx: &NodeContext,
    domain: &Domain,
) -> Result<Verification, HostDbError> {
    let verification = run_verification(ctx, domain, ctx.options.check_deadline).await?;
    ctx.db
        .set_verification(domain.id, &verification.to_stored(), (ctx.clock)())
        .await?;
    Ok(verification)
}

/// Verifies every domain that is due, under a per-domain lock so nodes share the work.
pub(crate) async fn verify_due(ctx: &NodeContext) -> Result<(), HostDbError> {
    let now = (ctx.clock)();
    for domain in ctx.db.list_domains(None).await? {
        if !verification_due(ctx, &domain, now) {
            continue;
        }
        let Some(_lock) = ctx.db.try_lock(&format!("verify:{}", domain.name)).await? else {
            continue;
        };
        if let Err(error) = verify_now(ctx, &domain).await {
            tracing::warn!(domain = %domain.name, %error, "verification failed");
        }
    }
    Ok(())
}

/// Orders or renews the certificates that are due, one domain at a time, each under an
/// advisory lock so exactly one node talks to the CA about it; then the service's own.
pub(crate) async fn order_certificates(ctx: &NodeContext) -> Result<(), HostDbError> {
    if ctx.acme.is_none() {
        return Ok(());
    }
    // Domains being removed keep their certificate renewed: senders must still be able to
    // fetch the `mode: none` policy until the removal deadline (RFC 8461 §8.3).
    for domain in ctx.db.list_domains(None).await? {
        if !stored_verification(&domain).is_some_and(|v| v.points_here) {
            continue;
        }
        order_if_due(ctx, &Subject::domain(&domain.name)).await?;
    }
    // The DNS lookups only when an order may be due: they run every round otherwise.
    let service = Subject::service(ctx);
    if may_be_due(ctx, &service).await? && service_names_point_here(ctx).await {
        order_if_due(ctx, &service).await?;
    }
    Ok(())
}

/// What a certificate is for: a hosted domain's `mta-sts.<domain>`, or the service's own
/// names (`reports.<zone>` and `mta-sts.reports.<zone>`, stored under `reports.<zone>`).
struct Subject {
    /// The key of its certificate and ACME state rows.
    key: String,
    /// The DNS names it certifies.
    hosts: Vec<String>,
    /// Whether it is the service's own (no hosted domain owns its rows).
    service: bool,
}

impl Subject {
    fn domain(name: &str) -> Subject {
        Subject {
            key: name.to_owned(),
            hosts: vec![format!("mta-sts.{name}")],
            service: false,
        }
    }

    fn service(ctx: &NodeContext) -> Subject {
        let [host, policy_host] = super::service_hosts(&ctx.settings);
        Subject {
            key: host.clone(),
            hosts: vec![host, policy_host],
            service: true,
        }
    }

    async fn put_certificate(&self, ctx: &NodeContext, row: CertRow) -> Result<(), HostDbError> {
        if self.service {
            ctx.db.put_service_certificate(row).await
        } else {
            ctx.db.put_certificate(row).await
        }
    }

    async fn set_state(&self, ctx: &NodeContext, state: AcmeState) -> Result<(), HostDbError> {
        if self.service {
            ctx.db.set_service_acme_state(state).await
        } else {
            ctx.db.set_acme_state(state).await
        }
    }
}

/// Whether the service's own names resolve to this service's addresses, so the CA can reach
/// it there: until the zone is delegated, an order would only fail and back off.
async fn service_names_point_here(ctx: &NodeContext) -> bool {
    for host in super::service_hosts(&ctx.settings) {
        match ctx.dns.ip(&host).await {
            Ok(addresses)
                if !addresses.is_empty()
                    && addresses
                        .iter()
                        .all(|a| ctx.settings.public_ips.contains(a)) => {}
            Ok(addresses) => {
                tracing::debug!(%host, ?addresses, "the report host does not resolve to this service yet; its certificate waits");
                return false;
            }
            Err(error) => {
                tracing::debug!(%host, %error, "the report host does not resolve yet; its certificate waits");
                return false;
            }
        }
    }
    true
}

/// Whether `subject` has no certificate or one due for renewal, and no failure asks to
/// wait.
async fn may_be_due(ctx: &NodeContext, subject: &Subject) -> Result<bool, HostDbError> {
    let now = (ctx.clock)();
    if let Some(cert) = ctx.db.certificate(&subject.key).await?
        && !renewal_due(cert.not_before, cert.not_after, now)
    {
        return Ok(false);
    }
    let state = ctx.db.acme_state(&subject.key).await?;
    Ok(state.is_none_or(|s| s.next_attempt_at <= now))
}

/// Orders `subject`'s certificate when it has none or its renewal is due, and no failure
/// asks to wait, under the lock `acme:<key>`.
async fn order_if_due(ctx: &NodeContext, subject: &Subject) -> Result<(), HostDbError> {
    let now = (ctx.clock)();
    if let Some(cert) = ctx.db.certificate(&subject.key).await?
        && !renewal_due(cert.not_before, cert.not_after, now)
    {
        return Ok(());
    }
    let state = ctx.db.acme_state(&subject.key).await?;
    if state.as_ref().is_some_and(|s| s.next_attempt_at > now) {
        return Ok(());
    }
    let Some(_lock) = ctx.db.try_lock(&format!("acme:{}", subject.key)).await? else {
        return Ok(());
    };
    // Another node may have finished the order while this one waited for the lock.
    if let Some(cert) = ctx.db.certificate(&subject.key).await?
        && !renewal_due(cert.not_before, cert.not_after, (ctx.clock)())
    {
        return Ok(());
    }
    let failures = state.map_or(0, |s| s.failures);
    if let Err(error) = order_one(ctx, subject, failures).await {
        tracing::warn!(key = %subject.key, %error, "recording a certificate order failed");
    }
    Ok(())
}

/// How long an order in progress keeps other rounds away, in case its outcome cannot be
/// recorded (a database error after the CA issued must not lead to an order every round and
/// the CA's duplicate-certificate limit).
const ORDER_GUARD_SECS: i64 = 3600;

async fn order_one(ctx: &NodeContext, subject: &Subject, failures: u32) -> Result<(), HostDbError> {
    let host = subject.hosts.join(", ");
    let state = |failures: u32, next_attempt_at: i64, last_error: Option<String>| AcmeState {
        domain: subject.key.clone(),
        failures,
        next_attempt_at,
        last_error,
    };
    subject
        .set_state(ctx, state(failures, (ctx.clock)() + ORDER_GUARD_SECS, None))
        .await?;
    let hosts: Vec<&str> = subject.hosts.iter().map(String::as_str).collect();
    let outcome = match issuer(ctx).await {
        Ok(issuer) => issuer.issue_names(&hosts, ctx.board.as_ref()).await,
        Err(error) => Err(error),
    };
    let now = (ctx.clock)();
    match outcome {
        Ok(cert) => {
            subject
                .put_certificate(
                    ctx,
                    CertRow {
                        domain: subject.key.clone(),
                        chain_pem: cert.chain_pem,
                        key_pem: cert.key_pem,
                        not_before: cert.not_before,
                        not_after: cert.not_after,
                        issued_by: ctx.options.node_id.clone(),
                        updated_at: now,
                    },
                )
                .await?;
            ctx.options.metrics.acme_order("issued");
            subject.set_state(ctx, state(0, 0, None)).await?;
            tracing::info!(%host, "certificate issued");
        }
        Err(error) => {
            ctx.options.metrics.acme_order("failed");
            if matches!(error, AcmeError::Invalid { .. }) {
                // Possibly the account itself (deactivated, or unknown to the CA now):
                // connect afresh next time instead of failing until a restart.
                if let Some(acme) = ctx.acme.as_ref() {
                    *acme.issuer.lock().await = None;
                }
            }
            let failures = failures.saturating_add(1);
            let delay = retry_delay(failures, &error);
            tracing::warn!(%host, %error, retry_in_secs = delay.as_secs(), "certificate order failed");
            subject
                .set_state(
                    ctx,
                    state(
                        failures,
                        now.saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX)),
                        Some(error.to_string()),
                    ),
                )
                .await?;
        }
    }
    Ok(())
}

/// The ACME account, created once per directory and shared by all nodes through the database.
async fn issuer(ctx: &NodeContext) -> Result<Arc<Issuer>, crate::acme::AcmeError> {
    let acme = ctx.acme.as_ref().expect("checked by the caller");
    let mut slot = acme.issuer.lock().await;
    if let Some(issuer) = slot.as_ref() {
        return Ok(issuer.clone());
    }
    let unavailable = |e: HostDbError| crate::acme::AcmeError::Unavailable {
        detail: format!("database: {e}"),
    };
    let directory = acme.config.directory_url.clone();
    let _lock = loop {
        if let Some(lock) = ctx.db.try_lock("acme-account").await.map_err(unavailable)? {
            break lock;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let saved = ctx.db.acme_account(&directory).await.map_err(unavailable)?;
    let (issuer, created) = Issuer::connect(acme.config.clone(), saved.as_deref()).await?;
    if let Some(credentials) = created {
        ctx.db
            .put_acme_account(&directory, &credentials)
            .await
            .map_err(unavailable)?;
    }
    let issuer = Arc::new(issuer);
    *slot = Some(issuer.clone());
    Ok(issuer)
}
