//! Binding the listeners and running everything: [`bind`] then [`Server::run`], or [`run`]
//! for both.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, UnixSocketConfig, parse_mode};
use crate::daemon::Daemon;
use crate::error::RunError;
use crate::metrics::Metrics;
use crate::socketmap::ServeOptions;

/// Bound listeners and the daemon, ready to run.
pub struct Server {
    daemon: Arc<Daemon>,
    config: Config,
    socketmap_tcp: Vec<TcpListener>,
    socketmap_unix: Option<(UnixListener, PathBuf)>,
    http: Vec<TcpListener>,
    tlsrpt: Option<Arc<crate::tlsrpt::Tlsrpt>>,
    collector: Option<crate::tlsrpt::collect::Collector>,
    /// The inbound policy service's listeners (`[inbound]`).
    inbound_tcp: Vec<TcpListener>,
    inbound_unix: Option<(UnixListener, PathBuf)>,
}

/// Builds the daemon from `config` (opening the cache store, setting up DNS and trust) and
/// binds every listener. `config_path` is the file re-read on reload.
pub async fn bind(config: Config, config_path: Option<PathBuf>) -> Result<Server, RunError> {
    let metrics = Arc::new(Metrics::new());
    let daemon = Daemon::from_config(&config, config_path, metrics).await?;
    bind_with(config, daemon).await
}

/// Binds the listeners of `config` for an existing daemon (tests build the daemon with their
/// own edges).
pub async fn bind_with(config: Config, daemon: Arc<Daemon>) -> Result<Server, RunError> {
    let mut socketmap_tcp = Vec::new();
    for addr in &config.socketmap.tcp {
        socketmap_tcp.push(bind_tcp(*addr, "socketmap").await?);
    }
    let socketmap_unix = match &config.socketmap.unix {
        Some(unix) => Some((bind_unix(unix)?, unix.path.clone())),
        None => None,
    };
    let mut inbound_tcp = Vec::new();
    for addr in &config.inbound.tcp {
        inbound_tcp.push(bind_tcp(*addr, "the inbound policy service").await?);
    }
    let inbound_unix = match &config.inbound.unix {
        Some(unix) => Some((bind_unix(unix)?, unix.path.clone())),
        None => None,
    };
    let mut http = Vec::new();
    for addr in &config.http.listen {
        // The HTTP endpoint (JSON lookups, metrics) is auxiliary: a busy port must not keep
        // the socketmap, which mail delivery depends on, from starting.
        match bind_tcp(*addr, "HTTP").await {
            Ok(listener) => http.push(listener),
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot bind the HTTP listener; serving socketmap without it")
            }
        }
    }
    let tlsrpt = if config.tlsrpt.enabled {
        Some(Arc::new(
            crate::tlsrpt::Tlsrpt::open(&config, daemon.metrics().clone()).await?,
        ))
    } else {
        None
    };
    let collector = match &tlsrpt {
        Some(t) => Some(crate::tlsrpt::collect::start_with_db(
            &config,
            t.db().clone(),
            daemon.metrics().clone(),
        )?),
        None => None,
    };
    Ok(Server {
        daemon,
        config,
        socketmap_tcp,
        socketmap_unix,
        http,
        tlsrpt,
        inbound_tcp,
        inbound_unix,
        collector,
    })
}

async fn bind_tcp(addr: SocketAddr, what: &str) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Io {
            what: format!("cannot listen for {what} on {addr}"),
            source,
        })
}

/// Binds the UNIX socket: a stale socket file is replaced (any other file is an error), then
/// the owner, group and mode are applied.
fn bind_unix(config: &UnixSocketConfig) -> Result<UnixListener, RunError> {
    remove_stale_socket(&config.path, "socketmap.unix.path")?;
    let listener = UnixListener::bind(&config.path).map_err(|source| RunError::Io {
        what: format!("cannot listen on the UNIX socket {}", config.path.display()),
        source,
    })?;
    apply_socket_permissions(config, "socketmap.unix")?;
    Ok(listener)
}

