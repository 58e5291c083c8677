//! Percentiles, medians and the printed report.

use std::time::Duration;

use crate::server::Spent;

/// Octets in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// Latency percentiles of the accepted messages of one run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest message.
    pub max: f64,
}

impl Latency {
    /// Summarises latencies; `None` when there are none.
    pub fn of(latencies: &mut [Duration]) -> Option<Latency> {
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Some(Latency {
            p50: ms(percentile(latencies, 50.0)),
            p90: ms(percentile(latencies, 90.0)),
            p99: ms(percentile(latencies, 99.0)),
            max: ms(latencies[latencies.len() - 1]),
        })
    }
}

/// The nearest-rank percentile of sorted, non-empty values.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// The median of the values (mean of the middle two for an even count);
/// `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Messages answered with a 250 after the final `.`.
    pub accepted: u64,
    /// Messages that got a negative (4xx/5xx) reply.
    pub errors: u64,
    /// Messages never completed because their connection failed.
    pub unsent: u64,
    /// From the first connection attempt to the last connection's end.
    pub wall: Duration,
    /// Octets per message (before dot-stuffing).
    pub size: usize,
    /// Per-message latency, when the client measured it.
    pub latency: Option<Latency>,
    /// The server's CPU time and the host's steal during the load.
    pub spent: Spent,
    /// The server's VmHWM just before it was stopped, in KiB.
    pub hwm_kib: u64,
    /// The highest VmRSS sampled during the load, in KiB.
    pub sampled_peak_kib: u64,
    /// How many RSS samples were taken.
    pub samples: u64,
    /// VmRSS once listening, before the load, in KiB.
    pub idle_kib: u64,
    /// Messages found in alice's INBOX after the server stopped.
    pub stored: u64,
    /// Time from SIGTERM to the server's exit.
    pub shutdown: Duration,
}

impl RunReport {
    /// Accepted messages per second of wall time.
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The server's CPU time per accepted message, in microseconds: the
    /// cost of a message, steadier than the rate on a shared host.
    pub fn cpu_us_per_message(&self) -> f64 {
        self.spent.server_cpu.as_secs_f64() * 1e6 / self.accepted.max(1) as f64
    }

    /// The peak RSS in MiB: VmHWM, or the sampled peak if higher.
    pub fn peak_mib(&self) -> f64 {
        self.hwm_kib.max(self.sampled_peak_kib) as f64 * 1024.0 / MIB
    }

    /// Prints the run's figures.
    pub fn print(&self, run: usize, runs: usize) {
        let mib_s = self.rate() * self.size as f64 / MIB;
        println!(
            "run {run}/{runs}: {} accepted, {} errors, {} unsent in {:.3} s = {:.1} msg/s ({mib_s:.2} MiB/s)",
            self.accepted,
            self.errors,
            self.unsent,
            self.wall.as_secs_f64(),
            self.rate()
        );
        if let Some(l) = self.latency {
            println!(
                "  latency (MAIL write to 250 read): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50, l.p90, l.p99, l.max
            );
        }
        println!(
            "  server CPU {:.0} µs per message ({:.2} s in all); host steal {:.0}% of CPU time",
            self.cpu_us_per_message(),
            self.spent.server_cpu.as_secs_f64(),
            self.spent.steal_pct
        );
        println!(
            "  server RSS: peak {:.1} MiB (VmHWM {:.1}, sampled peak {:.1} over {} samples), idle {:.1} MiB",
            self.peak_mib(),
            self.hwm_kib as f64 / 1024.0,
            self.sampled_peak_kib as f64 / 1024.0,
            self.samples,
            self.idle_kib as f64 / 1024.0
        );
        println!(
            "  stored {} of {} accepted; server exited {:.3} s after SIGTERM",
            self.stored,
            self.accepted,
            self.shutdown.as_secs_f64()
        );
    }
}

