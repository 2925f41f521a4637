//! A private Dovecot IMAP server on loopback for the report intake tests (Debian's
//! `dovecot-imapd`).
//!
//! [`Dovecot::start`] writes a configuration into a temp dir — one user in a passwd-file, a
//! static userdb, a Maildir under the temp dir, the certificate a test CA issued — and starts
//! `/usr/sbin/dovecot -F` with two listeners on `127.0.0.1`: implicit TLS ([`Dovecot::imaps`])
//! and a plain one that offers STARTTLS ([`Dovecot::imap`]); `ssl = required` refuses logins
//! on the plain one until STARTTLS. Messages are delivered by writing Maildir files
//! ([`Dovecot::deliver`], the way a local delivery agent does: `tmp/` then a rename into
//! `new/`), which Dovecot notices (IDLE included), and read back from the Maildir with their
//! flags and keywords ([`Dovecot::messages`]).
//!
//! Dovecot's login processes must not run as root and its mail processes not as uid 0: as
//! root, the tests' Maildir belongs to the package's `dovecot` user and logins run as
//! `dovenull`; as anyone else, everything runs as that user.
//!
//! The server runs under a small `sh` watchdog whose standard input is a pipe from the test:
//! when the [`Dovecot`] is dropped, or the test process dies, the pipe closes and the watchdog
//! stops Dovecot, so no server outlives its test.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ca::ServerCert;
use crate::services::{Service, skip};
use crate::world::free_port;

/// Where Debian's `dovecot-core` installs the server.
pub const DOVECOT_BIN: &str = "/usr/sbin/dovecot";

/// How long Dovecot may take to accept connections after starting.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long Dovecot may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Dovecot with one user.
pub struct Dovecot {
    watchdog: Option<Child>,
    dir: tempfile::TempDir,
    imaps: SocketAddr,
    imap: SocketAddr,
    user: String,
    password: String,
    mail_owner: Option<(u32, u32)>,
}

/// One message in a Maildir folder, as Dovecot keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaildirMessage {
    /// The file name.
    pub file: String,
    /// The system flags as Maildir letters (`S` seen, `T` deleted, …), sorted.
    pub flags: String,
    /// The keywords (`$MtastsImported`, …), from the folder's `dovecot-keywords`.
    pub keywords: Vec<String>,
    /// The message bytes.
    pub bytes: Vec<u8>,
}

impl Dovecot {
    /// Whether `/usr/sbin/dovecot` exists.
    pub fn installed() -> bool {
        Path::new(DOVECOT_BIN).is_file()
    }