/// Removes a stale socket file at `path` before binding there; any other kind of file is a
/// configuration error naming `key` (the setting that names the path).
pub(crate) fn remove_stale_socket(path: &Path, key: &str) -> Result<(), RunError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(RunError::Config(ConfigError::Invalid(format!(
                "{key} {} exists and is not a socket",
                path.display()
            ))));
        }
        std::fs::remove_file(path).map_err(|source| RunError::Io {
            what: format!("cannot remove the stale socket {}", path.display()),
            source,
        })?;
    }
    Ok(())
}

/// Applies the mode, owner and group of `config` to the socket just bound at `config.path`;
/// `key` names the setting in errors.
pub(crate) fn apply_socket_permissions(
    config: &UnixSocketConfig,
    key: &str,
) -> Result<(), RunError> {
    let path = &config.path;
    let io_err = |what: String| move |source| RunError::Io { what, source };
    let mode = parse_mode(&config.mode).map_err(RunError::Config)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("cannot set the mode of {}", path.display())))?;
    let uid = config
        .owner
        .as_deref()
        .map(|owner| lookup_id(owner, Path::new("/etc/passwd"), key))
        .transpose()?;
    let gid = config
        .group
        .as_deref()
        .map(|group| lookup_id(group, Path::new("/etc/group"), key))
        .transpose()?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(io_err(format!(
            "cannot change the owner of {}",
            path.display()
        )))?;
    }
    Ok(())
}

/// A numeric id, or the id of a name in a passwd/group-format file (`name:x:id:…`).
fn lookup_id(name: &str, file: &Path, key: &str) -> Result<u32, RunError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text = std::fs::read_to_string(file).map_err(|source| RunError::Io {
        what: format!("cannot read {}", file.display()),
        source,
    })?;
    find_id(&text, name).ok_or_else(|| {
        RunError::Config(ConfigError::Invalid(format!(
            "{key}: no {name:?} in {}",
            file.display()
        )))
    })
}

/// The third field of the line whose first field is `name`.
fn find_id(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.trim().parse().ok()
    })
}

/// Binds every listener of `config` and serves until `shutdown` is cancelled (see the crate
/// docs). Returns after the drain, or with an error if binding fails or a listener dies.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
    reload: Arc<Notify>,
) -> Result<(), RunError> {
    bind(config, config_path).await?.run(shutdown, reload).await
}

impl Server {
    /// The daemon.
    pub fn daemon(&self) -> &Arc<Daemon> {
        &self.daemon
    }

    /// The TLS-RPT subsystem, when `[tlsrpt] enabled = true`.
    pub fn tlsrpt(&self) -> Option<&Arc<crate::tlsrpt::Tlsrpt>> {
        self.tlsrpt.as_ref()
    }

