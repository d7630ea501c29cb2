//! Passwords over real HTTP: a one-time password must be changed before anything else, a
//! changed password ends the account's other sessions, and wrong passwords make the next
//! sign-in wait (per account and per client address, 429 with Retry-After) without
//! holding back other accounts or addresses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;
use crate::server::{Answer, call, login, start};

const PASSWORD: &str = "a long enough passphrase";

fn add_user(dir: &std::path::Path, name: &str, role: &str) {
    let (okay, out, err) = run_with(
        dir,
        &["users", "add", name, "--role", role, "--password-stdin"],
        &[],
        &format!("{PASSWORD}\n"),
    );
    assert!(okay, "{out}{err}");
}

/// A connection to the server on 127.0.0.1 from the loopback address `from` (127.x.y.z).
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let (local, remote) = (addr(from, 0), addr([127, 0, 0, 1], port));
    // SAFETY: a new socket, bound and connected with valid addresses, then owned by the
    // TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        assert_eq!(libc::bind(fd, (&raw const local).cast(), len), 0, "bind");
        assert_eq!(
            libc::connect(fd, (&raw const remote).cast(), len),
            0,
            "connect"
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// `POST /api/login` as `user` from `from`.
fn sign_in_from(from: [u8; 4], port: u16, user: &str, password: &str) -> Answer {
    let body = json!({"username": user, "password": password}).to_string();
    let mut conn = connect_from(from, port);
    write!(
        conn,
        "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    let _ = conn.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    Answer {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn retry_after(a: &Answer) -> u64 {
    a.headers
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .unwrap_or_else(|| panic!("no Retry-After: {}", a.headers))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_one_time_password_must_be_changed_before_anything_else() {
    let (_tmp, dir) = project();
    let server = start(&dir);
    let port = server.port;
    let (cookie, csrf) = login(port, "admin", &server.admin_password);
    let (other, _) = login(port, "admin", &server.admin_password);
    let session = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let refused = [
        ("GET", "/api/runs", ""),
        ("GET", "/api/tables", ""),
        ("GET", "/api/users", ""),
        ("GET", "/metrics", ""),
        ("POST", "/api/query", r#"{"sql": "select 1 as x"}"#),
    ];
    for (method, path, body) in refused {
        let a = call(port, method, path, &session, body);
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert_eq!(a.json()["code"], "password_change_required", "{}", a.body);
        assert!(a.json()["error"].as_str().unwrap().contains("new password"));
    }
    // Who am I is answered (the UI needs it to show the form).
    let me = call(port, "GET", "/api/me", &session, "").json();
    assert_eq!(me["must_change_password"], true);
    // The one-time password cannot be kept.
    let same = json!({"current": server.admin_password, "new": server.admin_password});
    let a = call(port, "POST", "/api/password", &session, &same.to_string());
    assert_eq!(a.status, 400, "{}", a.body);
    let kept = dir.join(".socle").join("admin-password");
    assert!(
        kept.is_file(),
        "the one-time password is kept until it is changed"
    );
    let change = json!({"current": server.admin_password, "new": PASSWORD});
    let a = call(port, "POST", "/api/password", &session, &change.to_string());
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["other_sessions_ended"], 1);
    // A password no longer of use is not left on disk.
    assert!(
        !kept.exists(),
        "the one-time password file outlived its use"
    );
    // This session goes on, with everything its role allows; the other one ended.
    for (method, path, body) in refused {
        let a = call(port, method, path, &session, body);
        assert_eq!(a.status, 200, "{method} {path}: {}", a.body);
    }
    assert_eq!(
        call(port, "GET", "/api/me", &[("Cookie", &other)], "").status,
        401
    );
    assert_eq!(
        sign_in_from([127, 0, 0, 1], port, "admin", &server.admin_password).status,
        401
    );
    login(port, "admin", PASSWORD);
}

#[test]
fn changing_a_password_ends_the_other_sessions() {
    let (_tmp, dir) = project();
    let server = start(&dir);
    add_user(&dir, "ana", "analyst");
    let port = server.port;
    let (laptop, csrf) = login(port, "ana", PASSWORD);
    let (phone, _) = login(port, "ana", PASSWORD);
    let (tablet, _) = login(port, "ana", PASSWORD);
    for c in [&laptop, &phone, &tablet] {
        assert_eq!(
            call(port, "GET", "/api/runs", &[("Cookie", c)], "").status,
            200
        );
    }
    let change = json!({"current": PASSWORD, "new": "quite another passphrase"});
    let a = call(
        port,
        "POST",
        "/api/password",
        &[("Cookie", &laptop), ("X-CSRF-Token", &csrf)],
        &change.to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["other_sessions_ended"], 2);
    assert_eq!(
        call(port, "GET", "/api/runs", &[("Cookie", &laptop)], "").status,
        200
    );
    for c in [&phone, &tablet] {
        assert_eq!(
            call(port, "GET", "/api/runs", &[("Cookie", c)], "").status,
            401
        );
    }
}

#[test]
fn wrong_passwords_make_the_next_sign_in_wait_without_holding_others_back() {
    let (_tmp, dir) = project();
    let server = start(&dir);
    add_user(&dir, "ana", "analyst");
    add_user(&dir, "bob", "analyst");
    let port = server.port;
    let (attacker, elsewhere, home) = ([127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]);
    // Ana signed in from home before.
    assert_eq!(sign_in_from(home, port, "ana", PASSWORD).status, 200);
    // Five wrong passwords cost nothing; each one after makes the next sign-in wait
    // (0.5 s, 1 s, 2 s ...), whatever the password.
    let mut throttled = 0;
    for _ in 0..8 {
        let a = loop {
            let a = sign_in_from(attacker, port, "ana", "not her password");
            if a.status != 429 {
                break a;
            }
            throttled += 1;
            assert!(throttled < 100, "the wait never ended");
            assert!((1..=2).contains(&retry_after(&a)), "{}", a.headers);
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(a.status, 401, "{}", a.body);
    }
    assert!(throttled > 0, "no wrong password was ever made to wait");
    // Now a 2 s wait: the right password is refused at once, from this address (for any
    // account) and for this account (from an address it never signed in from).
    let started = Instant::now();
    for (from, user) in [(attacker, "ana"), (elsewhere, "ana"), (attacker, "bob")] {
        let a = sign_in_from(from, port, user, PASSWORD);
        assert_eq!(a.status, 429, "{user} from {from:?}: {}", a.body);
        assert_eq!(a.json()["code"], "sign_in_throttled");
        assert!((1..=2).contains(&retry_after(&a)), "{}", a.headers);
    }
    // Another account from another address, and Ana from home, are not held back.
    assert_eq!(sign_in_from(elsewhere, port, "bob", PASSWORD).status, 200);
    assert_eq!(sign_in_from(home, port, "ana", PASSWORD).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "too slow to tell: {:?}",
        started.elapsed()
    );
    // After the wait, the right password works from the attacker's address too.
    let a = sign_in_from(attacker, port, "ana", PASSWORD);
    assert_eq!(a.status, 429, "{}", a.body);
    std::thread::sleep(Duration::from_secs(retry_after(&a)));
    assert_eq!(sign_in_from(attacker, port, "ana", PASSWORD).status, 200);
}
