//! The harness of the CLI end-to-end tests: a scratch home per test, `mosaic serve`
//! as a child process killed on drop, and CLI runs with a deadline whose exit code,
//! stdout and stderr the tests assert on.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::Value;

const MOSAIC: &str = env!("CARGO_BIN_EXE_mosaic");
/// Longest any single CLI command may take (argon2 on a busy two-core machine included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the gateway may take to listen and answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const USER_PASSWORD: &str = "bob's long password";

/// A scratch home for every process one test starts.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "config", "data"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Someone using the CLI, with their own credentials file.
    pub fn identity(&self, name: &str) -> Identity {
        Identity {
            root: self.dir.path().to_path_buf(),
            creds: self.path("creds").join(name).join("credentials.toml"),
        }
    }
}

/// `mosaic ARGS` with the environment of the sandbox rooted at `root`.
pub fn mosaic(root: &Path, creds: &Path, args: &[&str]) -> Command {
    mosaic_via(Path::new(MOSAIC), root, creds, args)
}

/// As [`mosaic`], run through `program` (a wrapper script that execs the binary).
pub fn mosaic_via(program: &Path, root: &Path, creds: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MOSAIC_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("XDG_DATA_HOME", root.join("data"))
        .env("MOSAIC_CREDENTIALS", creds)
        .env("NO_COLOR", "1");
    cmd
}

pub struct Identity {
    pub root: PathBuf,
    pub creds: PathBuf,
}

impl Identity {
    pub fn run(&self, args: &[&str]) -> Run {
        run(mosaic(&self.root, &self.creds, args), args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        run(mosaic(&self.root, &self.creds, args), args, Some(input))
    }
}

/// What one finished command did.
pub struct Run {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`mosaic {}` exited with {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{self}");
        self
    }

    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

pub fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Run a command to its end (killed after `COMMAND_TIMEOUT`), feeding it `input`.
pub fn run(mut cmd: Command, args: &[&str], input: Option<&str>) -> Run {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // The command may exit before reading; its exit code tells the story then.
        let _ = stdin.write_all(input.as_bytes());
    }
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_with_deadline(&mut child, COMMAND_TIMEOUT);
    let run = Run {
        args: args.join(" "),
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "timed out after {COMMAND_TIMEOUT:?}: {run}"
    );
    run
}

/// Wait for `child` to exit; kill it and answer `None` when it outlives `limit`.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The status code of `GET path`, or `None` when nothing answers.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

/// A loopback address nothing listens on (bound, then released).
pub fn closed_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `mosaic serve`; killed when dropped, so no test leaks a process.
pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Start on a port the kernel picks (read back from the JSON log) and wait until
    /// `/readyz` answers 200.
    pub fn start(sandbox: &Sandbox, data_dir: &Path) -> Gateway {
        Gateway::start_on(sandbox, data_dir, None)
    }

    /// Start on `listen` (when given, the first 200 from `/readyz` is all it waits for).
    pub fn start_on(sandbox: &Sandbox, data_dir: &Path, listen: Option<SocketAddr>) -> Gateway {
        Gateway::launch(sandbox, data_dir, listen, Path::new(MOSAIC), &[])
    }

    /// Start through `program` (a wrapper that execs the binary) with extra variables.
    #[allow(dead_code)] // not every test binary starts a gateway through a wrapper
    pub fn start_with_program(
        sandbox: &Sandbox,
        data_dir: &Path,
        program: &Path,
        env: &[(&str, &str)],
    ) -> Gateway {
        Gateway::launch(sandbox, data_dir, None, program, env)
    }

    fn launch(
        sandbox: &Sandbox,
        data_dir: &Path,
        listen: Option<SocketAddr>,
        program: &Path,
        env: &[(&str, &str)],
    ) -> Gateway {
        let listen_arg = listen.map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string());
        let args = [
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &listen_arg,
            "--log-format",
            "json",
        ];
        let mut cmd = mosaic_via(
            program,
            sandbox.dir.path(),
            &sandbox.path("serve.toml"),
            &args,
        );
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut gateway = Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        gateway.addr = loop {
            if let Some(addr) = listen.or_else(|| listening_address(&gateway.log())) {
                break addr;
            }
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("mosaic serve exited with {status}:\n{}", gateway.log());
            }
            assert!(
                Instant::now() < deadline,
                "never listened:\n{}",
                gateway.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        gateway.url = format!("http://{}", gateway.addr);
        while http_status(gateway.addr, "/readyz") != Some(200) {
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("mosaic serve exited with {status}:\n{}", gateway.log());
            }
            assert!(Instant::now() < deadline, "never ready:\n{}", gateway.log());
            std::thread::sleep(Duration::from_millis(1));
        }
        gateway
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The bootstrap token printed at start, if any.
    pub fn bootstrap_token(&self) -> Option<String> {
        bootstrap_token_in(&self.log())
    }

    /// Send SIGTERM; answer how the process ended and how long that took.
    pub fn terminate(&mut self) -> (Option<ExitStatus>, Duration) {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success(), "kill -TERM failed");
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(15));
        (status, sent.elapsed())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gateway log ---\n{}", self.log());
        }
    }
}

/// The address in the gateway's "listening" log line.
pub fn listening_address(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["fields"]["message"] == "mosaic gateway listening")?["fields"]["local_addr"]
        .as_str()?
        .parse()
        .ok()
}

pub fn bootstrap_token_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .rfind(|w| w.starts_with("msb_"))
        .map(str::to_string)
}

/// A gateway whose first admin (`root`) has claimed it and is logged in.
pub struct World {
    // Field order is drop order: the gateway dies before its directory is removed.
    pub gateway: Gateway,
    pub admin: Identity,
    pub sandbox: Sandbox,
}

impl World {
    pub fn new() -> World {
        let sandbox = Sandbox::new();
        let gateway = Gateway::start(&sandbox, &sandbox.path("data"));
        let token = gateway
            .bootstrap_token()
            .expect("a fresh gateway prints a bootstrap token");
        let admin = sandbox.identity("admin");
        claim(&admin, &gateway.url, &token).ok();
        World {
            gateway,
            admin,
            sandbox,
        }
    }

    /// This world with a gateway provider `mock` at `base_url` (a scripted model
    /// server's `…/v1`) and the admin's default agent answering through
    /// `mock/test-model`, both set up through the CLI.
    pub fn with_scripted_model(self, base_url: &str) -> World {
        self.admin
            .run_with_stdin(
                &[
                    "providers",
                    "add",
                    "mock",
                    "--kind",
                    "openai-compatible",
                    "--base-url",
                    base_url,
                    "--gateway",
                    "--api-key-stdin",
                ],
                "sk-mock\n",
            )
            .ok();
        self.admin
            .run(&["agents", "update", "default", "--route", "mock/test-model"])
            .ok();
        self
    }

    /// Create a non-admin user and log them in with their own credentials file.
    pub fn user(&self, name: &str) -> Identity {
        self.admin
            .run_with_stdin(
                &["users", "create", name, "--password-stdin"],
                &format!("{USER_PASSWORD}\n"),
            )
            .ok();
        let user = self.sandbox.identity(name);
        user.run_with_stdin(
            &[
                "login",
                "--url",
                &self.gateway.url,
                "-u",
                name,
                "--password-stdin",
            ],
            &format!("{USER_PASSWORD}\n"),
        )
        .ok();
        user
    }
}

pub fn claim(who: &Identity, url: &str, token: &str) -> Run {
    who.run_with_stdin(
        &[
            "--url",
            url,
            "admin",
            "claim",
            "--token",
            token,
            "--username",
            "root",
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    )
}

pub fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}
