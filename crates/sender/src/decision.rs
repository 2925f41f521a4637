//! The TLS decision for one lookup and its precedence:
//!
//! 1. the key: Postfix's `.parent` probes, address literals and non-domains → `NOTFOUND `
//!    (RFC 8461 §3.4: no parent-domain fallback; literals have no policy);
//! 2. a static level from the configuration (exact domain, then the closest `.parent` entry);
//! 3. DANE, when enabled ([`crate::dane`]): when the MX RRset is DNSSEC-authenticated (for
//!    a domain without MX records: its address records) and MX hosts have authenticated
//!    TLSA records, `dane-only` (every MX host) / `dane` (some); `TEMP` when those lookups
//!    failed temporarily; an unauthenticated MX RRset leaves the decision to MTA-STS;
//! 4. an MTA-STS `enforce` policy → `OK secure match=… servername=hostname`
//!    ([`mtasts_proto::postfix::render_sts`], shaped by the profile);
//! 5. a `testing` policy → `NOTFOUND ` (Postfix's default level applies), unless the profile
//!    treats testing as enforce;
//! 6. otherwise (`none` policy, no policy) → `NOTFOUND `, or `TEMP` when discovery failed
//!    temporarily with nothing cached and the profile says `temp_on_dns_error`.
//!
//! This module holds the pure parts; [`crate::daemon::Daemon::decide`] runs them with the
//! lookups.

use std::borrow::Cow;
use std::sync::Arc;

use mtasts_proto::postfix::{policy_lines, render_sts};
use mtasts_proto::socketmap::{MAX_REPLY_BYTES, Reply};
use mtasts_proto::sts::cache::CachedPolicy;
use mtasts_proto::sts::policy::Mode;
use serde::Serialize;

use crate::dane::DaneFinding;
use crate::discovery::{CacheUse, DiscoveryDetails, StsOutcome, StsSource};
use crate::settings::Profile;

/// Where a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The key is not a domain we look up (parent probe, address literal, invalid).
    Key,
    /// A static level from the configuration.
    Static,
    /// DANE.
    Dane,
    /// A cached MTA-STS policy.
    Cache,
    /// A freshly fetched MTA-STS policy.
    Fresh,
    /// The negative cache.
    Negative,
    /// No policy found.
    None,
    /// The daemon failed internally.
    Internal,
}

impl Source {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Key => "key",
            Source::Static => "static",
            Source::Dane => "dane",
            Source::Cache => "cache",
            Source::Fresh => "fresh",
            Source::Negative => "negative",
            Source::None => "none",
            Source::Internal => "internal",
        }
    }
}

impl From<StsSource> for Source {
    fn from(source: StsSource) -> Self {
        match source {
            StsSource::Cache => Source::Cache,
            StsSource::Fresh => Source::Fresh,
            StsSource::Negative => Source::Negative,
            StsSource::None => Source::None,
        }
    }
}

/// What kind of answer Postfix receives, read from the reply payload as sent (an empty `OK`
/// or an oversized answer goes out as `TEMP`, so it is [`Status::Temp`]).
///
/// Serialized as `ok`, `notfound`, `temp` or `perm` (the `status` of the JSON decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `OK <level …>`: a TLS level applies.
    Ok,
    /// `NOTFOUND `: Postfix's default TLS level applies.
    NotFound,
    /// `TEMP …`: Postfix defers the message.
    Temp,
    /// `PERM …`: in `smtp_tls_policy_maps` Postfix defers as well.
    Perm,
}

impl Status {
    /// The status of `reply` as it goes out: the same as [`Status::of_payload`] of its
    /// payload, without rendering it in the common cases.
    pub fn of_reply(reply: &Reply) -> Status {
        match reply {
            Reply::NotFound => Status::NotFound,
            Reply::Temp(_) => Status::Temp,
            // `to_payload` sends an empty or oversized `OK` as `TEMP`.
            Reply::Ok(data) if data.is_empty() || "OK ".len() + data.len() > MAX_REPLY_BYTES => {
                Status::Temp
            }
            Reply::Ok(_) => Status::Ok,
            // Sanitising never lengthens the reason, so a reason that fits stays `PERM`.
            Reply::Perm(reason) if "PERM ".len() + reason.len() <= MAX_REPLY_BYTES => Status::Perm,
            Reply::Perm(_) => Status::of_payload(&reply.to_payload()),
        }
    }

