//! The received-reports database of `mtasts report` and `mtasts serve`: TLS-RPT and DMARC
//! aggregate reports, their raw bytes, per-policy / per-record rows and daily rollups.
