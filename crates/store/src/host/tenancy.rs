//! Who may use the service: tenants, users, API tokens and dashboard sessions.

use super::error::{conflict_as, db_error};
use super::sql::{self, SessionRow, TenantRow, TokenRow, UserRow};
use super::types::{ApiToken, NewToken, NewUser, Session, Tenant, User};
use super::{HostDb, HostDbError, bounded, limits, unix_now};

impl HostDb {
    /// Creates a tenant named `name` (unique; [`HostDbError::Conflict`] when taken). Does not
    /// bump the generation (a tenant without domains serves nothing).
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant, HostDbError> {
        let name = limits::required("tenant name", name, limits::MAX_NAME_BYTES)?;
        bounded(async {
            let row: TenantRow = with_pool!(self, |pool| sqlx::query_as(sql::INSERT_TENANT)
                .bind(name)
                .bind(unix_now())
                .fetch_one(pool)
                .await
                .map_err(conflict_as(|| format!("tenant {name:?} exists")))?);
            Ok(row.into())
        })
        .await
    }

    /// The tenant with database id `id`.
    pub async fn tenant(&self, id: i64) -> Result<Option<Tenant>, HostDbError> {
        bounded(async {
            let row: Option<TenantRow> = with_pool!(self, |pool| sqlx::query_as(sql::TENANT_BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            Ok(row.map(Tenant::from))
        })
        .await
    }

    /// The tenant named `name`.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, HostDbError> {
        let name = limits::text("tenant name", name, limits::MAX_NAME_BYTES)?;
        bounded(async {
            let row: Option<TenantRow> =
                with_pool!(self, |pool| sqlx::query_as(sql::TENANT_BY_NAME)
                    .bind(name)
                    .fetch_optional(pool)
                    .await
                    .map_err(db_error)?);
            Ok(row.map(Tenant::from))
        })
        .await
    }

    /// Every tenant, sorted by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, HostDbError> {
        bounded(async {
            let rows: Vec<TenantRow> = with_pool!(self, |pool| sqlx::query_as(sql::LIST_TENANTS)
                .fetch_all(pool)
                .await
                .map_err(db_error)?);
            Ok(sql::sorted(
                rows.into_iter().map(Tenant::from).collect(),
                |t| &t.name,
            ))
        })
        .await
    }

    /// Creates a user. Does not bump the generation. [`HostDbError::Conflict`] when the e-mail
    /// address is taken, [`HostDbError::NotFound`] when the tenant does not exist.
    pub async fn create_user(&self, user: NewUser) -> Result<User, HostDbError> {
        let email = limits::email(&user.email)?;
        limits::required(
            "password hash",
            &user.password_hash,
            limits::MAX_SECRET_BYTES,
        )?;
        bounded(async {
            let row: UserRow = with_pool!(self, |pool| sqlx::query_as(sql::INSERT_USER)
                .bind(user.tenant_id)
                .bind(&email)
                .bind(&user.password_hash)
                .bind(user.role.as_str())
                .fetch_one(pool)
                .await
                .map_err(conflict_as(|| format!(
                    "a user with address {email:?} exists"
                )))?);
            row.try_into()
        })
        .await
    }

