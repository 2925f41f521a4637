//! A private Dovecot IMAP server on loopback for the report intake tests.
