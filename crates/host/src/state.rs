//! What the API and the dashboard share: the database, the zone, DNS, the clock, limits and
//! rate limiters, and the optional on-demand verifier.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use mtasts_net::dns::DnsLookup;
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_store::host::HostDb;

use tokio::sync::Semaphore;

use crate::auth::{DEFAULT_PBKDF2_ITERATIONS, Principal};
use crate::client_addr::{TrustedProxies, limit_key};
use crate::ratelimit::{KeyedLimiter, Rate, RetryAfter};
// Where handlers and tests that build an `AppState` expect it; defined beside the type it returns.
pub use crate::verification::DomainVerifier;

/// The current time as Unix seconds. Injected so tests can move time (removal deadlines,
/// policy ids) without sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// Sizes and rates the API enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// The largest request body accepted (larger: 413).
    pub body_bytes: usize,
    /// How long one request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// API calls and dashboard writes per principal (a token, or a dashboard user; a session
    /// logged in with a token counts as that token).
    pub api: Rate,
    /// Failed authentications per client address (IPv6: per /64); once used up, the client's
    /// invalid or missing credentials are answered 429 (a valid API token still works).
    pub auth_failures: Rate,
    /// Failed dashboard logins per client address ([`AppState::client_key`]); a successful
    /// login does not count.
    pub login: Rate,
    /// Failed dashboard logins per account (the normalised e-mail address), whoever tries.
    pub login_account: Rate,
    /// Keys each rate limiter remembers at most.
    pub tracked_keys: usize,
    /// PBKDF2 iterations for new password hashes.
    pub password_iterations: NonZeroU32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            api: Rate::per_minute(120, 600),
            auth_failures: Rate::per_minute(10, 10),
            login: Rate::per_minute(10, 5),
            login_account: Rate::per_minute(10, 10),
            tracked_keys: 10_000,
            password_iterations: NonZeroU32::new(DEFAULT_PBKDF2_ITERATIONS)
                .expect("the default is not zero"),
        }
    }
}

/// Whose budget an API call or a dashboard write spends ([`RateLimiters::api`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKey {
    /// An API token: its API calls, and the writes of dashboard sessions logged in with it.
    Token(i64),
    /// A dashboard user (logged in with a password).
    User(i64),
}

impl PrincipalKey {
    /// The budget `who` spends: its token's when it has one, else its user's; `None` for the
    /// operator at the console (`mtasts admin`), who is not limited.
    pub fn of(who: &Principal) -> Option<PrincipalKey> {
        match (who.token_id, who.user_id) {
            (Some(token), _) => Some(PrincipalKey::Token(token)),
            (None, Some(user)) => Some(PrincipalKey::User(user)),
            (None, None) => None,
        }
    }
}

/// The rate limiters, shared by every clone of an [`AppState`].
#[derive(Debug)]
pub struct RateLimiters {
    /// API calls and dashboard writes, by principal ([`PrincipalKey`]): one budget whichever
    /// way a principal makes its changes.
    pub api: KeyedLimiter<PrincipalKey>,
    /// Failed authentications, by [`client_key`].
    pub auth_failures: KeyedLimiter<IpAddr>,
    /// Failed logins, by [`AppState::client_key`].
    pub login: KeyedLimiter<IpAddr>,
    /// Failed logins, by the normalised e-mail address tried.
    pub login_account: KeyedLimiter<String>,
}

impl RateLimiters {
    /// Empty limiters for `limits`.
    pub fn new(limits: &ApiLimits) -> Self {
        RateLimiters {
            api: KeyedLimiter::new(limits.api, limits.tracked_keys),
            auth_failures: KeyedLimiter::new(limits.auth_failures, limits.tracked_keys),
            login: KeyedLimiter::new(limits.login, limits.tracked_keys),
            login_account: KeyedLimiter::new(limits.login_account, limits.tracked_keys),
        }
    }

    /// Takes one API call or dashboard write from `who`'s budget ([`ApiLimits::api`]), or
    /// says when to retry.
    pub fn take_call(&self, who: &Principal, now: Instant) -> Result<(), RetryAfter> {
        match PrincipalKey::of(who) {
            Some(key) => self.api.acquire(&key, now),
            None => Ok(()),
        }
    }
}

/// The rate-limiting key of a connection's address, ignoring forwarding headers: IPv4 as is,
/// IPv6 by its /64 ([`limit_key`]). Requests use [`AppState::client_key`], which knows the
/// trusted proxies.
pub fn client_key(addr: Option<SocketAddr>) -> IpAddr {
    limit_key(addr.map(|a| a.ip()))
}

