//! HTTPS policy hosts: `/.well-known/mta-sts.txt` served per SNI name, with faults.