/// Prints one row per run and the median of every column.
pub fn print_summary(reports: &[RunReport]) {
    let has_latency = reports.iter().any(|r| r.latency.is_some());
    let mut header =
        format!("{:<8}{:>9}{:>8}{:>8}{:>10}{:>10}", "run", "accepted", "errors", "unsent", "wall s", "msg/s");
    if has_latency {
        header.push_str(&format!("{:>10}{:>10}{:>10}{:>10}", "p50 ms", "p90 ms", "p99 ms", "max ms"));
    }
    header.push_str(&format!("{:>10}{:>9}{:>12}{:>8}", "RSS MiB", "stored", "CPU µs/msg", "steal%"));
    println!("{header}");
    let row = |label: &str, cols: [Option<f64>; 13]| {
        let f = |v: Option<f64>, width: usize, prec: usize| match v {
            Some(v) => format!("{v:>width$.prec$}"),
            None => format!("{:>width$}", "-"),
        };
        let mut line = format!(
            "{label:<8}{}{}{}{}{}",
            f(cols[0], 9, 0),
            f(cols[1], 8, 0),
            f(cols[2], 8, 0),
            f(cols[3], 10, 3),
            f(cols[4], 10, 1)
        );
        if has_latency {
            for c in &cols[5..9] {
                line.push_str(&f(*c, 10, 2));
            }
        }
        line.push_str(&f(cols[9], 10, 1));
        line.push_str(&f(cols[10], 9, 0));
        line.push_str(&f(cols[11], 12, 0));
        line.push_str(&f(cols[12], 8, 0));
        println!("{line}");
    };
    let cols = |r: &RunReport| -> [Option<f64>; 13] {
        [
            Some(r.accepted as f64),
            Some(r.errors as f64),
            Some(r.unsent as f64),
            Some(r.wall.as_secs_f64()),
            Some(r.rate()),
            r.latency.map(|l| l.p50),
            r.latency.map(|l| l.p90),
            r.latency.map(|l| l.p99),
            r.latency.map(|l| l.max),
            Some(r.peak_mib()),
            Some(r.stored as f64),
            Some(r.cpu_us_per_message()),
            Some(r.spent.steal_pct),
        ]
    };
    let all: Vec<[Option<f64>; 13]> = reports.iter().map(cols).collect();
    for (i, c) in all.iter().enumerate() {
        row(&(i + 1).to_string(), *c);
    }
    if reports.len() > 1 {
        let mut med = [None; 13];
        for (k, m) in med.iter_mut().enumerate() {
            *m = median(all.iter().filter_map(|c| c[k]));
        }
        row("median", med);
    }
}

/// A summary table's column: header, width, precision, and the value of a
/// run's report.
pub type Column<R> = (&'static str, usize, usize, fn(&R) -> Option<f64>);

/// Prints a header, `note`, one row per run and (with several runs) the
/// medians; returns the medians, for the targets.
pub fn print_table<R>(columns: &[Column<R>], reports: &[R], note: &str) -> Vec<Option<f64>> {
    let mut header = format!("{:<8}", "run");
    for (name, width, _, _) in columns {
        header.push_str(&format!("{name:>width$}"));
    }
    println!("{header}");
    println!("{note}");
    let row = |label: &str, values: &[Option<f64>]| {
        let mut line = format!("{label:<8}");
        for ((_, width, prec, _), v) in columns.iter().zip(values) {
            match v {
                Some(v) => line.push_str(&format!("{v:>width$.prec$}")),
                None => line.push_str(&format!("{:>width$}", "-")),
            }
        }
        println!("{line}");
    };
    let all: Vec<Vec<Option<f64>>> = reports.iter().map(|r| columns.iter().map(|c| (c.3)(r)).collect()).collect();
    for (i, values) in all.iter().enumerate() {
        row(&(i + 1).to_string(), values);
    }
    let med: Vec<Option<f64>> = (0..columns.len()).map(|k| median(all.iter().filter_map(|v| v[k]))).collect();
    if reports.len() > 1 {
        row("median", &med);
    }
    med
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2], 0.0), 1);
    }

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median([]), None);
    }

    #[test]
    fn latency_summary() {
        let mut v: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&mut v).unwrap();
        assert_eq!((l.p50, l.p90, l.p99, l.max), (5.0, 9.0, 10.0, 10.0));
        assert_eq!(Latency::of(&mut []), None);
    }
}