/// How many per-domain change locks ([`crate::service`]) this process holds at once. On
/// PostgreSQL each holds a pooled connection for the length of the change, so without a bound
/// one tenant's concurrent changes could take every connection of the pool.
pub const DOMAIN_LOCK_PERMITS: usize = 4;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The shared database (clones share its pool).
    pub db: HostDb,
    /// The service zone (`--zone`) and the names owners point at it.
    pub delegation: Delegation,
    /// DNS, for the MX lookup when a new domain gives no `mx`.
    pub dns: Arc<dyn DnsLookup>,
    /// Sizes and rates.
    pub limits: ApiLimits,
    /// The rate limiters (shared).
    pub limiters: Arc<RateLimiters>,
    /// The current time.
    pub clock: Clock,
    /// On-demand verification (`POST /api/v1/domains/{domain}/verify`), when configured.
    pub verifier: Option<Arc<dyn DomainVerifier>>,
    /// Permits to hold a per-domain change lock ([`DOMAIN_LOCK_PERMITS`], shared by every
    /// clone).
    pub domain_locks: Arc<Semaphore>,
    /// Proxies whose forwarding headers name the client (`trusted_proxies`).
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Whether the SMTP intake runs, so the published TLS-RPT `rua` includes the service's
    /// `mailto:` URI ([`crate::snapshot::ZoneSettings::report_mail`]); default true.
    pub report_mail: bool,
    /// The received reports (in the serve database), when this node keeps them: the report
    /// views ([`crate::service::reports`]) answer 503 without.
    pub reports: Option<mtasts_store::reports::ReportDb>,
}

impl AppState {
    /// A state with the default [`ApiLimits`], the system clock and no verifier.
    pub fn new(db: HostDb, delegation: Delegation, dns: Arc<dyn DnsLookup>) -> Self {
        let limits = ApiLimits::default();
        AppState {
            db,
            delegation,
            dns,
            limiters: Arc::new(RateLimiters::new(&limits)),
            limits,
            clock: system_clock(),
            verifier: None,
            domain_locks: Arc::new(Semaphore::new(DOMAIN_LOCK_PERMITS)),
            trusted_proxies: Arc::new(TrustedProxies::default()),
            report_mail: true,
            reports: None,
        }
    }

    /// Says whether the SMTP intake runs (the zone settings' `report_mail`).
    pub fn with_report_mail(mut self, report_mail: bool) -> Self {
        self.report_mail = report_mail;
        self
    }

    /// Serves the report views from `db`.
    pub fn with_reports(mut self, db: mtasts_store::reports::ReportDb) -> Self {
        self.reports = Some(db);
        self
    }

    /// Trusts `proxies` to name the client in forwarding headers.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// The client address of a request from `peer` with `headers` (the forwarded client when
    /// `peer` is a trusted proxy, see [`crate::client_addr`]), as the key of every per-client
    /// limit and the address in log lines: IPv6 by its /64.
    pub fn client_key(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        limit_key(self.trusted_proxies.client_ip(peer, headers))
    }

    /// Replaces the limits (and starts fresh rate limiters for them).
    pub fn with_limits(mut self, limits: ApiLimits) -> Self {
        self.limiters = Arc::new(RateLimiters::new(&limits));
        self.limits = limits;
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Enables on-demand verification.
    pub fn with_verifier(mut self, verifier: Arc<dyn DomainVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("zone", &self.delegation.zone())
            .field("limits", &self.limits)
            .field("verifier", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_spend_their_token_else_their_user() {
        let mut who = Principal::operator();
        assert_eq!(PrincipalKey::of(&who), None);
        let limiters = RateLimiters::new(&ApiLimits {
            api: Rate::per_minute(1, 1),
            ..ApiLimits::default()
        });
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                limiters.take_call(&who, now),
                Ok(()),
                "the console is not limited"
            );
        }
        who.user_id = Some(7);
        assert_eq!(PrincipalKey::of(&who), Some(PrincipalKey::User(7)));
        // A session logged in with token 3 (its stand-in user 7) is token 3.
        who.token_id = Some(3);
        assert_eq!(PrincipalKey::of(&who), Some(PrincipalKey::Token(3)));
        assert_eq!(limiters.take_call(&who, now), Ok(()));
        let api_call = Principal {
            user_id: None,
            ..who
        };
        assert!(limiters.take_call(&api_call, now).is_err(), "one budget");
    }

    #[test]
    fn connection_keys_are_client_keys_without_proxies() {
        let a: SocketAddr = "[2001:db8:1:2:aaaa::1]:5000".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:bbbb::2]:6000".parse().unwrap();
        assert_eq!(client_key(Some(a)), client_key(Some(b)));
        assert_eq!(
            client_key(None),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        );
    }
}
