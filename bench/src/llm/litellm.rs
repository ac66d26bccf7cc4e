//! LiteLLM's proxy as the point of comparison: `litellm --config FILE` with a model list
//! that maps one name to the scripted upstream, started in its own process group (its
//! workers are child processes) so that CPU and memory can be summed over the group and
//! the whole group stopped at the end. Killed on drop.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where the README's install line puts it.
pub const DEFAULT_CLI: &str = "/var/tmp/mosaic-bench/litellm/bin/litellm";
/// LiteLLM imports a great deal of Python before it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
pub const MASTER_KEY: &str = "sk-mosaic-bench-master";
pub const MODEL: &str = "scripted";

pub struct LiteLlm {
    child: Child,
    /// Set once the group has been stopped and the parent reaped.
    stopped: bool,
    pub url: String,
    pub log: PathBuf,
    pub ready_after: Duration,
    pub version: String,
}

/// The `litellm` CLI to use: the one given, else the default install, else one on PATH.
pub fn find_cli(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("no litellm CLI at {}", path.display());
    }
    if Path::new(DEFAULT_CLI).is_file() {
        return Ok(PathBuf::from(DEFAULT_CLI));
    }
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("litellm"))
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    bail!(
        "no litellm CLI at {DEFAULT_CLI} nor on PATH; install it with \
         `python3 -m venv /var/tmp/mosaic-bench/litellm && \
         /var/tmp/mosaic-bench/litellm/bin/pip install 'litellm[proxy]'`"
    )
}

/// The installed version, from the `litellm` package next to the CLI (no network).
fn version_of(cli: &Path) -> String {
    let python = cli.with_file_name("python");
    Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

impl LiteLlm {
    /// Write a config for `upstream_base` (e.g. `http://127.0.0.1:PORT/v1`) into `dir`,
    /// start the proxy with `workers` worker processes, and wait until it answers.
    /// Each worker may open up to `connections` connections to the upstream (LiteLLM's
    /// own default is 500 per host per worker, which would cap the held streams).
    pub async fn start(
        cli: &Path,
        dir: &Path,
        upstream_base: &str,
        workers: usize,
        connections: usize,
    ) -> Result<Self> {
        let config = dir.join("litellm.yaml");
        std::fs::write(
            &config,
            format!(
                "model_list:\n\
                 \x20 - model_name: {MODEL}\n\
                 \x20   litellm_params:\n\
                 \x20     model: openai/{MODEL}\n\
                 \x20     api_base: {upstream_base}\n\
                 \x20     api_key: sk-dummy-upstream-key\n\
                 general_settings:\n\
                 \x20 master_key: {MASTER_KEY}\n\
                 litellm_settings:\n\
                 \x20 telemetry: false\n"
            ),
        )
        .context("writing the LiteLLM config")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.join("litellm.log");
        let out = File::create(&log).context("creating the LiteLLM log")?;
        let started = Instant::now();
        let mut cmd = Command::new(cli);
        cmd.arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--num_workers", &workers.to_string()])
            .current_dir(dir)
            // Its own process group: the workers can be found, measured and stopped.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // No fetch of the model price list from the internet, no telemetry, quiet.
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_TELEMETRY", "False")
            .env("LITELLM_LOG", "ERROR")
            .env("AIOHTTP_CONNECTOR_LIMIT", connections.to_string())
            .env("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", connections.to_string())
            .env("HOME", dir)
            .env_remove("DATABASE_URL")
            .env_remove("OPENAI_API_KEY");
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", cli.display()))?;
        let mut proxy = LiteLlm {
            child,
            stopped: false,
            url: format!("http://127.0.0.1:{port}"),
            log,
            ready_after: Duration::ZERO,
            version: version_of(cli),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let probe = format!("{}/health/liveliness", proxy.url);
        loop {
            if let Ok(resp) = http.get(&probe).send().await {
                if resp.status().is_success() {
                    proxy.ready_after = started.elapsed();
                    return Ok(proxy);
                }
            }
            if let Some(status) = proxy.child.try_wait()? {
                bail!(
                    "litellm exited with {status} before answering:\n{}",
                    proxy.log_tail()
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "litellm did not answer {probe} within {READY_TIMEOUT:?}:\n{}",
                    proxy.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of its log, without colour codes.
    pub fn log_tail(&self) -> String {
        let text = strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default());
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The lines of its log that report a problem (at most the last 20).
    pub fn log_problems(&self) -> String {
        let text = strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                [
                    "ERROR",
                    "Error",
                    "Exception",
                    "Traceback",
                    "WARNING",
                    "Timeout",
                ]
                .iter()
                .any(|w| l.contains(w))
            })
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// CPU time and resident memory summed over its process group.
    pub fn usage(&self) -> super::proc::GroupUsage {
        super::proc::group_usage(self.pgid())
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited in time.
    pub fn stop(mut self) {
        self.signal_group(libc::SIGTERM);
        let sent = Instant::now();
        while sent.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stragglers of the group, and the parent if it is still there.
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
        self.stopped = true;
    }

    fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals the process group we created for
        // this child and nothing else; it touches no memory of ours.
        unsafe {
            libc::kill(-self.pgid(), signal);
        }
    }
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        if !self.stopped {
            // The parent may be gone already; its workers still hold the group.
            self.signal_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Text without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
