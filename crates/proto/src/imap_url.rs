//! IMAP mailbox URLs (`imaps://USER@HOST[:PORT]/MAILBOX`, RFC 5092 subset).
