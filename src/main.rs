//! The `bantin` command: parse the CLI, set up logging, dispatch.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use bantin::app::App;
use bantin::config::Config;
use bantin::metrics::Metrics;
use bantin::outbox::Outbox;
use bantin::sources::import;

#[derive(Parser)]
#[command(
    name = "bantin",
    version,
    about = "Syndication feeds (RSS, Atom, JSON Feed) for a bilingual newsroom"
)]
struct Cli {
    /// The site configuration.
    #[arg(
        long,
        global = true,
        default_value = "feeds/site.toml",
        env = bantin::config::env::CONFIG
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sync the articles directory into the store and serve the feeds.
    Serve,
    /// Load articles from JSON or NDJSON files or directories into the store.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate the configuration and the articles directory without serving (for CI).
    Check {
        /// Files or directories to check instead of the configured articles directory.
        paths: Vec<PathBuf>,
    },
    /// Write page 1 of every feed, with .gz and .br siblings, as static files under DIR.
    Export { dir: PathBuf },
    /// Show the upstream sources ([[sources]]) and their polling state, as a table (or --json).
    Sources {
        /// The same JSON as GET /api/v1/sources.
        #[arg(long)]
        json: bool,
    },
    /// Show the built-in WebSub hub's active subscriptions and their delivery state, as a table
    /// (or --json).
    Subscriptions {
        /// As JSON (callbacks without their query string, never a secret).
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when the local server answers /healthz (for container HEALTHCHECKs).
    Healthcheck,
    /// Make a partner key (or hash a given one) and print the `[[partners]]` lines for site.toml.
    PartnerKey {
        /// The partner's id in the configuration.
        #[arg(long, default_value = "partner")]
        id: String,
        /// An existing key to hash instead of making a new one.
        #[arg(long)]
        key: Option<String>,
    },
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("bantin=info,warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Healthcheck) {
        return healthcheck(&cli.config);
    }
    if let Command::PartnerKey { id, key } = &cli.command {
        let fresh = key.is_none();
        let key = key.clone().unwrap_or_else(bantin::access::new_partner_key);
        if fresh {
            println!(
                "# The key to give the partner (kept nowhere else; make a new one if it is lost):"
            );
            println!("#   {key}");
        }
        println!(
            "[[partners]]\nid = \"{id}\"\nname = \"{id}\"\nkey_sha256 = \"{}\"",
            bantin::access::key_sha256_hex(&key)
        );
        return ExitCode::SUCCESS;
    }
    init_tracing();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // A single-threaded runtime for start-up, the store, the poller, readership and the hub;
    // HTTP is served by `http::serve`'s worker threads, one per core, each with its own runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        match run(cli.command, config).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    bantin::outbox::install_tls_provider();
    match command {
        Command::Serve => {
            raise_open_file_limit();
            bantin::memory::tune_for_serving();
            let server = bantin::server::start(config).await?;
            server.run_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { paths } => {
            let store = bantin::store::backend::open(&config.database_url).await?;
            let app = App::new(
                Arc::new(config),
                store,
                Outbox::disabled(),
                Arc::new(Metrics::new()),
            );
            let files = import::collect_files(&paths)?;
            let started = std::time::Instant::now();
            let report = import::import(&app, &files, true).await?;
            for r in &report.rejected {
                eprintln!("rejected: {r}");
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{report} from {} files in {secs:.1} s ({:.0} articles/s)",
                files.len(),
                report.loaded() as f64 / secs.max(1e-9)
            );
            Ok(if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Check { paths } => {
            let paths = if paths.is_empty() {
                config.articles_dir.iter().cloned().collect()
            } else {
                paths
            };
            let files = import::collect_files(&paths)?;
            let (mut ok, mut bad) = (0usize, 0usize);
            for f in &files {
                import::read_records(f, &config, |_, r| match r {
                    Ok(_) => ok += 1,
                    Err(rej) => {
                        bad += 1;
                        eprintln!("{rej}");
                    }
                })?;
            }
            println!(
                "{}: configuration ok; {ok} articles valid, {bad} rejected in {} files",
                config.file.display(),
                files.len()
            );
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Export { dir } => {
            let store = bantin::store::backend::open(&config.database_url).await?;
            let app = App::new(
                Arc::new(config),
                store,
                Outbox::disabled(),
                Arc::new(Metrics::new()),
            );
            let n = bantin::export::export(&app, &dir).await?;
            println!("wrote {n} feeds under {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sources { json } => {
            let store = bantin::store::backend::open(&config.database_url).await?;
            let states = store.source_states().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&bantin::sources::status(&config, &states))?
                );
            } else if config.sources.is_empty() {
                println!("no [[sources]] in {}", config.file.display());
            } else {
                print!("{}", bantin::sources::status_table(&config, &states));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Subscriptions { json } => {
            let store = bantin::store::backend::open(&config.database_url).await?;
            let subs = store.subscriptions(chrono::Utc::now()).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&bantin::hub::listing::status(&config, &subs))?
                );
            } else {
                print!("{}", bantin::hub::listing::table(&config, &subs));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck | Command::PartnerKey { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// Raises the soft limit on open files to the hard limit: every poller holds a connection and
/// every large cached feed a memfd, and the default soft limit (often 1024) is far below what a
/// busy instance needs.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain libc calls on a valid struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// A plain HTTP/1.0 GET of /healthz on the configured listen address; no runtime, no TLS.
fn healthcheck(config_path: &std::path::Path) -> ExitCode {
    let listen = bantin::config::env::listen_override()
        .or_else(|| Config::load(config_path).ok().map(|c| c.listen.to_string()));
    let listen = listen.unwrap_or_else(|| bantin::config::DEFAULT_LISTEN.into());
    let addr = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let result = (|| -> std::io::Result<bool> {
        let sock: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(2))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("unhealthy: {addr}/healthz did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
