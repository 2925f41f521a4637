//! [`Session`]: the state machine of one SMTP connection — which reply each command gets in
//! each state, when the connection must close, and what the transaction collected.

use crate::hosted::reporting::{Mailbox, ReportAddresses};

use super::command::{Command, parse_command};
use super::reply::Reply;

/// The limits of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, in octets after dot unstuffing: announced as `SIZE`.
    pub max_message_bytes: u64,
    /// Commands in one session (every line read outside DATA counts); then `421`.
    pub max_commands: u32,
    /// Refused commands in one session; then `421`.
    pub max_errors: u32,
    /// Recipients of one message; more are `452 4.5.3`.
    pub max_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 25 * 1024 * 1024,
            max_commands: 1000,
            max_errors: 10,
            max_recipients: 10,
        }
    }
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Greeted; waiting for EHLO or HELO (again after STARTTLS).
    Greeting,
    /// EHLO/HELO done, no transaction.
    Ready,
    /// `MAIL FROM` accepted, no recipient yet.
    Mail,
    /// At least one recipient accepted.
    Rcpt,
    /// `354` sent: the message is being read.
    Data,
    /// The session is over.
    Closed,
}

/// What the listener must do after a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the reply and read the next command.
    Reply(Reply),
    /// Send the reply and close the connection.
    Close(Reply),
    /// Send the reply (`220`), then run the TLS handshake as server and call
    /// [`Session::tls_started`]; a failed handshake ends the connection.
    StartTls(Reply),
    /// Send the reply (`354`), then read the message with a
    /// [`DataReader`](super::DataReader) of [`Session::limits`]'s size and call
    /// [`Session::data_ended`].
    Data(Reply),
}

/// The transaction: what the client declared for the message being sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (`""` for the null sender).
    pub mail_from: String,
    /// The recipients accepted, as sent, with the mailbox each names.
    pub recipients: Vec<(String, Mailbox)>,
    /// `BODY=8BITMIME`.
    pub eight_bit: bool,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
}

/// How reading and storing the message ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// Committed to the database; the text names what was stored (logged by the sender).
    Committed(String),
    /// The message grew past the cap and was dropped.
    TooLarge,
    /// The database refused or did not answer: nothing is acknowledged; the sender retries.
    Unavailable,
}

/// One connection's SMTP state.
#[derive(Clone, Debug)]
pub struct Session {
    addresses: ReportAddresses,
    limits: Limits,
    state: State,
    tls: bool,
    starttls_offered: bool,
    helo: Option<String>,
    envelope: Envelope,
    commands: u32,
    errors: u32,
}

impl Session {
    /// A session for the mailboxes of `addresses`; `starttls` when the listener has a
    /// certificate to offer.
    pub fn new(addresses: ReportAddresses, limits: Limits, starttls: bool) -> Session {
        Session {
            addresses,
            limits,
            state: State::Greeting,
            tls: false,
            starttls_offered: starttls,
            helo: None,
            envelope: Envelope::default(),
            commands: 0,
            errors: 0,
        }
    }

