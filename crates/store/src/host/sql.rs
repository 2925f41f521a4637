//! The statements of the hosting database and the rows they read. Written once for both
//! drivers: `$N` placeholders, `RETURNING` and `ON CONFLICT … DO UPDATE` mean the same in
//! SQLite and PostgreSQL.

use super::HostDbError;
use super::limits;
use super::types::{
    AcmeState, ApiToken, CertRow, ChallengeRow, Domain, DomainState, NodeRow, PolicyVersion,
    Session, Tenant, User,
};

/// The table that records applied host migrations, apart from the policy cache's
/// `_mtasts_store_migrations`, so both migrate the same database independently.
pub(super) const MIGRATIONS_TABLE: &str = "_mtasts_host_migrations";

// Text columns are sorted in Rust, not with ORDER BY: PostgreSQL would sort by the database's
// collation, which differs from SQLite's byte order (and between servers).

// Column lists, as macros so `concat!` can build whole statements at compile time.
macro_rules! tenant_columns {
    () => {
        "id, name, created_at"
    };
}
macro_rules! user_columns {
    () => {
        "id, tenant_id, email, password_hash, role"
    };
}
macro_rules! token_columns {
    () => {
        "id, tenant_id, role, label, token_hash, created_at, last_used, expires_at"
    };
}
macro_rules! session_columns {
    () => {
        "id_hash, user_id, csrf_token, expires_at"
    };
}
macro_rules! domain_columns {
    () => {
        "id, tenant_id, name, state, rua, created_at, remove_after, latest_version, \
         published_version, verification, verified_at, reports_to_service"
    };
}
macro_rules! version_columns {
    () => {
        "domain_id, version, policy_id, mode, mx, max_age, body, created_at, \
         created_generation, published_at"
    };
}
// The paginated reads (`pages.rs`) select the same columns.
pub(super) use {domain_columns, version_columns};
macro_rules! node_columns {
    () => {
        "node_id, loaded_generation, last_seen, started_at"
    };
}
macro_rules! cert_columns {
    () => {
        "domain, chain_pem, key_pem, not_before, not_after, issued_by, updated_at"
    };
}
macro_rules! acme_state_columns {
    () => {
        "domain, failures, next_attempt_at, last_error"
    };
}
macro_rules! challenge_columns {
    () => {
        "token, domain, kind, key_authorization, cert_pem, key_pem, expires_at"
    };
}

// Certificates, ACME states and challenges belong to a hosted domain (`$1`) unless the
// statement's last parameter says they are the service's own (see `acme.rs`).
macro_rules! hosted {
    () => {
        "EXISTS (SELECT 1 FROM host_domains WHERE name = $1)"
    };
}

// Generation.
pub(super) const GENERATION: &str = "SELECT value FROM host_generation WHERE id = 1";
pub(super) const BUMP_GENERATION: &str =
    "UPDATE host_generation SET value = value + 1 WHERE id = 1 RETURNING value";

// Tenants.
pub(super) const INSERT_TENANT: &str = concat!(
    "INSERT INTO host_tenants (name, created_at) VALUES ($1, $2) RETURNING ",
    tenant_columns!()
);
pub(super) const TENANT_BY_ID: &str = concat!(
    "SELECT ",
    tenant_columns!(),
    " FROM host_tenants WHERE id = $1"
);
pub(super) const TENANT_BY_NAME: &str = concat!(
    "SELECT ",
    tenant_columns!(),
    " FROM host_tenants WHERE name = $1"
);
pub(super) const LIST_TENANTS: &str = concat!("SELECT ", tenant_columns!(), " FROM host_tenants");

// Users.
pub(super) const INSERT_USER: &str = concat!(
    "INSERT INTO host_users (tenant_id, email, password_hash, role) VALUES ($1, $2, $3, $4) \
     RETURNING ",
    user_columns!()
);
pub(super) const USER_BY_ID: &str =
    concat!("SELECT ", user_columns!(), " FROM host_users WHERE id = $1");
pub(super) const USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM host_users WHERE email = $1"
);

