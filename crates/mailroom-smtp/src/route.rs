//! Where mail for a domain goes: a configured route, the smarthost, or the
//! domain's MX hosts in preference order (RFC 5321 §5.1), each with its
//! addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mailroom_services::dns::{DnsError, Resolver};

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host name (for logs, SNI and DSNs), or the address of a route.
    pub(crate) name: String,
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// Whether this is the smarthost (its own TLS policy and login).
    pub(crate) smarthost: bool,
}

/// Why no server could be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NoRoute {
    /// For good (no such domain, null MX) or for now (DNS trouble).
    pub(crate) permanent: bool,
    /// The RFC 3463 status for the DSN.
    pub(crate) status: (u8, u16, u16),
    /// What happened.
    pub(crate) text: String,
}

/// Finds the servers for a recipient domain.
pub(crate) struct Router {
    resolver: Resolver,
    routes: BTreeMap<String, Vec<SocketAddr>>,
    smarthost: Option<SocketAddr>,
    port: u16,
}

impl Router {
    /// A router over `resolver`; `routes` (keys lower-cased here) win over
    /// the smarthost, which wins over MX lookups; MX hosts are dialled on
    /// `port`.
    pub(crate) fn new(
        resolver: Resolver,
        routes: &BTreeMap<String, Vec<SocketAddr>>,
        smarthost: Option<SocketAddr>,
        port: u16,
    ) -> Router {
        let routes = routes.iter().map(|(d, a)| (d.trim_end_matches('.').to_ascii_lowercase(), a.clone())).collect();
        Router { resolver, routes, smarthost, port }
    }

    /// The servers to try for `domain`, best first.
    pub(crate) async fn targets(&self, domain: &str) -> Result<Vec<Target>, NoRoute> {
        let key = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addrs) = self.routes.get(&key) {
            return Ok(addrs.iter().map(|a| Target { name: a.ip().to_string(), addr: *a, smarthost: false }).collect());
        }
        if let Some(addr) = self.smarthost {
            return Ok(vec![Target { name: addr.ip().to_string(), addr, smarthost: true }]);
        }
        let hosts = self.resolver.mail_hosts(&key).await.map_err(|e| no_route(&key, &e))?;
        let mut targets = Vec::new();
        let mut last_error = None;
        for host in hosts {
            match self.resolver.addresses(&host.name).await {
                Ok(ips) => targets.extend(ips.into_iter().map(|ip| Target {
                    name: host.name.trim_end_matches('.').to_owned(),
                    addr: SocketAddr::new(ip, self.port),
                    smarthost: false,
                })),
                Err(e) => last_error = Some(e),
            }
        }
        match (targets.is_empty(), last_error) {
            (false, _) => Ok(targets),
            (true, Some(e)) => Err(no_route(&key, &e)),
            (true, None) => {
                Err(NoRoute { permanent: false, status: (4, 4, 4), text: format!("no usable mail server for {key}") })
            }
        }
    }
}

fn no_route(domain: &str, e: &DnsError) -> NoRoute {
    let status = match e {
        // RFC 7505 §4.2.
        DnsError::NullMx => (5, 1, 10),
        _ if e.is_permanent() => (5, 1, 2),
        _ => (4, 4, 3),
    };
    NoRoute { permanent: e.is_permanent(), status, text: format!("lookup of {domain}: {e}") }
}
