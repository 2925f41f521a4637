//! The open elements of the DMARC reader, innermost last, kept without allocating: the names the format
//! uses are interned as `&'static str` in a fixed array (the depth is bounded by [`MAX_DEPTH`]), so the
//! reader matches slice patterns on them as before while an element costs no `String` and no `Vec`.
//! Only the rare names the format does not know are kept as owned text, for messages that name them.

use super::super::MAX_DEPTH;

/// Stands in the array for any name the format does not use. No XML name contains NUL, so this never
/// equals a name from a document, and no pattern of the reader matches it.
const OTHER: &str = "\0";

/// The element names the reader matches on; every other name is [`OTHER`]. The arms are tried in
/// turn, so the names every record repeats come first.
fn intern(name: &str) -> &'static str {
    match name {
        "domain" => "domain",
        "result" => "result",
        "dkim" => "dkim",
        "spf" => "spf",
        "record" => "record",
        "row" => "row",
        "source_ip" => "source_ip",
        "count" => "count",
        "policy_evaluated" => "policy_evaluated",
        "disposition" => "disposition",
        "identifiers" => "identifiers",
        "header_from" => "header_from",
        "auth_results" => "auth_results",
        "selector" => "selector",
        "scope" => "scope",
        "envelope_from" => "envelope_from",
        "envelope_to" => "envelope_to",
        "reason" => "reason",
        "type" => "type",
        "comment" => "comment",
        "feedback" => "feedback",
        "version" => "version",
        "report_metadata" => "report_metadata",
        "org_name" => "org_name",
        "email" => "email",
        "report_id" => "report_id",
        "date_range" => "date_range",
        "begin" => "begin",
        "end" => "end",
        "policy_published" => "policy_published",
        "p" => "p",
        "sp" => "sp",
        "np" => "np",
        "adkim" => "adkim",
        "aspf" => "aspf",
        "pct" => "pct",
        "testing" => "testing",
        _ => OTHER,
    }
}

/// The open elements: interned names, whether each has had a child element yet, and the real names of
/// those interned as [`OTHER`].
#[derive(Debug)]
pub(super) struct Path {
    names: [&'static str; MAX_DEPTH],
    has_child: [bool; MAX_DEPTH],
    depth: usize,
    others: Vec<String>,
}

impl Default for Path {
    fn default() -> Self {
        Self {
            names: [OTHER; MAX_DEPTH],
            has_child: [false; MAX_DEPTH],
            depth: 0,
            others: Vec::new(),
        }
    }
}

impl Path {
    /// How many elements are open.
    pub(super) fn depth(&self) -> usize {
        self.depth
    }

    /// Opens `name` inside the current element (which now has a child). The caller keeps the depth
    /// below [`MAX_DEPTH`].
    pub(super) fn push(&mut self, name: &str) {
        if let Some(parent) = self.depth.checked_sub(1) {
            self.has_child[parent] = true;
        }
        let interned = intern(name);
        if interned == OTHER {
            self.others.push(name.to_owned());
        }
        self.names[self.depth] = interned;
        self.has_child[self.depth] = false;
        self.depth += 1;
    }

    /// Closes the innermost element.
    pub(super) fn pop(&mut self) {
        if let Some(last) = self.depth.checked_sub(1) {
            if self.names[last] == OTHER {
                self.others.pop();
            }
            self.depth = last;
        }
    }

    /// A copy of the open elements below the root, which the caller can match on while it changes the
    /// reader's state.
    pub(super) fn snapshot(&self) -> Snapshot {
        // A copy of constant size is a few moves; the length then says how much of it is open.
        let mut names = [OTHER; SNAPSHOT_DEPTH];
        names.copy_from_slice(&self.names[1..=SNAPSHOT_DEPTH]);
        let below_root = self.depth.saturating_sub(1);
        let len = if below_root <= SNAPSHOT_DEPTH {
            below_root
        } else {
            0
        };
        Snapshot { names, len }
    }

    /// Whether the innermost element has had a child element.
    pub(super) fn innermost_has_child(&self) -> bool {
        self.depth
            .checked_sub(1)
            .is_some_and(|last| self.has_child[last])
    }

    /// The real name of the innermost element.
    pub(super) fn innermost(&self) -> Option<&str> {
        let last = self.depth.checked_sub(1)?;
        match self.names[last] {
            OTHER => self.others.last().map(String::as_str),
            known => Some(known),
        }
    }
}

/// The deepest path below the root that the reader acts on (`record/row/policy_evaluated/reason/type`).
/// A snapshot copies no more, as this is done twice per element.
const SNAPSHOT_DEPTH: usize = 5;
const _: () = assert!(SNAPSHOT_DEPTH < MAX_DEPTH);

/// The open elements below the root at one moment (see [`Path::snapshot`]).
pub(super) struct Snapshot {
    names: [&'static str; SNAPSHOT_DEPTH],
    len: usize,
}

impl Snapshot {
    /// The open elements below the root (`feedback`), outermost first; empty when they are more than
    /// [`SNAPSHOT_DEPTH`], since the reader acts on no such path (no pattern matches an empty path).
    pub(super) fn below_root(&self) -> &[&'static str] {
        &self.names[..self.len]
    }
}
