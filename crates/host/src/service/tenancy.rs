//! Tenants, their API tokens and users (administrators only), listing and revoking tokens
//! (administrators, and owners for their tenant's), and the first administrator token. The API
//! and `mtasts admin` both call these, so the rules (tenant names, the two tenant roles and
//! their one spelling, labels, token lifetimes, e-mail addresses, passwords) exist once. They
//! need only the database.

use std::fmt;
use std::num::NonZeroU32;

use mtasts_proto::domain::normalize_domain;
use mtasts_store::host::{ApiToken, HostDb, HostDbError, NewToken, NewUser, Role, Tenant};

use super::error::{ServiceError, invalid, require_admin, require_write};
use super::views::{NewTokenView, TenantView, TokenView, UserView};
use crate::auth::{self, Principal};
use crate::state::AppState;

const TENANT_NAME_RULE: &str =
    "mtasts: a tenant name is 1 to 63 lowercase letters, digits and inner hyphens";
const ROLE_RULE: &str = "mtasts: a tenant's tokens and users are owner or readonly";
const LABEL_RULE: &str = "mtasts: a label is 1 to 100 characters without control characters";
const EMAIL_RULE: &str =
    "RFC 5321 §4.1.2: an e-mail address local@domain (local part up to 64 octets)";
const PASSWORD_RULE: &str = "mtasts: a password is 12 to 1024 characters";
const EXPIRY_RULE: &str = "mtasts: a token expires after 1 to 3650 days, or never (absent or null)";
/// The longest lifetime a token may be given, in days (ten years).
pub const MAX_TOKEN_DAYS: i64 = 3650;
const DAY: i64 = 86_400;

/// A new tenant token, as requested.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewTokenRequest {
    /// `owner` or `readonly`.
    pub role: String,
    /// A note to recognise the token by.
    pub label: String,
    /// Days until the token stops working (1 to [`MAX_TOKEN_DAYS`]); `None`: never.
    pub expires_in_days: Option<i64>,
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

/// When a token made at `now` to live `days` days expires (Unix seconds); `None` for `None`.
fn expiry(days: Option<i64>, now: i64) -> Result<Option<i64>, ServiceError> {
    match days {
        None => Ok(None),
        Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Ok(Some(now + days * DAY)),
        Some(days) => Err(invalid(
            "expires_in_days",
            EXPIRY_RULE,
            format!("{days} is not between 1 and {MAX_TOKEN_DAYS}"),
        )),
    }
}

/// Stores a new token; returns its row and the plain token, which exists only here.
async fn insert_token(
    db: &HostDb,
    tenant_id: Option<i64>,
    role: Role,
    label: &str,
    expires_at: Option<i64>,
) -> Result<(ApiToken, String), ServiceError> {
    let (plain, hash) = auth::new_token();
    let row = db
        .create_token(NewToken {
            tenant_id,
            role,
            label: label.to_owned(),
            token_hash: hash,
            expires_at,
        })
        .await?;
    Ok((row, plain))
}

/// Creates an API token for a tenant (administrators only); the plain token is returned
/// once and only its hash is stored. `now` (Unix seconds) starts its lifetime.
pub async fn create_token(
    db: &HostDb,
    who: &Principal,
    tenant: &str,
    request: NewTokenRequest,
    now: i64,
) -> Result<NewTokenView, ServiceError> {
    let tenant = admin_tenant(db, who, tenant).await?;
    let role = tenant_role(&request.role)?;
    let label = validate_label(&request.label)?;
    let expires_at = expiry(request.expires_in_days, now)?;
    let (row, plain) = insert_token(db, Some(tenant.id), role, label, expires_at).await?;
    Ok(NewTokenView {
        id: row.id,
        tenant: tenant.name,
        role,
        label: row.label,
        expires_at: row.expires_at,
        token: plain,
    })
}

/// Creates another administrator token (administrators only: `mtasts admin` acts as
/// [`Principal::operator`]), valid for `expires_in_days` from `now` (`None`: no end); returns
/// the plain token, shown once.
pub async fn create_admin_token(
    db: &HostDb,
    who: &Principal,
    label: &str,
    expires_in_days: Option<i64>,
    now: i64,
) -> Result<String, ServiceError> {
    require_admin(who)?;
    let label = validate_label(label)?;
    let expires_at = expiry(expires_in_days, now)?;
    let (_, plain) = insert_token(db, None, Role::Admin, label, expires_at).await?;
    Ok(plain)
}

/// The tokens `who` may see, oldest first, expired ones included (so they can be revoked):
/// administrators every token, or those of `tenant` when given; owners their tenant's
/// (`tenant`, when given, must be theirs). Read-only principals may not list tokens
/// ([`ServiceError::Forbidden`]). Never a hash or a token's text.
pub async fn list_tokens(
    db: &HostDb,
    who: &Principal,
    tenant: Option<&str>,
) -> Result<Vec<TokenView>, ServiceError> {
    require_write(who)?;
    let tenant = match tenant {
        Some(name) => {
            let tenant = tenant_named(db, name)
                .await?
                .filter(|t| who.can_see(t.id))
                .ok_or(ServiceError::NotFound)?;
            Some(tenant)
        }
        None => match who.tenant_id {
            Some(id) => Some(db.tenant(id).await?.ok_or(ServiceError::NotFound)?),
            None => None,
        },
    };
    let rows = db.tokens(tenant.as_ref().map(|t| t.id)).await?;
    let names: Vec<Tenant> = match tenant {
        Some(tenant) => vec![tenant],
        None => db.list_tenants().await?,
    };
    Ok(rows
        .into_iter()
        .map(|row| TokenView {
            id: row.id,
            tenant: row
                .tenant_id
                .and_then(|id| names.iter().find(|t| t.id == id).map(|t| t.name.clone())),
            role: row.role,
            label: row.label,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used: row.last_used,
        })
        .collect())
}

/// Revokes token `id`: its row is deleted, so every node refuses it from its next request on
/// (each request reads its token from the database), and dashboard sessions opened with it
/// end. Administrators may revoke any token, owners their tenant's; another tenant's token,
/// or an administrator token for a non-administrator, is [`ServiceError::NotFound`] like one
/// that does not exist; read-only principals get [`ServiceError::Forbidden`].
pub async fn revoke_token(db: &HostDb, who: &Principal, id: i64) -> Result<(), ServiceError> {
    let token = db.token(id).await?.ok_or(ServiceError::NotFound)?;
    let visible = who.is_admin() || token.tenant_id.is_some_and(|t| who.can_see(t));
    if !visible {
        return Err(ServiceError::NotFound);
    }
    require_write(who)?;
    if !db.delete_token(id).await? {
        // Revoked meanwhile by someone else: gone either way.
        return Err(ServiceError::NotFound);
    }
    tracing::info!(
        token_id = id,
        by_token = who.token_id,
        by_user = who.user_id,
        "API token revoked"
    );
    Ok(())
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
    let (_, plain) = insert_token(&state.db, None, Role::Admin, "bootstrap", None).await?;
    Ok(Some(plain))
}
