//! The operations on hosted domains and tenants, independent of HTTP: the REST API and the
//! dashboard both call these, so the rules (visibility, roles, validation, versioning, safe
//! removal) live in one place.
//!
//! Visibility: an administrator sees every tenant; an owner or read-only principal sees only
//! its own tenant, and another tenant's domain is [`ServiceError::NotFound`], exactly as a
//! domain that does not exist, so nothing can be learnt about other tenants. Read-only
//! principals get [`ServiceError::Forbidden`] on writes to what they can see. Tenant
//! administration is for administrators only and is `NotFound` for everyone else.
//!
//! # Verification
//!
//! The verifier (the node's checker, or [`crate::verification::DomainVerifier`] on demand)
//! stores one [`Verification`] per domain; [`DomainDetail`] shows it with each record's
//! status beside the CNAME to publish. A record without a stored outcome shows as
//! [`RecordStatus::Unchecked`].

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use mtasts_proto::domain::normalize_domain;
use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_proto::hosted::policy_input::{FieldError, build_policy, validate_rua};
use mtasts_proto::hosted::removal::{REMOVAL_MAX_AGE, removal_deadline, served_intervals};
use mtasts_proto::hosted::versions::next_policy_id;
use mtasts_proto::sts::policy::Policy;
use mtasts_store::host::{
    ApiToken, Domain, DomainState, HostDb, HostDbError, NewDomain, NewToken, NewUser, NewVersion,
    PolicyVersion, Role, Tenant,
};
use serde::{Serialize, Serializer};
use thiserror::Error;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::{self, Principal};
use crate::state::AppState;
use crate::verification::{RecordStatus, Verification};

/// Why an operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such object, or one the principal may not see.
    #[error("not found")]
    NotFound,
    /// The principal sees the object but may not change it (read-only).
    #[error("this token is read-only")]
    Forbidden,
    /// A field breaks a rule.
    #[error("{0}")]
    Invalid(FieldError),
    /// The change collides with the current state (name taken, removal under way, a
    /// concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// The database or DNS could not answer now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// Our own bug or corrupt data; retrying will not help.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<HostDbError> for ServiceError {
    fn from(e: HostDbError) -> Self {
        match e {
            HostDbError::NotFound => ServiceError::NotFound,
            HostDbError::Conflict(m) => ServiceError::Conflict(m),
            HostDbError::Unavailable(m) => ServiceError::Unavailable(m),
            // The database refusing what we validated, or rows it cannot read: not the
            // client's fault either way.
            HostDbError::Invalid(m) | HostDbError::Corrupt(m) => ServiceError::Internal(m),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

fn invalid(field: &'static str, rule: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(FieldError {
        field,
        rule,
        message: message.into(),
    })
}

const DOMAIN_SYNTAX_RULE: &str =
    "RFC 1035 §2.3.1, RFC 5890: a domain name of letters, digits and hyphens (IDNs allowed)";
const DOMAIN_LABELS_RULE: &str = "mtasts: a hosted domain has at least two labels";
const DOMAIN_ZONE_RULE: &str =
    "mtasts: the service's own zone and names inside it cannot be hosted";
const DOMAIN_LENGTH_RULE: &str = "RFC 1035 §2.3.4: a name is at most 253 octets, and so must be \
     every name the service publishes for the domain (the longest, \
     _smtp._tls.<domain>.t<tenant>.<zone>)";
/// The longest a domain name may be in text form (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME_OCTETS: usize = 253;
const MX_LOOKUP_RULE: &str =
    "RFC 8461 §4.1: without mx, the domain's MX records are used, so it must have some";
const TENANT_REQUIRED_RULE: &str = "mtasts: an administrator names the tenant of a new domain";
const TENANT_EXISTS_RULE: &str = "mtasts: the tenant must exist";
const TENANT_OWN_RULE: &str = "mtasts: only administrators choose the tenant";
const TENANT_NAME_RULE: &str =
    "mtasts: a tenant name is 1 to 63 lowercase letters, digits and inner hyphens";