    /// [`Dovecot::start`] for a test: `None` (after the [`skip`] rule for
    /// [`Service::Dovecot`]) when Dovecot is not installed; any other error is a failure.
    #[track_caller]
    pub fn start_or_skip(cert: &ServerCert, user: &str, password: &str) -> Option<Dovecot> {
        match Dovecot::start(cert, user, password) {
            Ok(dovecot) => Some(dovecot),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                skip(Service::Dovecot, &e);
                None
            }
            Err(e) => panic!("cannot start dovecot: {e}"),
        }
    }

    /// Starts Dovecot on two free ports of `127.0.0.1`, presenting `cert` (issue it for
    /// `localhost`), with one user `user` whose password is `password`. Fails with `NotFound`
    /// when Dovecot is not installed.
    pub fn start(cert: &ServerCert, user: &str, password: &str) -> io::Result<Dovecot> {
        if !Self::installed() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("dovecot not installed ({DOVECOT_BIN}; Debian package `dovecot-imapd`)"),
            ));
        }
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut last_error = None;
        // Ports are picked by binding and releasing them; another process can take one in
        // between, so a failed start is retried on fresh ports.
        for _ in 0..3 {
            let imaps = SocketAddr::new(ip, free_port(ip, &[])?);
            let imap = SocketAddr::new(ip, free_port(ip, &[imaps.port()])?);
            match Self::start_on(cert, user, password, imaps, imap) {
                Ok(dovecot) => return Ok(dovecot),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("dovecot did not start")))
    }

    fn start_on(
        cert: &ServerCert,
        user: &str,
        password: &str,
        imaps: SocketAddr,
        imap: SocketAddr,
    ) -> io::Result<Dovecot> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        // Dovecot's unprivileged helpers must reach the run directory inside.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::write(root.join("cert.pem"), cert.chain_pem())?;
        std::fs::write(root.join("key.pem"), cert.key_pem())?;
        std::fs::write(
            root.join("passwd"),
            format!("{user}:{{PLAIN}}{password}::::::\n"),
        )?;
        let home = root.join("home");
        std::fs::create_dir_all(home.join("Maildir/cur"))?;
        std::fs::create_dir_all(home.join("Maildir/new"))?;
        std::fs::create_dir_all(home.join("Maildir/tmp"))?;
        let (uid, gid, login_user, internal_user, mail_owner) = match effective_ids() {
            Some((0, _)) => {
                let (uid, gid) = user_ids("dovecot").ok_or_else(|| {
                    io::Error::other("running as root needs the `dovecot` user of the package")
                })?;
                (
                    uid,
                    gid,
                    "dovenull".to_owned(),
                    "dovecot".to_owned(),
                    Some((uid, gid)),
                )
            }
            Some((uid, gid)) => {
                let name = user_name(uid)
                    .ok_or_else(|| io::Error::other(format!("uid {uid} has no user name")))?;
                (uid, gid, name.clone(), name, None)
            }
            None => return Err(io::Error::other("cannot read /proc/self/status")),
        };
        let config = format!(
            "instance_name = mtasts-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
default_login_user = {login_user}
default_internal_user = {internal_user}
mail_location = maildir:{root}/home/Maildir
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
",
            port = imaps.port(),
            root = root.display(),
            imap_port = imap.port(),
            imaps_port = imaps.port(),
        );
        std::fs::write(root.join("dovecot.conf"), config)?;
        let dovecot = Dovecot {
            watchdog: None,
            dir,
            imaps,
            imap,
            user: user.to_owned(),
            password: password.to_owned(),
            mail_owner,
        };
        dovecot.chown_home()?;
        let mut dovecot = dovecot;
        let conf = dovecot.dir.path().join("dovecot.conf");
        // The watchdog: Dovecot in the foreground, stopped (TERM, then waited for) when the
        // test closes the pipe on its standard input.
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{DOVECOT_BIN} -F -c \"$0\" </dev/null & pid=$!; cat >/dev/null; kill -TERM $pid; wait $pid"
            ))
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        dovecot.watchdog = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = dovecot.watchdog.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(io::Error::other(format!(
                    "dovecot exited ({status}): {}",
                    dovecot.log()
                )));
            }
            if accepts(imaps) && TcpStream::connect(imap).is_ok() {
                return Ok(dovecot);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "dovecot did not listen within {START_TIMEOUT:?}: {}",
                dovecot.log()
            ),
        ))
    }

    /// The implicit-TLS listener.
    pub fn imaps(&self) -> SocketAddr {
        self.imaps
    }

    /// The plain listener, which offers STARTTLS and refuses logins before it.
    pub fn imap(&self) -> SocketAddr {
        self.imap
    }

    /// The user's login name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The Maildir folder of `mailbox` (`INBOX` is the root; `A/B` is `.A.B`, Maildir++).
    pub fn folder(&self, mailbox: &str) -> PathBuf {
        let maildir = self.dir.path().join("home/Maildir");
        if mailbox.eq_ignore_ascii_case("INBOX") {
            maildir
        } else {
            maildir.join(format!(".{}", mailbox.replace('/', ".")))
        }
    }

    /// Delivers `message` into `mailbox` (created when missing) as a local delivery agent
    /// does: written to `tmp/`, then renamed into `new/`. Returns the file's path.
    pub fn deliver(&self, mailbox: &str, message: &[u8]) -> io::Result<PathBuf> {
        let folder = self.folder(mailbox);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(folder.join(sub))?;
        }
        if !mailbox.eq_ignore_ascii_case("INBOX") {
            std::fs::write(folder.join("maildirfolder"), b"")?;
        }
        let name = format!(
            "{}.M{:x}P{}.mtasts-test",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            crate::random_u64(),
            std::process::id()
        );
        let tmp = folder.join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(message)?;
        file.sync_all()?;
        drop(file);
        self.chown_home()?;
        let new = folder.join("new").join(&name);
        std::fs::rename(&tmp, &new)?;
        Ok(new)
    }

    /// The messages of `mailbox` (in `cur/` and `new/`), in file name order, with their flags
    /// and keywords. A missing folder has none.
    pub fn messages(&self, mailbox: &str) -> io::Result<Vec<MaildirMessage>> {
        let folder = self.folder(mailbox);
        let keywords: Vec<(usize, String)> =
            std::fs::read_to_string(folder.join("dovecot-keywords"))
                .unwrap_or_default()
                .lines()
                .filter_map(|line| {
                    let (index, name) = line.split_once(' ')?;
                    Some((index.parse().ok()?, name.to_owned()))
                })
                .collect();
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            let entries = match std::fs::read_dir(folder.join(sub)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let file = entry.file_name().to_string_lossy().into_owned();
                let info = file.split_once(":2,").map_or("", |(_, info)| info);
                let mut flags: Vec<char> = info.chars().filter(char::is_ascii_uppercase).collect();
                flags.sort_unstable();
                let names = info
                    .chars()
                    .filter(char::is_ascii_lowercase)
                    .filter_map(|c| {
                        let index = (c as u8 - b'a') as usize;
                        keywords
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map(|(_, n)| n.clone())
                    })
                    .collect();
                let mut bytes = Vec::new();
                std::fs::File::open(entry.path())?.read_to_end(&mut bytes)?;
                out.push(MaildirMessage {
                    file,
                    flags: flags.into_iter().collect(),
                    keywords: names,
                    bytes,
                });
            }
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(out)
    }

    fn chown_home(&self) -> io::Result<()> {
        let Some((uid, gid)) = self.mail_owner else {
            return Ok(());
        };
        chown_tree(&self.dir.path().join("home"), uid, gid)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let Some(mut child) = self.watchdog.take() else {
            return;
        };
        drop(child.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Whether the listener at `addr` accepts a connection (Dovecot's master listens before the
/// login processes run, so a connection is enough: they answer once started).
fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_symlink() {
                continue;
            }
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The effective user and group ids, from `/proc/self/status`.
fn effective_ids() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u32> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(2)?.parse().ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// The uid and gid of `user`, from `/etc/passwd`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// The name of `uid`, from `/etc/passwd`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && fields[2].parse() == Ok(uid)).then(|| fields[0].to_owned())
    })
}
