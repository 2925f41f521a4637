//! The operations on hosted domains and tenants, independent of HTTP: the REST API, the
//! dashboard and `mtasts admin` call these, so the rules (visibility, roles, validation,
//! versioning, safe removal) live in one place.
//!
//! * `domains` — create, change, remove, restore, read, list, history, verify a hosted
//!   domain (lists and histories a page at a time, [`Page`]);
//! * `claims` — proving control of a domain with a TXT record, and adding a name another
//!   tenant hosts;
//! * `tenancy` — tenants, their tokens (create, list, revoke) and users, the first
//!   administrator token;
//! * [`reports`] — the received TLS and DMARC reports per domain, their readiness advice,
//!   the overview, the report list and one report, tenant-isolated the same way;
//! * `views` — what those operations return, as the API serialises it;
//! * `lock` — the per-domain change lock;
//! * `error` — [`ServiceError`] and the access checks.
//!
//! Visibility: an administrator sees every tenant; an owner or read-only principal sees only
//! its own tenant, and another tenant's domain is [`ServiceError::NotFound`], exactly as a
//! domain that does not exist, so nothing can be learnt about other tenants. Read-only
//! principals get [`ServiceError::Forbidden`] on writes to what they can see. Tenant
//! administration is for administrators only and is `NotFound` for everyone else.
//!
//! # Verification
//!
//! The verifier (the node's checker, or [`crate::verification::DomainVerifier`] on demand)
//! stores one [`Verification`](crate::verification::Verification) per domain;
//! [`DomainDetail`] shows it with each record's status beside the CNAME to publish. A record
//! without a stored outcome shows as
//! [`RecordStatus::Unchecked`](crate::verification::RecordStatus::Unchecked).

mod claims;
mod domains;
mod error;
mod lock;
mod report_visibility;
pub mod reports;
mod tenancy;
mod views;

pub use claims::{ClaimView, claim_domain, drop_claim};
pub use domains::{
    DomainChange, NewDomainRequest, create_domain, domain_detail, domains_page, remove_domain,
    restore_domain, update_domain, validate_domain, verify_domain, versions_page,
};
pub use error::ServiceError;
pub use tenancy::{
    MAX_TOKEN_DAYS, NewTokenRequest, NewUserRequest, bootstrap_admin_token, create_admin_token,
    create_tenant, create_token, create_user, list_tenants, list_tokens, revoke_token,
};
pub use views::{
    CertificateStatus, CertificateView, DomainDetail, NewTokenView, Page, RecordView, TenantView,
    TokenView, UserView, VersionView,
};
