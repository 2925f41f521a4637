//! What the API and the dashboard show of a hosted domain, its versions, tenants, tokens and
//! users: the serialised views, and [`detail`], which reads a domain's view from the database.

use std::fmt;

use mtasts_proto::hosted::delegation::RecordKind;
use mtasts_proto::hosted::reporting::ReportAddresses;
use mtasts_store::host::{Domain, DomainState, Role};
use serde::{Serialize, Serializer};

use super::error::ServiceError;
use crate::state::AppState;
use crate::verification::{RecordStatus, Verification};

/// A certificate closer than this to its end is reported as `expiring`: renewal starts 30
/// days before, so by then it has failed for two weeks.
const CERT_EXPIRING_WITHIN: i64 = 14 * 86_400;

/// A hosted domain as the API and dashboard show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainDetail {
    /// The policy domain.
    pub domain: String,
    /// The owning tenant's name.
    pub tenant: String,
    /// Served normally or on its way out (`active` or `removing` in JSON).
    #[serde(serialize_with = "state_name")]
    pub state: DomainState,
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
    /// The owner's own TLS-RPT `rua=` URIs, if any.
    pub rua: Option<String>,
    /// Whether the published TLS-RPT record names the service's own report addresses.
    pub reports_to_service: bool,
    /// Where the domain's reports go, and what the owner adds for DMARC.
    pub reports: ReportsView,
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

/// Where a hosted domain's reports go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportsView {
    /// The `rua=` value published at `_smtp._tls.<domain>.t<tenant>.<zone>` (the service's
    /// own URIs unless the owner opted out, then the owner's); `None`: no TLS-RPT record,
    /// and then the `tlsrpt` CNAME is not among `records`.
    pub tlsrpt_rua: Option<String>,
    /// The URI the owner adds to the `rua=` of their `_dmarc.<domain>` record to have DMARC
    /// aggregate reports sent here (`mailto:dmarc@reports.<zone>`).
    pub dmarc_rua: String,
    /// The name under which the service authorizes itself to receive the domain's DMARC
    /// reports (RFC 7489 §7.1): `<domain>._report._dmarc.reports.<zone>`, TXT `v=DMARC1`.
    pub dmarc_authorization: String,
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

/// One page of a list (`items`), and the cursor of the page after it (`None`: this is the
/// last page).
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows of this page, in the list's order.
    pub items: Vec<T>,
    /// The opaque cursor ([`mtasts_proto::hosted::cursor::Cursor`]) of the next page.
    pub next_cursor: Option<String>,
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
    /// Owner or read-only (`owner`, `readonly` in JSON).
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// The label given.
    pub label: String,
    /// When it stops working (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
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
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An API token as listed: never its hash or its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// The token's id (for revoking it).
    pub id: i64,
    /// The tenant it acts for; `None` for an administrator token.
    pub tenant: Option<String>,
    /// `admin`, `owner` or `readonly` in JSON.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// The label given.
    pub label: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it stops working (Unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// When it was last used (Unix seconds, recorded at most once a minute); `None`: never.
    pub last_used: Option<i64>,
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
    /// Owner or read-only (`owner`, `readonly` in JSON).
    #[serde(serialize_with = "role_name")]
    pub role: Role,
}

fn role_name<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

fn state_name<S: Serializer>(state: &DomainState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

/// The view of `domain` (of the tenant named `tenant`) as it is now.
pub(super) async fn detail(
    state: &AppState,
    domain: Domain,
    tenant: &str,
) -> Result<DomainDetail, ServiceError> {
    // The two versions shown, not the whole history: a page of domains with long histories
    // reads two rows per domain.
    let Some(latest) = state.db.version(domain.id, domain.latest_version).await? else {
        // A domain always has its latest version until it is deleted (a removal completing
        // between reading its row and its version): then it is simply gone.
        return Err(match state.db.domain(&domain.name).await? {
            None => ServiceError::NotFound,
            Some(_) => ServiceError::Internal(format!("{} has no policy version", domain.name)),
        });
    };
    let published = match domain.published_version {
        Some(n) if n == latest.version => Some(latest.clone()),
        Some(n) => state.db.version(domain.id, n).await?,
        None => None,
    };
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
    let addresses = ReportAddresses::new(&state.delegation);
    let reports = ReportsView {
        tlsrpt_rua: addresses.tlsrpt_rua(
            domain.rua.as_deref(),
            domain.reports_to_service,
            state.report_mail,
        ),
        dmarc_rua: addresses.dmarc_rua(),
        dmarc_authorization: addresses.dmarc_authorization_name(&domain.name),
    };
    let records = state
        .delegation
        .records(&domain.name, domain.tenant_id)
        .into_iter()
        // The zone answers `_smtp._tls` only when there is a rua to publish, so only then
        // must the owner point it at us.
        .filter(|r| r.kind != RecordKind::TlsRpt || reports.tlsrpt_rua.is_some())
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
        state: domain.state,
        mode: latest.mode.clone(),
        mx: latest.mx.clone(),
        max_age: latest.max_age,
        policy: latest.body.clone(),
        policy_id: published.map(|v| v.policy_id),
        pending_policy_id: pending,
        version: latest.version,
        rua: domain.rua,
        reports_to_service: domain.reports_to_service,
        reports,
        records,
        certificate,
        verification,
        remove_after: domain.remove_after,
        created_at: domain.created_at,
        domain: domain.name,
    })
}
