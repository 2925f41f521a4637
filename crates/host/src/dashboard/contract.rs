//! Scratch copy of the report view types of contracts §6 until `crate::service::reports`
//! (branch `views`) is merged; removed at that merge.
#![allow(dead_code, unreachable_pub)]

use mtasts_proto::readiness::Level;
pub(crate) use mtasts_store::reports::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(u32);

impl Window {
    pub fn parse(text: &str) -> Option<Window> {
        match text {
            "30" => Some(Window(30)),
            "90" => Some(Window(90)),
            "365" => Some(Window(365)),
            _ => None,
        }
    }
    pub fn days(self) -> u32 {
        self.0
    }
}

impl Default for Window {
    fn default() -> Window {
        Window(30)
    }
}

#[derive(Clone, Debug)]
pub struct DayPoint {
    pub day: i64,
    pub success: u64,
    pub failure: u64,
}
#[derive(Clone, Debug)]
pub struct Count {
    pub label: String,
    pub count: u64,
}
#[derive(Clone, Debug)]
pub struct OrgCount {
    pub organization: String,
    pub reports: u64,
    pub success: u64,
    pub failure: u64,
}
#[derive(Clone, Debug)]
pub struct ReportSummary {
    pub id: i64,
    pub kind: Kind,
    pub organization: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
    pub received_at: i64,
    pub duplicates: u64,
    pub success: u64,
    pub failure: u64,
}
#[derive(Clone, Debug)]
pub struct TlsView {
    pub domain: String,
    pub window: Window,
    pub days: Vec<DayPoint>,
    pub success: u64,
    pub failure: u64,
    pub by_result: Vec<Count>,
    pub by_mx: Vec<Count>,
    pub by_receiving_ip: Vec<Count>,
    pub by_organization: Vec<OrgCount>,
    pub by_sending_ip: Vec<Count>,
    pub reports: Vec<ReportSummary>,
}
#[derive(Clone, Debug)]
pub struct DmarcDay {
    pub day: i64,
    pub messages: u64,
    pub pass: u64,
    pub none: u64,
    pub quarantine: u64,
    pub reject: u64,
}
#[derive(Clone, Debug)]
pub struct DmarcSourceRow {
    pub source_ip: String,
    pub header_from: String,
    pub messages: u64,
    pub spf_aligned: u64,
    pub dkim_aligned: u64,
    pub pass: u64,
    pub if_quarantine: u64,
    pub if_reject: u64,
}
#[derive(Clone, Debug)]
pub struct DmarcView {
    pub domain: String,
    pub window: Window,
    pub days: Vec<DmarcDay>,
    pub messages: u64,
    pub pass: u64,
    pub published_p: Option<String>,
    pub sources: Vec<DmarcSourceRow>,
    pub reports: Vec<ReportSummary>,
}
#[derive(Clone, Debug)]
pub struct TlsReadiness {
    pub mode: String,
    pub reports: u64,
    pub organizations: u64,
    pub days: u64,
    pub failures: u64,
    pub failures_by_type: Vec<Count>,
    pub level: Level,
    pub headline: String,
    pub advice: Vec<String>,
    pub enforce_safe: bool,
}
#[derive(Clone, Debug)]
pub struct DmarcReadiness {
    pub published_p: Option<String>,
    pub next_step: Option<String>,
    pub level: Level,
    pub headline: String,
    pub advice: Vec<String>,
    pub hurt: Vec<DmarcSourceRow>,
}
#[derive(Clone, Debug)]
pub struct DomainHealth {
    pub domain: String,
    pub mode: String,
    pub tls_success: u64,
    pub tls_failure: u64,
    pub dmarc_messages: u64,
    pub dmarc_pass: u64,
    pub last_report_at: Option<i64>,
    pub level: Level,
    pub headline: String,
}
#[derive(Clone, Debug)]
pub struct ReportDetail {
    pub summary: ReportSummary,
    pub domains: Vec<String>,
    pub normalized: String,
    pub raw: Vec<u8>,
}

use crate::auth::Principal;
use crate::service::ServiceError;
use crate::state::AppState;

pub async fn tls_view(
    _: &AppState,
    _: &Principal,
    _: &str,
    _: Window,
) -> Result<TlsView, ServiceError> {
    Err(ServiceError::NotFound)
}
pub async fn dmarc_view(
    _: &AppState,
    _: &Principal,
    _: &str,
    _: Window,
) -> Result<DmarcView, ServiceError> {
    Err(ServiceError::NotFound)
}
pub async fn readiness(
    _: &AppState,
    _: &Principal,
    _: &str,
    _: Window,
) -> Result<(Option<TlsReadiness>, Option<DmarcReadiness>), ServiceError> {
    Err(ServiceError::NotFound)
}
pub async fn health(_: &AppState, _: &Principal) -> Result<Vec<DomainHealth>, ServiceError> {
    Ok(Vec::new())
}
pub async fn report(_: &AppState, _: &Principal, _: i64) -> Result<ReportDetail, ServiceError> {
    Err(ServiceError::NotFound)
}
