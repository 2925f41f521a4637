//! Operations on hosted domains: create, change, remove (RFC 8461 §8.3) and cancel a
//! removal, read, list and history (a page at a time), and on-demand verification, with the
//! validation of what a request asks for.

use std::collections::HashMap;

use mtasts_proto::domain::normalize_domain;
use mtasts_proto::hosted::cursor::{self, Cursor, MAX_PAGE_SIZE};
use mtasts_proto::hosted::policy_input::{build_policy, hosted_domain, validate_rua};
use mtasts_proto::hosted::removal::{
    REMOVAL_MAX_AGE, removal_deadline, served_intervals, version_to_restore,
};
use mtasts_proto::hosted::reporting::ReportAddresses;
use mtasts_proto::hosted::versions::next_policy_id;
use mtasts_proto::sts::policy::Policy;
use mtasts_store::host::{
    Domain, DomainState, HostDbError, NewDomain, NewVersion, PolicyVersion, Tenant,
};

use super::claims::taken_name;
use super::error::{ServiceError, invalid, require_write};
use super::lock::lock_domain;
use super::tenancy::{tenant_named, tenant_of};
use super::views::{DomainDetail, Page, VersionView, detail};
use crate::auth::Principal;
use crate::state::AppState;

const DOMAIN_ZONE_RULE: &str =
    "mtasts: the service's own zone and names inside it cannot be hosted";
const DOMAIN_LENGTH_RULE: &str = "RFC 1035 §2.3.4: a name is at most 253 octets, and so must be \
     every name the service publishes for the domain (the longest, \
     _smtp._tls.<domain>.t<tenant>.<zone> or <domain>._report._dmarc.reports.<zone>)";
/// The longest a domain name may be in text form (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME_OCTETS: usize = 253;
const MX_LOOKUP_RULE: &str =
    "RFC 8461 §4.1: without mx, the domain's MX records are used, so it must have some";
const TENANT_REQUIRED_RULE: &str = "mtasts: an administrator names the tenant of a new domain";
const TENANT_EXISTS_RULE: &str = "mtasts: the tenant must exist";
const TENANT_OWN_RULE: &str = "mtasts: only administrators choose the tenant";
const CHANGE_RULE: &str =
    "mtasts: a change names at least one of mode, mx, max_age, rua, reports_to_service";

/// What a new hosted domain should be.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewDomainRequest {
    /// The policy domain (any case, U-labels allowed, trailing dot allowed).
    pub domain: String,
    /// The owning tenant's name: required for administrators, optional (and only their own)
    /// for owners.
    pub tenant: Option<String>,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// The `mx` patterns; `None` looks up the domain's MX records.
    pub mx: Option<Vec<String>>,
    /// Seconds; `None` for the default.
    pub max_age: Option<u64>,
    /// The TLS-RPT `rua=` value (RFC 8460 §3) the service publishes at
    /// `_smtp._tls.<domain>.t<tenant>.<zone>`, besides the service's own addresses (or
    /// alone, without them).
    pub rua: Option<String>,
    /// Whether the `_smtp._tls` record names the service's own report addresses; `None`:
    /// yes, the default.
    pub reports_to_service: Option<bool>,
}

/// A change to a hosted domain: absent (`None`) fields keep their current value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DomainChange {
    /// A new mode.
    pub mode: Option<String>,
    /// New `mx` patterns (replacing all of them).
    pub mx: Option<Vec<String>>,
    /// A new `max_age`.
    pub max_age: Option<u64>,
    /// The TLS-RPT report address: `None` keeps it, `Some(None)` removes it (and with it the
    /// `_smtp._tls` record), `Some(Some(value))` sets it. Not part of the policy: changing
    /// only this creates no policy version.
    pub rua: Option<Option<String>>,
    /// Whether the service's own report addresses are published: `None` keeps it. Not part
    /// of the policy either.
    pub reports_to_service: Option<bool>,
}

/// Normalises a domain from a request, or says which rule it breaks: the name rules of
/// [`hosted_domain`] (syntax, IP addresses in any spelling, `xn--` labels, public suffixes,
/// single labels), then the service's own zone. Whether the names published for it fit is
/// checked once the tenant is known (they carry its label).
pub fn validate_domain(state: &AppState, input: &str) -> Result<String, ServiceError> {
    let name = hosted_domain(input).map_err(ServiceError::Invalid)?;
    let zone = state.delegation.zone();
    if name == zone || name.ends_with(&format!(".{zone}")) {
        return Err(invalid(
            "domain",
            DOMAIN_ZONE_RULE,
            format!("{name:?} is inside the service zone {zone:?}"),
        ));
    }
    Ok(name)
}

