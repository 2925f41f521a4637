//! The values the outgoing TLS-report database takes and returns. Policy and failure keys are
//! the canonical strings of `mtasts_proto::tlsrpt::session` (`PolicyKey::to_key`,
//! `FailureKey::to_key`): the store compares and stores them as opaque text.

/// Counted results of one (UTC day, recipient domain, TLSRPT record, policy), as the collector
/// adds them up between commits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultRow {
    /// Start of the UTC day (Unix seconds, a multiple of 86,400).
    pub day: i64,
    /// The recipient (policy) domain, as a domain key (lowercase, no trailing dot).
    pub domain: String,
    /// The `_smtp._tls` TXT record text the MTA used.
    pub record: String,
    /// The policy's canonical key (`PolicyKey::to_key`).
    pub policy: String,
    /// Successful sessions to add.
    pub successes: u64,
    /// Failed sessions to add.
    pub failures: u64,
    /// Failure details to add: (canonical `FailureKey::to_key`, sessions).
    pub details: Vec<(String, u64)>,
}

/// One (domain, record) of a day with everything collected for it: what one report is built
/// from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayGroup {
    /// The recipient domain.
    pub domain: String,
    /// The TLSRPT record.
    pub record: String,
    /// Its policies, sorted by key.
    pub policies: Vec<PolicyRow>,
}

/// One policy of a [`DayGroup`] with its counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRow {
    /// The policy's canonical key.
    pub policy: String,
    /// Successful sessions.
    pub successes: u64,
    /// Failed sessions.
    pub failures: u64,
    /// Failure details (canonical key, sessions), sorted by key.
    pub details: Vec<(String, u64)>,
}

/// A built report with its destinations (the outbox entries), stored by
/// [`super::TlsrptDb::insert_report`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewReport {
    /// Start of the UTC day it covers.
    pub day: i64,
    /// The recipient domain it is for.
    pub domain: String,
    /// The TLSRPT record whose rua it goes to.
    pub record: String,
    /// Its `report-id`.
    pub report_id: String,
    /// Its RFC 8460 §5.1 file name (`….json.gz`).
    pub file_name: String,
    /// Size of the uncompressed JSON.
    pub json_bytes: u64,
    /// The gzip-compressed JSON.
    pub gz: Vec<u8>,
    /// The rua URIs to deliver it to (`https:…`, `mailto:…`), each tracked on its own.
    pub destinations: Vec<String>,
    /// When the first delivery attempt is due (Unix seconds).
    pub first_try: i64,
    /// When a destination still failing is given up (Unix seconds).
    pub give_up_at: i64,
}

/// What [`super::TlsrptDb::insert_report`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// This caller stored the report (id given) and its outbox entries.
    New(i64),
    /// Another caller (or an earlier run) already stored the report of this (day, domain,
    /// record): its id; nothing was changed.
    AlreadyBuilt(i64),
}

/// A delivery leased to one node by [`super::TlsrptDb::lease_due`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id (for [`super::TlsrptDb::finish`]).
    pub id: i64,
    /// The report's id (for [`super::TlsrptDb::report_body`]).
    pub report: i64,
    /// The rua URI.
    pub destination: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the first attempt was due.
    pub first_try: i64,
    /// When it is given up if still failing.
    pub give_up_at: i64,
}

/// How one delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The destination accepted the report; it is not tried again.
    Delivered,
    /// It failed; try again at `next_try`.
    Retry {
        /// Why it failed (stored, cut to [`super::MAX_ERROR_BYTES`]).
        error: String,
        /// When to try again (Unix seconds).
        next_try: i64,
    },
    /// It failed for the last time (refused for good, past `give_up_at`, or suppressed).
    GaveUp {
        /// Why (stored, cut to [`super::MAX_ERROR_BYTES`]).
        error: String,
    },
}

/// Where one delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Not delivered yet, still being tried.
    Pending,
    /// Accepted by the destination.
    Delivered,
    /// Given up.
    GaveUp,
}

impl DeliveryState {
    /// The word the database stores and `status` shows: `pending`, `delivered`, `gave_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::GaveUp => "gave_up",
        }
    }

    /// The state named by `word`, `None` for any other word.
    pub fn parse(word: &str) -> Option<DeliveryState> {
        match word {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "gave_up" => Some(DeliveryState::GaveUp),
            _ => None,
        }
    }
}

/// One destination of a stored report and how its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationState {
    /// The delivery's id.
    pub id: i64,
    /// The rua URI.
    pub destination: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (meaningful while pending).
    pub next_try: i64,
    /// When it is given up if still failing.
    pub give_up_at: i64,
    /// When the last attempt ended, if any.
    pub last_attempt: Option<i64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
}

/// A stored report with its destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    /// The report's id.
    pub id: i64,
    /// Start of the UTC day it covers.
    pub day: i64,
    /// The recipient domain.
    pub domain: String,
    /// The TLSRPT record.
    pub record: String,
    /// Its `report-id`.
    pub report_id: String,
    /// Its file name.
    pub file_name: String,
    /// Size of the uncompressed JSON.
    pub json_bytes: u64,
    /// The gzip-compressed JSON.
    pub gz: Vec<u8>,
    /// Its destinations, sorted by destination.
    pub destinations: Vec<DestinationState>,
}

/// One delivery as `status` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryEvent {
    /// The delivery's id.
    pub id: i64,
    /// The report's day.
    pub day: i64,
    /// The report's recipient domain.
    pub domain: String,
    /// The rua URI.
    pub destination: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the last attempt ended.
    pub last_attempt: Option<i64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
}

/// A suppressed destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    /// The rua URI.
    pub destination: String,
    /// Until when (Unix seconds).
    pub until: i64,
    /// Why.
    pub reason: String,
}

/// What `mtasts tlsrpt status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Start of the UTC day of `now`.
    pub today: i64,
    /// Successful sessions collected today.
    pub today_successes: u64,
    /// Failed sessions collected today.
    pub today_failures: u64,
    /// (domain, record) pairs with results today: the reports today will make.
    pub today_groups: u64,
    /// Ended days with results whose reports are not built yet.
    pub pending_days: u64,
    /// Deliveries still being tried.
    pub outbox_pending: u64,
    /// Of those, due now (`next_try <= now`).
    pub outbox_due: u64,
    /// Of those, leased to a node right now.
    pub outbox_leased: u64,
    /// Deliveries that succeeded (kept until pruned).
    pub delivered: u64,
    /// Deliveries given up (kept until pruned).
    pub gave_up: u64,
    /// The most recent attempts (delivered, retried or given up), newest first.
    pub recent: Vec<DeliveryEvent>,
    /// The most recent failed attempts (pending with an error, or given up), newest first.
    pub failures: Vec<DeliveryEvent>,
    /// Destinations suppressed at `now`, sorted.
    pub suppressed: Vec<Suppressed>,
}
