//! `mtasts resolver`, `mtasts query` and `mtasts cache` as an operator runs them: a config file,
//! real sockets, SIGHUP reload without dropping connections, SIGTERM, and the SQLite cache
//! surviving for the admin commands.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtasts_proto::socketmap::{MAX_REPLY_BYTES, decode_netstring, encode_netstring};
use mtasts_testkit::TestNet;
use mtasts_testkit::smtp::MxHostSpec;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 other than those in `avoid` (the testkit's one rule).
fn free_port(avoid: &[u16]) -> u16 {
    mtasts_testkit::free_port(std::net::Ipv4Addr::LOCALHOST.into(), avoid).unwrap()
}

fn config(net: &TestNet, dir: &Path, socketmap: u16, http: u16, partner_level: &str) -> String {
    format!(
        r#"data_dir = "{dir}"
timeout = 5
dns_servers = ["{dns}"]
ca_files = ["{ca}"]
builtin_roots = false
https_port = {https}

[socketmap]
tcp = ["127.0.0.1:{socketmap}"]

[http]
listen = ["127.0.0.1:{http}"]

[tls_levels]
"partner.test" = "{partner_level}"
"#,
        dir = dir.display(),
        dns = net.dns_addr(),
        ca = net.ca_file().display(),
        https = net.https_port(),
    )
}

fn ask(stream: &mut TcpStream, key: &str) -> String {
    stream
        .write_all(&encode_netstring(format!("postfix {key}").as_bytes()))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((reply, _)) = decode_netstring(&buf, MAX_REPLY_BYTES).unwrap() {
            return String::from_utf8(reply).unwrap();
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the resolver closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "mtasts resolver did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mtasts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn resolver_serves_reloads_and_stops_and_admin_commands_see_its_cache() {
    let net = TestNet::start().await;
    net.zone().add_mx("enforce.test", 10, "mx.enforce.test");
    net.add_mx_host("mx.enforce.test", MxHostSpec::default())
        .await;
    net.add_sts_domain(
        "enforce.test",
        "version: STSv1\nmode: enforce\nmx: mx.enforce.test\nmax_age: 604800\n",
        "v=STSv1; id=1",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let socketmap = free_port(&[]);
    let http = free_port(&[socketmap]);
    let file = dir.path().join("mtasts.toml");
    std::fs::write(&file, config(&net, dir.path(), socketmap, http, "encrypt")).unwrap();
    let file_arg = file.to_str().unwrap().to_owned();

    let check = mtasts(&["resolver", "--config", &file_arg, "--check-config"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_mtasts"))
            .args(["resolver", "--config", &file_arg])
            .env_remove("SSL_CERT_FILE")
            .env("MTASTS_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut conn = tokio::task::spawn_blocking(move || connect(socketmap))
        .await
        .unwrap();
    let (answer, mut conn) =
        tokio::task::spawn_blocking(move || (ask(&mut conn, "enforce.test"), conn))
            .await
            .unwrap();
    assert_eq!(
        answer,
        "OK secure match=mx.enforce.test servername=hostname"
    );
    let (answer, mut conn) =
        tokio::task::spawn_blocking(move || (ask(&mut conn, "partner.test"), conn))
            .await
            .unwrap();
    assert_eq!(answer, "OK encrypt");

    // SIGHUP: the new static level applies on the connection that stayed open.
    std::fs::write(&file, config(&net, dir.path(), socketmap, http, "may")).unwrap();
    signal(&daemon.0, "HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (answer, c) =
            tokio::task::spawn_blocking(move || (ask(&mut conn, "partner.test"), conn))
                .await
                .unwrap();
        conn = c;
        if answer == "OK may" {
            break;
        }
        assert_eq!(answer, "OK encrypt");
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the configuration"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // `mtasts query` with the same configuration (a fresh discovery, cache untouched).
    let q = tokio::task::spawn_blocking({
        let file_arg = file_arg.clone();
        move || mtasts(&["query", "enforce.test", "--config", &file_arg, "--json"])
    })
    .await
    .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let v: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(
        v["answer"],
        "OK secure match=mx.enforce.test servername=hostname"
    );

    // SIGTERM: a graceful exit with status 0.
    let mut daemon = daemon;
    signal(&daemon.0, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "mtasts resolver did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!log.contains("ERROR"), "{log}");
    drop(conn);

    // The SQLite cache outlives the daemon: list it, then purge the domain.
    let list = mtasts(&["cache", "list", "--config", &file_arg]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("\"domain\":\"enforce.test\""), "{listed}");
    let purge = mtasts(&["cache", "purge", "enforce.test", "--config", &file_arg]);
    assert_eq!(
        String::from_utf8_lossy(&purge.stdout).trim(),
        "removed 1 entry"
    );
    let show = mtasts(&["cache", "show", "enforce.test", "--config", &file_arg]);
    assert_eq!(show.status.code(), Some(1));
}

#[test]
fn a_busy_http_port_does_not_stop_the_socketmap() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = busy.local_addr().unwrap().to_string();
    let socketmap = free_port(&[]);
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_mtasts"))
            .args([
                "resolver",
                "--listen",
                &format!("127.0.0.1:{socketmap}"),
                "--http-listen",
                &http,
            ])
            .args(["--cache", "memory", "--timeout", "2"])
            .env_remove("SSL_CERT_FILE")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut conn = connect(socketmap);
    // Parent-domain probes and address literals are answered without any DNS.
    assert_eq!(ask(&mut conn, ".example.com"), "NOTFOUND ");
    assert_eq!(ask(&mut conn, "[192.0.2.1]:25"), "NOTFOUND ");
}