    /// The status of a reply payload.
    pub fn of_payload(payload: &[u8]) -> Status {
        if payload.starts_with(b"OK ") {
            Status::Ok
        } else if payload.starts_with(b"NOTFOUND") {
            Status::NotFound
        } else if payload.starts_with(b"PERM") {
            Status::Perm
        } else {
            Status::Temp
        }
    }

    /// The label used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NotFound => "notfound",
            Status::Temp => "temp",
            Status::Perm => "perm",
        }
    }

    /// Whether Postfix defers the message on this answer (`TEMP` and `PERM`).
    pub fn defers(self) -> bool {
        matches!(self, Status::Temp | Status::Perm)
    }
}

/// A cached or fetched policy, for JSON output.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyView {
    /// The TXT id it was fetched for.
    pub id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: &'static str,
    /// The `mx` patterns.
    pub mx: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: u32,
    /// Unix seconds of the fetch.
    pub fetched_at: u64,
    /// Unix seconds when it expires.
    pub expires_at: u64,
    /// Whether it has expired (a `max_age: 0` policy serves only the lookup that fetched it).
    pub expired: bool,
    /// The body as received.
    pub body: String,
}

impl PolicyView {
    /// The view of a cached policy at `now`.
    pub fn new(policy: &CachedPolicy, now: u64) -> Self {
        PolicyView {
            id: policy.id.as_str().to_string(),
            mode: policy.policy.mode.as_str(),
            mx: policy.policy.mx.iter().map(|p| p.to_string()).collect(),
            max_age: policy.policy.max_age.seconds(),
            fetched_at: policy.fetched_at,
            expires_at: policy.expires_at(),
            expired: policy.is_expired(now),
            body: policy.body.clone(),
        }
    }
}

/// What decides a lookup: the reply and why, before it is written up as a [`Decision`].
/// The socketmap answers from it directly (Postfix reads only the reply); HTTP and
/// `mtasts query` turn it into a [`Decision`].
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The normalised domain, when the key is one.
    pub domain: Option<String>,
    /// The reply.
    pub reply: Reply,
    /// Where the decision came from.
    pub source: Source,
    /// Why, in words.
    pub reason: Cow<'static, str>,
    /// The static table key that applied.
    pub static_entry: Option<String>,
    /// The DANE finding, when DANE decided.
    pub dane: Option<Arc<DaneFinding>>,
    /// MTA-STS discovery, when it was consulted.
    pub sts: Option<StsOutcome>,
}

impl Verdict {
    /// A verdict without static, DANE or MTA-STS details.
    pub fn new(
        domain: Option<String>,
        reply: Reply,
        source: Source,
        reason: impl Into<Cow<'static, str>>,
    ) -> Verdict {
        Verdict {
            domain,
            reply,
            source,
            reason: reason.into(),
            static_entry: None,
            dane: None,
            sts: None,
        }
    }

    /// The kind of answer Postfix receives.
    pub fn status(&self) -> Status {
        Status::of_reply(&self.reply)
    }
}

/// The decision for one lookup. Serialized as the `/v1/policy/{domain}` JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The key as asked.
    pub key: String,
    /// The normalised domain, when the key is one.
    pub domain: Option<String>,
    /// The profile applied.
    pub profile: String,
    /// The kind of answer (`ok`, `notfound`, `temp` or `perm` in JSON).
    pub status: Status,
    /// The socketmap reply payload, exactly as Postfix receives it (`NOTFOUND ` with its
    /// trailing space).
    pub answer: String,
    /// The TLS level of an `OK` answer.
    pub level: Option<String>,
    /// Where the decision came from.
    pub source: Source,
    /// Why, in words.
    pub reason: Cow<'static, str>,
    /// The static table key that applied.
    pub static_entry: Option<String>,
    /// The DANE finding, when DANE was consulted.
    pub dane: Option<DaneFinding>,
    /// The MTA-STS policy consulted, if any.
    pub policy: Option<PolicyView>,
    /// How the cache took part.
    pub cache: Option<CacheUse>,
    /// What MTA-STS discovery saw.
    pub discovery: Option<DiscoveryDetails>,
    /// The reply.
    #[serde(skip)]
    pub reply: Reply,
}

