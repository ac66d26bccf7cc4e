//! Process figures from `/proc`: CPU time and resident memory of a process group, the
//! load average, and the open-file limit.

use std::time::Duration;

/// CPU time and VmRSS summed over the live processes of one group.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupUsage {
    pub cpu: Duration,
    pub rss_kib: u64,
    pub processes: usize,
}

/// Sum over every process whose process group is `pgid`.
pub fn group_usage(pgid: i32) -> GroupUsage {
    let mut total = GroupUsage::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return total;
    };
    let tick = crate::server::clock_ticks_per_second();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the parenthesised name: state ppid pgrp … utime(12th) stime(13th).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        if field(2) != Some(pgid as u64) {
            continue;
        }
        let ticks = field(11).unwrap_or(0) + field(12).unwrap_or(0);
        total.cpu += Duration::from_secs_f64(ticks as f64 / tick);
        total.rss_kib += std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0);
        total.processes += 1;
    }
    total
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Raise the soft open-file limit to the hard one (children inherit it) and answer the
/// soft limit in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// CPU time (user + system) this process has used so far: the clients and the
/// scripted upstream.
pub fn own_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we pass; all-zero bytes are a valid rusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Connections the kernel dropped because a listen queue was full, machine-wide, so far
/// (`TcpExt: ListenOverflows` in `/proc/net/netstat`; the client retries its SYN after
/// a second or more).
pub fn listen_overflows() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/netstat") else {
        return 0;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .filter_map(|pair| match pair {
            [names, values] if names.starts_with("TcpExt:") => names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(name, _)| *name == "ListenOverflows")
                .and_then(|(_, v)| v.parse().ok()),
            _ => None,
        })
        .next()
        .unwrap_or(0)
}

/// CPU time all processes of the machine have used so far (the busy part of the `cpu`
/// line of `/proc/stat`: user, nice, system, irq, softirq, steal).
pub fn machine_busy() -> Duration {
    let busy_ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("cpu "))?;
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal
            Some(
                [0, 1, 2, 5, 6, 7]
                    .iter()
                    .filter_map(|&i| f.get(i))
                    .sum::<u64>(),
            )
        })
        .unwrap_or(0);
    Duration::from_secs_f64(busy_ticks as f64 / crate::server::clock_ticks_per_second())
}
