//! The one DNS resolver the process shares: MX and address lookups for
//! outbound delivery (RFC 5321 §5.1), and TXT lookups for SPF, DKIM and
//! DMARC: [`Resolver::authenticator`] hands mail-auth the same resolver.
//!
//! It wraps hickory's `TokioResolver`, whose cache is the per-process cache;
//! cloning a [`Resolver`] shares it. Every name is made absolute before it
//! is queried, so no search domain of `/etc/resolv.conf` ever applies, and
//! `/etc/hosts` is never read: mail routing follows DNS alone.
//!
//! Errors say what the queue must do: [`DnsError::is_permanent`] answers
//! bounce (a null MX, a domain that does not exist, a host without
//! addresses) versus retry (SERVFAIL, timeouts, an unreachable server).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

/// Why a lookup gave no usable answer.
#[derive(thiserror::Error, Debug)]
pub enum DnsError {
    /// The domain publishes a null MX (RFC 7505): it accepts no mail at all.
    #[error("the domain accepts no mail (null MX)")]
    NullMx,
    /// The domain does not exist (NXDOMAIN), or is not a valid name.
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    /// The name exists but has no A or AAAA records.
    #[error("{0}: no address records")]
    NoAddress(String),
    /// The answer could not be had now: SERVFAIL, REFUSED, a timeout or a
    /// network error. Worth retrying later.
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
    /// The resolver could not be set up (for example `/etc/resolv.conf`
    /// is unreadable).
    #[error("resolver configuration: {0}")]
    Config(String),
}

impl DnsError {
    /// Whether retrying cannot help: the message bounces rather than waits.
    /// A configuration error is not permanent: the operator can fix it and
    /// the queue then succeeds.
    pub fn is_permanent(&self) -> bool {
        match self {
            DnsError::NullMx | DnsError::NoSuchDomain(_) | DnsError::NoAddress(_) => true,
            DnsError::Temporary(_) | DnsError::Config(_) => false,
        }
    }
}

/// One host to try for a domain's mail, from an MX record or the implicit MX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailHost {
    /// The host name, without a trailing dot (A-labels for IDNs).
    pub name: String,
    /// The MX preference: lower is tried first.
    pub preference: u16,
}

/// The process's resolver; cheap to clone, and clones share one cache.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<TokioResolver>,
}

/// What a single query found, before deciding what it means to the caller.
enum Answer {
    Found(Lookup),
    /// NXDOMAIN: the name does not exist at all.
    NoDomain,
    /// NOERROR with no record of the asked type (NODATA).
    NoData,
}

impl Resolver {
    /// A resolver using only `server` (UDP, and TCP for truncated answers)
    /// when given (a test's dnsmasq, a private resolver), otherwise the
    /// name servers of `/etc/resolv.conf`. `timeout` bounds each query
    /// attempt.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Resolver, DnsError> {
        let (config, mut options) = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                (ResolverConfig::from_name_servers(vec![server]), ResolverOpts::default())
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsError::Config(format!("reading /etc/resolv.conf: {e}")))?,
        };
        if config.name_servers().is_empty() {
            return Err(DnsError::Config("no name servers configured".into()));
        }
        options.timeout = timeout;
        options.use_hosts_file = ResolveHosts::Never;
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = options;
        let inner = builder.build().map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Resolver { inner: Arc::new(inner) })
    }

    /// A mail-auth verifier (SPF, DKIM, DMARC) over this same resolver and
    /// cache: hickory's resolver is a handle, so the clone shares them.
    pub fn authenticator(&self) -> mail_auth::MessageAuthenticator {
        mail_auth::MessageAuthenticator(TokioResolver::clone(&self.inner))
    }

    /// The hosts that receive mail for `domain`, most preferred first
    /// (RFC 5321 §5.1).
    ///
    /// Hosts of equal preference come in random order, as RFC 5321 §5.1
    /// asks, so that senders spread their load. A domain without MX
    /// records but with an address is its own only host (the implicit MX,
    /// preference 0). A lone MX whose exchange is the root is a null MX
    /// (RFC 7505 §3), whatever its preference: the root can never be a host.
    pub async fn mail_hosts(&self, domain: &str) -> Result<Vec<MailHost>, DnsError> {
        let name = absolute(domain)?;
        let lookup = match self.query(&name, RecordType::MX).await? {
            Answer::Found(lookup) => lookup,
            Answer::NoDomain => return Err(DnsError::NoSuchDomain(display(&name))),
            Answer::NoData => {
                // RFC 5321 §5.1: no MX, so the domain itself is the host,
                // provided it has an address.
                self.addresses(domain).await?;
                return Ok(vec![MailHost { name: display(&name), preference: 0 }]);
            }
        };
        let mut saw_root = false;
        let mut hosts = Vec::new();
        for record in lookup.answers() {
            if let RData::MX(mx) = &record.data {
                if mx.exchange.is_root() {
                    saw_root = true;
                } else {
                    hosts.push(MailHost { name: display(&mx.exchange), preference: mx.preference });
                }
            }
        }
        if hosts.is_empty() {
            // An MX answer of only "." is the null MX; an answer holding no
            // MX at all (say, only a CNAME) is treated as NODATA would be.
            if saw_root {
                return Err(DnsError::NullMx);
            }
            self.addresses(domain).await?;
            return Ok(vec![MailHost { name: display(&name), preference: 0 }]);
        }
        hosts.sort_by_key(|h| h.preference);
        shuffle_ties(&mut hosts);
        Ok(hosts)
    }

    /// The addresses of `host`: its A records, then its AAAA records. Both
    /// are asked at once; a failure of one is ignored when the other
    /// answered with addresses.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = absolute(host)?;
        let (v4, v6) = tokio::join!(self.query(&name, RecordType::A), self.query(&name, RecordType::AAAA));
        let mut found = Vec::new();
        let mut temporary = None;
        for answer in [v4, v6] {
            match answer {
                Ok(Answer::Found(lookup)) => {
                    found.extend(lookup.answers().iter().filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    }));
                }
                Ok(Answer::NoDomain | Answer::NoData) => {}
                Err(e) => temporary = Some(e),
            }
        }
        match (found.is_empty(), temporary) {
            (false, _) => Ok(found),
            (true, Some(e)) => Err(e),
            (true, None) => Err(DnsError::NoAddress(display(&name))),
        }
    }

    /// The TXT records of `name`, each as its character-strings joined
    /// (RFC 7208 §3.3 and RFC 6376 §3.6.2.2 both read them so). A name
    /// that does not exist or has no TXT record gives an empty list.
    /// Bytes that are not UTF-8 are replaced, which no SPF, DKIM or DMARC
    /// record can contain anyway.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let name = absolute(name)?;
        let lookup = match self.query(&name, RecordType::TXT).await? {
            Answer::Found(lookup) => lookup,
            Answer::NoDomain | Answer::NoData => return Ok(Vec::new()),
        };
        let records = lookup.answers().iter().filter_map(|r| match &r.data {
            RData::TXT(txt) => {
                let joined: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&joined).into_owned())
            }
            _ => None,
        });
        Ok(records.collect())
    }

    /// One query, with the negative answers told apart from failures.
    async fn query(&self, name: &Name, kind: RecordType) -> Result<Answer, DnsError> {
        match self.inner.lookup(name.clone(), kind).await {
            Ok(lookup) if lookup.answers().iter().any(|r| r.record_type() == kind) => Ok(Answer::Found(lookup)),
            Ok(_) => Ok(Answer::NoData),
            Err(e) if e.is_nx_domain() => Ok(Answer::NoDomain),
            Err(e) if e.is_no_records_found() => Ok(Answer::NoData),
            Err(e) => Err(DnsError::Temporary(format!("{} {kind}: {e}", display(name)))),
        }
    }
}