impl Decision {
    /// A decision without MTA-STS details.
    pub fn simple(
        key: &str,
        domain: Option<&str>,
        profile: &Profile,
        reply: Reply,
        source: Source,
        reason: impl Into<Cow<'static, str>>,
    ) -> Decision {
        let mut decision = Decision {
            key: key.to_string(),
            domain: domain.map(str::to_string),
            profile: profile.name.clone(),
            status: Status::Temp,
            answer: String::new(),
            level: None,
            source,
            reason: reason.into(),
            static_entry: None,
            dane: None,
            policy: None,
            cache: None,
            discovery: None,
            reply,
        };
        decision.finish();
        decision
    }

    /// The record of `verdict` for `key` under `profile`; with `views`, the policy consulted
    /// is shown as it stands at `now`.
    pub fn from_verdict(
        key: &str,
        profile: &Profile,
        verdict: Verdict,
        views: bool,
        now: u64,
    ) -> Decision {
        let Verdict {
            domain,
            reply,
            source,
            reason,
            static_entry,
            dane,
            sts,
        } = verdict;
        let mut decision = Decision::simple(key, None, profile, reply, source, reason);
        decision.domain = domain;
        decision.static_entry = static_entry;
        decision.dane = dane.map(|finding| (*finding).clone());
        if let Some(outcome) = sts {
            if views {
                decision.policy = outcome.policy.as_ref().map(|p| PolicyView::new(p, now));
            }
            decision.cache = Some(outcome.cache);
            decision.discovery = Some(*outcome.details);
        }
        decision
    }

    /// Fills `status`, `answer` and `level` from `reply`.
    pub fn finish(&mut self) {
        let payload = self.reply.to_payload();
        self.status = Status::of_payload(&payload);
        self.answer = String::from_utf8(payload)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.level = match (&self.reply, self.status) {
            (Reply::Ok(data), Status::Ok) => data.split_whitespace().next().map(str::to_string),
            _ => None,
        };
    }
}

/// What MTA-STS says for a lookup under `profile` (steps 4–6 of the module docs): the reply
/// and the reason.
pub fn sts_reply(outcome: &StsOutcome, profile: &Profile) -> (Reply, Cow<'static, str>) {
    let Some(cached) = &outcome.policy else {
        if outcome.temp_error {
            if profile.temp_on_dns_error {
                return (
                    Reply::Temp("MTA-STS discovery failed temporarily".to_string()),
                    "MTA-STS discovery failed temporarily, nothing is cached, and the profile answers TEMP for that".into(),
                );
            }
            return (
                Reply::NotFound,
                "MTA-STS discovery failed temporarily and nothing is cached; Postfix's default TLS level applies".into(),
            );
        }
        return (
            Reply::NotFound,
            "no MTA-STS policy; Postfix's default TLS level applies".into(),
        );
    };
    let enforce = match cached.policy.mode {
        Mode::Enforce => true,
        Mode::Testing => profile.strict_testing,
        Mode::None => false,
    };
    if !enforce {
        let reason = match cached.policy.mode {
            Mode::Testing => {
                "MTA-STS policy in testing mode: delivery must not fail because of it, so Postfix's default TLS level applies"
            }
            _ => "MTA-STS policy in mode none: as if there were no policy",
        };
        return (Reply::NotFound, reason.into());
    }
    let answer = cached.answer(profile.style, || {
        let lines = policy_lines(&cached.body);
        render_sts(&outcome.domain, &cached.policy, &lines, &profile.style)
    });
    let reason = if cached.policy.mode == Mode::Testing {
        format!(
            "MTA-STS policy in testing mode, treated as enforce by profile {}",
            profile.name
        )
        .into()
    } else {
        "MTA-STS policy in enforce mode".into()
    };
    (Reply::Ok(answer), reason)
}

#[cfg(test)]
mod tests {
    use mtasts_proto::postfix::AnswerStyle;

    use super::*;