    /// The bound socketmap TCP addresses (useful with port 0).
    pub fn socketmap_addrs(&self) -> Vec<SocketAddr> {
        self.socketmap_tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The TLS-RPT datagram socket, when TLS-RPT is enabled with a socket.
    pub fn tlsrpt_socket(&self) -> Option<&Path> {
        self.collector.as_ref().and_then(|c| c.socket_path())
    }

    /// The bound TCP addresses of the inbound policy service.
    pub fn inbound_addrs(&self) -> Vec<SocketAddr> {
        self.inbound_tcp
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The bound HTTP addresses.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` is cancelled; each `reload` notification re-reads the
    /// configuration file and swaps the decision settings without dropping connections.
    /// Then stops accepting, lets requests in progress finish (up to `drain_timeout`),
    /// removes the UNIX socket and returns.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        reload: Arc<Notify>,
    ) -> Result<(), RunError> {
        let Server {
            daemon,
            config,
            socketmap_tcp,
            socketmap_unix,
            http,
            tlsrpt,
            inbound_tcp,
            inbound_unix,
            collector,
        } = self;
        let drain = Duration::from_secs(config.drain_timeout);
        // Every connection is a descriptor: raise the limit, and keep the caps below it.
        let files = mtasts_listen::files::OpenFiles::raise();
        let socketmap_count = socketmap_tcp.len() + usize::from(socketmap_unix.is_some());
        let wanted: Vec<usize> =
            std::iter::repeat_n(config.socketmap.max_connections, socketmap_count)
                .chain(std::iter::repeat_n(config.http.max_connections, http.len()))
                .collect();
        let caps = files.caps(&wanted);
        let socketmap_cap = caps
            .first()
            .copied()
            .unwrap_or(config.socketmap.max_connections);
        let http_cap = caps
            .get(socketmap_count)
            .copied()
            .unwrap_or(config.http.max_connections);
        tracing::info!(
            open_files = files.limit,
            open_files_at_start = files.was,
            socketmap_max_connections = socketmap_cap,
            http_max_connections = http_cap,
            "open-files limit and connection caps"
        );
        let options = ServeOptions {
            max_connections: socketmap_cap,
            idle_timeout: Duration::from_secs(config.socketmap.idle_timeout),
            request_timeout: Duration::from_secs(config.socketmap.request_timeout),
            drain_timeout: drain,
            ..ServeOptions::default()
        };
        let mut listeners: Vec<mtasts_listen::Listener> = socketmap_tcp
            .into_iter()
            .map(mtasts_listen::Listener::from)
            .collect();
        let unix_path = socketmap_unix.map(|(listener, path)| {
            listeners.push(listener.into());
            path
        });
        let mut servers = Vec::new();
        for listener in listeners {
            servers.push(crate::socketmap::spawn(
                listener,
                daemon.clone(),
                options.clone(),
                daemon.metrics().clone(),
                &shutdown,
            ));
        }
        // The policy service shares the socketmap's limits and timeouts (the same Postfix
        // processes connect to both).
        let mut inbound: Vec<mtasts_listen::Listener> = inbound_tcp
            .into_iter()
            .map(mtasts_listen::Listener::from)
            .collect();
        let inbound_path = inbound_unix.map(|(listener, path)| {
            inbound.push(listener.into());
            path
        });
        for listener in inbound {
            servers.push(crate::inbound::service::spawn(
                listener,
                daemon.clone(),
                options.clone(),
                &shutdown,
            ));
        }
        let request_timeout = Duration::from_secs(config.http.request_timeout);
        let router = crate::http::router(
            daemon.clone(),
            request_timeout,
            collector.as_ref().map(|c| c.intake()),
        );
        for listener in http {
            servers.push(crate::http::spawn(
                listener,
                router.clone(),
                crate::http::connection_limits(http_cap, request_timeout, drain),
                &shutdown,
            ));
        }
        let refresh = tokio::spawn(crate::refresh::run(
            daemon.discovery().clone(),
            config.refresh.clone(),
            daemon.metrics().clone(),
            shutdown.clone(),
        ));
        // Building and delivering TLS reports (the collector is started with the listeners).
        let tlsrpt_task = tlsrpt.map(|t| tokio::spawn(t.run(shutdown.clone())));
        tracing::info!(
            socketmap = ?config.socketmap.tcp,
            unix = ?unix_path,
            http = ?config.http.listen,
            store = daemon.store().configured_backend(),
            "mtasts resolver running"
        );
        // The listeners never stop on their own (accept errors pause them, see
        // `mtasts-listen`); only a shutdown ends them.
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = reload.notified() => {
                    if let Err(e) = daemon.reload() {
                        tracing::error!(error = %e, "reload failed; the previous settings stay");
                    }
                }
            }
        }
        // Each listener drains within the drain deadline.
        for server in &servers {
            server.wait().await;
        }
        let _ = refresh.await;
        if let Some(collector) = collector {
            // After the HTTP drain: no intake request is left; pending datagrams are committed.
            collector.shutdown().await;
        }
        if let Some(task) = tlsrpt_task {
            let _ = task.await;
        }
        for path in unix_path.into_iter().chain(inbound_path) {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!("mtasts resolver stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_passwd_and_group_files() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostfix:x:107:113::/var/spool/postfix:/usr/sbin/nologin\n";
        assert_eq!(find_id(passwd, "postfix"), Some(107));
        assert_eq!(find_id(passwd, "root"), Some(0));
        assert_eq!(find_id(passwd, "post"), None);
        let group = "postfix:x:113:\npostdrop:x:114:\n";
        assert_eq!(find_id(group, "postdrop"), Some(114));
        assert_eq!(
            lookup_id("42", Path::new("/nonexistent"), "test").unwrap(),
            42
        );
    }
}
