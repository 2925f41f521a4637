//! The collector's UNIX datagram socket: bound where Postfix's `smtp_tlsrpt_socket_name`
//! points (a stale socket file is replaced), given the configured owner, group and mode (the
//! same code as the socketmap's UNIX socket), and a receive buffer as large as allowed.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use crate::config::UnixSocketConfig;
use crate::error::RunError;
use crate::server::{apply_socket_permissions, remove_stale_socket};

/// The configuration key named in errors about the socket.
const KEY: &str = "tlsrpt.socket";

/// The receive buffer asked for. Senders write without blocking (libtlsrpt), so a datagram
/// arriving while the queue is full is lost at the sender: a larger buffer absorbs bursts.
/// Linux caps the request at `net.core.rmem_max` unless the process may exceed it.
pub const WANTED_RECV_BUFFER: usize = 8 * 1024 * 1024;

/// A bound datagram socket and the receive buffer it got.
#[derive(Debug)]
pub struct BoundSocket {
    /// The socket (blocking; the receiver thread reads it).
    pub socket: UnixDatagram,
    /// The receive buffer size the kernel reports after raising it.
    pub recv_buffer: usize,
}

/// Binds the datagram socket of `config`, replacing a stale socket file, and applies its
/// owner, group and mode. A missing parent folder (e.g. Postfix's `run/tlsrpt`, which no
/// package creates) is created with the default permissions; an existing one is left as the
/// operator set it.
pub fn bind(config: &UnixSocketConfig) -> Result<BoundSocket, RunError> {
    let path: &Path = &config.path;
    if path.as_os_str().is_empty() {
        return Err(RunError::Config(crate::config::ConfigError::Invalid(
            "tlsrpt.socket.path is empty".to_string(),
        )));
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|source| RunError::Io {
            what: format!(
                "cannot create the folder of the TLS-RPT socket {}",
                dir.display()
            ),
            source,
        })?;
    }
    remove_stale_socket(path, KEY)?;
    let socket = UnixDatagram::bind(path).map_err(|source| RunError::Io {
        what: format!("cannot bind the TLS-RPT datagram socket {}", path.display()),
        source,
    })?;
    apply_socket_permissions(config, KEY)?;
    let recv_buffer = raise_recv_buffer(&socket);
    Ok(BoundSocket {
        socket,
        recv_buffer,
    })
}

/// Raises the receive buffer: first beyond `rmem_max` (allowed with CAP_NET_ADMIN, e.g. as
/// root), else up to `rmem_max`. Returns what the kernel reports (0 if it cannot say).
fn raise_recv_buffer(socket: &UnixDatagram) -> usize {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(socket, WANTED_RECV_BUFFER).is_err()
        && let Err(e) = sockopt::set_socket_recv_buffer_size(socket, WANTED_RECV_BUFFER)
    {
        tracing::warn!(error = %e, "cannot raise the TLS-RPT socket's receive buffer");
    }
    sockopt::socket_recv_buffer_size(socket).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn config(path: &Path, mode: &str) -> UnixSocketConfig {
        UnixSocketConfig {
            path: path.to_path_buf(),
            owner: None,
            group: None,
            mode: mode.to_string(),
        }
    }

    #[test]
    fn replaces_a_stale_socket_and_applies_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tlsrpt.sock");
        drop(UnixDatagram::bind(&path).unwrap());
        let bound = bind(&config(&path, "0620")).unwrap();
        let nested = dir.path().join("run/tlsrpt/tlsrpt.sock");
        drop(bind(&config(&nested, "0660")).unwrap());
        assert!(std::fs::metadata(&nested).unwrap().file_type().is_socket());
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o620);
        assert!(bound.recv_buffer > 0);
        let sender = UnixDatagram::unbound().unwrap();
        sender.send_to(b"x", &path).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(bound.socket.recv(&mut buf).unwrap(), 1);
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"keep me").unwrap();
        let err = bind(&config(&path, "0660")).unwrap_err();
        assert!(err.to_string().contains("tlsrpt.socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
