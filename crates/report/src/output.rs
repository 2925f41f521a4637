//! The output contract of `mtasts report` (`shared/spec/report-output.md`): one JSON object per
//! report found and one per unreadable input.
