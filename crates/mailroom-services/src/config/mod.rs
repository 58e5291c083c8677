//! The configuration file: one TOML document, every key with a safe default.
//!
//! Zero configuration is safe: loopback listeners on unprivileged ports, no
//! relaying, every buffer bounded. A file only overrides what it names. An
//! unknown key or a bad value stops start-up with an error naming the file and
//! the key path (`limits.max_recipients: ...`). `config/example.toml`
//! documents every key and is tested to equal [`Config::default`].

mod authentication;
mod outbound;
mod units;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use authentication::AuthenticationConfig;
pub use outbound::{DeliveryConfig, HostPort, QueueConfig, SmarthostConfig, SubmissionConfig, TlsMode};
pub use units::{ByteSize, HumanDuration};
pub use web::WebConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has a bad value.
    #[error("{path}: {key}{message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The key path followed by ": ", or empty when the error is not about one key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Values parse but do not make sense together; one line per problem.
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        /// The file, or `(defaults)`.
        path: PathBuf,
        /// Each problem, prefixed with its key path.
        problems: Vec<String>,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The name this server announces (SMTP greeting, `Received:` headers).
    pub hostname: String,
    /// Where the database and message files live.
    pub data_dir: PathBuf,
    /// How long in-flight transactions may take to finish after SIGTERM.
    pub shutdown_grace: HumanDuration,
    /// Listener addresses.
    pub listen: ListenConfig,
    /// Certificate and key for TLS.
    pub tls: TlsConfig,
    /// Bounds on every buffer, count and idle time.
    pub limits: LimitsConfig,
    /// Password logins.
    pub auth: AuthConfig,
    /// Authenticated submission.
    pub submission: SubmissionConfig,
    /// The outbound queue's schedule.
    pub queue: QueueConfig,
    /// How remote servers are found and reached.
    pub delivery: DeliveryConfig,
    /// SPF, DKIM and DMARC checks of mail arriving on the `smtp` listener.
    pub authentication: AuthenticationConfig,
    /// The webmail's sessions and pages.
    pub web: WebConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./mailroom-data"),
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            submission: SubmissionConfig::default(),
            queue: QueueConfig::default(),
            delivery: DeliveryConfig::default(),
            authentication: AuthenticationConfig::default(),
            web: WebConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Listener addresses. Without a `[listen]` section every listener runs on
/// its default loopback address; with one, a listener whose key is omitted
/// is disabled.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// SMTP for mail from the world (the MTA role; production `0.0.0.0:25`).
    #[serde(default)]
    pub smtp: Option<SocketAddr>,
    /// Message submission (RFC 6409) with STARTTLS and AUTH (production
    /// `0.0.0.0:587`).
    #[serde(default)]
    pub submission: Option<SocketAddr>,
    /// Message submission over implicit TLS (RFC 8314; production
    /// `0.0.0.0:465`).
    #[serde(default)]
    pub submissions: Option<SocketAddr>,
    /// POP3 (RFC 1939) for users downloading their mail (production `0.0.0.0:110`).
    #[serde(default)]
    pub pop3: Option<SocketAddr>,
    /// IMAP (RFC 9051) for users keeping their mail on the server
    /// (production `0.0.0.0:143`).
    #[serde(default)]
    pub imap: Option<SocketAddr>,
    /// IMAP over implicit TLS (RFC 8314; production `0.0.0.0:993`).
    #[serde(default)]
    pub imaps: Option<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314; production `0.0.0.0:995`).
    #[serde(default)]
    pub pop3s: Option<SocketAddr>,
    /// Webmail over plain HTTP: for loopback, or behind a TLS proxy.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Webmail over HTTPS with the `[tls]` identity (production
    /// `0.0.0.0:443`).
    #[serde(default)]
    pub https: Option<SocketAddr>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            smtp: Some(SocketAddr::from(([127, 0, 0, 1], 2525))),
            submission: Some(SocketAddr::from(([127, 0, 0, 1], 2587))),
            submissions: Some(SocketAddr::from(([127, 0, 0, 1], 2465))),
            pop3: Some(SocketAddr::from(([127, 0, 0, 1], 1110))),
            imap: Some(SocketAddr::from(([127, 0, 0, 1], 1143))),
            imaps: Some(SocketAddr::from(([127, 0, 0, 1], 1993))),
            pop3s: Some(SocketAddr::from(([127, 0, 0, 1], 1995))),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            https: None,
        }
    }
}