/// `name` as an absolute DNS name (a trailing dot added), so that no
/// search domain applies. U-labels become A-labels. A string that is not a
/// domain name cannot exist in the DNS: that is permanent.
fn absolute(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_utf8(name).map_err(|_| DnsError::NoSuchDomain(name.to_string()))?;
    if parsed.is_root() {
        return Err(DnsError::NoSuchDomain(name.to_string()));
    }
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A name as mail logs and replies show it: ASCII, no trailing dot.
fn display(name: &Name) -> String {
    let ascii = name.to_ascii();
    match ascii.strip_suffix('.') {
        Some(stripped) => stripped.to_string(),
        None => ascii,
    }
}

/// Puts each run of equal preference in random order (RFC 5321 §5.1:
/// "the SMTP client SHOULD randomize them to spread the load"). Without
/// randomness the order stays as the server gave it, which is still
/// correct, only less fair.
fn shuffle_ties(hosts: &mut [MailHost]) {
    let mut start = 0;
    while start < hosts.len() {
        let preference = hosts[start].preference;
        let end = hosts[start..].iter().position(|h| h.preference != preference).map_or(hosts.len(), |n| start + n);
        let run = &mut hosts[start..end];
        // Fisher-Yates over the run.
        for i in (1..run.len()).rev() {
            let mut bytes = [0u8; 4];
            if getrandom::fill(&mut bytes).is_err() {
                return;
            }
            let j = u32::from_le_bytes(bytes) as usize % (i + 1);
            run.swap(i, j);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, preference: u16) -> MailHost {
        MailHost { name: name.into(), preference }
    }

    #[test]
    fn shuffle_keeps_preference_order_and_every_host() {
        let mut hosts = vec![host("a", 10), host("b", 10), host("c", 10), host("d", 20)];
        shuffle_ties(&mut hosts);
        assert_eq!(hosts[3], host("d", 20));
        let mut firsts: Vec<_> = hosts[..3].iter().map(|h| h.name.as_str()).collect();
        firsts.sort();
        assert_eq!(firsts, ["a", "b", "c"]);
    }

    #[test]
    fn names_are_made_absolute() {
        assert!(absolute("example.test").map(|n| n.is_fqdn()).unwrap_or(false));
        assert_eq!(absolute("example.test.").map(|n| display(&n)).ok().as_deref(), Some("example.test"));
        assert!(matches!(absolute("."), Err(DnsError::NoSuchDomain(_))));
        assert!(matches!(absolute("a..b"), Err(DnsError::NoSuchDomain(_))));
    }

    #[test]
    fn permanence() {
        assert!(DnsError::NullMx.is_permanent());
        assert!(DnsError::NoSuchDomain("x".into()).is_permanent());
        assert!(DnsError::NoAddress("x".into()).is_permanent());
        assert!(!DnsError::Temporary("x".into()).is_permanent());
        assert!(!DnsError::Config("x".into()).is_permanent());
    }
}
