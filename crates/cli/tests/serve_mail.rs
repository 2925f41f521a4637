//! The SMTP intake of a real `mtasts serve` process: a report sent by `swaks` and one sent by
//! a bare client that kills serve with SIGKILL the moment it reads the `250` are both in the
//! database after a restart (what serve acknowledges is already committed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

use mtasts_store::reports::{Filter, ReportDb};

#[path = "support/serve.rs"]
mod serve_process;

/// A loopback address of its own for this test run.
fn loopback() -> String {
    let n = std::process::id();
    format!("127.{}.{}.{}", 100 + n % 100, (n / 100) % 250 + 1, 25)
}

fn sample(path: &str) -> Vec<u8> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Starts `mtasts serve` for the samples' zone on `ip` with its data in `dir`, and returns it
/// with its SMTP address.
fn start(ip: &str, dir: &std::path::Path) -> (Child, SocketAddr) {
    let (child, addrs) = serve_process::start("hosted.test", ip, dir);
    (child, addrs.smtp)
}

/// Reads one SMTP reply (all its lines); returns its code.
fn reply(reader: &mut BufReader<TcpStream>) -> u16 {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.len() >= 4, "short reply {line:?}");
        if line.as_bytes()[3] != b'-' {
            return line[..3].parse().unwrap();
        }
    }
}

#[test]
fn a_kill_9_right_after_the_250_loses_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback();
    let (mut serve, smtp) = start(&ip, dir.path());

    // One report with swaks, an independent client.
    let swaks = mtasts_testkit::services::command_or_skip(
        mtasts_testkit::services::Service::Swaks,
        "swaks",
        &["--version"],
    );
    if swaks {
        let file = dir.path().join("google.eml");
        std::fs::write(&file, sample("tlsrpt/mox/example.eml")).unwrap();
        let out = Command::new("swaks")
            .args(["--server", &smtp.to_string(), "--ehlo", "sender.test"])
            .args([
                "--from",
                "noreply@sender.test",
                "--to",
                "tlsrpt@reports.hosted.test",
            ])
            .arg("--data")
            .arg(format!("@{}", file.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("250 2.0.0 stored"),
            "{text}"
        );
    }

    // One by a client that kills serve the moment the 250 arrives.
    let stream = TcpStream::connect(smtp).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(reply(&mut reader), 220);
    for (line, code) in [
        ("EHLO sender.test", 250),
        ("MAIL FROM:<noreply@dmarc.test>", 250),
        ("RCPT TO:<dmarc@reports.hosted.test>", 250),
        ("DATA", 354),
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        assert_eq!(reply(&mut reader), code, "{line}");
    }
    // Dot-stuffed, and ended with CRLF . CRLF (the sample has no final line end).
    let mut message = Vec::new();
    for line in sample("dmarc/mail-auth/100.eml").split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            message.push(b'.');
        }
        message.extend_from_slice(line);
    }
    if !message.ends_with(b"\r\n") {
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(b".\r\n");
    writer.write_all(&message).unwrap();
    let code = reply(&mut reader);
    serve.kill().unwrap(); // SIGKILL
    serve.wait().unwrap();
    assert_eq!(code, 250);
    // The connection is gone with the process.
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);

    // A restart on the same data opens the database as it was left.
    let (mut again, _) = start(&ip, dir.path());
    let _ = Command::new("kill").arg(again.id().to_string()).status();
    again.wait().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite:{}", dir.path().join("serve.db").display());
        let db = ReportDb::open(&url).await.unwrap();
        let reports = db.list(&Filter::default(), 10).await.unwrap();
        let mut kinds: Vec<String> = reports.iter().map(|r| r.kind.to_string()).collect();
        kinds.sort();
        let expected: &[&str] = if swaks {
            &["dmarc", "tlsrpt"]
        } else {
            &["dmarc"]
        };
        assert_eq!(kinds, expected);
        for report in &reports {
            let arrivals = db.arrivals_of_report(report.id).await.unwrap();
            assert_eq!(arrivals.len(), 1, "{report:?}");
            assert_eq!(arrivals[0].helo, "sender.test");
        }
        db.close().await;
    });
}
