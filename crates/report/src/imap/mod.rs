//! Report intake from an IMAP mailbox (`mtasts report fetch`).