/// Checks that every name the service publishes for `name` (already validated) under the
/// tenant `tenant_id` fits in a DNS name, or says which rule it breaks.
pub(super) fn check_published_lengths(
    state: &AppState,
    name: &str,
    tenant_id: i64,
) -> Result<(), ServiceError> {
    let zone = state.delegation.zone();
    // The names under the zone are the longest the service publishes for a domain: the
    // TLS-RPT one, or the DMARC authorization for tenants with short ids.
    let longest = [
        state.delegation.tlsrpt_target(name, tenant_id),
        state.delegation.sts_target(name, tenant_id),
        ReportAddresses::new(&state.delegation).dmarc_authorization_name(name),
    ]
    .into_iter()
    .max_by_key(String::len)
    .unwrap_or_default();
    if longest.len() > MAX_NAME_OCTETS {
        let room = MAX_NAME_OCTETS.saturating_sub(longest.len() - name.len());
        return Err(invalid(
            "domain",
            DOMAIN_LENGTH_RULE,
            format!(
                "{} octets is too long: {longest:?} would be {} octets; with the zone {zone:?} and \
                 the tenant label t{tenant_id} a hosted domain has at most {room}",
                name.len(),
                longest.len()
            ),
        ));
    }
    Ok(())
}

/// The domain `name` from a URL if `who` may see it. A name that is not even a domain is
/// simply not found.
pub(super) async fn visible_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<Domain, ServiceError> {
    let name = normalize_domain(name).map_err(|_| ServiceError::NotFound)?;
    match state.db.domain(&name).await? {
        Some(domain) if who.can_see(domain.tenant_id) => Ok(domain),
        _ => Err(ServiceError::NotFound),
    }
}

/// The tenant a new domain goes to.
pub(super) async fn owning_tenant(
    state: &AppState,
    who: &Principal,
    requested: Option<&str>,
) -> Result<Tenant, ServiceError> {
    match (who.tenant_id, requested) {
        (None, None) => Err(invalid(
            "tenant",
            TENANT_REQUIRED_RULE,
            "give the tenant's name",
        )),
        (None, Some(name)) => tenant_named(&state.db, name)
            .await?
            .ok_or_else(|| invalid("tenant", TENANT_EXISTS_RULE, format!("no tenant {name:?}"))),
        (Some(own), requested) => {
            let tenant = tenant_of(state, own).await?;
            match requested {
                Some(name) if name != tenant.name => Err(invalid(
                    "tenant",
                    TENANT_OWN_RULE,
                    "leave tenant out: new domains belong to your tenant",
                )),
                _ => Ok(tenant),
            }
        }
    }
}

/// The MX host names of `domain`, as `mx` patterns for its first policy.
async fn mx_from_dns(state: &AppState, domain: &str) -> Result<Vec<String>, ServiceError> {
    match state.dns.mx(domain).await {
        Ok(records) => {
            let mut hosts: Vec<String> = Vec::new();
            for record in records {
                if !record.exchange.is_empty() && !hosts.contains(&record.exchange) {
                    hosts.push(record.exchange);
                }
            }
            if hosts.is_empty() {
                Err(invalid(
                    "mx",
                    MX_LOOKUP_RULE,
                    format!("{domain} has a null MX (RFC 7505): it receives no mail"),
                ))
            } else {
                Ok(hosts)
            }
        }
        Err(e) if e.is_not_found() => Err(invalid(
            "mx",
            MX_LOOKUP_RULE,
            format!("{domain} has no MX records ({e}); give mx explicitly"),
        )),
        // SERVFAIL, timeouts, unreachable servers: we could not find out, so do not guess.
        Err(e) => Err(ServiceError::Unavailable(format!(
            "the MX lookup of {domain} failed: {e}"
        ))),
    }
}

pub(super) fn new_version(policy: &Policy, policy_id: String, now: i64) -> NewVersion {
    NewVersion {
        policy_id,
        mode: policy.mode.as_str().to_owned(),
        mx: policy.mx.iter().map(ToString::to_string).collect(),
        max_age: i64::from(policy.max_age.seconds()),
        body: policy.to_string(),
        now,
    }
}

