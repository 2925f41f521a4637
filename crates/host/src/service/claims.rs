//! Proving control of a domain with a TXT record, and what happens when a tenant adds a name
//! the service already hosts.
//!
//! A tenant asks for a claim on a name ([`claim_domain`], issued for any valid name, hosted
//! or not, so it tells nothing), publishes `_mtasts-claim.<domain> TXT
//! "mtasts-claim=<token>"`, then adds the domain as usual. If another tenant hosts it, the
//! open claim is checked against DNS, and when the record is there the domain moves to the
//! claimant ([`taken_name`]); otherwise the answer is the one for any domain the caller cannot
//! see. The rules of the record are [`mtasts_proto::hosted::claim`]'s.

use aws_lc_rs::rand;
use mtasts_proto::hosted::claim::{
    CLAIM_TOKEN_BYTES, MAX_OPEN_CLAIMS, claim_expiry, claim_proved, claim_token, claim_txt_name,
    claim_txt_value,
};
use mtasts_proto::hosted::versions::next_policy_id;
use mtasts_proto::sts::policy::Policy;
use mtasts_store::host::{DomainState, Tenant};
use serde::Serialize;

use super::domains::{
    check_published_lengths, latest_version, new_version, owning_tenant, reread, validate_domain,
    version_time,
};
use super::error::{ServiceError, require_write};
use super::lock::lock_domain;
use super::tenancy::tenant_of;
use super::views::{DomainDetail, detail};
use crate::auth::Principal;
use crate::state::AppState;

/// A claim as the API returns it: the TXT record to publish and until when it counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimView {
    /// The claimed domain (normalised).
    pub domain: String,
    /// The owner name of the TXT record to publish (`_mtasts-claim.<domain>`).
    pub txt_name: String,
    /// The text of the TXT record (`mtasts-claim=<token>`).
    pub txt_value: String,
    /// When the claim can no longer be proved (Unix seconds).
    pub expires_at: i64,
}

/// Issues (or, while one is open, returns again) the claim of the caller's tenant (an
/// administrator names the tenant) on `name`. Any valid name gets one, hosted or not.
pub async fn claim_domain(
    state: &AppState,
    who: &Principal,
    name: &str,
    tenant: Option<&str>,
) -> Result<ClaimView, ServiceError> {
    require_write(who)?;
    let name = validate_domain(state, name)?;
    let tenant = owning_tenant(state, who, tenant).await?;
    check_published_lengths(state, &name, tenant.id)?;
    let mut random = [0u8; CLAIM_TOKEN_BYTES];
    // The system RNG failing means the OS cannot provide entropy; issuing a predictable
    // token instead would let anyone guess the record.
    rand::fill(&mut random).expect("the system random number generator failed");
    let now = state.now();
    let claim = state
        .db
        .open_claim(
            tenant.id,
            &name,
            &claim_token(&random),
            now,
            claim_expiry(now),
            MAX_OPEN_CLAIMS,
        )
        .await?;
    Ok(ClaimView {
        txt_name: claim_txt_name(&claim.domain),
        txt_value: claim_txt_value(&claim.token),
        domain: claim.domain,
        expires_at: claim.expires_at,
    })
}

/// Withdraws the caller's claim on `name` (an administrator names the tenant). Not found when
/// there is none.
pub async fn drop_claim(
    state: &AppState,
    who: &Principal,
    name: &str,
    tenant: Option<&str>,
) -> Result<(), ServiceError> {
    require_write(who)?;
    let name = validate_domain(state, name)?;
    let tenant = owning_tenant(state, who, tenant).await?;
    if state.db.delete_claim(tenant.id, &name).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// `tenant` (on behalf of `who`) asked to host `name`, which the service already hosts.
/// Its own domain: a conflict. Another tenant's: moved to `tenant` when it holds an open
/// claim whose TXT record is published, with `policy` and the report settings (`rua`,
/// `reports_to_service`) as asked; otherwise a
/// conflict for an administrator (who sees every tenant) and not found for anyone else,
/// the same answer as for any domain they cannot see.
pub(super) async fn taken_name(
    state: &AppState,
    who: &Principal,
    tenant: &Tenant,
    name: &str,
    reports: (Option<&str>, bool),
    policy: &Policy,
) -> Result<DomainDetail, ServiceError> {
    let Some(existing) = state.db.domain(name).await? else {
        return Err(ServiceError::Conflict(format!(
            "{name} was removed while it was being added; try again"
        )));
    };
    if existing.tenant_id == tenant.id {
        return Err(ServiceError::Conflict(match existing.state {
            DomainState::Removing => format!(
                "{name} is already hosted by this service and being removed; cancel the \
                 removal instead (POST /api/v1/domains/{name}/restore)"
            ),
            _ => format!("{name} is already hosted by this service"),
        }));
    }
    if claim_published(state, tenant.id, name).await? {
        return transfer(state, tenant, name, reports, policy).await;
    }
    if who.can_see(existing.tenant_id) {
        return Err(ServiceError::Conflict(format!(
            "{name} is already hosted by this service for another tenant; the new tenant can \
             prove control of it with a claim (POST /api/v1/domains/{name}/claim)"
        )));
    }
    Err(ServiceError::NotFound)
}

/// Whether `tenant_id` holds an open claim on `name` whose TXT record DNS answers now. A
/// failed lookup proves nothing; it is logged, and the caller sees the usual answer.
async fn claim_published(
    state: &AppState,
    tenant_id: i64,
    name: &str,
) -> Result<bool, ServiceError> {
    let Some(claim) = state.db.open_claim_of(tenant_id, name, state.now()).await? else {
        return Ok(false);
    };
    let txt_name = claim_txt_name(name);
    match state.dns.txt(&txt_name).await {
        Ok(records) => {
            let proved = claim_proved(&records, &claim.token);
            if !proved {
                tracing::info!(domain = %name, tenant_id, "the claim's TXT record is not published");
            }
            Ok(proved)
        }
        Err(error) => {
            tracing::info!(domain = %name, tenant_id, %error, "looking up a claim's TXT record failed");
            Ok(false)
        }
    }
}

/// Moves `name` to `tenant` under the domain's change lock: the policy asked for becomes
/// its next version (the id keeps moving forward from the old owner's), a removal under way
/// is cancelled, the delegation must be published again (the CNAME targets carry the
/// tenant's label), and the claim is consumed. Logged at `warn`: a tenant lost a domain.
async fn transfer(
    state: &AppState,
    tenant: &Tenant,
    name: &str,
    (rua, to_service): (Option<&str>, bool),
    policy: &Policy,
) -> Result<DomainDetail, ServiceError> {
    let _guard = lock_domain(state, name).await?;
    let domain = reread(state, name).await?;
    if domain.tenant_id == tenant.id {
        return Err(ServiceError::Conflict(format!(
            "{name} is already hosted by this service"
        )));
    }
    let latest = latest_version(state, &domain).await?;
    let at = version_time(state, &latest);
    let version = new_version(policy, next_policy_id(at, Some(&latest.policy_id)), at);
    let added = state
        .db
        .transfer_domain(
            domain.id,
            domain.tenant_id,
            tenant.id,
            rua,
            to_service,
            version,
        )
        .await?;
    let previous = tenant_of(state, domain.tenant_id).await.map(|t| t.name);
    tracing::warn!(
        domain = %name,
        from_tenant = previous.as_deref().unwrap_or("?"),
        to_tenant = %tenant.name,
        version = added.version,
        "domain moved to the tenant that proved control of it with a TXT claim"
    );
    let domain = reread(state, name).await?;
    detail(state, domain, &tenant.name).await
}
