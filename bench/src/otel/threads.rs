//! Per-thread figures from `/proc/PID/task/TID`: the CPU a named thread used and how
//! often it went to sleep. The gateway's OTLP exporter is a thread of its own, so its
//! share of the gateway's CPU, and its wake-ups, can be read from outside.

use std::time::Duration;

/// The thread name the gateway gives its exporter ("mosaic-otlp-export", cut to 15
/// bytes by the kernel).
pub const GATEWAY_EXPORTER: &str = "mosaic-otlp-exp";

/// Summed over the threads read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadStats {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Voluntary context switches: each is the thread blocking, to be woken later.
    pub sleeps: u64,
    /// Involuntary context switches: the thread was preempted.
    pub preempted: u64,
}

impl ThreadStats {
    pub fn since(self, before: ThreadStats) -> ThreadStats {
        ThreadStats {
            cpu: self.cpu.saturating_sub(before.cpu),
            sleeps: self.sleeps.saturating_sub(before.sleeps),
            preempted: self.preempted.saturating_sub(before.preempted),
        }
    }
}

/// The threads of process `pid` whose name starts with `name` (all of them for ""),
/// summed; zero when there is none.
pub fn named(pid: u32, name: &str) -> ThreadStats {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return ThreadStats::default();
    };
    let tick = crate::server::clock_ticks_per_second();
    let mut total = ThreadStats::default();
    for task in tasks.flatten() {
        let dir = task.path();
        let is_named = std::fs::read_to_string(dir.join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with(name));
        if !is_named {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(dir.join("stat")) {
            // After the parenthesised name: utime and stime are the 12th and 13th fields.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
                let ticks = field(11).unwrap_or(0) + field(12).unwrap_or(0);
                total.cpu += Duration::from_secs_f64(ticks as f64 / tick);
            }
        }
        if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            total.sleeps += field("voluntary_ctxt_switches:");
            total.preempted += field("nonvoluntary_ctxt_switches:");
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_thread_has_its_cpu_and_sleeps_read() {
        let handle = std::thread::Builder::new()
            .name("bench-test-spin".into())
            .spawn(|| {
                let started = std::time::Instant::now();
                let mut x = 0u64;
                while started.elapsed() < Duration::from_millis(100) {
                    x = x.wrapping_add(1);
                }
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(Duration::from_millis(300));
                x
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let stats = named(std::process::id(), "bench-test-spin");
        assert!(stats.cpu >= Duration::from_millis(50), "{stats:?}");
        assert!(stats.sleeps >= 20, "{stats:?}");
        let none = named(std::process::id(), "no-such-thread");
        assert_eq!((none.cpu, none.sleeps), (Duration::ZERO, 0));
        handle.join().unwrap();
    }
}