/// Creates a hosted domain with its first policy version.
///
/// A name this service already hosts: for the caller's own tenant (or an administrator) a
/// conflict; for another tenant's domain, unless the new owner proved control of it with an
/// open claim (see [`super::claim_domain`]), not found, exactly as any domain the caller
/// cannot see, so whether another tenant hosts a name cannot be learnt here.
pub async fn create_domain(
    state: &AppState,
    who: &Principal,
    request: NewDomainRequest,
) -> Result<DomainDetail, ServiceError> {
    require_write(who)?;
    let name = validate_domain(state, &request.domain)?;
    let tenant = owning_tenant(state, who, request.tenant.as_deref()).await?;
    check_published_lengths(state, &name, tenant.id)?;
    let rua = optional_rua(request.rua.as_deref())?;
    let to_service = request.reports_to_service.unwrap_or(true);
    let mx = match request.mx {
        Some(mx) => mx,
        None => {
            // A bad mode or max_age is reported without waiting for (or depending on) DNS:
            // validate them with a placeholder pattern first.
            build_policy(&request.mode, &["mx.invalid".to_owned()], request.max_age)
                .map_err(ServiceError::Invalid)?;
            mx_from_dns(state, &name).await?
        }
    };
    let policy =
        build_policy(&request.mode, &mx, request.max_age).map_err(ServiceError::Invalid)?;
    let now = state.now();
    let version = new_version(&policy, next_policy_id(now, None), now);
    let created = state
        .db
        .create_domain(
            NewDomain {
                tenant_id: tenant.id,
                name: name.clone(),
                rua: rua.clone(),
                reports_to_service: to_service,
            },
            version,
        )
        .await;
    match created {
        Ok((domain, _)) => detail(state, domain, &tenant.name).await,
        Err(HostDbError::Conflict(_)) => {
            let reports = (rua.as_deref(), to_service);
            taken_name(state, who, &tenant, &name, reports, &policy).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The time of a new version after `latest`: this node's clock, but never before `latest`
/// was made. Nodes' clocks differ; a version made on a node whose clock lags must not take an
/// earlier second than the versions before it, or its policy id (the UTC second, with a
/// counter only against the latest id) could repeat an older version's id. Kept for both the
/// id and `created_at`, versions' times never go back, so every id differs from every id
/// before it. (A later `created_at` only lengthens how long the previous version counts as
/// served, which makes the removal deadline later, never earlier.)
pub(super) fn version_time(state: &AppState, latest: &PolicyVersion) -> i64 {
    state.now().max(latest.created_at)
}

/// A `rua` from a request, validated and normalised.
fn optional_rua(rua: Option<&str>) -> Result<Option<String>, ServiceError> {
    rua.map(validate_rua)
        .transpose()
        .map_err(ServiceError::Invalid)
}

/// Changes a domain: a new policy version with a new id when the policy changed, and the
/// TLS-RPT `rua` and `reports_to_service` when given (no new version: the policy stays as it
/// is).
///
/// The two are separate writes: should the second fail after the first, the error is
/// returned and repeating the request completes it (an unchanged policy adds no version).
pub async fn update_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
    change: DomainChange,
) -> Result<DomainDetail, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    require_write(who)?;
    if change == DomainChange::default() {
        return Err(invalid("body", CHANGE_RULE, "nothing to change"));
    }
    let rua = change
        .rua
        .map(|rua| optional_rua(rua.as_deref()))
        .transpose()?;
    let _guard = lock_domain(state, &domain.name).await?;
    // Re-read under the lock: the version we build on must be the newest.
    let domain = reread(state, &domain.name).await?;
    if domain.state == DomainState::Removing {
        return Err(ServiceError::Conflict(format!(
            "{} is being removed; it can no longer change (cancel the removal first: \
             POST /api/v1/domains/{}/restore)",
            domain.name, domain.name
        )));
    }
    let latest = latest_version(state, &domain).await?;
    let mode = change.mode.unwrap_or_else(|| latest.mode.clone());
    let mx = change.mx.unwrap_or_else(|| latest.mx.clone());
    let max_age = change
        .max_age
        .or_else(|| u64::try_from(latest.max_age).ok());
    let policy = build_policy(&mode, &mx, max_age).map_err(ServiceError::Invalid)?;
    if policy.to_string() != latest.body {
        let now = version_time(state, &latest);
        let version = new_version(&policy, next_policy_id(now, Some(&latest.policy_id)), now);
        state.db.add_version(domain.id, version).await?;
    }
    if let Some(rua) = rua.filter(|rua| *rua != domain.rua) {
        state.db.set_rua(domain.id, rua.as_deref()).await?;
    }
    if let Some(to_service) = change
        .reports_to_service
        .filter(|to| *to != domain.reports_to_service)
    {
        state
            .db
            .set_reports_to_service(domain.id, to_service)
            .await?;
    }
    let tenant = tenant_of(state, domain.tenant_id).await?;
    let domain = reread(state, &domain.name).await?;
    detail(state, domain, &tenant.name).await
}

/// Starts the safe removal of a domain (RFC 8461 §8.3): a `mode: none` policy with a short
/// `max_age` under a new id, served until every policy ever served could have expired from
/// every sender's cache; the node deletes the domain after `remove_after`. Repeating it
/// changes nothing.
pub async fn remove_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<DomainDetail, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    require_write(who)?;
    let _guard = lock_domain(state, &domain.name).await?;
    let domain = reread(state, &domain.name).await?;
    let tenant = tenant_of(state, domain.tenant_id).await?;
    if domain.state == DomainState::Removing {
        return detail(state, domain, &tenant.name).await;
    }
    let versions = state.db.versions(domain.id).await?;
    let latest = versions
        .first()
        .ok_or_else(|| ServiceError::Internal(format!("{} has no policy version", domain.name)))?;
    // Oldest first: `served_intervals` sorts by creation time stably, so two versions made in
    // the same second must already be in version order, or the older one would count as
    // the one served until now.
    let history: Vec<(i64, u32)> = versions
        .iter()
        .rev()
        .map(|v| (v.created_at, u32::try_from(v.max_age).unwrap_or(u32::MAX)))
        .collect();
    let now = state.now();
    let remove_after = removal_deadline(now, &served_intervals(&history));
    let policy = build_policy("none", &[], Some(u64::from(REMOVAL_MAX_AGE)))
        .map_err(|e| ServiceError::Internal(format!("the removal policy is invalid: {e}")))?;
    let at = version_time(state, latest);
    let version = new_version(&policy, next_policy_id(at, Some(&latest.policy_id)), at);
    state
        .db
        .start_removal(domain.id, remove_after, version)
        .await?;
    let domain = reread(state, &domain.name).await?;
    detail(state, domain, &tenant.name).await
}

