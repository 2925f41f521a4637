//! SPF (RFC 7208): the record grammar ([`record`]), macro strings ([`macros`]) and the
//! evaluation tree a receiver walks with its lookup limits ([`walk`]).
//!
//! Readings taken where the RFC leaves room:
//!
//! * The tree is walked as if no mechanism matched: every `include`, `a`, `mx`, `exists` and
//!   `redirect` is followed, which is the most lookups any message can cost.
//! * Void lookups (§4.6.4) are the `a`, `mx` and `exists` lookups that find nothing, and
//!   `include`/`redirect` targets that do not exist; more than two is `permerror`.
//! * `ptr` is counted but not evaluated (it depends on the connecting address), as are targets
//!   with macros other than `%{d}`.
//! * `+all` anywhere in the tree is an error (an include with `+all` passes every host);
//!   `?all` and a missing `all` are warnings on the root's redirect chain only, since an
//!   included record's `all` does not decide the result.

pub mod macros;
pub mod record;
pub mod walk;

pub use record::{Mechanism, Qualifier, SpfRecord, SpfSyntaxError, Term, is_spf};
pub use walk::{
    Answer, DnsFailure, NodeStatus, Query, SpfNode, SpfOutcome, SpfStatus, SpfWalk, Step, Via,
};

#[cfg(test)]
mod tests;
