//! `mosaic serve` facing a hostile start: a second gateway on the same data
//! directory, a busy port, a database that cannot serve, a broken configuration file,
//! and more idle connections than the open-file limit it was started with. Each must
//! end quickly with one clear message, or keep serving.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{closed_address, http_status, mosaic, Gateway, Sandbox};

/// `mosaic serve` with these extra arguments; its exit code, stderr, and how long it
/// took. Fails the test if it is still running after 15 s.
fn failed_start(sandbox: &Sandbox, extra: &[&str]) -> (i32, String, Duration) {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let mut child = mosaic(sandbox.dir.path(), &sandbox.path("creds.toml"), &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(15))
        .expect("mosaic serve gave up within 15 s");
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stderr, started.elapsed())
}

/// The lines of stderr that are the final error (not log lines).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

#[test]
fn a_second_gateway_on_one_data_directory_is_refused() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("gw");
    let first = Gateway::start(&sandbox, &data);
    let (code, stderr, took) = failed_start(&sandbox, &["--data-dir", data.to_str().unwrap()]);
    assert_ne!(code, 0);
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("another gateway is already running")
            && errors[0].contains(&format!("process {}", first.child.id())),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The first one was not disturbed.
    assert_eq!(http_status(first.addr, "/readyz"), Some(200));
}

#[test]
fn a_busy_port_fails_before_any_database_is_created() {
    let sandbox = Sandbox::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let data = sandbox.path("fresh");
    let mut args = vec!["serve", "--listen", port.as_str()];
    args.extend(["--data-dir", data.to_str().unwrap()]);
    let mut child = mosaic(sandbox.dir.path(), &sandbox.path("creds.toml"), &args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = support::wait_with_deadline(&mut child, Duration::from_secs(15)).unwrap();
    assert!(!status.success());
    assert!(!data.join("mosaic.db").exists(), "a database was created");
}

#[test]
fn a_file_that_is_not_a_database_fails_fast_with_the_reason() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("junk");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("mosaic.db"), vec![b'x'; 8192]).unwrap();
    let (code, stderr, took) = failed_start(&sandbox, &["--data-dir", data.to_str().unwrap()]);
    assert_ne!(code, 0);
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("not a database"), "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_read_only_database_fails_fast_with_the_reason() {
    if rustix_is_root() {
        // root writes through file modes; use a read-only URL instead.
        let sandbox = Sandbox::new();
        let data = sandbox.path("ro");
        std::fs::create_dir_all(&data).unwrap();
        let db = data.join("mosaic.db");
        make_database(&sandbox, &data);
        let url = format!("sqlite://{}?mode=ro", db.display());
        let (code, stderr, took) = failed_start(
            &sandbox,
            &["--data-dir", data.to_str().unwrap(), "--database-url", &url],
        );
        assert_ne!(code, 0);
        assert!(stderr.contains("readonly"), "{stderr}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        return;
    }
    let sandbox = Sandbox::new();
    let data = sandbox.path("ro");
    make_database(&sandbox, &data);
    let db = data.join("mosaic.db");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms).unwrap();
    let (code, stderr, took) = failed_start(&sandbox, &["--data-dir", data.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("readonly"), "{stderr}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A real database in `data`, made by a gateway that then stops.
fn make_database(sandbox: &Sandbox, data: &Path) {
    let mut gw = Gateway::start(sandbox, data);
    let (status, _) = gw.terminate();
    assert!(status.unwrap().success());
}

#[test]
fn a_closed_postgres_port_fails_fast_with_the_reason() {
    let sandbox = Sandbox::new();
    let url = format!("postgres://mosaic:x@{}/mosaic", closed_address());
    let data = sandbox.path("pg");
    let (code, stderr, took) = failed_start(
        &sandbox,
        &["--data-dir", data.to_str().unwrap(), "--database-url", &url],
    );
    assert_ne!(code, 0);
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(
        !errors[0].contains(":x@"),
        "the password is not shown: {stderr}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_broken_config_file_is_reported_once() {
    let sandbox = Sandbox::new();
    let file = sandbox.path("gateway.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nbody_limit_bytes = \"lots\"\n",
    )
    .unwrap();
    let (code, stderr, _) = failed_start(&sandbox, &["--config", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    // The TOML diagnostic (several lines) appears once, not once per cause.
    assert_eq!(stderr.matches("is not valid").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("invalid type").count(), 1, "{stderr}");
    assert!(stderr.contains("body_limit_bytes = \"lots\""), "{stderr}");
}

#[test]
fn more_idle_connections_than_the_soft_file_limit_do_not_stop_health_checks() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("gw");
    // Started with a soft limit of 1,024 open files; the gateway raises it to the hard
    // limit, so 1,100 idle connections are served beside a health check.
    let hard = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let hard: u64 = String::from_utf8_lossy(&hard.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        hard >= 2048,
        "this test needs a hard open-file limit of 2048 or more"
    );
    let wrapper = sandbox.path("serve-with-1024.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -Sn 1024\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_mosaic")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let gw = Gateway::start_with_program(
        &sandbox,
        &data,
        &wrapper,
        &[("MOSAIC_HEADER_TIMEOUT_SECS", "60")],
    );
    let mut idle = Vec::new();
    for _ in 0..1100 {
        let mut tcp = TcpStream::connect(gw.addr).unwrap();
        // Half a request, never finished.
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\n");
        idle.push(tcp);
    }
    let started = Instant::now();
    assert_eq!(http_status(gw.addr, "/healthz"), Some(200), "{}", gw.log());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_database_with_damaged_pages_is_not_ready() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("damaged");
    make_database(&sandbox, &data);
    let db = data.join("mosaic.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16 * 4096, "a database of several pages");
    // Pages 4 to 8 (the first holds the schema, so the gateway still starts).
    for b in &mut bytes[3 * 4096..8 * 4096] {
        *b = 0x55;
    }
    std::fs::write(&db, bytes).unwrap();
    let addr = closed_address();
    let listen = addr.to_string();
    let args = [
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &listen,
    ];
    let mut child = mosaic(sandbox.dir.path(), &sandbox.path("creds.toml"), &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let said = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited ({status}) instead of reporting itself not ready");
        }
        if let Some(body) = readyz_body(addr).filter(|b| b.contains("damaged")) {
            break body;
        }
        assert!(Instant::now() < deadline, "never reported the damage");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(said.starts_with("HTTP/1.1 503"), "{said}");
    let _ = child.kill();
    let _ = child.wait();
}

/// The whole answer to `GET /readyz`, when something answers.
fn readyz_body(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::Read;
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        tcp,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).ok()?;
    Some(out)
}