// API tokens.
pub(super) const INSERT_TOKEN: &str = concat!(
    "INSERT INTO host_api_tokens (tenant_id, role, label, token_hash, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    token_columns!()
);
pub(super) const TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM host_api_tokens WHERE token_hash = $1"
);
pub(super) const TOKEN_BY_ID: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM host_api_tokens WHERE id = $1"
);
pub(super) const ALL_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM host_api_tokens ORDER BY id"
);
pub(super) const TENANT_TOKENS: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM host_api_tokens WHERE tenant_id = $1 ORDER BY id"
);
// Requests on several nodes may record their use out of order: keep the newest.
pub(super) const TOUCH_TOKEN: &str = "UPDATE host_api_tokens SET last_used = \
     CASE WHEN last_used IS NULL OR last_used < $2 THEN $2 ELSE last_used END WHERE id = $1";
pub(super) const DELETE_TOKEN: &str = "DELETE FROM host_api_tokens WHERE id = $1";
pub(super) const COUNT_ADMIN_TOKENS: &str =
    "SELECT COUNT(*) FROM host_api_tokens WHERE role = 'admin'";

// Sessions.
pub(super) const INSERT_SESSION: &str = concat!(
    "INSERT INTO host_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4)"
);
pub(super) const SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM host_sessions WHERE id_hash = $1"
);
pub(super) const DELETE_SESSION: &str = "DELETE FROM host_sessions WHERE id_hash = $1";
pub(super) const PURGE_SESSIONS: &str = "DELETE FROM host_sessions WHERE expires_at <= $1";

// Domains.
pub(super) const INSERT_DOMAIN: &str = concat!(
    "INSERT INTO host_domains (tenant_id, name, state, rua, created_at, latest_version, \
     reports_to_service) VALUES ($1, $2, 'active', $3, $4, 1, $5) RETURNING ",
    domain_columns!()
);
pub(super) const DOMAIN_BY_NAME: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE name = $1"
);
pub(super) const DOMAIN_BY_ID: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE id = $1"
);
pub(super) const ALL_DOMAINS: &str = concat!("SELECT ", domain_columns!(), " FROM host_domains");
pub(super) const TENANT_DOMAINS: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE tenant_id = $1"
);
pub(super) const NEXT_VERSION: &str = "UPDATE host_domains SET latest_version = latest_version + 1 \
     WHERE id = $1 RETURNING latest_version";
pub(super) const START_REMOVAL: &str = "UPDATE host_domains SET state = 'removing', \
     remove_after = $2, latest_version = latest_version + 1 \
     WHERE id = $1 AND state = 'active' RETURNING latest_version";
pub(super) const DOMAIN_EXISTS: &str = "SELECT id FROM host_domains WHERE id = $1";
pub(super) const PUBLISHED_VERSION: &str =
    "SELECT published_version FROM host_domains WHERE id = $1";
pub(super) const MARK_PUBLISHED: &str = "UPDATE host_policy_versions \
     SET published_at = COALESCE(published_at, $3) WHERE domain_id = $1 AND version = $2";
pub(super) const SET_PUBLISHED: &str =
    "UPDATE host_domains SET published_version = $2 WHERE id = $1";
pub(super) const SET_RUA: &str = "UPDATE host_domains SET rua = $2 WHERE id = $1";
pub(super) const SET_REPORTS_TO_SERVICE: &str =
    "UPDATE host_domains SET reports_to_service = $2 WHERE id = $1";
pub(super) const SET_VERIFICATION: &str =
    "UPDATE host_domains SET verification = $2, verified_at = $3 WHERE id = $1";
// Versions, certificate, ACME state and challenges go with it (ON DELETE CASCADE).
pub(super) const DELETE_DOMAIN: &str = "DELETE FROM host_domains WHERE id = $1";
pub(super) const DUE_FOR_REMOVAL: &str = concat!(
    "SELECT ",
    domain_columns!(),
    " FROM host_domains WHERE state = 'removing' AND remove_after <= $1"
);

