//! Where mail for a domain goes: a configured route, the smarthost, or the
//! domain's MX hosts in preference order (RFC 5321 §5.1), each with its
//! addresses.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mailroom_services::config::HostPort;
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
    routes: BTreeMap<String, Vec<HostPort>>,
    smarthost: Option<HostPort>,
    port: u16,
}

impl Router {
    /// A router over `resolver`; `routes` (keys lower-cased here) win over
    /// the smarthost, which wins over MX lookups; MX hosts are dialled on
    /// `port`.
    pub(crate) fn new(
        resolver: Resolver,
        routes: &BTreeMap<String, Vec<HostPort>>,
        smarthost: Option<HostPort>,
        port: u16,
    ) -> Router {
        let routes = routes.iter().map(|(d, a)| (d.trim_end_matches('.').to_ascii_lowercase(), a.clone())).collect();
        Router { resolver, routes, smarthost, port }
    }

    /// The servers to try for `domain`, best first.
    pub(crate) async fn targets(&self, domain: &str) -> Result<Vec<Target>, NoRoute> {
        let key = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(servers) = self.routes.get(&key) {
            return self.fixed(servers, false).await;
        }
        if let Some(server) = &self.smarthost {
            return self.fixed(std::slice::from_ref(server), true).await;
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

impl Router {
    /// The targets of configured servers, names resolved now, in order.
    async fn fixed(&self, servers: &[HostPort], smarthost: bool) -> Result<Vec<Target>, NoRoute> {
        let mut targets = Vec::new();
        let mut last_error = None;
        for server in servers {
            if let Some(addr) = server.socket_addr() {
                targets.push(Target { name: server.host.clone(), addr, smarthost });
                continue;
            }
            match self.resolver.addresses(&server.host).await {
                Ok(ips) => targets.extend(ips.into_iter().map(|ip| Target {
                    name: server.host.clone(),
                    addr: SocketAddr::new(ip, server.port),
                    smarthost,
                })),
                Err(e) => last_error = Some((server, e)),
            }
        }
        match (targets.is_empty(), last_error) {
            (true, Some((server, e))) => {
                // A configured server that does not resolve is a local
                // problem to fix, not the recipient's: retry.
                Err(NoRoute { permanent: false, status: (4, 4, 3), text: format!("lookup of {}: {e}", server.host) })
            }
            _ => Ok(targets),
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
