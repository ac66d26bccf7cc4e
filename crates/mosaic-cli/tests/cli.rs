//! End-to-end tests of the `mosaic` binary: a real gateway (`mosaic serve` on a loopback
//! port the kernel picks, SQLite in a temporary directory) driven by the CLI the way a
//! person would drive it, one process per command.
//!
//! Every process gets a scratch HOME and XDG directories and no inherited `MOSAIC_*`
//! variables, so nothing reads or writes the real home; each identity (admin, a user)
//! has its own credentials file through `MOSAIC_CREDENTIALS`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const USER_PASSWORD: &str = "bob's long password";

// --- harness ---------------------------------------------------------------------------

/// A scratch home for every process one test starts.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "config", "data"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Someone using the CLI, with their own credentials file.
    fn identity(&self, name: &str) -> Identity {
        Identity {
            root: self.dir.path().to_path_buf(),
            creds: self.path("creds").join(name).join("credentials.toml"),
        }
    }
}

/// `mosaic ARGS` with the environment of the sandbox rooted at `root`.
fn mosaic(root: &Path, creds: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(MOSAIC);
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

struct Identity {
    root: PathBuf,
    creds: PathBuf,
}

impl Identity {
    fn run(&self, args: &[&str]) -> Run {
        run(mosaic(&self.root, &self.creds, args), args, None)
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        run(mosaic(&self.root, &self.creds, args), args, Some(input))
    }
}

/// What one finished command did.
struct Run {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
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
    fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{self}");
        self
    }

    fn ok(self) -> Run {
        self.expect_code(0)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Run a command to its end (killed after `COMMAND_TIMEOUT`), feeding it `input`.
fn run(mut cmd: Command, args: &[&str], input: Option<&str>) -> Run {
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
fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
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
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
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
fn closed_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `mosaic serve`; killed when dropped, so no test leaks a process.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Start on a port the kernel picks (read back from the JSON log) and wait until
    /// `/readyz` answers 200.
    fn start(sandbox: &Sandbox, data_dir: &Path) -> Gateway {
        Gateway::start_on(sandbox, data_dir, None)
    }

    /// Start on `listen` (when given, the first 200 from `/readyz` is all it waits for).
    fn start_on(sandbox: &Sandbox, data_dir: &Path, listen: Option<SocketAddr>) -> Gateway {
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
        let mut child = mosaic(sandbox.dir.path(), &sandbox.path("serve.toml"), &args)
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
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The bootstrap token printed at start, if any.
    fn bootstrap_token(&self) -> Option<String> {
        bootstrap_token_in(&self.log())
    }

    /// Send SIGTERM; answer how the process ended and how long that took.
    fn terminate(&mut self) -> (Option<ExitStatus>, Duration) {
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
fn listening_address(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["fields"]["message"] == "mosaic gateway listening")?["fields"]["local_addr"]
        .as_str()?
        .parse()
        .ok()
}

fn bootstrap_token_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .rfind(|w| w.starts_with("msb_"))
        .map(str::to_string)
}

/// A gateway whose first admin (`root`) has claimed it and is logged in.
struct World {
    // Field order is drop order: the gateway dies before its directory is removed.
    gateway: Gateway,
    admin: Identity,
    sandbox: Sandbox,
}

impl World {
    fn new() -> World {
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

    /// Create a non-admin user and log them in with their own credentials file.
    fn user(&self, name: &str) -> Identity {
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

fn claim(who: &Identity, url: &str, token: &str) -> Run {
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

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

// --- the first admin ----------------------------------------------------------------------

#[test]
fn the_first_admin_claims_the_gateway_with_the_token_serve_printed() {
    let sandbox = Sandbox::new();
    let gateway = Gateway::start(&sandbox, &sandbox.path("data"));
    let token = gateway
        .bootstrap_token()
        .expect("a fresh gateway prints a bootstrap token");
    let admin = sandbox.identity("admin");

    let status = admin
        .run(&["--url", &gateway.url, "--json", "admin", "status"])
        .ok()
        .json();
    assert_eq!(status["ready"], true);
    assert_eq!(status["needs_bootstrap"], true);

    claim(&admin, &gateway.url, &token).ok();

    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&admin.creds)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        mode, 0o600,
        "the credentials file is readable by its owner only"
    );

    // No --url from here on: the saved credentials name the gateway.
    let me = admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "root");
    assert_eq!(me["user"]["is_admin"], true);
    assert_eq!(me["credential"], "token");
    let status = admin.run(&["admin", "status", "--json"]).ok().json();
    assert_eq!(status["needs_bootstrap"], false);

    // The token is one-shot.
    let intruder = sandbox.identity("intruder");
    claim(&intruder, &gateway.url, &token).expect_code(3);
    assert!(!intruder.creds.exists(), "a refused claim saves nothing");
}

#[test]
fn offline_bootstrap_replaces_a_lost_token_and_closes_once_an_admin_exists() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let gateway = Gateway::start(&sandbox, &data);
    let lost = gateway.bootstrap_token().unwrap();
    let admin = sandbox.identity("admin");

    let printed = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .ok();
    let fresh = bootstrap_token_in(&printed.stdout).unwrap_or_else(|| panic!("{printed}"));
    assert_ne!(fresh, lost);

    claim(&admin, &gateway.url, &lost).expect_code(3);
    claim(&admin, &gateway.url, &fresh).ok();

    let refused = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .expect_code(1);
    assert!(refused.stderr.contains("already has an admin"), "{refused}");
    assert_eq!(bootstrap_token_in(&refused.stdout), None, "{refused}");
}

#[test]
#[ignore = "bug: Server::start replaces the offline token with a new one (see report)"]
fn offline_bootstrap_token_is_accepted_by_a_gateway_started_later() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let admin = sandbox.identity("admin");
    let printed = admin
        .run(&["admin", "bootstrap", "--data-dir", data.to_str().unwrap()])
        .ok();
    let token = bootstrap_token_in(&printed.stdout).unwrap_or_else(|| panic!("{printed}"));

    let gateway = Gateway::start(&sandbox, &data);
    claim(&admin, &gateway.url, &token).ok();
    let me = admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["is_admin"], true);
}

// --- accounts -------------------------------------------------------------------------------

#[test]
fn a_user_the_admin_created_logs_in_and_organises_teams_and_workspaces() {
    let world = World::new();
    let bob = world.user("bob");

    let me = bob.run(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "bob");
    assert_eq!(me["user"]["is_admin"], false);
    let admin_me = world.admin.run(&["whoami", "--json"]).ok().json();
    assert_eq!(
        admin_me["user"]["username"], "root",
        "each credentials file keeps its own identity"
    );

    let team = bob
        .run(&["teams", "create", "platform", "--json"])
        .ok()
        .json();
    let team_id = team["id"].as_str().unwrap();
    assert_eq!(team["name"], "platform");
    assert_eq!(team["role"], "owner");

    let own = bob
        .run(&[
            "workspaces",
            "create",
            "notes",
            "--description",
            "bob's notes",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(own["owner"]["type"], "user");
    let shared = bob
        .run(&["workspaces", "create", "infra", "--team", team_id, "--json"])
        .ok()
        .json();
    assert_eq!(shared["owner"]["type"], "team");
    assert_eq!(shared["owner"]["id"], team["id"]);

    let teams = bob.run(&["teams", "list", "--json"]).ok().json();
    assert_eq!(ids(&teams), vec![team_id.to_string()]);
    let mut workspaces = ids(&bob.run(&["workspaces", "list", "--json"]).ok().json());
    workspaces.sort();
    let mut expected = vec![
        own["id"].as_str().unwrap().to_string(),
        shared["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(workspaces, expected);
    let paged = bob
        .run(&["workspaces", "list", "--limit", "1", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(ids(&paged).len(), 2, "--all follows the cursor: {paged}");

    let users = world.admin.run(&["users", "list", "--json"]).ok().json();
    let names: Vec<&str> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"root") && names.contains(&"bob"), "{users}");

    // Tables for people, too.
    let table = bob.run(&["workspaces", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{table}");
    assert!(table.stdout.contains("infra"), "{table}");

    bob.run(&["logout"]).ok();
    bob.run(&["whoami"]).expect_code(3);
}

// --- exit codes -------------------------------------------------------------------------------

#[test]
fn exit_codes_name_what_went_wrong() {
    let world = World::new();
    let bob = world.user("bob");
    let url = world.gateway.url.as_str();

    let stranger = world.sandbox.identity("stranger");
    let wrong = stranger.run_with_stdin(
        &["login", "--url", url, "-u", "root", "--password-stdin"],
        "not the password\n",
    );
    wrong.expect_code(3);
    assert!(!stranger.creds.exists(), "a failed login saves nothing");

    world.admin.run(&["users", "show", "nope"]).expect_code(5);
    bob.run(&["users", "list"]).expect_code(4);
    let invalid = bob.run(&["prefs", "set", "theme", "pink"]).expect_code(7);
    assert!(invalid.stderr.contains("error:"), "{invalid}");
    bob.run(&["prefs", "set", "theme", "dark"]).ok();
    world
        .admin
        .run_with_stdin(
            &["users", "create", "bob", "--password-stdin"],
            &format!("{USER_PASSWORD}\n"),
        )
        .expect_code(6);
    world.admin.run(&["users", "frobnicate"]).expect_code(2);

    let down = format!("http://{}", closed_address());
    let unreachable = stranger
        .run(&["--url", &down, "--token", "msa_whatever", "whoami"])
        .expect_code(10);
    assert!(unreachable.stderr.contains("cannot reach"), "{unreachable}");
}

#[test]
fn a_revoked_api_token_is_refused() {
    let world = World::new();
    let created = world
        .admin
        .run(&["tokens", "create", "ci", "--scopes", "read", "--json"])
        .ok()
        .json();
    let token = created["token"].as_str().unwrap();
    let id = created["info"]["id"].as_str().unwrap();

    let me = world
        .admin
        .run(&["--token", token, "whoami", "--json"])
        .ok()
        .json();
    assert_eq!(me["user"]["username"], "root");
    assert_eq!(me["scopes"], serde_json::json!(["read"]));

    world.admin.run(&["tokens", "revoke", id]).ok();
    world
        .admin
        .run(&["--token", token, "whoami"])
        .expect_code(3);
    // The saved login token is a different token and still works.
    world.admin.run(&["whoami"]).ok();
}

// --- offline commands -----------------------------------------------------------------------

#[test]
fn completions_are_printed_for_every_shell() {
    let sandbox = Sandbox::new();
    let nobody = sandbox.identity("nobody");
    for shell in ["bash", "zsh", "fish"] {
        let out = nobody.run(&["completions", shell]).ok();
        assert!(out.stdout.contains("mosaic"), "{out}");
    }
}

#[test]
fn config_show_never_prints_the_database_password() {
    let sandbox = Sandbox::new();
    let nobody = sandbox.identity("nobody");
    let url = "postgres://u:secret@h/db";
    let shown = nobody.run(&["config", "show", "--database-url", url]).ok();
    assert!(!shown.stdout.contains("secret"), "{shown}");
    assert!(shown.stdout.contains("postgres://u:"), "{shown}");
    let json = nobody
        .run(&["--json", "config", "show", "--database-url", url])
        .ok();
    assert!(!json.stdout.contains("secret"), "{json}");
    assert!(json.json()["database_url"].is_string(), "{json}");
}

// --- the server's life cycle ------------------------------------------------------------------

#[test]
fn sigterm_stops_the_gateway_cleanly() {
    let mut world = World::new();
    world.admin.run(&["whoami"]).ok();
    let addr = world.gateway.addr;

    let (status, took) = world.gateway.terminate();
    let status = status.unwrap_or_else(|| panic!("still running:\n{}", world.gateway.log()));
    assert!(status.success(), "{status}:\n{}", world.gateway.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(world.gateway.log().contains("shutting down"));
    assert_eq!(
        http_status(addr, "/healthz"),
        None,
        "nothing listens any more"
    );
}

#[test]
#[ignore = "bug: serve installs its SIGTERM handler only after it answers (see report)"]
fn sigterm_as_soon_as_the_gateway_answers_still_stops_it_cleanly() {
    let sandbox = Sandbox::new();
    for run in 0..50 {
        let data = sandbox.path(&format!("data-{run}"));
        let mut gateway = Gateway::start_on(&sandbox, &data, Some(closed_address()));
        let (status, _) = gateway.terminate();
        let status = status.unwrap_or_else(|| panic!("still running:\n{}", gateway.log()));
        assert!(status.success(), "run {run}: {status}:\n{}", gateway.log());
    }
}
