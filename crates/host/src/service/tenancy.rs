//! Tenants, their API tokens and users (administrators only), and the first administrator
//! token. The API and `mtasts admin` both call these, so the rules (tenant names, the two
//! tenant roles and their one spelling, labels, e-mail addresses, passwords) exist once. They
//! need only the database.

use std::fmt;
use std::num::NonZeroU32;

use mtasts_proto::domain::normalize_domain;
use mtasts_store::host::{ApiToken, HostDb, HostDbError, NewToken, NewUser, Role, Tenant};

use super::error::{ServiceError, invalid, require_admin};
use super::views::{NewTokenView, TenantView, UserView};
use crate::auth::{self, Principal};
use crate::state::AppState;

const TENANT_NAME_RULE: &str =
    "mtasts: a tenant name is 1 to 63 lowercase letters, digits and inner hyphens";
const ROLE_RULE: &str = "mtasts: a tenant's tokens and users are owner or readonly";
const LABEL_RULE: &str = "mtasts: a label is 1 to 100 characters without control characters";
const EMAIL_RULE: &str =
    "RFC 5321 §4.1.2: an e-mail address local@domain (local part up to 64 octets)";
const PASSWORD_RULE: &str = "mtasts: a password is 12 to 1024 characters";

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

/// The tenant a row refers to; its absence is a broken reference, not the client's fault.
pub(super) async fn tenant_of(state: &AppState, id: i64) -> Result<Tenant, ServiceError> {
    state
        .db
        .tenant(id)
        .await?
        .ok_or_else(|| ServiceError::Internal(format!("tenant {id} does not exist")))
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
pub(super) async fn tenant_named(db: &HostDb, name: &str) -> Result<Option<Tenant>, ServiceError> {
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
        role,
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
/// thread with `iterations` ([`crate::state::ApiLimits::password_iterations`]).
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
        role: user.role,
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
