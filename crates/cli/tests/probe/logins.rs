//! Items 2, 3 (sessions) and 7 (login CSRF) of issue 10: logins behind a reverse proxy
//! (`trusted_proxies`), lockouts that hit only the attacker and say when to retry, per-account
//! limits, sessions that end (idle time, logout everywhere), and a login CSRF value the server
//! must have issued.

use std::time::Duration;

use super::harness::{PASSWORD, Site};
use super::http::{self, Browser};

/// A browser behind the proxy, whose client address the proxy forwards.
fn from(addr: std::net::SocketAddr, client: &str) -> Browser {
    Browser::new(addr).with_header("X-Forwarded-For", client)
}

#[test]
fn behind_a_trusted_proxy_only_the_attacker_is_locked_out() {
    // The harness connects from 127.0.0.1: it is the proxy.
    let mut site = Site::new("trusted_proxies = [\"127.0.0.1\"]");
    let serve = site.start();
    serve.tenant("alpha");
    serve.user("alpha", "owner@alpha.example", "owner");
    serve.user("alpha", "second@alpha.example", "owner");

    // Many users log in correctly through the one proxy address: none is locked out
    // (before issue 10 the eleventh login, by anyone, was refused).
    for n in 1..=15 {
        let mut user = from(serve.api, &format!("198.51.100.{n}"));
        let reply = user.login("owner@alpha.example", PASSWORD);
        assert_eq!(reply.status, 303, "login {n}: {}", reply.text());
    }
    // The same user logging in again and again from one address is not locked out either:
    // only failures count.
    for n in 1..=12 {
        let reply = from(serve.api, "198.51.100.99").login("owner@alpha.example", PASSWORD);
        assert_eq!(reply.status, 303, "login {n}: {}", reply.text());
    }

    // One attacker guessing: locked out after the burst, told when to retry.
    let mut locked = None;
    for _ in 0..12 {
        let reply = from(serve.api, "203.0.113.66").login("nobody@alpha.example", "guess");
        if reply.status == 429 {
            locked = Some(reply);
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    let locked = locked.expect("twelve failed logins from one address were not limited");
    let retry: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    assert!(
        locked
            .text()
            .contains(&format!("Try again in {retry} seconds")),
        "{}",
        locked.text()
    );
    // Still locked, also through RFC 7239 `Forwarded`, even with the right password.
    let again = Browser::new(serve.api)
        .with_header("Forwarded", "for=\"203.0.113.66\";proto=https")
        .login("owner@alpha.example", PASSWORD);
    assert_eq!(again.status, 429, "{}", again.text());
    // Everyone else still logs in.
    for client in ["198.51.100.7", "2001:db8::7"] {
        let reply = from(serve.api, client).login("owner@alpha.example", PASSWORD);
        assert_eq!(reply.status, 303, "{client}: {}", reply.text());
    }

    // Failures are also limited per account, whatever addresses they come from.
    let mut account_locked = false;
    for n in 1..=12 {
        let reply = from(serve.api, &format!("192.0.2.{n}")).login("second@alpha.example", "guess");
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_some());
            account_locked = true;
            break;
        }
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    assert!(
        account_locked,
        "twelve failed logins to one account were not limited"
    );

    // The API takes the client from the same headers: one forwarded client guessing tokens is
    // limited, another one behind the same proxy is not.
    let guess = |client: &str| {
        let made_up = format!("Bearer mtasts_{}", "B".repeat(43));
        http::request(
            serve.api,
            "GET",
            "/api/v1/me",
            &[("Authorization", &made_up), ("X-Forwarded-For", client)],
            b"",
        )
    };
    let limited = (0..15).any(|_| guess("203.0.113.77").status == 429);
    assert!(
        limited,
        "fifteen bad tokens from one forwarded client were not limited"
    );
    assert_eq!(guess("198.51.100.77").status, 401);
    assert!(serve.stop());
}

#[test]
fn an_untrusted_peer_cannot_escape_the_limit_by_forging_forwarded_addresses() {
    let mut site = Site::new("");
    let serve = site.start();
    let mut limited = false;
    for n in 1..=12 {
        let reply = from(serve.api, &format!("198.51.100.{n}")).login("nobody@x.example", "guess");
        if reply.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(
        limited,
        "a forged X-Forwarded-For escaped the per-client limit"
    );
    assert!(serve.stop());
}

#[test]
fn a_login_csrf_pair_the_server_did_not_issue_is_refused() {
    let mut site = Site::new("");
    let serve = site.start();
    serve.tenant("alpha");
    serve.user("alpha", "owner@alpha.example", "owner");
    // The attacker's own pair: the same value in the cookie and the field.
    let made_up = "5f".repeat(32);
    let mut browser = Browser::new(serve.api);
    browser
        .cookies
        .push(("mtasts_login".to_owned(), made_up.clone()));
    let forged = browser.post(
        "/login",
        &[
            ("csrf", &made_up),
            ("email", "owner@alpha.example"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert!(forged.cookie("mtasts_session").is_none());
    // The form's own value works.
    let real = Browser::new(serve.api).login("owner@alpha.example", PASSWORD);
    assert_eq!(real.status, 303, "{}", real.text());
    assert!(serve.stop());
}

#[test]
fn sessions_end_on_logout_everywhere_and_after_the_idle_time() {
    let mut site = Site::new("session_idle_timeout = 2");
    let serve = site.start();
    serve.tenant("alpha");
    serve.user("alpha", "owner@alpha.example", "owner");
    let logged_in = |b: &mut Browser| b.get("/").status == 200;

    // Logout ends the session: its cookie, replayed, is worth nothing.
    let mut first = Browser::new(serve.api);
    assert_eq!(first.login("owner@alpha.example", PASSWORD).status, 303);
    assert!(logged_in(&mut first));
    let stolen = first.cookies.clone();
    let csrf = first.csrf_of("/");
    assert_eq!(first.post("/logout", &[("csrf", &csrf)]).status, 303);
    let mut replay = Browser::new(serve.api);
    replay.cookies = stolen;
    assert!(!logged_in(&mut replay));

    // Logout everywhere ends the user's other sessions too.
    let mut laptop = Browser::new(serve.api);
    let mut phone = Browser::new(serve.api);
    assert_eq!(laptop.login("owner@alpha.example", PASSWORD).status, 303);
    assert_eq!(phone.login("owner@alpha.example", PASSWORD).status, 303);
    assert!(logged_in(&mut phone));
    let csrf = laptop.csrf_of("/");
    let all = laptop.post("/logout-all", &[("csrf", &csrf)]);
    assert!(
        matches!(all.status, 200 | 303),
        "{} {}",
        all.status,
        all.text()
    );
    assert!(!logged_in(&mut laptop));
    assert!(!logged_in(&mut phone));

    // A session unused for longer than the idle timeout (2 s here) is over.
    let mut idle = Browser::new(serve.api);
    assert_eq!(idle.login("owner@alpha.example", PASSWORD).status, 303);
    assert!(logged_in(&mut idle));
    std::thread::sleep(Duration::from_millis(3_200));
    let after = idle.get("/");
    assert_ne!(after.status, 200, "{}", after.text());
    assert!(serve.stop());
}

#[test]
fn a_session_ends_after_its_lifetime_even_when_used() {
    let mut site = Site::new("session_lifetime = 3");
    let serve = site.start();
    serve.tenant("alpha");
    serve.user("alpha", "owner@alpha.example", "owner");
    let mut browser = Browser::new(serve.api);
    assert_eq!(browser.login("owner@alpha.example", PASSWORD).status, 303);
    let started = std::time::Instant::now();
    // Used every half second: never idle, but over after 3 s.
    let mut ended = None;
    while started.elapsed() < Duration::from_secs(8) {
        if browser.get("/").status != 200 {
            ended = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let ended = ended.expect("the session outlived its lifetime");
    assert!(ended >= Duration::from_secs(2), "ended after {ended:?}");
    assert!(serve.stop());
}
