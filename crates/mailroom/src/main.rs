//! The `mailroom` command line.

mod dkim_cmd;
mod queue_cmd;

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mailroom_services::accounts::{Admin, generate_password};
use mailroom_services::config::{Config, LogFormat};
use mailroom_store::{AnyStore, MailStore, StoreError};
use mailroom_types::Secret;

/// Mailroom: a complete Internet mail system in one program.
#[derive(Parser)]
#[command(name = "mailroom", version, about)]
struct Cli {
    /// Configuration file (TOML); without one, safe defaults apply.
    #[arg(long, global = true, env = "MAILROOM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the mail server until SIGTERM or Ctrl-C.
    Serve {
        /// Also create domain example.test with users alice and bob, and
        /// print their passwords.
        #[arg(long)]
        demo: bool,
    },
    /// Manage local domains.
    Domain {
        #[command(subcommand)]
        action: DomainAction,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage aliases (an address or a catch-all @domain delivering to accounts).
    Alias {
        #[command(subcommand)]
        action: AliasAction,
    },
    /// Look at and steer the outbound queue.
    Queue {
        #[command(subcommand)]
        action: queue_cmd::QueueAction,
    },
    /// DKIM signing keys of local domains.
    Dkim {
        #[command(subcommand)]
        action: dkim_cmd::DkimAction,
    },
}

#[derive(Subcommand)]
enum DomainAction {
    /// Add a local domain.
    Add { name: String },
    /// List local domains.
    List,
    /// Delete a domain that has no accounts or aliases.
    Del { name: String },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add an account (with INBOX, Sent, Drafts, Trash, Junk, Archive).
    Add {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts, optionally of one domain.
    List { domain: Option<String> },
    /// Change an account's password.
    Passwd {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and all its mail.
    Del { address: String },
}

#[derive(Subcommand)]
enum AliasAction {
    /// Deliver mail for SOURCE (user@domain, or @domain for a catch-all) to the account TARGET.
    Add { source: String, target: String },
    /// List aliases, optionally of one domain.
    List { domain: Option<String> },
    /// Delete an alias, or only its TARGET.
    Del { source: String, target: Option<String> },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Help and version go to stdout as usual; a usage error becomes one line
/// on stderr (clap's first line, which names the problem) and status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    // The problem is the first paragraph (it may list arguments on
    // following lines); the usage block after the blank line is dropped.
    let text = e.to_string();
    let problem: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let problem = problem.join(" ");
    let problem = problem.strip_prefix("error: ").unwrap_or(&problem);
    eprintln!("mailroom: error: {problem} (see mailroom --help)");
    ExitCode::from(2)
}

/// Every error is one line on stderr and exit status 1.
fn fail(e: anyhow::Error) -> ExitCode {
    let text = format!("{e:#}").replace('\n', " ");
    eprintln!("mailroom: error: {text}");
    ExitCode::FAILURE
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => {
            let c = Config::default();
            c.validate(Path::new("(defaults)"))?;
            Ok(c)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(cli.config.as_deref())?;
    let clock = mailroom::system_clock();
    if let Command::Serve { demo } = cli.command {
        init_logging(&config);
        let store = mailroom::open_store(&config, Arc::clone(&clock)).await?;
        let _lock = mailroom::claim_data_dir(&config, &store).await?;
        if demo {
            create_demo(&store).await?;
        }
        return serve(Arc::new(config), store, clock).await;
    }
    let store = mailroom::open_store(&config, Arc::clone(&clock)).await?;
    let admin = Admin::new(&store);
    match cli.command {
        Command::Serve { .. } => unreachable!("handled above"),
        Command::Domain { action } => match action {
            DomainAction::Add { name } => println!("added domain {}", admin.add_domain(&name).await?),
            DomainAction::List => {
                for d in admin.list_domains().await? {
                    println!("{}", d.name);
                }
            }
            DomainAction::Del { name } => {
                admin.delete_domain(&name).await?;
                println!("deleted domain {name}");
            }
        },
        Command::User { action } => match action {
            UserAction::Add { address, password_stdin } => {
                let password = read_password(password_stdin)?;
                println!("added user {}", admin.add_user(&address, &password).await?);
            }
            UserAction::List { domain } => {
                for a in admin.list_users(domain.as_deref()).await? {
                    println!("{}", a.address);
                }
            }
            UserAction::Passwd { address, password_stdin } => {
                let password = read_password(password_stdin)?;
                admin.set_password(&address, &password).await?;
                println!("changed password of {address}");
            }
            UserAction::Del { address } => {
                admin.delete_user(&address).await?;
                println!("deleted user {address}");
            }
        },
        Command::Alias { action } => match action {
            AliasAction::Add { source, target } => {
                admin.add_alias(&source, &target).await?;
                println!("added alias {source} -> {target}");
            }
            AliasAction::List { domain } => {
                for a in admin.list_aliases(domain.as_deref()).await? {
                    println!("{} -> {}", a.source, a.target);
                }
            }
            AliasAction::Del { source, target } => {
                admin.delete_alias(&source, target.as_deref()).await?;
                println!("deleted alias {source}{}", target.map(|t| format!(" -> {t}")).unwrap_or_default());
            }
        },
        Command::Queue { action } => queue_cmd::run(&store, action, clock.now()).await?,
        Command::Dkim { action } => {
            dkim_cmd::run(&store, &config.data_dir, &config.hostname, action, clock.now()).await?
        }
    }
    Ok(())
}

/// Reads a new password: from stdin's first line, or prompted twice without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<Secret<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        return Ok(Secret::new(pw.to_string()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for a password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second = rpassword::prompt_password("Retype password: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(Secret::new(first))
}

/// `--demo`: domain example.test with alice and bob; passwords printed once,
/// when the accounts are created.
async fn create_demo(store: &AnyStore) -> anyhow::Result<()> {
    let admin = Admin::new(store);
    match admin.add_domain("example.test").await {
        Ok(_) | Err(mailroom_services::accounts::AdminError::Store(StoreError::AlreadyExists(_))) => {}
        Err(e) => return Err(e.into()),
    }
    for user in ["alice@example.test", "bob@example.test"] {
        let address = mailroom_types::Address::parse(user)?;
        if store.account(&address).await?.is_some() {
            println!("demo user {user} exists already (reset with: mailroom user passwd {user})");
            continue;
        }
        let password = generate_password()?;
        admin.add_user(user, &password).await?;
        println!("demo user {user} password: {}", password.expose());
    }
    Ok(())
}

async fn serve(config: Arc<Config>, store: AnyStore, clock: Arc<dyn mailroom_types::Clock>) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM arriving right after the "listening" line
    // must stop the server gracefully, not kill it with the default action.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let running = mailroom::start(Arc::clone(&config), store, clock).await?;
    // Scripts wait for these lines; the smtp one comes first.
    if let Some(addr) = running.smtp {
        println!("smtp listening on {addr}");
    }
    if let Some(addr) = running.pop3 {
        println!("pop3 listening on {addr}");
    }
    if let Some(addr) = running.imap {
        println!("imap listening on {addr}");
    }
    if let Some(addr) = running.imaps {
        println!("imaps listening on {addr}");
    }
    if let Some(addr) = running.pop3s {
        println!("pop3s listening on {addr}");
    }
    if let Some(addr) = running.submission {
        println!("submission listening on {addr}");
    }
    if let Some(addr) = running.submissions {
        println!("submissions listening on {addr}");
    }
    if let Some(addr) = running.http {
        println!("webmail listening on http://{addr}/");
    }
    if let Some(addr) = running.https {
        println!("webmail listening on https://{addr}/");
    }
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!(grace = %config.shutdown_grace, "shutting down");
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // One span deep (the connection), so the span list would only repeat
    // the current span's fields in every line: most of a line's cost.
    if json { builder.json().with_span_list(false).init() } else { builder.init() }
}
