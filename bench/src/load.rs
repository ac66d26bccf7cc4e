//! The throughput phase: concurrent clients, each on its own keep-alive connection,
//! repeating one authenticated request until a deadline.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// No single request may hang the benchmark.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the clients saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latency of each successful request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Non-200 answers, transport errors and timeouts.
    pub errors: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

/// Run `clients` loops of `GET url` with `token` for `duration`.
pub async fn run(url: &str, token: &str, clients: usize, duration: Duration) -> Result<LoadResult> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients {
        // One client per worker: one connection each, as separate users would have.
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(1)
            .build()
            .context("building an HTTP client")?;
        let url = url.to_string();
        let auth = format!("Bearer {token}");
        workers.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = http
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, &auth)
                    .send()
                    .await;
                let ok = match answer {
                    Ok(resp) => {
                        let status = resp.status();
                        // Read the whole body: a request is done when its answer is.
                        resp.bytes().await.is_ok() && status == reqwest::StatusCode::OK
                    }
                    Err(_) => false,
                };
                if ok {
                    result.latencies_us.push(sent.elapsed().as_micros() as u64);
                } else {
                    result.errors += 1;
                }
            }
            result
        }));
    }
    let mut total = LoadResult::default();
    for worker in workers {
        let part = worker.await.context("a load worker failed")?;
        total.latencies_us.extend(part.latencies_us);
        total.errors += part.errors;
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}