/// Cancels the removal of a domain (RFC 8461 §8.3) while it is under way: the domain is
/// active again and the policy served before the removal returns as a new version with a
/// new id, published like any change (every node serves it before the TXT record carries
/// its id), so senders that saw `mode: none` fetch it again. Outside a removal: conflict.
pub async fn restore_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<DomainDetail, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    require_write(who)?;
    let _guard = lock_domain(state, &domain.name).await?;
    let domain = reread(state, &domain.name).await?;
    if domain.state != DomainState::Removing {
        return Err(ServiceError::Conflict(format!(
            "{} is not being removed: there is no removal to cancel",
            domain.name
        )));
    }
    // Two rows, not the history: the removal's version and the one before it.
    let latest = latest_version(state, &domain).await?;
    let before = match version_to_restore(domain.latest_version) {
        Some(number) => state.db.version(domain.id, number).await?,
        None => None,
    };
    let Some(before) = before else {
        return Err(ServiceError::Internal(format!(
            "{} has no version before its removal",
            domain.name
        )));
    };
    let at = version_time(state, &latest);
    let version = NewVersion {
        policy_id: next_policy_id(at, Some(&latest.policy_id)),
        mode: before.mode.clone(),
        mx: before.mx.clone(),
        max_age: before.max_age,
        body: before.body.clone(),
        now: at,
    };
    let restored = state.db.restore_domain(domain.id, version).await?;
    tracing::info!(
        domain = %domain.name,
        restored_from = before.version,
        version = restored.version,
        "removal cancelled; the policy served before it returns under a new id"
    );
    let tenant = tenant_of(state, domain.tenant_id).await?;
    let domain = reread(state, &domain.name).await?;
    detail(state, domain, &tenant.name).await
}