const ROLE_RULE: &str = "mtasts: a tenant's tokens and users are owner or readonly";
const LABEL_RULE: &str = "mtasts: a label is 1 to 100 characters without control characters";
const EMAIL_RULE: &str =
    "RFC 5321 §4.1.2: an e-mail address local@domain (local part up to 64 octets)";
const PASSWORD_RULE: &str = "mtasts: a password is 12 to 1024 characters";
const CHANGE_RULE: &str = "mtasts: a change names at least one of mode, mx, max_age, rua";

/// A certificate closer than this to its end is reported as `expiring`: renewal starts 30
/// days before, so by then it has failed for two weeks.
const CERT_EXPIRING_WITHIN: i64 = 14 * 86_400;

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
    /// `_smtp._tls.<domain>.t<tenant>.<zone>`; `None` publishes no TLS-RPT record.
    pub rua: Option<String>,
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
}

/// A hosted domain as the API and dashboard show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainDetail {
    /// The policy domain.
    pub domain: String,
    /// The owning tenant's name.
    pub tenant: String,
    /// `active` or `removing`.
    pub state: &'static str,
    /// The newest version's mode.
    pub mode: String,
    /// The newest version's `mx` patterns.
    pub mx: Vec<String>,
    /// The newest version's `max_age`.
    pub max_age: i64,
    /// The newest policy body (CRLF), as the policy host serves it.
    pub policy: String,
    /// The id the `_mta-sts` TXT record carries now; `None` until a version is published.
    pub policy_id: Option<String>,
    /// The newest version's id while it waits to be published (every node must serve the
    /// body before the id changes, RFC 8461 §8.1).
    pub pending_policy_id: Option<String>,
    /// The newest version number.
    pub version: i64,
    /// The TLS-RPT `rua=` value published at `_smtp._tls.<domain>.t<tenant>.<zone>`, if any;
    /// only then is the `tlsrpt` CNAME among `records`.
    pub rua: Option<String>,
    /// The CNAMEs the owner publishes, with their last verification.
    pub records: Vec<RecordView>,
    /// The certificate of `mta-sts.<domain>`.
    pub certificate: CertificateView,
    /// The last verification (its `checked_at` is when it was stored); `None` when never
    /// verified.
    pub verification: Option<Verification>,
    /// When a removal completes (Unix seconds), while removing.
    pub remove_after: Option<i64>,
    /// When the domain was added (Unix seconds).
    pub created_at: i64,
}

/// One CNAME the owner must publish, and whether it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordView {
    /// Which record (`sts_record`, `policy_host` or `tlsrpt` in JSON).
    #[serde(serialize_with = "kind_name")]
    pub kind: RecordKind,
    /// The owner's name.
    pub name: String,
    /// Always `CNAME`.
    #[serde(rename = "type")]
    pub record_type: &'static str,
    /// Where it must point.
    pub target: String,
    /// The last verification's outcome.
    pub status: RecordStatus,
    /// What the verifier found.
    pub detail: Option<String>,
    /// What to change.
    pub fix: Option<String>,
}

fn kind_name<S: Serializer>(kind: &RecordKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// A domain's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateView {
    /// Where it stands.
    pub status: CertificateStatus,
    /// Its end of validity (Unix seconds).
    pub not_after: Option<i64>,
}

/// Where a domain's certificate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// Not issued yet.
    None,
    /// Valid for two weeks or more.
    Valid,
    /// Less than two weeks left (`CERT_EXPIRING_WITHIN`).
    Expiring,
    /// Past its end of validity.
    Expired,
}

impl CertificateStatus {
    /// The status at `now` of a certificate valid until `not_after`.
    fn at(not_after: i64, now: i64) -> Self {
        if not_after <= now {
            CertificateStatus::Expired
        } else if not_after - now < CERT_EXPIRING_WITHIN {
            CertificateStatus::Expiring
        } else {
            CertificateStatus::Valid
        }
    }

