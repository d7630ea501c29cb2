//! Connection limits of `socle serve`: a client on 127.0.0.1 that opens thousands of idle
//! and half-sent connections takes only its address's share, while another client (from
//! 127.0.0.2) is served; the server closes the flood's connections after its timeouts.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::server::{login, start_command};

/// Connections the attacker opens (its process needs one descriptor each).
const FLOOD: usize = 3000;
/// The server's limit of open files: fewer than the flood, as on a busy host.
const SERVER_OPEN_FILES: u64 = 1024;

/// Raises this process's soft limit of open files to its hard limit.
fn raise_open_files() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
    l.rlim_cur
}

/// A TCP connection to 127.0.0.1:`port` from `source` (any 127.x address is this host),
/// giving up on connecting after 5 s.
fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // On Linux the send timeout bounds connect().
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let local = addr(source, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = addr([127, 0, 0, 1], port);
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// A GET from 127.0.0.2 on a new connection; its status (0 when no answer came).
fn victim_get(port: u16, path: &str, cookie: &str) -> u16 {
    let Ok(mut conn) = connect_from([127, 0, 0, 2], port) else {
        return 0;
    };
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    );
    if conn.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Whether the server has closed `conn` (reading what it sent before, without waiting).
fn closed(conn: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

#[test]
fn a_flood_of_idle_and_half_sent_connections_locks_nobody_out() {
    assert!(
        raise_open_files() > FLOOD as u64 + 200,
        "too few open files"
    );
    let (_tmp, dir) = project();
    let yml = std::fs::read_to_string(dir.join("socle.yml")).unwrap();
    write(
        &dir,
        "socle.yml",
        &format!(
            "{yml}\nserver:\n  max_connections_per_address: 200\n  header_timeout: 1s\n  \
             body_timeout: 1s\n  idle_timeout: 2s\n"
        ),
    );
    let mut command = socle();
    command.current_dir(&dir).args(["serve", "--port", "0"]);
    unsafe {
        command.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: SERVER_OPEN_FILES,
                rlim_max: SERVER_OPEN_FILES,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = start_command(command);
    let port = server.port;
    let (cookie, _) = login(port, "admin", &server.admin_password);

    // The attacker, on 127.0.0.1: connections that send nothing, half a head, or a head
    // and half a body; it holds every one it opens.
    let attacker = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(FLOOD);
        let started = Instant::now();
        let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        for i in 0..FLOOD {
            if started.elapsed() > Duration::from_secs(6) {
                break;
            }
            let Ok(mut conn) = TcpStream::connect_timeout(&server, Duration::from_secs(1)) else {
                continue;
            };
            let _ = match i % 3 {
                0 => Ok(()),
                1 => conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "),
                _ => conn.write_all(
                    b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \
                      application/json\r\nContent-Length: 100\r\n\r\n{\"username\": \"adm",
                ),
            };
            held.push(conn);
            // Spread over about 2 s, so the victim's calls happen during the flood.
            if i % 100 == 99 && started.elapsed() < Duration::from_millis(2 * i as u64 / 3) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        held
    });

    // The victim, on 127.0.0.2: the open probe and a signed-in user's call, again and again.
    std::thread::sleep(Duration::from_millis(300));
    let mut slow = Vec::new();
    for round in 0..10 {
        for (path, cookie) in [("/healthz", ""), ("/api/me", cookie.as_str())] {
            let t = Instant::now();
            let status = victim_get(port, path, cookie);
            let took = t.elapsed();
            assert_eq!(
                status, 200,
                "round {round}: {path} answered {status} after {took:?}"
            );
            if took > Duration::from_secs(2) {
                slow.push((round, path, took));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(slow.is_empty(), "slow answers: {slow:?}");
    let mut held = attacker.join().unwrap();
    assert!(held.len() > FLOOD / 2, "{} connections opened", held.len());

    // The server closes every attacker connection: at once past its address's share, after
    // the timeouts (1 s for heads and bodies, 2 s idle) for the others.
    for conn in &held {
        conn.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        held.retain_mut(|c| !closed(c));
        if held.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} attacker connections still open 15 s after the flood",
            held.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // And it still serves.
    assert_eq!(victim_get(port, "/healthz", ""), 200);
}
