//! The strict policy fetcher.
