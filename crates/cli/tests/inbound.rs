//! `mtasts query --inbound` and the resolver's inbound policy service as an operator runs
//! them: a config file, the binary, a real socket, SIGHUP swapping the rules.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mtasts(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts"))
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap()
}

fn config(dir: &Path, port: u16, partner_level: &str) -> String {
    format!(
        r#"data_dir = "{dir}"
[socketmap]
tcp = []
[http]
listen = []
[cache]
url = "memory"
[refresh]
enabled = false
[inbound]
tcp = ["127.0.0.1:{port}"]
refuse = "550 5.7.0"
[inbound.senders]
"partner.test" = "{partner_level}"
[inbound.networks]
"192.0.2.0/24" = "may"
[inbound.clients]
".bank.test" = {{ level = "verify", min_tls = "TLSv1.3", refuse = "450 4.7.1" }}
"#,
        dir = dir.display()
    )
}

const PLAIN_REQUEST: &[u8] = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@partner.test\nclient_address=198.51.100.1\nclient_name=unknown\n\n";

fn ask(stream: &mut TcpStream) -> String {
    stream.write_all(PLAIN_REQUEST).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\n\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed: {answer:?}");
        answer.push(byte[0]);
    }
    String::from_utf8(answer).unwrap()
}

#[test]
fn query_inbound_shows_the_rule_and_each_kind_of_session() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mtasts.toml");
    std::fs::write(&file, config(dir.path(), 8463, "encrypt")).unwrap();
    let file = file.to_str().unwrap();
    let out = mtasts(&[
        "query",
        "--inbound",
        "alice@partner.test",
        "198.51.100.1",
        "--config",
        file,
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("rule: sender partner.test (encrypt)"),
        "{text}"
    );
    assert!(
        text.contains("plaintext: action=550 5.7.0 TLS (STARTTLS) is required"),
        "{text}"
    );
    assert!(text.contains("TLSv1.2: action=DUNNO"), "{text}");
    // The network rule wins over the sender's.
    let out = mtasts(&[
        "query",
        "--inbound",
        "alice@partner.test",
        "192.0.2.9",
        "--config",
        file,
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("rule: network 192.0.2.0/24 (may)"), "{text}");
    assert!(text.contains("plaintext: action=DUNNO"), "{text}");
    // Client hostname[address], JSON.
    let out = mtasts(&[
        "query",
        "--inbound",
        "<>",
        "mx1.bank.test[198.51.100.2]",
        "--config",
        file,
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rule"], "client .bank.test");
    assert_eq!(json["sender_domain"], serde_json::Value::Null);
    let sessions = json["sessions"].as_array().unwrap();
    assert!(
        sessions[1]["action"]
            .as_str()
            .unwrap()
            .starts_with("450 4.7.1 TLSv1.3 or later is required, not TLSv1.2")
    );
    assert!(sessions[3]["action"] == "DUNNO", "{json}");
    // A bad client is a usage error.
    let out = mtasts(&[
        "query",
        "--inbound",
        "a@b.test",
        "not a host",
        "--config",
        file,
    ]);
    assert!(!out.status.success());
}

#[test]
fn resolver_serves_the_policy_service_and_sighup_reloads_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let port = mtasts_testkit::free_port(std::net::Ipv4Addr::LOCALHOST.into(), &[]).unwrap();
    let file = dir.path().join("mtasts.toml");
    std::fs::write(&file, config(dir.path(), port, "encrypt")).unwrap();
    let check = mtasts(&[
        "resolver",
        "--check-config",
        "--config",
        file.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("3 inbound rules"), "{text}");
    let daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_mtasts"))
            .args(["resolver", "--config", file.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("the policy service did not start: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(ask(&mut stream).starts_with("action=550 5.7.0 TLS (STARTTLS) is required"));
    std::fs::write(&file, config(dir.path(), port, "may")).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The same connection gets the new rules once the reload is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = ask(&mut stream);
        if answer == "action=DUNNO\n\n" {
            break;
        }
        assert!(Instant::now() < deadline, "still {answer:?} after SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
}
