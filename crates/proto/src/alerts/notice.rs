//! What an alert notification says: the webhook's JSON body and the e-mail's subject and
//! plain text, written once from one [`Notice`].
//!
//! The JSON body (`Content-Type: application/json`):
//!
//! ```json
//! {
//!   "event": "opened",
//!   "sent_at": 1796688000,
//!   "tenant": "acme",
//!   "alert": {
//!     "id": 7, "kind": "uncovered-mx", "domain": "example.com", "key": "mx3.example.com",
//!     "title": "…", "what": "…", "fix": "…",
//!     "since": 1796515200, "since_day": "2026-12-06",
//!     "first_seen": 1796686000, "last_seen": 1796688000, "resolved_at": null
//!   }
//! }
//! ```
//!
//! `event` is `opened` (first notification), `reminder` (still open a day later) or
//! `resolved` (the condition cleared).

use serde::Serialize;

use super::Alert;
use crate::readiness::date::iso_day;

/// Why a notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The alert was opened.
    Opened,
    /// The alert is still open a day after the last notification.
    Reminder,
    /// The condition cleared.
    Resolved,
}

impl Event {
    /// `opened`, `reminder` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Reminder => "reminder",
            Event::Resolved => "resolved",
        }
    }

    /// The word [`Event::as_str`] writes.
    pub fn parse(word: &str) -> Option<Event> {
        [Event::Opened, Event::Reminder, Event::Resolved]
            .into_iter()
            .find(|e| e.as_str() == word)
    }
}

/// One notification about one stored alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Why it is sent.
    pub event: Event,
    /// When (Unix seconds; the webhook's timestamp header says the same).
    pub sent_at: i64,
    /// The tenant's name.
    pub tenant: String,
    /// The stored alert's id.
    pub id: i64,
    /// The alert as last evaluated.
    pub alert: Alert,
    /// When it was opened (Unix seconds).
    pub first_seen: i64,
    /// When its condition was last seen (Unix seconds).
    pub last_seen: i64,
    /// When it was resolved (Unix seconds).
    pub resolved_at: Option<i64>,
}

#[derive(Serialize)]
struct Body<'a> {
    event: Event,
    sent_at: i64,
    tenant: &'a str,
    alert: AlertBody<'a>,
}

#[derive(Serialize)]
struct AlertBody<'a> {
    id: i64,
    kind: &'static str,
    domain: &'a str,
    key: &'a str,
    title: &'a str,
    what: &'a str,
    fix: &'a str,
    since: i64,
    since_day: String,
    first_seen: i64,
    last_seen: i64,
    resolved_at: Option<i64>,
}

impl Notice {
    /// The webhook's JSON body.
    pub fn json(&self) -> String {
        let a = &self.alert;
        let body = Body {
            event: self.event,
            sent_at: self.sent_at,
            tenant: &self.tenant,
            alert: AlertBody {
                id: self.id,
                kind: a.kind.as_str(),
                domain: &a.domain,
                key: &a.key,
                title: &a.title,
                what: &a.what,
                fix: &a.fix,
                since: a.since,
                since_day: iso_day(a.since),
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                resolved_at: self.resolved_at,
            },
        };
        // Only strings, integers and an enum with string names: serialising cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// The e-mail's subject (one line, no line breaks whatever the alert's text holds).
    pub fn subject(&self) -> String {
        let prefix = match self.event {
            Event::Opened => "[mtasts alert]",
            Event::Reminder => "[mtasts alert, still open]",
            Event::Resolved => "[mtasts resolved]",
        };
        one_line(&format!("{prefix} {}", self.alert.title))
    }

    /// The e-mail's plain text: the same content as the JSON, for people.
    pub fn text(&self) -> String {
        let a = &self.alert;
        let mut out = String::new();
        let state = match self.event {
            Event::Opened => "New alert".to_owned(),
            Event::Reminder => "Still open".to_owned(),
            Event::Resolved => format!(
                "Resolved on {}",
                iso_day(self.resolved_at.unwrap_or(self.sent_at))
            ),
        };
        out.push_str(&format!("{state}: {}\n\n", one_line(&a.title)));
        out.push_str(&format!("Domain: {}\n", a.domain));
        out.push_str(&format!("Kind:   {}\n", a.kind));
        out.push_str(&format!("Since:  {}\n\n", iso_day(a.since)));
        out.push_str(&format!("What happened:\n{}\n\n", a.what));
        out.push_str(&format!("The fix:\n{}\n\n", a.fix));
        out.push_str(&format!(
            "Alert {} of tenant {}; repeats of an open alert are sent at most once a day.\n",
            self.id, self.tenant
        ));
        out
    }
}

/// `text` with every control character (line breaks included) turned into a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertKind;

    fn notice(event: Event) -> Notice {
        Notice {
            event,
            sent_at: 1_796_688_000,
            tenant: "acme".into(),
            id: 7,
            alert: Alert {
                kind: AlertKind::UncoveredMx,
                domain: "example.com".into(),
                key: "mx3.example.com".into(),
                title: "mx3.example.com is not in the policy\r\nBcc: x@y".into(),
                what: "senders reached mx3".into(),
                since: 1_796_515_200,
                fix: "add mx: mx3.example.com".into(),
            },
            first_seen: 1_796_686_000,
            last_seen: 1_796_688_000,
            resolved_at: None,
        }
    }

    #[test]
    fn the_json_body_has_every_member() {
        let v: serde_json::Value = serde_json::from_str(&notice(Event::Opened).json()).unwrap();
        assert_eq!(v["event"], "opened");
        assert_eq!(v["sent_at"], 1_796_688_000);
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["alert"]["id"], 7);
        assert_eq!(v["alert"]["kind"], "uncovered-mx");
        assert_eq!(v["alert"]["domain"], "example.com");
        assert_eq!(v["alert"]["key"], "mx3.example.com");
        assert_eq!(v["alert"]["since_day"], "2026-12-06");
        assert_eq!(v["alert"]["fix"], "add mx: mx3.example.com");
        assert!(v["alert"]["resolved_at"].is_null());
    }

    #[test]
    fn the_subject_is_one_line() {
        let subject = notice(Event::Reminder).subject();
        assert!(
            !subject.contains('\n') && !subject.contains('\r'),
            "{subject}"
        );
        assert!(
            subject.starts_with("[mtasts alert, still open] mx3"),
            "{subject}"
        );
    }

    #[test]
    fn the_text_says_what_since_when_and_the_fix() {
        let mut n = notice(Event::Resolved);
        n.resolved_at = Some(1_796_774_400);
        let text = n.text();
        assert!(text.starts_with("Resolved on 2026-12-09: "), "{text}");
        assert!(text.contains("Since:  2026-12-06"), "{text}");
        assert!(
            text.contains("What happened:\nsenders reached mx3"),
            "{text}"
        );
        assert!(text.contains("The fix:\nadd mx: mx3.example.com"), "{text}");
    }

    #[test]
    fn events_round_trip() {
        for e in [Event::Opened, Event::Reminder, Event::Resolved] {
            assert_eq!(Event::parse(e.as_str()), Some(e));
        }
        assert_eq!(Event::parse("closed"), None);
    }
}