// Policy versions.
pub(super) const INSERT_VERSION: &str = concat!(
    "INSERT INTO host_policy_versions (domain_id, version, policy_id, mode, mx, max_age, body, \
     created_at, created_generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
    version_columns!()
);
pub(super) const VERSIONS: &str = concat!(
    "SELECT ",
    version_columns!(),
    " FROM host_policy_versions WHERE domain_id = $1 ORDER BY version DESC"
);
pub(super) const LATEST_VERSIONS: &str = "SELECT v.domain_id, v.version, v.policy_id, v.mode, \
     v.mx, v.max_age, v.body, v.created_at, v.created_generation, v.published_at \
     FROM host_policy_versions v JOIN host_domains d \
     ON d.id = v.domain_id AND d.latest_version = v.version";
pub(super) const PUBLISHED_IDS: &str = "SELECT v.domain_id, v.policy_id \
     FROM host_policy_versions v JOIN host_domains d \
     ON d.id = v.domain_id AND d.published_version = v.version";

// Nodes.
pub(super) const HEARTBEAT: &str = "INSERT INTO host_nodes (node_id, loaded_generation, \
     last_seen, started_at) VALUES ($1, $2, $3, $3) ON CONFLICT (node_id) DO UPDATE SET \
     loaded_generation = excluded.loaded_generation, last_seen = excluded.last_seen";
pub(super) const LIVE_NODES: &str = concat!(
    "SELECT ",
    node_columns!(),
    " FROM host_nodes WHERE last_seen >= $1"
);
// The same, stamped and compared with the database's clock (one clock for every node).
// SQLite's `unixepoch()` (3.38+; the bundled library is newer) and PostgreSQL's `now()` both
// give whole Unix seconds here (PostgreSQL's rounded down, as SQLite's).
macro_rules! heartbeat_at {
    ($now:literal) => {
        concat!(
            "INSERT INTO host_nodes (node_id, loaded_generation, last_seen, started_at) \
             VALUES ($1, $2, ",
            $now,
            ", ",
            $now,
            ") ON CONFLICT (node_id) DO UPDATE SET \
             loaded_generation = excluded.loaded_generation, last_seen = excluded.last_seen"
        )
    };
}
macro_rules! live_within {
    ($now:literal) => {
        concat!(
            "SELECT ",
            node_columns!(),
            " FROM host_nodes WHERE last_seen >= ",
            $now,
            " - $1"
        )
    };
}
pub(super) const SQLITE_HEARTBEAT_DB_TIME: &str = heartbeat_at!("unixepoch()");
pub(super) const POSTGRES_HEARTBEAT_DB_TIME: &str =
    heartbeat_at!("CAST(floor(extract(epoch FROM now())) AS bigint)");
pub(super) const SQLITE_LIVE_NODES_WITHIN: &str = live_within!("unixepoch()");
pub(super) const POSTGRES_LIVE_NODES_WITHIN: &str =
    live_within!("CAST(floor(extract(epoch FROM now())) AS bigint)");

// Certificates and ACME.
pub(super) const PUT_CERTIFICATE: &str = concat!(
    "INSERT INTO host_certificates (",
    cert_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $8 OR ",
    hosted!(),
    " ON CONFLICT (domain) DO UPDATE SET \
     chain_pem = excluded.chain_pem, key_pem = excluded.key_pem, \
     not_before = excluded.not_before, not_after = excluded.not_after, \
     issued_by = excluded.issued_by, updated_at = excluded.updated_at"
);
pub(super) const CERTIFICATE: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM host_certificates WHERE domain = $1"
);
pub(super) const CERTIFICATES: &str =
    concat!("SELECT ", cert_columns!(), " FROM host_certificates");
pub(super) const ACME_STATE: &str = concat!(
    "SELECT ",
    acme_state_columns!(),
    " FROM host_acme_states WHERE domain = $1"
);
pub(super) const SET_ACME_STATE: &str = concat!(
    "INSERT INTO host_acme_states (",
    acme_state_columns!(),
    ") SELECT $1, $2, $3, $4 WHERE $5 OR ",
    hosted!(),
    " ON CONFLICT (domain) DO UPDATE SET \
     failures = excluded.failures, next_attempt_at = excluded.next_attempt_at, \
     last_error = excluded.last_error"
);
pub(super) const ACME_ACCOUNT: &str =
    "SELECT credentials_json FROM host_acme_accounts WHERE directory_url = $1";
