//! One discovery of a domain: the `_mta-sts` TXT lookup, the RFC 8461 cache step
//! ([`mtasts_proto::sts::cache::next_step`]), maybe a policy fetch, and the store updated,
//! run as a single flight ([`super::flight`]).

use std::sync::Arc;

use futures::FutureExt;
use mtasts_proto::sts::cache::{FETCH_BACKOFF_SECS, Step, TxtState, in_backoff, next_step};
use mtasts_store::{Entry, EntryState};

use super::flight::Flight;
use super::hot::{Checked, HotPolicy};
use super::outcome::{CacheUse, DiscoveryDetails, StsOutcome, StsSource, backoff_until};
use super::{Discovery, steps};

impl Discovery {
    /// The running discovery of `domain`, or a new one.
    pub(super) fn flight(self: &Arc<Self>, domain: &str, force: bool) -> Flight {
        let this = self.clone();
        let owned = domain.to_string();
        let joined = self.flights.join(domain, move || {
            async move { this.discover(&owned, force).await }.boxed()
        });
        match joined {
            Ok(flight) => flight,
            Err(_busy) => {
                self.count_discovery("busy", None);
                let outcome = StsOutcome {
                    details: Box::new(DiscoveryDetails {
                        outcome: Some("busy"),
                        note: Some("too many discoveries waiting".to_string()),
                        ..DiscoveryDetails::default()
                    }),
                    ..StsOutcome::none(domain, true)
                };
                futures::future::ready(Arc::new(outcome)).boxed().shared()
            }
        }
    }

    /// One discovery: TXT lookup, the cache decision, maybe a fetch, the store updated.
    async fn discover(&self, domain: &str, force: bool) -> StsOutcome {
        let now = self.clock.now();
        let options = self.options();
        let entry = self.load(domain).await;
        if !force
            && let Some(entry) = &entry
            && let EntryState::NoPolicy { until } = entry.state
            && now < until
        {
            // Another discovery just found nothing.
            return StsOutcome::negative(domain, until, entry.last_failure);
        }
        let cached = entry.as_ref().and_then(|e| steps::stored_policy(domain, e));
        let last_failure = entry.as_ref().and_then(|e| e.last_failure);
        // A refresh is not a use: it keeps `last_used`, so unused policies age out of
        // refresh-ahead.
        let used = match (&entry, force) {
            (Some(entry), true) => entry.last_used,
            _ => now,
        };
        let (txt, txt_details) = steps::txt(&*self.dns, domain).await;
        self.memo_put(
            domain,
            Checked::new(now, txt == TxtState::TempError),
            &options,
        );
        let step = match (&txt, force) {
            (TxtState::Record(_), true) if !in_backoff(last_failure, now) => Step::Fetch,
            _ => next_step(cached.as_ref(), &txt, last_failure, now),
        };
        let mut details = DiscoveryDetails {
            txt: Some(txt_details),
            step: Some(steps::step_name(step)),
            last_failure,
            backoff_until: backoff_until(last_failure, now),
            ..DiscoveryDetails::default()
        };
        let usable = cached.clone().filter(|c| !c.is_expired(now));
        match step {
            Step::UseCached => {
                let outcome = match &txt {
                    TxtState::Record(id) if usable.as_ref().is_some_and(|c| &c.id == id) => {
                        "unchanged"
                    }
                    TxtState::Record(_) => "backoff",
                    TxtState::NoRecord => "no-record",
                    TxtState::TempError => "dns-error",
                };
                self.count_discovery(outcome, None);
                details.outcome = Some(outcome);
                if let Some(entry) = &entry
                    && !force
                {
                    self.touch(entry, now).await;
                }
                // next_step only says UseCached with a usable policy.
                StsOutcome::kept(domain, usable, details)
            }
            Step::NoPolicy => {
                let (outcome, temp) = match &txt {
                    TxtState::TempError => ("dns-error", true),
                    TxtState::NoRecord => ("no-record", false),
                    TxtState::Record(_) => ("backoff", false),
                };
                self.count_discovery(outcome, None);
                details.outcome = Some(outcome);
                if txt == TxtState::NoRecord && options.negative_ttl > 0 {
                    let until = now.saturating_add(options.negative_ttl);
                    details.negative_until = Some(until);
                    self.save(&Entry {
                        domain: domain.to_string(),
                        state: EntryState::NoPolicy { until },
                        last_failure,
                        last_used: used,
                    })
                    .await;
                }
                StsOutcome {
                    details: Box::new(details),
                    ..StsOutcome::none(domain, temp)
                }
            }
            Step::Fetch => {
                let TxtState::Record(id) = txt else {
                    // next_step fetches only for a record; keep a typed answer regardless.
                    return StsOutcome {
                        details: Box::new(details),
                        ..StsOutcome::none(domain, false)
                    };
                };
                let report = self.fetcher.fetch(domain).await;
                let (fetched, fetch_details) = steps::read_fetch(&report, id, now);
                details.fetch = Some(fetch_details);
                match fetched {
                    Ok(policy) => {
                        self.count_discovery("fetched", None);
                        details.outcome = Some("fetched");
                        details.backoff_until = None;
                        details.last_failure = None;
                        self.save(&Entry {
                            domain: domain.to_string(),
                            state: EntryState::Policy {
                                id: policy.id.as_str().to_string(),
                                body: policy.body.clone(),
                                fetched_at: now,
                            },
                            last_failure: None,
                            last_used: used,
                        })
                        .await;
                        StsOutcome {
                            domain: domain.to_string(),
                            policy: Some(Arc::new(HotPolicy::new(policy))),
                            source: StsSource::Fresh,
                            cache: CacheUse::Miss,
                            temp_error: false,
                            details: Box::new(details),
                        }
                    }
                    Err((outcome, result_type)) => {
                        tracing::info!(
                            %domain,
                            outcome,
                            result_type = %result_type,
                            "MTA-STS policy fetch failed"
                        );
                        self.count_discovery(outcome, Some(&result_type));
                        details.outcome = Some(outcome);
                        details.result_type = Some(result_type.to_string());
                        details.last_failure = Some(now);
                        details.backoff_until = Some(now.saturating_add(FETCH_BACKOFF_SECS));
                        // Keep a cached policy (C91); without one, remember the failure as a
                        // short negative entry so the backoff also spares DNS.
                        let state = match &entry {
                            Some(Entry {
                                state: state @ EntryState::Policy { .. },
                                ..
                            }) => state.clone(),
                            _ => EntryState::NoPolicy {
                                until: now.saturating_add(FETCH_BACKOFF_SECS),
                            },
                        };
                        if let EntryState::NoPolicy { until } = state {
                            details.negative_until = Some(until);
                        }
                        self.save(&Entry {
                            domain: domain.to_string(),
                            state,
                            last_failure: Some(now),
                            last_used: used,
                        })
                        .await;
                        StsOutcome::kept(domain, usable, details)
                    }
                }
            }
        }
    }
}
