//! One `mosaic serve` process under measurement: spawned on a free loopback port with a
//! scratch home, timed until `/readyz` answers 200, sampled for memory, stopped with
//! SIGTERM. Killed on drop, so an early error never leaves a gateway behind.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Longest a start may take before the benchmark gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const SIGTERM: i32 = 15;

/// How to start gateways: which binary, and a scratch home shared by all of them.
pub struct Launcher {
    pub binary: PathBuf,
    pub home: PathBuf,
}

/// A running gateway.
pub struct Server {
    pub(crate) child: Child,
    pub addr: SocketAddr,
    /// Spawn to the first 200 from `/readyz`.
    pub ready_after: Duration,
    stderr: Arc<Mutex<String>>,
}

impl Launcher {
    /// Spawn `mosaic serve` on `data_dir` and wait, polling every millisecond, until
    /// `/readyz` answers 200.
    pub fn start(&self, data_dir: &Path) -> Result<Server> {
        let addr = free_port()?;
        let started = Instant::now();
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MOSAIC_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("XDG_DATA_HOME", self.home.join("data"))
            .env("NO_COLOR", "1");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
            });
        }
        let mut server = Server {
            child,
            addr,
            ready_after: Duration::ZERO,
            stderr,
        };
        loop {
            if readyz_ok(addr) {
                server.ready_after = started.elapsed();
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("mosaic serve exited with {status}:\n{}", server.stderr());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("not ready after {READY_TIMEOUT:?}:\n{}", server.stderr());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The bootstrap token the gateway printed (waits briefly for the reader thread).
    pub fn bootstrap_token(&self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.stderr();
            if let Some(token) = text.split_whitespace().find(|w| w.starts_with("msb_")) {
                return Ok(token.to_string());
            }
            if Instant::now() > deadline {
                bail!("the gateway printed no bootstrap token:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident and peak resident memory, in KiB, from `/proc/PID/status`.
    pub fn memory_kib(&self) -> Result<Memory> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
            anon_kib: field("RssAnon:")?,
            file_kib: field("RssFile:")?,
        })
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        let path = format!("/proc/{}/stat", self.child.id());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // Fields after the parenthesised command name; utime and stime are the 14th
        // and 15th fields of the whole line, in clock ticks.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .with_context(|| format!("unexpected {path}"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| -> Result<u64> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("unexpected {path}"))
        };
        let ticks = tick(11)? + tick(12)?;
        Ok(Duration::from_secs_f64(
            ticks as f64 / clock_ticks_per_second(),
        ))
    }

    /// SIGTERM, then wait for the exit; answers how long the shutdown took and whether
    /// the gateway handled the signal (exit 0) or died of it (it came before the
    /// gateway installed its handler).
    pub fn stop(mut self) -> Result<Stop> {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                let took = sent.elapsed();
                if status.success() {
                    return Ok(Stop {
                        took,
                        graceful: true,
                    });
                }
                if status.signal() == Some(SIGTERM) {
                    return Ok(Stop {
                        took,
                        graceful: false,
                    });
                }
                bail!("mosaic serve exited with {status}:\n{}", self.stderr());
            }
            if sent.elapsed() > STOP_TIMEOUT {
                bail!("still running {STOP_TIMEOUT:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a gateway stopped.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    pub took: Duration,
    /// Exit 0 after SIGTERM; false when the signal killed it outright.
    pub graceful: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
    /// The process's own pages (heap, stacks, relocated data).
    pub anon_kib: u64,
    /// Clean pages of the binary and libraries, shared with the page cache. How many a
    /// start maps depends on the kernel as much as on us: Linux 6.x maps a whole large
    /// page-cache folio per fault, so the same binary shows more when the file was
    /// written in large chunks (by the linker) than when it was read in at 4 KiB.
    pub file_kib: u64,
}

/// `getconf CLK_TCK`, 100 (Linux's value everywhere in practice) when unknown.
/// Create the first admin with the gateway's printed bootstrap token and log in: the
/// bearer token every measurement uses.
pub async fn first_admin_token(
    url: &str,
    bootstrap_token: &str,
    token_name: &str,
) -> Result<String> {
    use mosaic_api::{BootstrapRequest, LoginMode, LoginRequest};
    const USER: &str = "bench";
    const PASSWORD: &str = "mosaic-bench password";
    let client = mosaic_client::Client::new(url, None)?;
    client
        .bootstrap(&BootstrapRequest {
            token: bootstrap_token.to_string(),
            username: USER.into(),
            password: PASSWORD.into(),
            display_name: None,
        })
        .await
        .context("bootstrapping the admin")?;
    let login = client
        .login(&LoginRequest {
            username: USER.into(),
            password: PASSWORD.into(),
            mode: LoginMode::Token,
            token_name: Some(token_name.into()),
        })
        .await
        .context("logging in")?;
    login.token.context("login answered without a token")
}

pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t: &f64| *t > 0.0)
        .unwrap_or(100.0)
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// One `GET /readyz` on a fresh connection: true on a 200.
fn readyz_ok(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_nodelay(true);
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut status_line = String::new();
    if BufReader::new(stream).read_line(&mut status_line).is_err() {
        return false;
    }
    status_line.split_whitespace().nth(1) == Some("200")
}
