//! The rows of the hosting database as the rest of `mtasts serve` sees them.

use std::fmt;

/// A tenant: the owner of hosted domains, users and API tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Database id.
    pub id: i64,
    /// Unique display name.
    pub name: String,
    /// Unix seconds of creation.
    pub created_at: i64,
}

/// What a user or an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, across tenants.
    Admin,
    /// Everything within its tenant.
    Owner,
    /// Read only, within its tenant.
    ReadOnly,
}

impl Role {
    /// The stored and displayed name: `admin`, `owner` or `readonly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::ReadOnly => "readonly",
        }
    }

    /// The role named `name` (as [`Role::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            "readonly" => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dashboard user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// The tenant, or `None` for a user not bound to one (an operator).
    pub tenant_id: Option<i64>,
    /// Unique e-mail address, stored with ASCII letters lowercased.
    pub email: String,
    /// The password hash (PHC string); never the password.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

impl fmt::Debug for User {
    /// Leaves out `password_hash` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The tenant, or `None`.
    pub tenant_id: Option<i64>,
    /// E-mail address; ASCII letters are lowercased before it is stored or compared.
    pub email: String,
    /// The password hash.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

impl fmt::Debug for NewUser {
    /// Leaves out `password_hash` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// An API token; only its hash is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Database id.
    pub id: i64,
    /// The tenant, or `None` for a token not bound to one.
    pub tenant_id: Option<i64>,
    /// What the token may do.
    pub role: Role,
    /// Free text naming the token for its owner.
    pub label: String,
    /// Unique hash of the secret token.
    pub token_hash: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last authenticated use, as recorded by [`super::HostDb::touch_token`].
    pub last_used: Option<i64>,
    /// Unix seconds from which the token is refused; `None`: it never expires.
    pub expires_at: Option<i64>,
}

impl ApiToken {
    /// Whether the token is still valid at `now` (Unix seconds): it expires at `expires_at`.
    pub fn is_live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

impl fmt::Debug for ApiToken {
    /// Leaves out `token_hash` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .field("last_used", &self.last_used)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An API token to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The tenant, or `None`.
    pub tenant_id: Option<i64>,
    /// What the token may do.
    pub role: Role,
    /// Free text naming the token.
    pub label: String,
    /// Hash of the secret token (unique).
    pub token_hash: String,
    /// Unix seconds from which the token is refused; `None`: never.
    pub expires_at: Option<i64>,
}

impl fmt::Debug for NewToken {
    /// Leaves out `token_hash` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("tenant_id", &self.tenant_id)
            .field("role", &self.role)
            .field("label", &self.label)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A dashboard login session.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Hash of the session cookie's value (the key).
    pub id_hash: String,
    /// The logged-in user.
    pub user_id: i64,
    /// The session's anti-CSRF token.
    pub csrf_token: String,
    /// Unix seconds after which the session is void (the caller checks; see
    /// [`super::HostDb::purge_sessions`]).
    pub expires_at: i64,
}

impl fmt::Debug for Session {
    /// Leaves out `id_hash` and `csrf_token` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Whether a hosted domain is served normally or on its way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainState {
    /// Hosted.
    Active,
    /// Serving a `mode: none` policy until `remove_after`, then deleted (RFC 8461 §8.3).
    Removing,
}

impl DomainState {
    /// The stored name: `active` or `removing`.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Active => "active",
            DomainState::Removing => "removing",
        }
    }

    /// The state named `name` (as [`DomainState::as_str`] spells it).
    pub fn parse(name: &str) -> Option<DomainState> {
        match name {
            "active" => Some(DomainState::Active),
            "removing" => Some(DomainState::Removing),
            _ => None,
        }
    }
}

/// A hosted policy domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// Database id.
    pub id: i64,
    /// The owning tenant.
    pub tenant_id: i64,
    /// The policy domain: lowercase A-labels, no trailing dot; unique across tenants.
    pub name: String,
    /// Hosted or being removed.
    pub state: DomainState,
    /// The owner's own TLS-RPT `rua=` value, if any.
    pub rua: Option<String>,
    /// Whether the domain's `_smtp._tls` record names the service's own report addresses
    /// too (the default); `false` keeps only the owner's `rua`.
    pub reports_to_service: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// While [`DomainState::Removing`]: Unix seconds after which the domain is deleted.
    pub remove_after: Option<i64>,
    /// The newest policy version (versions count from 1).
    pub latest_version: i64,
    /// The version whose id the `_mta-sts` TXT record carries, once one was published.
    pub published_version: Option<i64>,
    /// The last delegation check's result, as JSON.
    pub verification: Option<String>,
    /// Unix seconds of the last delegation check.
    pub verified_at: Option<i64>,
}