    /// `none`, `valid`, `expiring` or `expired`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::None => "none",
            CertificateStatus::Valid => "valid",
            CertificateStatus::Expiring => "expiring",
            CertificateStatus::Expired => "expired",
        }
    }
}

/// One policy version in a domain's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionView {
    /// 1, 2, …
    pub version: i64,
    /// Its TXT id.
    pub policy_id: String,
    /// Its mode.
    pub mode: String,
    /// Its `mx` patterns.
    pub mx: Vec<String>,
    /// Its `max_age`.
    pub max_age: i64,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When its id was published, if it was.
    pub published_at: Option<i64>,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantView {
    /// Its id (the `t<id>` label of its names in the zone); not part of the API's JSON.
    #[serde(skip)]
    pub id: i64,
    /// Its name.
    pub name: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

/// A new API token, the only time its plain text is shown.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewTokenView {
    /// The token's id.
    pub id: i64,
    /// The tenant it acts for.
    pub tenant: String,
    /// `owner` or `readonly`.
    pub role: &'static str,
    /// The label given.
    pub label: String,
    /// The token itself (`mtasts_…`). Not stored anywhere; lost if not copied now.
    pub token: String,
}

impl fmt::Debug for NewTokenView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTokenView")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A new user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// The user's id.
    pub id: i64,
    /// The tenant.
    pub tenant: String,
    /// The (lowercased) e-mail address.
    pub email: String,
    /// `owner` or `readonly`.
    pub role: &'static str,
}

/// A new user, as requested.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NewUserRequest {
    /// The e-mail address (the login name).
    pub email: String,
    /// The password in clear; only its hash is stored.
    pub password: String,
    /// `owner` or `readonly`.
    pub role: String,
}

impl fmt::Debug for NewUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUserRequest")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn role_name(role: Role) -> &'static str {
    role.as_str()
}

fn state_name(state: DomainState) -> &'static str {
    match state {
        DomainState::Active => "active",
        DomainState::Removing => "removing",
    }
}

