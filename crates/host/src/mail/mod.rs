//! The SMTP intake: a receiving SMTP listener for the service's report mailboxes
//! (`tlsrpt@reports.<zone>`, `dmarc@reports.<zone>`), on the shared accept loop of
//! `mtasts-listen`.
//!
//! The protocol decisions (which reply to which command, the limits, the DATA reader) are
//! `mtasts_proto::smtp_server`'s; this module is the I/O around them:
//!
//! - [`connection`]: one connection — line reading within the caps, timeouts, STARTTLS, the
//!   message read with dot unstuffing;
//! - [`tls`]: the certificate STARTTLS presents ([`tls::CertificateSource`]: the snapshot's
//!   service certificate or, until ACME issued it, a self-signed one; a fixed one in tests);
//! - [`deliver`]: storing an accepted message through the report core's
//!   [`Intake`](mtasts_report::intake::Intake) and recording its arrival, **before** the `250`;
//! - [`dkim`]: DKIM verification of each message (recorded with its arrival, never required);
//! - [`clients`]: the per-client connection cap that answers `421` at connect.

pub mod clients;
pub mod connection;
pub mod deliver;
pub mod dkim;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use mtasts_listen::{ConnectionLimits, Server};
use mtasts_proto::hosted::reporting::ReportAddresses;
use mtasts_proto::smtp_server::Limits;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::clients::Clients;
use self::deliver::Deliver;
use self::tls::CertificateSource;

/// The settings of the SMTP intake.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The session limits (message size, commands, errors, recipients).
    pub limits: Limits,
    /// Connections one IP address may hold; one more is answered `421` and closed.
    pub max_connections_per_client: usize,
    /// How long the server waits for each command and for each piece of a message; a whole
    /// message must arrive within [`DATA_TIMEOUT_FACTOR`] times this.
    pub timeout: Duration,
    /// Most connections at once (all clients).
    pub max_connections: usize,
}

/// A whole message must arrive within this many times [`MailConfig::timeout`].
pub const DATA_TIMEOUT_FACTOR: u32 = 4;

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            limits: Limits::default(),
            max_connections_per_client: 10,
            timeout: Duration::from_secs(300),
            max_connections: 1024,
        }
    }
}

/// What every connection of one listener shares.
pub(crate) struct Shared {
    pub(crate) addresses: ReportAddresses,
    pub(crate) config: MailConfig,
    pub(crate) deliver: Deliver,
    pub(crate) certificates: Arc<dyn CertificateSource>,
    pub(crate) clients: Clients,
}

/// A running SMTP intake listener.
pub struct MailIntake {
    server: Server,
}

impl MailIntake {
    /// Serves SMTP on `listener` for the mailboxes of `addresses`, storing through `deliver`.
    pub fn start(
        listener: TcpListener,
        addresses: ReportAddresses,
        config: MailConfig,
        deliver: Deliver,
        certificates: Arc<dyn CertificateSource>,
    ) -> MailIntake {
        let limits = ConnectionLimits {
            max_connections: config.max_connections,
            // One over the cap so that the client hears our `421` (the loop itself would
            // close silently).
            max_per_client: config.max_connections_per_client.saturating_add(1),
            // Our own timeouts answer `421` first; the loop's is the backstop.
            idle_timeout: config.timeout + Duration::from_secs(30),
            // A session in progress is not closed for a newcomer unless it has been quiet
            // for a long time.
            evict_after: config.timeout,
            ..ConnectionLimits::default()
        };
        let shared = Arc::new(Shared {
            clients: Clients::new(config.max_connections_per_client),
            addresses,
            config,
            deliver,
            certificates,
        });
        let server = Server::spawn(
            listener,
            limits,
            &CancellationToken::new(),
            move |stream, ctx| connection::serve(shared.clone(), stream, ctx),
        );
        MailIntake { server }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.local_addr()
    }

    /// Stops accepting, asks every session to end (`421` between commands; a message being
    /// stored is finished first) and waits for them.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
