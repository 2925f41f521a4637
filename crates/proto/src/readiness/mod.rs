//! Whether a domain is ready to enforce: plain-language verdicts from received reports.