impl ListenConfig {
    /// Every enabled listener with its key, for checks over all of them.
    pub fn enabled(&self) -> Vec<(&'static str, SocketAddr)> {
        [
            ("smtp", self.smtp),
            ("submission", self.submission),
            ("submissions", self.submissions),
            ("pop3", self.pop3),
            ("imap", self.imap),
            ("imaps", self.imaps),
            ("pop3s", self.pop3s),
            ("http", self.http),
            ("https", self.https),
        ]
        .into_iter()
        .filter_map(|(k, a)| a.map(|a| (k, a)))
        .collect()
    }
}

/// TLS material for the implicit-TLS listeners (and STARTTLS): see
/// [`crate::tls`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; absent means a self-signed certificate.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

/// Bounds. RFC 5321 §4.5.3 gives the minimums servers must accept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message accepted, advertised as SIZE (RFC 1870).
    pub max_message_size: ByteSize,
    /// Recipients per message (RFC 5321 §4.5.3.1.8: at least 100).
    pub max_recipients: usize,
    /// Longest SMTP command line including CRLF (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line: usize,
    /// Longest message text line including CRLF (RFC 5321 §4.5.3.1.6: 1000).
    pub max_text_line: usize,
    /// Simultaneous connections over all listeners.
    pub max_connections: usize,
    /// Simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// How long to wait for the next command (RFC 5321 §4.5.3.2.7: at least 5m).
    pub command_timeout: HumanDuration,
    /// How long to wait for more message data (RFC 5321 §4.5.3.2.5-6).
    pub data_timeout: HumanDuration,
    /// How long a POP3 session may stay idle (RFC 1939 §3: at least 10m).
    pub pop3_idle_timeout: HumanDuration,
    /// How long an IMAP session may stay idle, in IDLE too (RFC 9051 §5.4:
    /// at least 30m).
    pub imap_idle_timeout: HumanDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: ByteSize(25 << 20),
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 1000,
            max_connections: 1000,
            max_connections_per_ip: 20,
            command_timeout: HumanDuration(Duration::from_secs(300)),
            data_timeout: HumanDuration(Duration::from_secs(600)),
            pop3_idle_timeout: HumanDuration(Duration::from_secs(600)),
            imap_idle_timeout: HumanDuration(Duration::from_secs(1800)),
        }
    }
}

/// Password logins (POP3 now; IMAP, submission, webmail later).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Delay before answering a failed login; doubles with each recent
    /// failure from the same address or for the same account.
    pub failure_delay: HumanDuration,
    /// The most a failed login is delayed.
    pub failure_delay_max: HumanDuration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            failure_delay: HumanDuration(Duration::from_secs(1)),
            failure_delay_max: HumanDuration(Duration::from_secs(15)),
        }
    }
}

/// Logging output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `mailroom_smtp=debug,info`.
    pub filter: String,
    /// `auto` (pretty on a terminal, JSON otherwise), `pretty` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { filter: "info".into(), format: LogFormat::Auto }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Loads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let config = Self::parse(&text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |key: String, message: String| ConfigError::Parse { path: path.to_owned(), key, message };
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error(String::new(), one_line(&e.to_string())))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = one_line(e.inner().message());
            let key = if key == "." { String::new() } else { format!("{key}: ") };
            parse_error(key, message)
        })
    }

    /// Checks values that parse but are unusable; every problem is reported.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if mailroom_types::Domain::parse(&self.hostname).is_err() {
            problems.push(format!("hostname: {:?} is not a valid domain name", self.hostname));
        }
        problems.extend(self.authentication.problems());
        problems.extend(self.web.problems());
        let l = &self.limits;
        let mut at_least = |key: &str, value: u64, min: u64, why: &str| {
            if value < min {
                problems.push(format!("limits.{key}: must be at least {min} ({why})"));
            }
        };
        at_least("max_message_size", l.max_message_size.0, 1024, "a useful message");
        at_least("max_recipients", l.max_recipients as u64, 1, "RFC 5321 §4.5.3.1.8 recommends 100");
        at_least("max_command_line", l.max_command_line as u64, 512, "RFC 5321 §4.5.3.1.4");
        at_least("max_text_line", l.max_text_line as u64, 1000, "RFC 5321 §4.5.3.1.6");
        at_least("max_connections", l.max_connections as u64, 1, "a server must take a connection");
        at_least("max_connections_per_ip", l.max_connections_per_ip as u64, 1, "a client must connect");
        at_least("command_timeout", l.command_timeout.0.as_millis() as u64, 1000, "one second");
        at_least("data_timeout", l.data_timeout.0.as_millis() as u64, 1000, "one second");
        at_least("pop3_idle_timeout", l.pop3_idle_timeout.0.as_millis() as u64, 1000, "one second");
        at_least("imap_idle_timeout", l.imap_idle_timeout.0.as_millis() as u64, 1000, "one second");
        if self.auth.failure_delay_max.0 < self.auth.failure_delay.0 {
            problems.push("auth.failure_delay_max: must not be less than auth.failure_delay".into());
        }
        let listeners = self.listen.enabled();
        for (i, (key, addr)) in listeners.iter().enumerate() {
            if let Some((other, _)) = listeners[..i].iter().find(|(_, a)| a == addr && addr.port() != 0) {
                problems.push(format!("listen.{key}: address {addr} already used by listen.{other}"));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            problems.push("tls: cert and key must be given together".into());
        }
        for (key, file) in [("tls.cert", &self.tls.cert), ("tls.key", &self.tls.key)] {
            if let Some(file) = file.as_ref().filter(|f| !f.is_file()) {
                problems.push(format!("{key}: {} is not a readable file", file.display()));
            }
        }
        outbound::validate(&self.submission, &self.queue, &self.delivery, &mut problems);
        if let Err(e) = tracing_filter_syntax(&self.log.filter) {
            problems.push(format!("log.filter: {e}"));
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { path: path.to_owned(), problems }) }
    }
}