/// One domain, if `who` may see it.
pub async fn domain_detail(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<DomainDetail, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    let tenant = tenant_of(state, domain.tenant_id).await?;
    detail(state, domain, &tenant.name).await
}

/// One page of the domains `who` may see, by name (byte order): at most `limit` (1 to
/// [`MAX_PAGE_SIZE`]) after the position `cursor` names (`None`: from the first).
pub async fn domains_page(
    state: &AppState,
    who: &Principal,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<DomainDetail>, ServiceError> {
    let after = cursor
        .map(cursor::domains_after)
        .transpose()
        .map_err(ServiceError::Invalid)?;
    let limit = limit.clamp(1, MAX_PAGE_SIZE);
    // One more than asked: whether it comes back says whether there is a next page.
    let mut domains = state
        .db
        .domains_page(who.tenant_id, after.as_deref(), limit + 1)
        .await?;
    let more = domains.len() > limit as usize;
    domains.truncate(limit as usize);
    let next_cursor = more
        .then(|| domains.last())
        .flatten()
        .map(|d| Cursor::DomainsAfter(d.name.clone()).encode());
    // Tenant names, each read once per page.
    let mut tenants: HashMap<i64, String> = HashMap::new();
    let mut items = Vec::with_capacity(domains.len());
    for domain in domains {
        // The store already filters by tenant; this is the second lock on the door.
        if !who.can_see(domain.tenant_id) {
            continue;
        }
        let tenant = match tenants.get(&domain.tenant_id) {
            Some(name) => name.clone(),
            None => {
                let name = tenant_of(state, domain.tenant_id).await?.name;
                tenants.insert(domain.tenant_id, name.clone());
                name
            }
        };
        match detail(state, domain, &tenant).await {
            Ok(detail) => items.push(detail),
            // Deleted since it was listed (a removal completing): no longer in the list.
            Err(ServiceError::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Page { items, next_cursor })
}

/// One page of a domain's versions, newest first: at most `limit` (1 to [`MAX_PAGE_SIZE`])
/// after the position `cursor` names (`None`: from the newest).
pub async fn versions_page(
    state: &AppState,
    who: &Principal,
    name: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<VersionView>, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    let before = cursor
        .map(cursor::versions_before)
        .transpose()
        .map_err(ServiceError::Invalid)?;
    let limit = limit.clamp(1, MAX_PAGE_SIZE);
    let mut versions = state.db.versions_page(domain.id, before, limit + 1).await?;
    let more = versions.len() > limit as usize;
    versions.truncate(limit as usize);
    let next_cursor = more
        .then(|| versions.last())
        .flatten()
        .map(|v| Cursor::VersionsBefore(v.version).encode());
    let items = versions
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            policy_id: v.policy_id,
            mode: v.mode,
            mx: v.mx,
            max_age: v.max_age,
            created_at: v.created_at,
            published_at: v.published_at,
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// Verifies a domain now with the configured verifier and stores the result. Read-only
/// principals may do this: it changes no policy.
pub async fn verify_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<DomainDetail, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    let Some(verifier) = state.verifier.as_ref() else {
        return Err(ServiceError::Unavailable(
            "on-demand verification is not configured on this node".to_owned(),
        ));
    };
    let result = verifier.verify(&domain.name).await.map_err(|e| {
        tracing::warn!(domain = %domain.name, error = %e, "on-demand verification failed");
        ServiceError::Unavailable("verification could not run; try again later".to_owned())
    })?;
    let now = state.now();
    state
        .db
        .set_verification(domain.id, &result.to_stored(), now)
        .await?;
    let tenant = tenant_of(state, domain.tenant_id).await?;
    let domain = reread(state, &domain.name).await?;
    detail(state, domain, &tenant.name).await
}

/// A domain read again after a change or under the lock. Gone means a concurrent removal
/// completed: for the client, not found.
pub(super) async fn reread(state: &AppState, name: &str) -> Result<Domain, ServiceError> {
    state.db.domain(name).await?.ok_or(ServiceError::NotFound)
}

/// The newest version of `domain` (read under its lock): one row, not the whole history.
pub(super) async fn latest_version(
    state: &AppState,
    domain: &Domain,
) -> Result<PolicyVersion, ServiceError> {
    state
        .db
        .version(domain.id, domain.latest_version)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("{} has no policy version", domain.name)))
}
