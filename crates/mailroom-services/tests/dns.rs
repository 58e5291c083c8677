//! The resolver against a real DNS server: a dnsmasq on loopback serving
//! only these records. No query ever leaves loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mailroom_services::dns::{DnsError, MailHost, Resolver};
use mailroom_testkit::dnsmasq::{Dnsmasq, Record};

fn records() -> Vec<Record> {
    vec![
        // example.test: three MX hosts, two sharing a preference.
        Record::mx("example.test", "mx20.example.test", 20),
        Record::mx("example.test", "mx10a.example.test", 10),
        Record::mx("example.test", "mx10b.example.test", 10),
        Record::a("mx10a.example.test", Ipv4Addr::new(192, 0, 2, 1)),
        Record::a("mx10a.example.test", Ipv4Addr::new(192, 0, 2, 2)),
        Record::aaaa("mx10a.example.test", "2001:db8::1".parse().unwrap_or(Ipv6Addr::LOCALHOST)),
        Record::aaaa("v6only.example.test", "2001:db8::2".parse().unwrap_or(Ipv6Addr::LOCALHOST)),
        // implicit.test: no MX, an address.
        Record::a("implicit.test", Ipv4Addr::new(192, 0, 2, 9)),
        // null.test: RFC 7505.
        Record::null_mx("null.test"),
        // nomail.test exists (it has a TXT record) but has no MX and no address.
        Record::txt("nomail.test", "v=spf1 -all"),
        // A DKIM-sized value, served as a 255-byte string and the rest.
        Record::txt("sel._domainkey.example.test", &dkim_value()),
        Record::txt("example.test", "v=spf1 mx -all"),
        Record::txt("example.test", "other=record"),
    ]
}

fn dkim_value() -> String {
    format!("v=DKIM1; k=rsa; p={}", "A".repeat(300))
}

/// A resolver talking only to a fresh dnsmasq; `None` (with a notice) when
/// dnsmasq is not installed.
fn start() -> Option<(Dnsmasq, Resolver)> {
    let dnsmasq = match Dnsmasq::start(&records()) {
        Ok(Some(d)) => d,
        Ok(None) => {
            eprintln!("skipped: dnsmasq is not installed (scripts/test installs dnsmasq-base)");
            return None;
        }
        Err(e) => panic!("dnsmasq: {e}"),
    };
    let resolver = Resolver::new(Some(dnsmasq.addr()), Duration::from_secs(2)).expect("resolver");
    Some((dnsmasq, resolver))
}

fn names(hosts: &[MailHost]) -> Vec<&str> {
    hosts.iter().map(|h| h.name.as_str()).collect()
}

#[tokio::test]
async fn mx_hosts_come_by_preference() {
    let Some((dns, resolver)) = start() else { return };
    let hosts = resolver.mail_hosts("example.test").await.unwrap_or_else(|e| panic!("{e}\n{}", dns.log()));
    let preferences: Vec<u16> = hosts.iter().map(|h| h.preference).collect();
    assert_eq!(preferences, [10, 10, 20]);
    let mut first_two = names(&hosts[..2]);
    first_two.sort();
    assert_eq!(first_two, ["mx10a.example.test", "mx10b.example.test"]);
    assert_eq!(hosts[2].name, "mx20.example.test");
}

#[tokio::test]
async fn a_trailing_dot_or_capitals_change_nothing() {
    let Some((_dns, resolver)) = start() else { return };
    let hosts = resolver.mail_hosts("Example.TEST.").await.expect("mx");
    assert_eq!(hosts.len(), 3);
}

#[tokio::test]
async fn no_mx_but_an_address_is_the_implicit_mx() {
    let Some((_dns, resolver)) = start() else { return };
    let hosts = resolver.mail_hosts("implicit.test").await.expect("implicit mx");
    assert_eq!(hosts, [MailHost { name: "implicit.test".into(), preference: 0 }]);
}

#[tokio::test]
async fn null_mx_is_permanent() {
    let Some((_dns, resolver)) = start() else { return };
    let err = resolver.mail_hosts("null.test").await.expect_err("null mx");
    assert!(matches!(err, DnsError::NullMx), "{err:?}");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn nxdomain_is_no_such_domain() {
    let Some((_dns, resolver)) = start() else { return };
    let err = resolver.mail_hosts("nowhere.test").await.expect_err("nxdomain");
    assert!(matches!(&err, DnsError::NoSuchDomain(d) if d == "nowhere.test"), "{err:?}");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn no_mx_and_no_address_is_permanent() {
    let Some((_dns, resolver)) = start() else { return };
    let err = resolver.mail_hosts("nomail.test").await.expect_err("no mail");
    assert!(matches!(&err, DnsError::NoAddress(d) if d == "nomail.test"), "{err:?}");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn addresses_give_ipv4_then_ipv6() {
    let Some((_dns, resolver)) = start() else { return };
    let addrs = resolver.addresses("mx10a.example.test").await.expect("addresses");
    let v4: Vec<IpAddr> = vec![Ipv4Addr::new(192, 0, 2, 1).into(), Ipv4Addr::new(192, 0, 2, 2).into()];
    assert_eq!(addrs.len(), 3, "{addrs:?}");
    let mut got_v4 = addrs[..2].to_vec();
    got_v4.sort();
    assert_eq!(got_v4, v4);
    assert_eq!(addrs[2], "2001:db8::1".parse::<IpAddr>().expect("ip"));

    let v6 = resolver.addresses("v6only.example.test").await.expect("v6 only");
    assert_eq!(v6, ["2001:db8::2".parse::<IpAddr>().expect("ip")]);
}

#[tokio::test]
async fn a_host_without_addresses_is_no_address() {
    let Some((_dns, resolver)) = start() else { return };
    // mx10b is named by an MX record but has no address of its own.
    let err = resolver.addresses("mx10b.example.test").await.expect_err("no address");
    assert!(matches!(&err, DnsError::NoAddress(h) if h == "mx10b.example.test"), "{err:?}");
    assert!(err.is_permanent());
    let err = resolver.addresses("nomail.test").await.expect_err("no address");
    assert!(matches!(err, DnsError::NoAddress(_)), "{err:?}");
}

#[tokio::test]
async fn txt_strings_are_joined() {
    let Some((_dns, resolver)) = start() else { return };
    let dkim = resolver.txt("sel._domainkey.example.test").await.expect("txt");
    assert_eq!(dkim, [dkim_value()]);
    let mut spf = resolver.txt("example.test").await.expect("txt");
    spf.sort();
    assert_eq!(spf, ["other=record", "v=spf1 mx -all"]);
}

#[tokio::test]
async fn txt_of_nothing_is_empty() {
    let Some((_dns, resolver)) = start() else { return };
    assert_eq!(resolver.txt("nowhere.test").await.expect("nxdomain"), Vec::<String>::new());
    assert_eq!(resolver.txt("implicit.test").await.expect("nodata"), Vec::<String>::new());
}

#[tokio::test]
async fn an_unreachable_server_is_temporary() {
    // A loopback port with nothing behind it: bound, read, released.
    let closed: SocketAddr = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()).expect("free port");
    let resolver = Resolver::new(Some(closed), Duration::from_millis(200)).expect("resolver");
    let started = Instant::now();
    let err = resolver.mail_hosts("example.test").await.expect_err("unreachable");
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    assert!(!err.is_permanent());
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let err = resolver.addresses("mx10a.example.test").await.expect_err("unreachable");
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
    let err = resolver.txt("example.test").await.expect_err("unreachable");
    assert!(matches!(err, DnsError::Temporary(_)), "{err:?}");
}
