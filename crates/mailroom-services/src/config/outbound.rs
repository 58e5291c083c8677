//! The configuration of mail going out: submission policy, the queue's
//! schedule, and how destinations are found and reached.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::HumanDuration;

/// Authenticated submission (RFC 6409) on the `submission` and
/// `submissions` listeners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmissionConfig {
    /// Messages one account may submit per `rate_period`; past it, MAIL is
    /// answered `450 4.7.1` until the oldest submission leaves the period.
    /// Zero means no limit.
    pub rate_limit: u32,
    /// The window `rate_limit` counts over.
    pub rate_period: HumanDuration,
}

impl Default for SubmissionConfig {
    fn default() -> Self {
        SubmissionConfig { rate_limit: 200, rate_period: HumanDuration(Duration::from_secs(3600)) }
    }
}

/// The outbound queue's schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Waits between attempts: the first retry comes after the first
    /// value, and so on; the last value repeats. Each wait is stretched by
    /// up to a tenth at random, so retries to one destination spread out.
    pub retry_schedule: Vec<HumanDuration>,
    /// How long a message is retried before it bounces.
    pub max_age: HumanDuration,
    /// After this long undelivered, the sender gets one delay warning (a
    /// DSN with `Action: delayed`); "0s" sends none.
    pub delay_warning: HumanDuration,
    /// Simultaneous outbound connections, over all destinations.
    pub max_connections: usize,
    /// Simultaneous outbound connections to one destination.
    pub max_connections_per_destination: usize,
    /// How often the runner looks for work that another process (the
    /// `mailroom queue retry` command) made due.
    pub poll_interval: HumanDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        let d = |s| HumanDuration(Duration::from_secs(s));
        QueueConfig {
            retry_schedule: vec![d(60), d(300), d(900), d(1800), d(3600), d(7200)],
            max_age: d(5 * 86_400),
            delay_warning: d(4 * 3600),
            max_connections: 100,
            max_connections_per_destination: 20,
            poll_interval: d(10),
        }
    }
}

/// How remote servers are found and spoken to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The DNS server for MX and address lookups; absent means the
    /// system's (`/etc/resolv.conf`).
    pub dns_server: Option<SocketAddr>,
    /// The port remote mail servers listen on (25; tests may move it).
    pub port: u16,
    /// STARTTLS toward remote servers: "opportunistic" (when offered;
    /// certificate problems are logged, not fatal), "required" or
    /// "disabled".
    pub tls: TlsMode,
    /// Fixed destinations per recipient domain instead of an MX lookup,
    /// for private networks and tests: `"example.net" = ["10.0.0.5:25",
    /// "relay.example.net:2525"]`.
    pub routes: BTreeMap<String, Vec<HostPort>>,
    /// Send everything not routed above through one relay host.
    pub smarthost: Option<SmarthostConfig>,
    /// How long to wait for a connection to open.
    pub connect_timeout: HumanDuration,
    /// How long to wait for each reply (RFC 5321 §4.5.3.2 asks for
    /// minutes).
    pub command_timeout: HumanDuration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            dns_server: None,
            port: 25,
            tls: TlsMode::Opportunistic,
            routes: BTreeMap::new(),
            smarthost: None,
            connect_timeout: HumanDuration(Duration::from_secs(30)),
            command_timeout: HumanDuration(Duration::from_secs(300)),
        }
    }
}

/// STARTTLS policy toward a remote server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never.
    Disabled,
    /// When offered; an invalid certificate is logged, not fatal.
    Opportunistic,
    /// Always; a server without STARTTLS is a temporary failure.
    Required,
}

/// A relay host that takes all outbound mail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmarthostConfig {
    /// Its address or host name, with the port.
    pub address: HostPort,
    /// The login, if it wants one (sent only under TLS, or to loopback).
    #[serde(default)]
    pub username: Option<String>,
    /// The password for `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// STARTTLS toward it; "required" by default, as a login follows.
    #[serde(default = "required")]
    pub tls: TlsMode,
}

/// A server named by address or host name, with its port: `10.0.0.5:25`,
/// `[2001:db8::5]:25`, `relay.example.net:587`. A name is resolved when
/// mail is sent, through the same resolver as MX lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// An IP address or a host name.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl HostPort {
    /// Parses `ip:port`, `[ipv6]:port` or `name:port`.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(HostPort { host: addr.ip().to_string(), port: addr.port() });
        }
        let bad = || format!("{s:?} is not host:port (e.g. \"10.0.0.5:25\" or \"relay.example.net:587\")");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        mailroom_types::Domain::parse(host).map_err(|_| bad())?;
        Ok(HostPort { host: host.to_ascii_lowercase(), port })
    }

    /// The socket address, when the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.socket_addr() {
            Some(addr) => write!(f, "{addr}"),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> HostPort {
        HostPort { host: addr.ip().to_string(), port: addr.port() }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostPort::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn required() -> TlsMode {
    TlsMode::Required
}

/// Problems with these sections, each prefixed with its key path.
pub(super) fn validate(
    submission: &SubmissionConfig,
    queue: &QueueConfig,
    delivery: &DeliveryConfig,
    problems: &mut Vec<String>,
) {
    if submission.rate_limit > 0 && submission.rate_period.0 < Duration::from_secs(1) {
        problems.push("submission.rate_period: must be at least 1s".into());
    }
    if queue.retry_schedule.is_empty() {
        problems.push("queue.retry_schedule: needs at least one wait".into());
    }
    if queue.retry_schedule.iter().any(|d| d.0 < Duration::from_secs(1)) {
        problems.push("queue.retry_schedule: every wait must be at least 1s".into());
    }
    if queue.max_connections == 0 || queue.max_connections_per_destination == 0 {
        problems.push("queue.max_connections: must be at least 1 (and so must the per-destination limit)".into());
    }
    if queue.poll_interval.0 < Duration::from_millis(100) {
        problems.push("queue.poll_interval: must be at least 100ms".into());
    }
    for domain in delivery.routes.keys() {
        if mailroom_types::Domain::parse(domain).is_err() {
            problems.push(format!("delivery.routes: {domain:?} is not a domain name"));
        }
    }
    if delivery.routes.values().any(Vec::is_empty) {
        problems.push("delivery.routes: every route needs at least one address".into());
    }
    if let Some(s) = &delivery.smarthost
        && s.username.is_some() != s.password.is_some()
    {
        problems.push("delivery.smarthost: username and password must be given together".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(HostPort::parse("10.0.0.5:25").unwrap().socket_addr(), Some("10.0.0.5:25".parse().unwrap()));
        assert_eq!(HostPort::parse("[::1]:2525").unwrap().to_string(), "[::1]:2525");
        let named = HostPort::parse("Relay.Example.NET:587").unwrap();
        assert_eq!((named.host.as_str(), named.port, named.socket_addr()), ("relay.example.net", 587, None));
        assert_eq!(named.to_string(), "relay.example.net:587");
        for bad in ["relay.example.net", "relay:0", "relay:x", "bad host:25", ":25"] {
            assert!(HostPort::parse(bad).is_err(), "{bad}");
        }
    }
}
