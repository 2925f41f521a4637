//! Reading one large gzip or XML stream without holding it whole (a DMARC report of a million records).