pub(super) const PUT_ACME_ACCOUNT: &str = "INSERT INTO host_acme_accounts \
     (directory_url, credentials_json) VALUES ($1, $2) ON CONFLICT (directory_url) \
     DO UPDATE SET credentials_json = excluded.credentials_json";

// Challenges.
pub(super) const PUT_CHALLENGE: &str = concat!(
    "INSERT INTO host_challenges (",
    challenge_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $8 OR EXISTS \
     (SELECT 1 FROM host_domains WHERE name = $2) ON CONFLICT (token) DO UPDATE SET \
     domain = excluded.domain, kind = excluded.kind, \
     key_authorization = excluded.key_authorization, cert_pem = excluded.cert_pem, \
     key_pem = excluded.key_pem, expires_at = excluded.expires_at"
);
pub(super) const DELETE_CHALLENGE: &str = "DELETE FROM host_challenges WHERE token = $1";
pub(super) const CHALLENGES: &str = concat!(
    "SELECT ",
    challenge_columns!(),
    " FROM host_challenges WHERE expires_at > $1"
);

// Advisory locks (PostgreSQL only; SQLite locks are process-local).
pub(super) const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
pub(super) const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
// A bigint advisory key shows in pg_locks split into classid (high half) and objid (low half),
// objsubid 1.
pub(super) const LOCK_HELD: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks \
     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted \
     AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)";

/// A tenant as read back.
#[derive(sqlx::FromRow)]
pub(super) struct TenantRow {
    id: i64,
    name: String,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Tenant {
        Tenant {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

/// A user as read back.
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    tenant_id: Option<i64>,
    email: String,
    password_hash: String,
    role: String,
}

impl TryFrom<UserRow> for User {
    type Error = HostDbError;

    fn try_from(r: UserRow) -> Result<User, HostDbError> {
        Ok(User {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            password_hash: r.password_hash,
            role: limits::role(&r.role)?,
        })
    }
}

/// An API token as read back.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: i64,
    tenant_id: Option<i64>,
    role: String,
    label: String,
    token_hash: String,
    created_at: i64,
    last_used: Option<i64>,
    expires_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = HostDbError;

    fn try_from(r: TokenRow) -> Result<ApiToken, HostDbError> {
        Ok(ApiToken {
            id: r.id,
            tenant_id: r.tenant_id,
            role: limits::role(&r.role)?,
            label: r.label,
            token_hash: r.token_hash,
            created_at: r.created_at,
            last_used: r.last_used,
            expires_at: r.expires_at,
        })
    }
}

/// A session as read back.
#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    id_hash: String,
    user_id: i64,
    csrf_token: String,
    expires_at: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session {
            id_hash: r.id_hash,
            user_id: r.user_id,
            csrf_token: r.csrf_token,
            expires_at: r.expires_at,
        }
    }
}

/// A domain as read back.
#[derive(sqlx::FromRow)]
pub(super) struct DomainRow {
    pub(super) id: i64,
    tenant_id: i64,
    name: String,
    state: String,
    rua: Option<String>,
    created_at: i64,
    remove_after: Option<i64>,
    latest_version: i64,
    published_version: Option<i64>,
    verification: Option<String>,
    verified_at: Option<i64>,
    reports_to_service: bool,
}

impl TryFrom<DomainRow> for Domain {
    type Error = HostDbError;

    fn try_from(r: DomainRow) -> Result<Domain, HostDbError> {
        let state = DomainState::parse(&r.state).ok_or_else(|| {
            HostDbError::Corrupt(format!("domain {:?}: unknown state {:?}", r.name, r.state))
        })?;
        Ok(Domain {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            state,
            rua: r.rua,
            reports_to_service: r.reports_to_service,
            created_at: r.created_at,
            remove_after: r.remove_after,
            latest_version: r.latest_version,
            published_version: r.published_version,
            verification: r.verification,
            verified_at: r.verified_at,
        })
    }
}

/// A policy version as read back; `mx` is a JSON array of strings.
#[derive(sqlx::FromRow)]
pub(super) struct VersionRow {
    domain_id: i64,
    version: i64,
    policy_id: String,
    mode: String,
    mx: String,
    max_age: i64,
    body: String,
    created_at: i64,
    created_generation: i64,
    published_at: Option<i64>,
}

