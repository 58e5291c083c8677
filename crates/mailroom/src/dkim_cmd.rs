//! `mailroom dkim`: generate a domain's DKIM signing keys and print the DNS
//! records to publish. The server loads the keys when it starts, so a new
//! key signs after the next restart (publish its record first).

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, bail};
use mailroom_services::dkim::{self, Algorithm, DkimKey, DkimKeys};
use mailroom_store::{AnyStore, MailStore};
use mailroom_types::Domain;
use mailroom_types::time::{civil_from_days, unix_seconds};

/// What to do with DKIM keys.
#[derive(clap::Subcommand)]
pub enum DkimAction {
    /// Generate a signing key for a local domain and print the DNS records
    /// to publish (the key, and recommended SPF, DMARC and MX records).
    Generate {
        /// The local domain whose mail the key signs.
        domain: String,
        /// The selector, the key's name in DNS (default: the algorithm and
        /// today's date, such as rsa-20260131, so that a later key for
        /// rotation gets a new name).
        #[arg(long)]
        selector: Option<String>,
        /// rsa (2048 bits; the default, since every verifier checks it) or
        /// ed25519 (RFC 8463; compact, but not yet checked everywhere, so
        /// best added beside an RSA key: both sign).
        #[arg(long, default_value = "rsa", value_parser = parse_algorithm)]
        algorithm: Algorithm,
    },
    /// List the keys and their DNS key records.
    List,
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::parse(s).ok_or_else(|| format!("unknown algorithm {s:?} (rsa or ed25519)"))
}

/// Runs one DKIM command, printing its result.
pub async fn run(
    store: &AnyStore,
    data_dir: &Path,
    hostname: &str,
    action: DkimAction,
    now: SystemTime,
) -> anyhow::Result<()> {
    match action {
        DkimAction::Generate { domain, selector, algorithm } => {
            let domain = Domain::parse(&domain).map_err(|e| anyhow::anyhow!("invalid domain {domain:?}: {e}"))?;
            let local = store.list_domains().await?;
            if !local.iter().any(|d| d.name == domain) {
                bail!("{domain} is not a local domain (add it with: mailroom domain add {domain})");
            }
            let selector = selector.unwrap_or_else(|| default_selector(algorithm, now));
            let key = dkim::generate(data_dir, &domain, &selector, algorithm)?;
            print_generated(&key, hostname);
        }
        DkimAction::List => {
            let keys = DkimKeys::load(data_dir).context("cannot read the DKIM keys")?;
            if keys.is_empty() {
                println!("no DKIM keys");
            }
            for key in keys.iter() {
                println!("{} {} {} {}", key.domain(), key.selector(), key.algorithm(), key.path().display());
                println!("    {}", key.dns().zone_line());
            }
        }
    }
    Ok(())
}

/// `rsa-YYYYMMDD` or `ed25519-YYYYMMDD` (UTC).
fn default_selector(algorithm: Algorithm, now: SystemTime) -> String {
    let (y, m, d) = civil_from_days(unix_seconds(now).div_euclid(86_400));
    format!("{algorithm}-{y:04}{m:02}{d:02}")
}

fn print_generated(key: &DkimKey, hostname: &str) {
    let domain = key.domain();
    println!("generated {} key {} for {domain} in {}", key.algorithm(), key.selector(), key.path().display());
    println!("It signs mail from {domain} once the server restarts. Publish these DNS records first:");
    println!();
    println!("; DKIM public key (RFC 6376)");
    println!("{}", key.dns().zone_line());
    println!("; SPF (RFC 7208): the domain's mail leaves from its MX hosts only");
    println!("{domain}. IN TXT \"v=spf1 mx -all\"");
    println!("; DMARC (RFC 7489): quarantine what fails, reports to postmaster");
    println!("_dmarc.{domain}. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\"");
    println!("; MX: mail for {domain} comes to this server");
    println!("{domain}. IN MX 10 {hostname}.");
}