/// Normalises a domain from a request, or says which rule it breaks. Whether the names
/// published for it fit is checked once the tenant is known (they carry its label).
pub fn validate_domain(state: &AppState, input: &str) -> Result<String, ServiceError> {
    let name = normalize_domain(input)
        .map_err(|e| invalid("domain", DOMAIN_SYNTAX_RULE, e.to_string()))?;
    if !name.contains('.') {
        return Err(invalid(
            "domain",
            DOMAIN_LABELS_RULE,
            format!("{name:?} is a single label"),
        ));
    }
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
fn check_published_lengths(
    state: &AppState,
    name: &str,
    tenant_id: i64,
) -> Result<(), ServiceError> {
    let zone = state.delegation.zone();
    // The names under the zone are the longest the service publishes for a domain; the
    // TLS-RPT one is the longest of them.
    let longest = [
        state.delegation.tlsrpt_target(name, tenant_id),
        state.delegation.sts_target(name, tenant_id),
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
async fn visible_domain(
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

fn require_write(who: &Principal) -> Result<(), ServiceError> {
    if who.can_write() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

fn require_admin(who: &Principal) -> Result<(), ServiceError> {
    // Tenant administration does not exist for anyone else, as far as they can tell.
    if who.is_admin() {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// The tenant a new domain goes to.
async fn owning_tenant(
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

fn new_version(policy: &Policy, policy_id: String, now: i64) -> NewVersion {
    NewVersion {
        policy_id,
        mode: policy.mode.as_str().to_owned(),
        mx: policy.mx.iter().map(ToString::to_string).collect(),
        max_age: i64::from(policy.max_age.seconds()),
        body: policy.to_text("\r\n"),
        now,
    }
}

/// Creates a hosted domain with its first policy version.
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
    let (domain, _) = state
        .db
        .create_domain(
            NewDomain {
                tenant_id: tenant.id,
                name: name.clone(),
                rua,
            },
            version,
        )
        .await
        .map_err(|e| match e {
            HostDbError::Conflict(_) => {
                ServiceError::Conflict(format!("{name} is already hosted by this service"))
            }
            e => e.into(),
        })?;
    detail(state, domain, &tenant.name).await
}

/// How long a change waits for its domain's lock (and for a permit to hold one).
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// How often it tries the lock meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// A held per-domain change lock and the permit it holds it with (see [`lock_domain`]). The
/// lock is released before the permit (fields drop in order).
struct DomainLock {
    _guard: mtasts_store::host::LockGuard,
    _permit: OwnedSemaphorePermit,
}

/// Holds the per-domain change lock, so two concurrent changes cannot both derive their
/// policy id from the same previous version (equal ids would hide the second change from
/// senders, RFC 8461 §3.1). Waits a little before answering `Conflict`.
///
/// Each held lock keeps a pooled database connection (PostgreSQL), so at most
/// [`crate::state::DOMAIN_LOCK_PERMITS`] are held by this process at once: a change first
/// takes a permit ([`AppState::domain_locks`]), and gives it back while it waits for a lock
/// another change holds. No permit within the wait is `Unavailable` (503).
async fn lock_domain(state: &AppState, name: &str) -> Result<DomainLock, ServiceError> {
    let lock = format!("api-domain:{name}");
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        let permit =
            match tokio::time::timeout_at(deadline, state.domain_locks.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => {
                    return Err(ServiceError::Internal(
                        "the domain lock permits were closed".to_owned(),
                    ));
                }
                Err(_) => {
                    return Err(ServiceError::Unavailable(format!(
                        "too many changes are in progress; {name} was not changed, try again"
                    )));
                }
            };
        if let Some(guard) = state.db.try_lock(&lock).await? {
            return Ok(DomainLock {
                _guard: guard,
                _permit: permit,
            });
        }
        // Waiting for another change of this domain must not keep others from theirs.
        drop(permit);
        if tokio::time::Instant::now() + LOCK_RETRY > deadline {
            return Err(ServiceError::Conflict(format!(
                "another change to {name} is in progress; try again"
            )));
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}

/// The time of a new version after `latest`: this node's clock, but never before `latest`
/// was made. Nodes' clocks differ; a version made on a node whose clock lags must not take an
/// earlier second than the versions before it, or its policy id (the UTC second, with a
/// counter only against the latest id) could repeat an older version's id. Kept for both the
/// id and `created_at`, versions' times never go back, so every id differs from every id
/// before it. (A later `created_at` only lengthens how long the previous version counts as
/// served, which makes the removal deadline later, never earlier.)
fn version_time(state: &AppState, latest: &PolicyVersion) -> i64 {
    state.now().max(latest.created_at)
}

/// A `rua` from a request, validated and normalised.
fn optional_rua(rua: Option<&str>) -> Result<Option<String>, ServiceError> {
    rua.map(validate_rua)
        .transpose()
        .map_err(ServiceError::Invalid)
}

/// Changes a domain: a new policy version with a new id when the policy changed, and the
/// TLS-RPT `rua` when one is given (no new version: the policy stays as it is).
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
            "{} is being removed; it can no longer change",
            domain.name
        )));
    }
    let latest = latest_version(state, &domain).await?;
    let mode = change.mode.unwrap_or_else(|| latest.mode.clone());
    let mx = change.mx.unwrap_or_else(|| latest.mx.clone());
    let max_age = change
        .max_age
        .or_else(|| u64::try_from(latest.max_age).ok());
    let policy = build_policy(&mode, &mx, max_age).map_err(ServiceError::Invalid)?;
    if policy.to_text("\r\n") != latest.body {
        let now = version_time(state, &latest);
        let version = new_version(&policy, next_policy_id(now, Some(&latest.policy_id)), now);
        state.db.add_version(domain.id, version).await?;
    }
    if let Some(rua) = rua.filter(|rua| *rua != domain.rua) {
        state.db.set_rua(domain.id, rua.as_deref()).await?;
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

/// Every domain `who` may see, by name.
pub async fn list_domains(
    state: &AppState,
    who: &Principal,
) -> Result<Vec<DomainDetail>, ServiceError> {
    let tenants: HashMap<i64, String> = match who.tenant_id {
        None => state
            .db
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect(),
        Some(own) => {
            let tenant = tenant_of(state, own).await?;
            HashMap::from([(tenant.id, tenant.name)])
        }
    };
    let mut domains = state.db.list_domains(who.tenant_id).await?;
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::with_capacity(domains.len());
    for domain in domains {
        // list_domains already filters by tenant; this is the second lock on the door.
        if !who.can_see(domain.tenant_id) {
            continue;
        }
        let tenant = match tenants.get(&domain.tenant_id) {
            Some(name) => name.clone(),
            None => tenant_of(state, domain.tenant_id).await?.name,
        };
        match detail(state, domain, &tenant).await {
            Ok(detail) => out.push(detail),
            // Deleted since it was listed (a removal completing): no longer in the list.
            Err(ServiceError::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A domain's versions, newest first.
pub async fn history(
    state: &AppState,
    who: &Principal,
    name: &str,
) -> Result<Vec<VersionView>, ServiceError> {
    let domain = visible_domain(state, who, name).await?;
    let versions = state.db.versions(domain.id).await?;
    Ok(versions
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
        .collect())
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

/// The tenant a row refers to; its absence is a broken reference, not the client's fault.
async fn tenant_of(state: &AppState, id: i64) -> Result<Tenant, ServiceError> {
    state
        .db
        .tenant(id)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("tenant {id} does not exist")))
}

/// A domain read again after a change or under the lock. Gone means a concurrent removal
/// completed: for the client, not found.
async fn reread(state: &AppState, name: &str) -> Result<Domain, ServiceError> {
    state.db.domain(name).await?.ok_or(ServiceError::NotFound)
}

async fn latest_version(state: &AppState, domain: &Domain) -> Result<PolicyVersion, ServiceError> {
    state
        .db
        .versions(domain.id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::Internal(format!("{} has no policy version", domain.name)))
}

async fn detail(
    state: &AppState,
    domain: Domain,
    tenant: &str,
) -> Result<DomainDetail, ServiceError> {
    let versions = state.db.versions(domain.id).await?;
    let Some(latest) = versions.first() else {
        // A domain always has a version until it is deleted (a removal completing between
        // reading its row and its versions): then it is simply gone.
        return Err(match state.db.domain(&domain.name).await? {
            None => ServiceError::NotFound,
            Some(_) => ServiceError::Internal(format!("{} has no policy version", domain.name)),
        });
    };
    let published = domain
        .published_version
        .and_then(|n| versions.iter().find(|v| v.version == n));
    let pending =
        (domain.published_version != Some(latest.version)).then(|| latest.policy_id.clone());
    let now = state.now();
    let certificate = match state.db.certificate(&domain.name).await? {
        None => CertificateView {
            status: CertificateStatus::None,
            not_after: None,
        },
        Some(cert) => CertificateView {
            status: CertificateStatus::at(cert.not_after, now),
            not_after: Some(cert.not_after),
        },
    };
    let verification = domain.verification.as_deref().and_then(|json| {
        let parsed = Verification::from_stored(json);
        if parsed.is_none() {
            tracing::warn!(domain = %domain.name, "the stored verification is unreadable; showing none");
        }
        parsed
    });
    let records = state
        .delegation
        .records(&domain.name, domain.tenant_id)
        .into_iter()
        // The zone answers `_smtp._tls` only for domains with a rua, so only then must the
        // owner point it at us.
        .filter(|r| r.kind != RecordKind::TlsRpt || domain.rua.is_some())
        .map(|r| {
            let check = verification.as_ref().and_then(|v| v.records.get(r.kind));
            RecordView {
                kind: r.kind,
                name: r.name,
                record_type: "CNAME",
                target: r.target,
                status: check.map_or(RecordStatus::Unchecked, |c| c.status),
                detail: check.and_then(|c| c.detail.clone()),
                fix: check.and_then(|c| c.fix.clone()),
            }
        })
        .collect();
    // The time it was stored is the one that counts (an on-demand result carries the
    // verifier's own clock).
    let verification = verification.map(|v| Verification {
        checked_at: domain.verified_at.unwrap_or(v.checked_at),
        ..v
    });
    Ok(DomainDetail {
        tenant: tenant.to_owned(),
        state: state_name(domain.state),
        mode: latest.mode.clone(),
        mx: latest.mx.clone(),
        max_age: latest.max_age,
        policy: latest.body.clone(),
        policy_id: published.map(|v| v.policy_id.clone()),
        pending_policy_id: pending,
        version: latest.version,
        rua: domain.rua,
        records,
        certificate,
        verification,
        remove_after: domain.remove_after,
        created_at: domain.created_at,
        domain: domain.name,
    })
}

fn validate_tenant_name(name: &str) -> Result<(), ServiceError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            TENANT_NAME_RULE,
            format!("{name:?} is not a tenant name"),
        ))
    }
}

fn tenant_view(tenant: Tenant) -> TenantView {
    TenantView {
        id: tenant.id,
        name: tenant.name,
        created_at: tenant.created_at,
    }
}

/// Creates a tenant (administrators only).
pub async fn create_tenant(
    db: &HostDb,
    who: &Principal,
    name: &str,
) -> Result<TenantView, ServiceError> {
    require_admin(who)?;
    validate_tenant_name(name)?;
    let tenant = db.create_tenant(name).await.map_err(|e| match e {
        HostDbError::Conflict(_) => ServiceError::Conflict(format!("tenant {name:?} exists")),
        e => e.into(),
    })?;
    Ok(tenant_view(tenant))
}

/// Every tenant (administrators only).
pub async fn list_tenants(db: &HostDb, who: &Principal) -> Result<Vec<TenantView>, ServiceError> {
    require_admin(who)?;
    let mut tenants: Vec<TenantView> = db
        .list_tenants()
        .await?
        .into_iter()
        .map(tenant_view)
        .collect();
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tenants)
}

/// The tenant named in a URL, for administrators.
async fn admin_tenant(db: &HostDb, who: &Principal, name: &str) -> Result<Tenant, ServiceError> {
    require_admin(who)?;
    tenant_named(db, name).await?.ok_or(ServiceError::NotFound)
}

/// The tenant named `name` from a request. A name the database refuses to look up (control
/// characters, too long) names no tenant: `None`, not an error of ours.
async fn tenant_named(db: &HostDb, name: &str) -> Result<Option<Tenant>, ServiceError> {
    match db.tenant_by_name(name).await {
        Ok(tenant) => Ok(tenant),
        Err(HostDbError::Invalid(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The role of a tenant's token or user, by its one spelling (`owner`, `readonly`).
fn tenant_role(role: &str) -> Result<Role, ServiceError> {
    match role {
        "owner" => Ok(Role::Owner),
        "readonly" => Ok(Role::ReadOnly),
        other => Err(invalid(
            "role",
            ROLE_RULE,
            format!("{other:?} is not owner or readonly"),
        )),
    }
}

fn validate_label(label: &str) -> Result<&str, ServiceError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(invalid(
            "label",
            LABEL_RULE,
            format!("{} characters", label.chars().count()),
        ));
    }
    Ok(label)
}

/// Stores a new token; returns its row and the plain token, which exists only here.
async fn insert_token(
    db: &HostDb,
    tenant_id: Option<i64>,
    role: Role,
    label: &str,
) -> Result<(ApiToken, String), ServiceError> {
    let (plain, hash) = auth::new_token();
    let row = db
        .create_token(NewToken {
            tenant_id,
            role,
            label: label.to_owned(),
            token_hash: hash,
        })
        .await?;
    Ok((row, plain))
}

/// Creates an API token for a tenant (administrators only); the plain token is returned
/// once and only its hash is stored.
pub async fn create_token(
    db: &HostDb,
    who: &Principal,
    tenant: &str,
    role: &str,
    label: &str,
) -> Result<NewTokenView, ServiceError> {
    let tenant = admin_tenant(db, who, tenant).await?;
    let role = tenant_role(role)?;
    let label = validate_label(label)?;
    let (row, plain) = insert_token(db, Some(tenant.id), role, label).await?;
    Ok(NewTokenView {
        id: row.id,
        tenant: tenant.name,
        role: role_name(role),
        label: row.label,
        token: plain,
    })
}

/// Creates another administrator token (administrators only: `mtasts admin` acts as
/// [`Principal::operator`]); returns the plain token, shown once.
pub async fn create_admin_token(
    db: &HostDb,
    who: &Principal,
    label: &str,
) -> Result<String, ServiceError> {
    require_admin(who)?;
    let label = validate_label(label)?;
    let (_, plain) = insert_token(db, None, Role::Admin, label).await?;
    Ok(plain)
}

fn validate_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim().to_lowercase();
    let bad = |why: &str| invalid("email", EMAIL_RULE, format!("{email:?}: {why}"));
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("no @"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the local part is empty or longer than 64 octets"));
    }
    if local
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(bad("the local part contains spaces, controls or @"));
    }
    if normalize_domain(domain).is_err() || !domain.contains('.') {
        return Err(bad("the domain is not a domain name"));
    }
    if email.len() > 254 {
        return Err(bad("longer than 254 octets"));
    }
    Ok(email)
}

/// Creates a user of a tenant (administrators only). The password is hashed on a blocking
/// thread with `iterations` ([`crate::state::Limits::password_iterations`]).
pub async fn create_user(
    db: &HostDb,
    iterations: NonZeroU32,
    who: &Principal,
    tenant: &str,
    request: NewUserRequest,
) -> Result<UserView, ServiceError> {
    let tenant = admin_tenant(db, who, tenant).await?;
    let email = validate_email(&request.email)?;
    let length = request.password.chars().count();
    if !(12..=1024).contains(&length) {
        return Err(invalid(
            "password",
            PASSWORD_RULE,
            format!("{length} characters"),
        ));
    }
    let role = tenant_role(&request.role)?;
    let password = request.password;
    let password_hash = auth::password_work(move || auth::hash_password(&password, iterations))
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing failed: {e}")))?;
    let user = db
        .create_user(NewUser {
            tenant_id: Some(tenant.id),
            email: email.clone(),
            password_hash,
            role,
        })
        .await
        .map_err(|e| match e {
            HostDbError::Conflict(_) => ServiceError::Conflict(format!("{email} has an account")),
            e => e.into(),
        })?;
    Ok(UserView {
        id: user.id,
        tenant: tenant.name,
        email: user.email,
        role: role_name(user.role),
    })
}

/// Creates the first administrator token when there is none, and returns it (for the node to
/// print once at start-up); `None` when an administrator token exists.
pub async fn bootstrap_admin_token(state: &AppState) -> Result<Option<String>, ServiceError> {
    if state.db.count_admin_tokens().await? > 0 {
        return Ok(None);
    }
    let (_, plain) = insert_token(&state.db, None, Role::Admin, "bootstrap").await?;
    Ok(Some(plain))
}