    fn profile(strict_testing: bool, temp_on_dns_error: bool) -> Profile {
        Profile {
            name: "p".into(),
            style: AnswerStyle::POSTFIX_3_4,
            strict_testing,
            temp_on_dns_error,
        }
    }

    fn outcome(mode: Option<&str>, temp_error: bool) -> StsOutcome {
        let policy = mode.map(|mode| {
            CachedPolicy::from_stored(
                "1",
                format!("version: STSv1\nmode: {mode}\nmx: *.mx.example.com\nmx: mx.example.com\nmax_age: 86400\n"),
                100,
            )
            .unwrap()
        });
        StsOutcome {
            domain: "example.com".into(),
            policy: policy.map(|p| std::sync::Arc::new(crate::discovery::HotPolicy::new(p))),
            source: StsSource::Fresh,
            cache: CacheUse::Miss,
            temp_error,
            details: Box::default(),
        }
    }

    #[test]
    fn enforce_is_secure_with_the_patterns() {
        let (reply, _) = sts_reply(&outcome(Some("enforce"), false), &profile(false, false));
        assert_eq!(
            reply,
            Reply::Ok("secure match=.mx.example.com:mx.example.com servername=hostname".into())
        );
    }

    #[test]
    fn testing_is_notfound_unless_strict() {
        let (reply, _) = sts_reply(&outcome(Some("testing"), false), &profile(false, false));
        assert_eq!(reply, Reply::NotFound);
        let (reply, reason) = sts_reply(&outcome(Some("testing"), false), &profile(true, false));
        assert!(matches!(reply, Reply::Ok(ref a) if a.starts_with("secure match=")));
        assert!(reason.contains("treated as enforce"));
    }

    #[test]
    fn none_mode_and_no_policy_are_notfound() {
        let (reply, _) = sts_reply(&outcome(Some("none"), false), &profile(true, true));
        assert_eq!(reply, Reply::NotFound);
        let (reply, _) = sts_reply(&outcome(None, false), &profile(true, true));
        assert_eq!(reply, Reply::NotFound);
    }

    #[test]
    fn temp_error_is_temp_only_when_the_profile_says_so() {
        let (reply, _) = sts_reply(&outcome(None, true), &profile(false, false));
        assert_eq!(reply, Reply::NotFound);
        let (reply, _) = sts_reply(&outcome(None, true), &profile(false, true));
        assert!(matches!(reply, Reply::Temp(_)));
    }

    #[test]
    fn decision_fields_follow_the_reply() {
        let p = profile(false, false);
        let d = Decision::simple("k", None, &p, Reply::NotFound, Source::Key, "r");
        assert_eq!(
            (d.status, d.answer.as_str(), d.level),
            (Status::NotFound, "NOTFOUND ", None)
        );
        let d = Decision::simple(
            "k",
            Some("a.example"),
            &p,
            Reply::Ok("encrypt".into()),
            Source::Static,
            "r",
        );
        assert_eq!(d.status, Status::Ok);
        assert_eq!(d.answer, "OK encrypt");
        assert_eq!(d.level.as_deref(), Some("encrypt"));
        let d = Decision::simple("k", None, &p, Reply::Temp("x".into()), Source::Dane, "r");
        assert_eq!(d.status, Status::Temp);
    }

    #[test]
    fn status_of_a_reply_is_the_status_of_its_payload() {
        let long = "x".repeat(MAX_REPLY_BYTES);
        for reply in [
            Reply::Ok("secure match=mx.example".into()),
            Reply::Ok("".into()),
            Reply::Ok(long.as_str().into()),
            Reply::Ok(long[..MAX_REPLY_BYTES - 3].into()),
            Reply::NotFound,
            Reply::Temp("x".into()),
            Reply::Temp(long.clone()),
            Reply::Perm("bad\nrequest".into()),
            Reply::Perm(long.clone()),
            Reply::Perm(long[..MAX_REPLY_BYTES - 5].to_string()),
            Reply::Perm(format!("{}\u{85}", &long[..MAX_REPLY_BYTES - 6])),
        ] {
            assert_eq!(
                Status::of_reply(&reply),
                Status::of_payload(&reply.to_payload()),
                "{reply:?}"
            );
        }
    }
}
