//! The receiving side of SMTP (RFC 5321) for the service's report mailboxes, without I/O:
//! which reply answers which command in which state, the limits of a session, and how the
//! message body is collected.
//!
//! The listener in `mtasts-host` owns the socket; it feeds every line it reads to a
//! [`Session`] and does what the returned [`Action`] says (write a reply, start TLS, collect
//! the message, close). The body lines go through a [`DataReader`], which removes the dot
//! stuffing (RFC 5321 §4.5.2), finds the end of the message and enforces the size cap.
//!
//! The rules, each written once here:
//!
//! - **Recipients** are accepted only for the report mailboxes
//!   ([`ReportAddresses::mailbox_of`](crate::hosted::reporting::ReportAddresses::mailbox_of)):
//!   anything else is `550 5.1.1`. Nothing is ever relayed.
//! - **Sizes**: `SIZE` (RFC 1870) is announced as the message cap; a `MAIL FROM` declaring more
//!   is `552 5.3.4`, and a body that grows past it is read to its end, discarded and answered
//!   `552 5.3.4`.
//! - **Lines**: a command line is at most [`MAX_LINE_BYTES`] octets with its CRLF (RFC 5321
//!   §4.5.3.1.6); a longer one is `500 5.5.2`.
//! - **Counts**: at most [`Limits::max_commands`] commands per session, [`Limits::max_errors`]
//!   refused commands (then `421` and the connection closes) and [`Limits::max_recipients`]
//!   recipients per message (`452 4.5.3`, RFC 5321 §4.5.3.1.10).
//! - **STARTTLS** (RFC 3207) is offered only when the listener has a certificate and TLS is not
//!   already on; after the handshake the session starts again from the greeting state (the
//!   client must say EHLO again, and nothing said before is kept).

mod command;
mod data;
mod reply;
mod session;

pub use command::{Command, MailParams, parse_command};
pub use data::{DataReader, DataStep};
pub use reply::Reply;
pub use session::{Action, DataOutcome, Envelope, Limits, Session, State};

/// The longest command line, CRLF included (RFC 5321 §4.5.3.1.4 and §4.5.3.1.6 allow 512 for
/// commands; 1000 is the text-line limit and what real clients stay within with extensions).
pub const MAX_LINE_BYTES: usize = 1000;