/// A domain to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDomain {
    /// The owning tenant.
    pub tenant_id: i64,
    /// The policy domain; normalised (lowercase, trailing dot removed) before it is stored.
    pub name: String,
    /// The owner's own TLS-RPT `rua=` value, if any.
    pub rua: Option<String>,
    /// Whether the service's own report addresses are published too.
    pub reports_to_service: bool,
}

/// One version of a domain's policy: versions are never changed, only added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    /// The domain.
    pub domain_id: i64,
    /// 1 for the first version, then one more than the previous.
    pub version: i64,
    /// The policy `id` for the TXT record (unique per domain).
    pub policy_id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// The `mx:` patterns, in order.
    pub mx: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: i64,
    /// The policy file as served (CRLF line endings).
    pub body: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// The generation that created this version: once every live node has loaded it, every
    /// node serves this body and its id may be published.
    pub created_generation: i64,
    /// Unix seconds of the first publication of this version's id.
    pub published_at: Option<i64>,
}

/// A policy version to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    /// The policy `id`: 1–32 ASCII letters and digits (RFC 8461 §3.1), unique per domain.
    pub policy_id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// The `mx:` patterns.
    pub mx: Vec<String>,
    /// `max_age` in seconds, 0 ..= 31557600 (RFC 8461 §3.2).
    pub max_age: i64,
    /// The policy file as served.
    pub body: String,
    /// Unix seconds: the version's `created_at` (and a new domain's).
    pub now: i64,
}

/// A serve node's last heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    /// The node's stable id.
    pub node_id: String,
    /// The generation the node's listeners serve.
    pub loaded_generation: u64,
    /// Unix seconds of the last heartbeat.
    pub last_seen: i64,
    /// Unix seconds of the node's first heartbeat.
    pub started_at: i64,
}

/// The certificate of `mta-sts.<domain>`.
#[derive(Clone, PartialEq, Eq)]
pub struct CertRow {
    /// The hosted domain (not the `mta-sts.` host name); must be hosted.
    pub domain: String,
    /// The certificate chain, leaf first, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// Unix seconds: start of validity.
    pub not_before: i64,
    /// Unix seconds: end of validity.
    pub not_after: i64,
    /// Which CA (directory URL or name) issued it.
    pub issued_by: String,
    /// Unix seconds of storage.
    pub updated_at: i64,
}

impl fmt::Debug for CertRow {
    /// Leaves out `key_pem` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertRow")
            .field("domain", &self.domain)
            .field("chain_pem", &self.chain_pem)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("issued_by", &self.issued_by)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// The ACME scheduler's bookkeeping for one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeState {
    /// The hosted domain; must be hosted.
    pub domain: String,
    /// Consecutive failed orders.
    pub failures: u32,
    /// Unix seconds before which no new order is placed.
    pub next_attempt_at: i64,
    /// The last failure, for the dashboard (cut to [`super::MAX_ERROR_BYTES`] when stored).
    pub last_error: Option<String>,
}

/// A pending ACME challenge that every node must answer.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// The challenge token (the key).
    pub token: String,
    /// The hosted domain being validated (not the `mta-sts.` host name); must be hosted.
    pub domain: String,
    /// `http-01` or `tls-alpn-01`.
    pub kind: String,
    /// The key authorization (the HTTP-01 response body).
    pub key_authorization: String,
    /// TLS-ALPN-01: the `acme-tls/1` certificate, PEM.
    pub cert_pem: Option<String>,
    /// TLS-ALPN-01: its private key, PEM.
    pub key_pem: Option<String>,
    /// Unix seconds after which the challenge is no longer served.
    pub expires_at: i64,
}

impl fmt::Debug for ChallengeRow {
    /// Leaves out `key_pem` (secret material).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeRow")
            .field("token", &self.token)
            .field("domain", &self.domain)
            .field("kind", &self.kind)
            .field("key_authorization", &self.key_authorization)
            .field("cert_pem", &self.cert_pem)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Everything a node's listeners serve, read in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    /// The generation this state is consistent with.
    pub generation: u64,
    /// Every hosted domain (active and removing), sorted by name, with its latest version and
    /// the policy id of its published version.
    pub domains: Vec<(Domain, PolicyVersion, Option<String>)>,
    /// Every stored certificate, sorted by domain.
    pub certificates: Vec<CertRow>,
    /// The challenges not yet expired (by this machine's clock), sorted by token.
    pub challenges: Vec<ChallengeRow>,
}