    /// The greeting (`220 <host> ESMTP`).
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            None,
            format!("{} ESMTP mtasts report intake", self.host()),
        )
    }

    /// The reply at connect to a client over its connection cap (then close).
    pub fn too_many_connections() -> Reply {
        Reply::new(
            421,
            Some("4.7.0"),
            "too many connections from your address, try later",
        )
    }

    /// The reply when the client was silent for too long (then close).
    pub fn timeout() -> Reply {
        Reply::new(421, Some("4.4.2"), "timeout, closing the connection")
    }

    /// The reply when the server stops (then close).
    pub fn shutting_down() -> Reply {
        Reply::new(421, Some("4.3.2"), "service shutting down, try later")
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether TLS is on.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The name the client gave in EHLO/HELO (since the last STARTTLS).
    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    /// The current transaction.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Takes a command line longer than [`super::MAX_LINE_BYTES`] (its rest was discarded).
    pub fn line_too_long(&mut self) -> Action {
        self.count_command()
            .unwrap_or_else(|| self.refuse(Reply::new(500, Some("5.5.2"), "line too long")))
    }

    /// Takes one command line.
    pub fn command(&mut self, line: &[u8]) -> Action {
        if let Some(close) = self.count_command() {
            return close;
        }
        let command = parse_command(line);
        match (command, self.state) {
            (_, State::Closed | State::Data) => {
                // Not reached by a listener that follows the actions; refuse rather than panic.
                self.refuse(Reply::new(503, Some("5.5.1"), "bad sequence of commands"))
            }
            (Command::Ehlo(name), _) => {
                self.reset_transaction();
                self.helo = Some(name.clone());
                self.state = State::Ready;
                Action::Reply(self.ehlo_reply(&name))
            }
            (Command::Helo(name), _) => {
                self.reset_transaction();
                self.helo = Some(name.clone());
                self.state = State::Ready;
                Action::Reply(Reply::new(
                    250,
                    None,
                    format!("{} greets {name}", self.host()),
                ))
            }
            (Command::Mail(..), State::Greeting) => {
                self.refuse(Reply::new(503, Some("5.5.1"), "say EHLO first"))
            }
            (Command::Mail(..), State::Mail | State::Rcpt) => self.refuse(Reply::new(
                503,
                Some("5.5.1"),
                "a transaction is already open",
            )),
            (Command::Mail(path, params), State::Ready) => {
                if params
                    .size
                    .is_some_and(|s| s > self.limits.max_message_bytes)
                {
                    return self.refuse(Reply::new(
                        552,
                        Some("5.3.4"),
                        format!(
                            "message size exceeds the limit of {} octets",
                            self.limits.max_message_bytes
                        ),
                    ));
                }
                self.envelope = Envelope {
                    mail_from: path,
                    recipients: Vec::new(),
                    eight_bit: params.eight_bit,
                    smtputf8: params.smtputf8,
                };
                self.state = State::Mail;
                Action::Reply(Reply::new(250, Some("2.1.0"), "sender OK"))
            }
            (Command::Rcpt(_), State::Greeting | State::Ready) => {
                self.refuse(Reply::new(503, Some("5.5.1"), "MAIL FROM first"))
            }
            (Command::Rcpt(path), State::Mail | State::Rcpt) => {
                if self.envelope.recipients.len() >= self.limits.max_recipients {
                    return Action::Reply(Reply::new(452, Some("4.5.3"), "too many recipients"));
                }
                match self.addresses.mailbox_of(&path) {
                    Some(mailbox) => {
                        self.envelope.recipients.push((path, mailbox));
                        self.state = State::Rcpt;
                        Action::Reply(Reply::new(250, Some("2.1.5"), "recipient OK"))
                    }
                    None => self.refuse(Reply::new(
                        550,
                        Some("5.1.1"),
                        format!(
                            "no such mailbox: this server takes reports for {} only",
                            self.host()
                        ),
                    )),
                }
            }
            (Command::Data, State::Rcpt) => {
                self.state = State::Data;
                Action::Data(Reply::new(
                    354,
                    None,
                    "send the message, end with <CRLF>.<CRLF>",
                ))
            }
            (Command::Data, State::Mail) => {
                self.refuse(Reply::new(554, Some("5.5.1"), "no valid recipients"))
            }
            (Command::Data, _) => self.refuse(Reply::new(503, Some("5.5.1"), "MAIL FROM first")),
            (Command::Rset, state) => {
                self.reset_transaction();
                if state != State::Greeting {
                    self.state = State::Ready;
                }
                Action::Reply(Reply::new(250, Some("2.0.0"), "OK"))
            }
            (Command::Noop, _) => Action::Reply(Reply::new(250, Some("2.0.0"), "OK")),
            (Command::Quit, _) => {
                self.state = State::Closed;
                Action::Close(Reply::new(221, Some("2.0.0"), "bye"))
            }
            (Command::StartTls, _) if self.tls => {
                self.refuse(Reply::new(503, Some("5.5.1"), "TLS is already on"))
            }
            (Command::StartTls, _) if !self.starttls_offered => {
                self.refuse(Reply::new(502, Some("5.5.1"), "STARTTLS is not offered"))
            }
            (Command::StartTls, State::Mail | State::Rcpt) => self.refuse(Reply::new(
                503,
                Some("5.5.1"),
                "STARTTLS inside a transaction",
            )),
            (Command::StartTls, _) => {
                Action::StartTls(Reply::new(220, Some("2.0.0"), "ready to start TLS"))
            }
            (Command::Vrfy, _) => Action::Reply(Reply::new(
                252,
                Some("2.5.0"),
                "cannot verify, but will accept mail for the report mailboxes",
            )),
            (Command::Help, _) => Action::Reply(Reply::new(
                214,
                Some("2.0.0"),
                format!(
                    "this server takes TLS and DMARC reports for {}",
                    self.host()
                ),
            )),
            (Command::Unknown(_), _) => {
                self.refuse(Reply::new(500, Some("5.5.2"), "command not recognized"))
            }
            (Command::Syntax(why), _) => self.refuse(Reply::new(501, Some("5.5.4"), why)),
            (Command::BadParameter(name), _) => self.refuse(Reply::new(
                555,
                Some("5.5.4"),
                format!("parameter {name} not supported"),
            )),
        }
    }

    /// The TLS handshake after [`Action::StartTls`] succeeded: the session starts over from
    /// the greeting state (RFC 3207 §4.2: nothing learnt before TLS is kept).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.reset_transaction();
        self.state = State::Greeting;
    }

    /// The message after [`Action::Data`] was read (and stored, or not): the reply, and the
    /// session is ready for the next transaction.
    pub fn data_ended(&mut self, outcome: DataOutcome) -> Action {
        self.reset_transaction();
        self.state = State::Ready;
        Action::Reply(match outcome {
            DataOutcome::Committed(what) => {
                Reply::new(250, Some("2.0.0"), format!("stored {what}"))
            }
            DataOutcome::TooLarge => Reply::new(
                552,
                Some("5.3.4"),
                format!(
                    "message size exceeds the limit of {} octets",
                    self.limits.max_message_bytes
                ),
            ),
            DataOutcome::Unavailable => Reply::new(
                451,
                Some("4.3.0"),
                "the message could not be stored, try again later",
            ),
        })
    }

    fn host(&self) -> &str {
        self.addresses.host()
    }

    fn ehlo_reply(&self, name: &str) -> Reply {
        let mut lines: Vec<std::borrow::Cow<'static, str>> = vec![
            format!("{} greets {name}", self.host()).into(),
            "PIPELINING".into(),
            format!("SIZE {}", self.limits.max_message_bytes).into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.starttls_offered && !self.tls {
            lines.push("STARTTLS".into());
        }
        Reply {
            code: 250,
            status: None,
            lines,
        }
    }

    fn reset_transaction(&mut self) {
        self.envelope = Envelope::default();
    }

    /// Counts a command; past the cap, the closing reply.
    fn count_command(&mut self) -> Option<Action> {
        self.commands = self.commands.saturating_add(1);
        (self.commands > self.limits.max_commands).then(|| {
            self.state = State::Closed;
            Action::Close(Reply::new(421, Some("4.7.0"), "too many commands, closing"))
        })
    }

    /// A refused command: its reply, or `421` and close once there were too many.
    fn refuse(&mut self, reply: Reply) -> Action {
        self.errors = self.errors.saturating_add(1);
        if self.errors >= self.limits.max_errors {
            self.state = State::Closed;
            return Action::Close(Reply::new(421, Some("4.7.0"), "too many errors, closing"));
        }
        Action::Reply(reply)
    }
}

#[cfg(test)]
mod tests;
