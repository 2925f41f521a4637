//! Spreading a report's counts over the UTC days its date range covers (daily rollups).