impl TryFrom<VersionRow> for PolicyVersion {
    type Error = HostDbError;

    fn try_from(r: VersionRow) -> Result<PolicyVersion, HostDbError> {
        let mx = serde_json::from_str(&r.mx).map_err(|e| {
            HostDbError::Corrupt(format!(
                "domain {} version {}: mx is not a JSON list of strings: {e}",
                r.domain_id, r.version
            ))
        })?;
        Ok(PolicyVersion {
            domain_id: r.domain_id,
            version: r.version,
            policy_id: r.policy_id,
            mode: r.mode,
            mx,
            max_age: r.max_age,
            body: r.body,
            created_at: r.created_at,
            created_generation: r.created_generation,
            published_at: r.published_at,
        })
    }
}

/// A published policy id, for [`super::HostDb::load_state`].
#[derive(sqlx::FromRow)]
pub(super) struct PublishedIdRow {
    pub(super) domain_id: i64,
    pub(super) policy_id: String,
}

/// A node as read back.
#[derive(sqlx::FromRow)]
pub(super) struct NodeRowRaw {
    node_id: String,
    loaded_generation: i64,
    last_seen: i64,
    started_at: i64,
}

impl TryFrom<NodeRowRaw> for NodeRow {
    type Error = HostDbError;

    fn try_from(r: NodeRowRaw) -> Result<NodeRow, HostDbError> {
        Ok(NodeRow {
            loaded_generation: limits::unsigned("loaded generation", r.loaded_generation)?,
            node_id: r.node_id,
            last_seen: r.last_seen,
            started_at: r.started_at,
        })
    }
}

/// A certificate as read back.
#[derive(sqlx::FromRow)]
pub(super) struct CertRowRaw {
    domain: String,
    chain_pem: String,
    key_pem: String,
    not_before: i64,
    not_after: i64,
    issued_by: String,
    updated_at: i64,
}

impl From<CertRowRaw> for CertRow {
    fn from(r: CertRowRaw) -> CertRow {
        CertRow {
            domain: r.domain,
            chain_pem: r.chain_pem,
            key_pem: r.key_pem,
            not_before: r.not_before,
            not_after: r.not_after,
            issued_by: r.issued_by,
            updated_at: r.updated_at,
        }
    }
}

/// ACME bookkeeping as read back.
#[derive(sqlx::FromRow)]
pub(super) struct AcmeStateRow {
    domain: String,
    failures: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
}

impl TryFrom<AcmeStateRow> for AcmeState {
    type Error = HostDbError;

    fn try_from(r: AcmeStateRow) -> Result<AcmeState, HostDbError> {
        let failures = u32::try_from(r.failures).map_err(|_| {
            HostDbError::Corrupt(format!("domain {:?}: failures {}", r.domain, r.failures))
        })?;
        Ok(AcmeState {
            domain: r.domain,
            failures,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
        })
    }
}

/// A challenge as read back.
#[derive(sqlx::FromRow)]
pub(super) struct ChallengeRowRaw {
    token: String,
    domain: String,
    kind: String,
    key_authorization: String,
    cert_pem: Option<String>,
    key_pem: Option<String>,
    expires_at: i64,
}

impl From<ChallengeRowRaw> for ChallengeRow {
    fn from(r: ChallengeRowRaw) -> ChallengeRow {
        ChallengeRow {
            token: r.token,
            domain: r.domain,
            kind: r.kind,
            key_authorization: r.key_authorization,
            cert_pem: r.cert_pem,
            key_pem: r.key_pem,
            expires_at: r.expires_at,
        }
    }
}

/// Sorts rows by a text key in byte order (the same on every database).
pub(super) fn sorted<T>(mut rows: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
    rows.sort_by(|a, b| key(a).cmp(key(b)));
    rows
}

/// Converts every row, failing on the first that does not convert.
pub(super) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, HostDbError>
where
    T: TryFrom<R, Error = HostDbError>,
{
    rows.into_iter().map(T::try_from).collect()
}