/// A light syntax check of a tracing filter, so a typo stops start-up here
/// rather than silently logging nothing.
fn tracing_filter_syntax(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        let target_only = !directive.contains('=') && !LEVELS.contains(&level.to_ascii_lowercase().as_str());
        if !target_only && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown level {level:?} in {directive:?}"));
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn example_file_equals_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        Config::default().validate(Path::new("(defaults)")).unwrap();
    }

    #[test]
    fn overrides_apply_and_omitted_listeners_are_disabled() {
        let c = parse("hostname = \"mx.test\"\n[listen]\n[limits]\nmax_message_size = \"10MB\"\n").unwrap();
        assert_eq!(c.hostname, "mx.test");
        assert_eq!(c.listen.smtp, None);
        assert_eq!(c.listen.pop3, None);
        assert_eq!(c.limits.max_message_size, ByteSize(10_000_000));
        assert_eq!(c.limits.max_recipients, 100);
    }

    #[test]
    fn unknown_keys_name_their_path_and_file() {
        let e = parse("[limits]\nmax_recipientz = 5\n").unwrap_err().to_string();
        assert!(e.starts_with("test.toml: limits.max_recipientz: unknown field `max_recipientz`"), "{e}");
        let e = parse("colour = \"blue\"\n").unwrap_err().to_string();
        assert!(e.starts_with("test.toml: colour: unknown field"), "{e}");
    }

    #[test]
    fn bad_values_name_their_path() {
        let e = parse("[limits]\ncommand_timeout = \"5 minutes\"\n").unwrap_err().to_string();
        assert!(e.starts_with("test.toml: limits.command_timeout: invalid duration"), "{e}");
        let e = parse("[listen]\nsmtp = \"nowhere\"\n").unwrap_err().to_string();
        assert!(e.starts_with("test.toml: listen.smtp: "), "{e}");
        let e = parse("hostname = [").unwrap_err().to_string();
        assert!(e.starts_with("test.toml: "), "{e}");
    }

    #[test]
    fn two_listeners_cannot_share_an_address() {
        let c = parse("[listen]\nsmtp = \"127.0.0.1:2525\"\npop3 = \"127.0.0.1:2525\"\n").unwrap();
        let e = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("listen.pop3: address 127.0.0.1:2525 already used by listen.smtp"), "{e}");
    }

    #[test]
    fn dmarc_needs_spf_and_dkim() {
        let c = parse("[authentication]\nspf = false\n").unwrap();
        let e = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("authentication.dmarc: needs authentication.spf and authentication.dkim on"), "{e}");
        let c = parse("[authentication]\nspf = false\ndkim = false\ndmarc = false\n").unwrap();
        assert!(!c.authentication.any());
        c.validate(Path::new("x.toml")).unwrap();
    }

    #[test]
    fn validation_reports_every_problem() {
        let c = parse(
            "hostname = \"bad host\"\n[limits]\nmax_command_line = 100\n[log]\nfilter = \"info,mailroom=loud\"\n",
        )
        .unwrap();
        let e = c.validate(Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("hostname:"), "{e}");
        assert!(e.contains("limits.max_command_line: must be at least 512"), "{e}");
        assert!(e.contains("log.filter"), "{e}");
        assert!(e.starts_with("x.toml: "), "{e}");
    }
}