    /// The user with address `email` (ASCII case ignored).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, HostDbError> {
        let email = limits::text("e-mail address", email, limits::MAX_EMAIL_BYTES)?;
        let email = email.to_ascii_lowercase();
        bounded(async {
            let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(sql::USER_BY_EMAIL)
                .bind(&email)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(User::try_from).transpose()
        })
        .await
    }

    /// The user with database id `id`.
    pub async fn user(&self, id: i64) -> Result<Option<User>, HostDbError> {
        bounded(async {
            let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(sql::USER_BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(User::try_from).transpose()
        })
        .await
    }

    /// Creates an API token (its `created_at` is this machine's clock). Does not bump the
    /// generation. [`HostDbError::Conflict`] when the hash is taken, [`HostDbError::NotFound`] when the
    /// tenant does not exist.
    pub async fn create_token(&self, token: NewToken) -> Result<ApiToken, HostDbError> {
        limits::text("token label", &token.label, limits::MAX_NAME_BYTES)?;
        limits::required("token hash", &token.token_hash, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            let row: TokenRow = with_pool!(self, |pool| sqlx::query_as(sql::INSERT_TOKEN)
                .bind(token.tenant_id)
                .bind(token.role.as_str())
                .bind(&token.label)
                .bind(&token.token_hash)
                .bind(unix_now())
                .bind(token.expires_at)
                .fetch_one(pool)
                .await
                .map_err(conflict_as(|| "a token with this hash exists".to_string()))?);
            row.try_into()
        })
        .await
    }

    /// The token whose hash is `hash`.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, HostDbError> {
        let hash = limits::text("token hash", hash, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            let row: Option<TokenRow> = with_pool!(self, |pool| sqlx::query_as(sql::TOKEN_BY_HASH)
                .bind(hash)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(ApiToken::try_from).transpose()
        })
        .await
    }

    /// The token with database id `id`, expired or not.
    pub async fn token(&self, id: i64) -> Result<Option<ApiToken>, HostDbError> {
        bounded(async {
            let row: Option<TokenRow> = with_pool!(self, |pool| sqlx::query_as(sql::TOKEN_BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            row.map(ApiToken::try_from).transpose()
        })
        .await
    }

    /// The tokens of `tenant_id` (`None`: every token), oldest first, expired or not.
    pub async fn tokens(&self, tenant_id: Option<i64>) -> Result<Vec<ApiToken>, HostDbError> {
        bounded(async {
            let rows: Vec<TokenRow> = with_pool!(self, |pool| match tenant_id {
                Some(id) =>
                    sqlx::query_as(sql::TENANT_TOKENS)
                        .bind(id)
                        .fetch_all(pool)
                        .await,
                None => sqlx::query_as(sql::ALL_TOKENS).fetch_all(pool).await,
            }
            .map_err(db_error)?);
            sql::convert(rows)
        })
        .await
    }

    /// Records a use of token `id` at `now` (an earlier `now` than the recorded one is
    /// ignored). Does not bump the generation. [`HostDbError::NotFound`] when there is no
    /// such token.
    pub async fn touch_token(&self, id: i64, now: i64) -> Result<(), HostDbError> {
        match bookkeeping!(self, sql::TOUCH_TOKEN, id, now)? {
            0 => Err(HostDbError::NotFound),
            _ => Ok(()),
        }
    }

    /// Revokes token `id` by deleting its row; `true` when it existed. Does not bump the
    /// generation: every request on every node looks its token up afresh, so the token is
    /// refused everywhere from the next request on.
    pub async fn delete_token(&self, id: i64) -> Result<bool, HostDbError> {
        bounded(async {
            let deleted = with_pool!(self, |pool| sqlx::query(sql::DELETE_TOKEN)
                .bind(id)
                .execute(pool)
                .await
                .map_err(db_error)?
                .rows_affected());
            Ok(deleted > 0)
        })
        .await
    }

    /// How many tokens have the admin role (none: the service offers a bootstrap token).
    pub async fn count_admin_tokens(&self) -> Result<u64, HostDbError> {
        bounded(async {
            let count: i64 = with_pool!(self, |pool| sqlx::query_scalar(sql::COUNT_ADMIN_TOKENS)
                .fetch_one(pool)
                .await
                .map_err(db_error)?);
            limits::unsigned("count", count)
        })
        .await
    }

    /// Stores a new session. Does not bump the generation. [`HostDbError::Conflict`] when the
    /// id hash is taken, [`HostDbError::NotFound`] when the user does not exist.
    pub async fn create_session(&self, session: Session) -> Result<(), HostDbError> {
        limits::required(
            "session id hash",
            &session.id_hash,
            limits::MAX_SECRET_BYTES,
        )?;
        limits::required("CSRF token", &session.csrf_token, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            with_pool!(self, |pool| sqlx::query(sql::INSERT_SESSION)
                .bind(&session.id_hash)
                .bind(session.user_id)
                .bind(&session.csrf_token)
                .bind(session.expires_at)
                .execute(pool)
                .await
                .map_err(conflict_as(|| "a session with this id exists".to_string()))?
                .rows_affected());
            Ok(())
        })
        .await
    }

    /// The session whose id hash is `id_hash`, expired or not (the caller compares
    /// `expires_at` with its clock).
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>, HostDbError> {
        let id_hash = limits::text("session id hash", id_hash, limits::MAX_SECRET_BYTES)?;
        bounded(async {
            let row: Option<SessionRow> = with_pool!(self, |pool| sqlx::query_as(sql::SESSION)
                .bind(id_hash)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?);
            Ok(row.map(Session::from))
        })
        .await
    }

    /// Ends a session (logout); `true` when it existed. Does not bump the generation.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, HostDbError> {
        let id_hash = limits::text("session id hash", id_hash, limits::MAX_SECRET_BYTES)?;
        Ok(bookkeeping!(self, sql::DELETE_SESSION, id_hash)? > 0)
    }

    /// Deletes the sessions that expired at or before `now`; returns how many. Does not bump
    /// the generation.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, HostDbError> {
        bookkeeping!(self, sql::PURGE_SESSIONS, now)
    }
}
