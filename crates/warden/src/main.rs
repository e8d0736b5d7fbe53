//! `warden`: the command line of the Warden MCP gateway.

mod approvals_cli;
mod audit_cli;
mod bench;
mod demo;
mod import_cli;
mod otlp;
mod pins_cli;
mod policy_test;
mod quarantine_cli;
mod report;
mod scan;
mod tools_cli;

// The request path allocates many small JSON trees; mimalloc keeps that cheap and free of
// contention between worker threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_gateway::Gateway;
use warden_gateway::config::Config;
use warden_gateway::front::listener::{self, HttpLimits};
use warden_gateway::front::{guard::OriginGuard, http, stdio};
use warden_gateway::import::ImportOptions;

/// Warden: a security gateway for the Model Context Protocol.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file, in any position on the command line (default: $WARDEN_CONFIG, else
    /// ./warden.toml).
    #[arg(long, short, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over Streamable HTTP.
    Serve,
    /// Serve one MCP client on stdin/stdout (configure Warden as the server command of a desktop client).
    Run,
    /// Validate a configuration file without starting anything.
    Check {
        /// Fail (exit 1) when a server's command is flagged (a shell running a command string,
        /// a chain to a network tool, a credential file, an unpinned package).
        #[arg(long)]
        strict: bool,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Convert an `mcpServers` JSON file (as MCP clients use) to `[servers]` TOML: credentials
    /// moved to environment variables, packages pinned where installed, dangerous commands and
    /// URLs refused unless accepted.
    Import {
        /// The JSON file.
        file: PathBuf,
        /// Import this server even though its command or URL is flagged high or critical
        /// (repeatable; the name as in the JSON file).
        #[arg(long = "accept-risk", value_name = "NAME")]
        accept_risk: Vec<String>,
        /// Do not resolve URL host names to check their addresses.
        #[arg(long)]
        no_resolve: bool,
        /// Start each imported server (sandboxed, as Warden would) and show its tools'
        /// annotations and proposed classes.
        #[arg(long)]
        connect: bool,
        /// With --connect: write the proposed classes into the TOML, each bound to its definition.
        #[arg(long, requires = "connect")]
        adopt: bool,
        /// With --connect: how long each server may take to start and list, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Tools of configured servers: review their annotations and adopt the classes they propose.
    Tools {
        #[command(subcommand)]
        command: tools_cli::ToolsCommand,
    },
    /// Run the bundled demo MCP server.
    DemoServer {
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<String>,
        /// List tools in pages of this many (0: one page), to exercise cursors.
        #[arg(long, default_value_t = 0)]
        page_size: usize,
    },
    /// Measure the gateway's overhead on tools/call against a direct connection.
    Bench(bench::BenchArgs),
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// API keys for service accounts.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// The audit log: verify its chain, query, follow and export it.
    Audit {
        /// The audit log's URL instead (`sqlite:///path/audit.db`, `postgres://…`).
        #[arg(long)]
        database: Option<String>,
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Pinned tool definitions: list them, review what is held (`diff`), accept it.
    Pins {
        #[command(subcommand)]
        command: pins_cli::PinsCommand,
    },
    /// Results withheld for instructing the model: list them, show one, release or discard it.
    Quarantine {
        #[command(subcommand)]
        command: quarantine_cli::QuarantineCommand,
    },
    /// Calls waiting for a human's approval: list them, show one, approve or deny it.
    Approvals {
        #[command(subcommand)]
        command: approvals_cli::ApprovalsCommand,
    },
    /// Contain a server: unlisted and uncallable, its connections stopped, its approvals revoked,
    /// and every write or irreversible call anywhere needing an operator's approval until released.
    Contain {
        /// The server's configured name.
        server: String,
        /// Why, for the record.
        #[arg(long, default_value = "contained by an operator")]
        reason: String,
        /// Who contains it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// The credentials Warden obtains per caller for servers.
    Credentials {
        #[command(subcommand)]
        command: approvals_cli::CredentialsCommand,
    },
    /// Release a contained server.
    Release {
        /// The server's configured name.
        server: String,
        /// Who releases it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Write the security review of this deployment (architecture, tool inventory with who may
    /// call what, token scopes, local servers, blast radius and a plan to reduce it) as one HTML
    /// file, and optionally Markdown, from the configuration, its policies and the audit log.
    Report(report::ReportArgs),
    /// Inventory the MCP servers this machine's clients are configured with, and what is wrong
    /// with them (servers not behind Warden, dangerous commands, plaintext secrets, poisoned
    /// tools with --connect); exits 1 on findings at or above --fail-on, 2 on usage errors.
    Scan(scan::ScanArgs),
    /// Evaluate the detection gates against the audit log; exits 1 if any trips.
    Gates {
        /// The audit log's URL instead.
        #[arg(long)]
        database: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Decide the cases in FILE against the policies of a configuration; fails if any case does
    /// not get its expected verdict.
    Test {
        /// A TOML file of cases (see docs/policy.md).
        file: PathBuf,
    },
    /// Print the Cedar schema policies are validated against.
    Schema,
    /// Print the Cedar a rule file (`version: v1`, YAML) compiles to, after validating it as
    /// Warden would at start-up.
    Explain {
        /// The rule file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Make a new random API key; prints the key (give it to the service) and the lines to put in
    /// warden.toml (only the hash is kept there).
    New {
        /// The service account's name (the principal's subject).
        name: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the JSON Schema of the configuration file.
    Schema,
}

fn init_logging() {
    let _ = init_tracing(None);
}

/// Logs to stderr (on `warden run`, stdout carries the protocol) and, when `[telemetry]` names
/// an OTLP endpoint, request spans to it. The tracer provider returned must be shut down to
/// flush the last spans.
fn init_tracing(config: Option<&Config>) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(fmt);
    let Some((t, config)) = config.map(|c| (&c.telemetry, c)).filter(|(t, _)| t.otlp_endpoint.is_some()) else {
        registry.init();
        return Ok(None);
    };
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let endpoint = format!("{}/v1/traces", t.otlp_endpoint.as_deref().unwrap_or_default().trim_end_matches('/'));
    let policy = config.egress.policy().map_err(|e| anyhow::anyhow!("egress.allow: {e}"))?;
    let client = otlp::client(t.otlp_endpoint.as_deref().unwrap_or_default(), &policy)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
        .with_endpoint(endpoint)
        .build()
        .context("the OTLP exporter")?;
    let name = t.service_name.clone().unwrap_or_else(|| "warden".to_owned());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(name).build())
        .build();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("warden"))
        .with_filter(tracing_subscriber::filter::Targets::new().with_target("warden::request", tracing::Level::INFO));
    registry.with(spans).init();
    warden_gateway::telemetry::enable();
    Ok(Some(provider))
}

/// Flushes the spans not yet exported.
fn finish_tracing(provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>) {
    if let Some(p) = provider
        && let Err(e) = p.shutdown()
    {
        tracing::warn!("the last spans may not have been exported: {e}");
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        anyhow::bail!(
            "no configuration at {}: give --config FILE, set WARDEN_CONFIG, or run where warden.toml is \
             (`warden import` writes one from an MCP client's configuration)",
            path.display()
        );
    }
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `--config` in any position, else $WARDEN_CONFIG (clap reads both), else ./warden.toml.
    let given = cli.config.clone();
    let config = given.clone().unwrap_or_else(|| PathBuf::from("warden.toml"));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Check { strict } => {
            let c = load(&config)?;
            let authorizer = warden_gateway::guard::authorize::Authorizer::from_config(&c)
                .map_err(|e| anyhow::anyhow!("policies:\n{e}"))?;
            warden_gateway::authenticate::Authenticator::from_config(&c).map_err(|e| anyhow::anyhow!("auth: {e}"))?;
            let engine = authorizer.engine();
            for w in &engine.warnings {
                println!("warning: {w}");
            }
            if engine.is_empty() {
                println!("warning: no policies are configured ([policy] files): every call will be denied");
            }
            let mut flagged = 0;
            let paths = warden_gateway::servers::ServerPaths::of(&c);
            for (name, s) in &c.servers {
                if let Some(problem) = warden_gateway::servers::sandbox_problem(s, &paths) {
                    anyhow::bail!("server {name}: {problem}");
                }
                let Some(r) = warden_gateway::servers::LaunchReview::of(s) else { continue };
                println!("server {name}:\n  command: {}\n  sandbox: {}", r.command_line, r.sandbox);
                if !r.env_names.is_empty() {
                    println!("  environment: {}", r.env_names.join(", "));
                }
                for f in &r.flags {
                    println!("  FLAGGED: {f}");
                    flagged += 1;
                }
            }
            if strict && flagged > 0 {
                anyhow::bail!("{flagged} flagged in server commands (--strict)");
            }
            println!(
                "{}: ok ({} servers, {} tool settings, {} policies)",
                config.display(),
                c.servers.len(),
                c.tools.len(),
                engine.len()
            );
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Explain { file } } => {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let cedar = warden_policy::rules_file::compile(&text, &name)
                .map_err(|e| anyhow::anyhow!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message))?;
            // Validated against the schema as at start-up.
            warden_gateway::guard::authorize::load_policies(std::slice::from_ref(&file))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{cedar}");
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Schema } => {
            print!("{}", warden_policy::SCHEMA_TEXT);
            Ok(())
        }
        Command::Policy { command: PolicyCommand::Test { file } } => {
            let failed = runtime.block_on(policy_test::run(&file, given.as_deref()))?;
            if failed > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Apikey { command: ApikeyCommand::New { name } } => {
            let (key, hash) = warden_gateway::authenticate::new_api_key();
            eprintln!("API key for {name} (shown once; Warden keeps only its hash):");
            println!("{key}");
            eprintln!(
                "\nAdd to warden.toml:\n\n[auth.api_keys.{name}]\nhash = \"{hash}\"\nclass = \"service\"\n\n\
                 # Or, for an operator (the console and the operator API only, never tools), instead:\n\
                 # [admin.api_keys.{name}]\n# hash = \"{hash}\""
            );
            Ok(())
        }
        Command::Audit { command: audit_cli::AuditCommand::PublicKey, .. } => {
            let c = load(&config)?;
            let key = c.audit.signing_key.as_ref().context("the configuration sets no audit.signing_key")?;
            let public = warden_store::public_key_of(&c.resolve(key)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{public}");
            Ok(())
        }
        Command::Audit { database, command } => {
            let (url, own_key) = audit_cli::database(&config, database)?;
            let status = runtime.block_on(audit_cli::run(&url, command, own_key))?;
            std::process::exit(status);
        }
        Command::Pins { command } => {
            let c = load(&config)?;
            let url = warden_gateway::guard::audit::audit_url(&c).map_err(|e| anyhow::anyhow!("{e}"))?;
            let servers: Vec<String> = c.servers.keys().cloned().collect();
            let shared = warden_gateway::state::SharedState::from_config(&c.state).ok().flatten();
            let status = runtime.block_on(pins_cli::run(&url, &servers, command, shared))?;
            std::process::exit(status);
        }
        Command::Quarantine { command } => {
            let c = load(&config)?;
            let status = runtime.block_on(quarantine_cli::run(&c, command))?;
            std::process::exit(status);
        }
        Command::Approvals { command } => {
            let c = load(&config)?;
            let status = runtime.block_on(approvals_cli::run(&c, command))?;
            std::process::exit(status);
        }
        Command::Contain { server, reason, by } => {
            let c = load(&config)?;
            let status = runtime.block_on(approvals_cli::contain(&c, &server, &reason, by))?;
            std::process::exit(status);
        }
        Command::Credentials { command } => {
            let c = load(&config)?;
            let status = runtime.block_on(approvals_cli::credentials(&c, command))?;
            std::process::exit(status);
        }
        Command::Release { server, by } => {
            let c = load(&config)?;
            let status = runtime.block_on(approvals_cli::release(&c, &server, by))?;
            std::process::exit(status);
        }
        Command::Scan(args) => {
            let status = runtime.block_on(scan::run(args, given.as_deref()))?;
            std::process::exit(status);
        }
        Command::Gates { database } => {
            let c = load(&config)?;
            let url = match database {
                Some(d) => d,
                None => warden_gateway::guard::audit::audit_url(&c).map_err(|e| anyhow::anyhow!("{e}"))?,
            };
            let status = runtime.block_on(audit_cli::gates(&c, &url))?;
            std::process::exit(status);
        }
        Command::Report(args) => {
            let c = load(&config)?;
            runtime.block_on(report::run(&config, &c, args))
        }
        Command::Config { command: ConfigCommand::Schema } => {
            println!("{}", serde_json::to_string_pretty(&Config::json_schema())?);
            Ok(())
        }
        Command::Import { file, accept_risk, no_resolve, connect, adopt, timeout } => {
            let options = ImportOptions {
                caches: warden_gateway::config::Caches::of_this_user(),
                accept_risk,
                resolve: !no_resolve,
            };
            runtime.block_on(import_cli::run(&file, &options, connect.then_some((adopt, timeout))))
        }
        Command::Tools { command } => {
            let c = load(&config)?;
            let status = runtime.block_on(tools_cli::run(&config, &c, command))?;
            std::process::exit(status);
        }
        Command::Serve => {
            let c = load(&config)?;
            let spans = runtime.block_on(async { init_tracing(Some(&c)) })?;
            let served = runtime.block_on(serve(c));
            finish_tracing(spans);
            served
        }
        Command::Run => {
            let c = load(&config)?;
            let spans = runtime.block_on(async { init_tracing(Some(&c)) })?;
            if c.audit.jsonl.as_deref() == Some("-") {
                anyhow::bail!(
                    "audit.jsonl = \"-\" would write audit rows into the protocol stream of `warden run`: name a file"
                );
            }
            let served = runtime.block_on(async move {
                let gw = start_gateway(&c).await?;
                // SIGTERM ends the session as end of input does: the audit log is drained either way.
                let served = tokio::select! {
                    r = stdio::serve(gw.clone(), tokio::io::stdin(), tokio::io::stdout()) => r.map_err(anyhow::Error::from),
                    () = shutdown_signal() => Ok(()),
                };
                gw.shutdown().await;
                served
            });
            finish_tracing(spans);
            served
        }
        Command::DemoServer { http: None, page_size } => runtime.block_on(demo::stdio::serve(page_size)),
        Command::DemoServer { http: Some(addr), page_size } => {
            init_logging();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
                eprintln!("demo server listening on http://{}/mcp", listener.local_addr()?);
                let limits = HttpLimits::of(&Default::default());
                let app = demo::http::router(page_size);
                listener::serve(listener, app, limits, shutdown_signal(), Duration::from_secs(1)).await?;
                Ok(())
            })
        }
        Command::Bench(args) => {
            let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
            runtime.block_on(bench::run(args))
        }
    }
}

/// Opens the audit log (and the notification webhooks), builds the gateway and starts its
/// background work, the admin listener and the gate loop.
async fn start_gateway(config: &Config) -> anyhow::Result<std::sync::Arc<Gateway>> {
    let metrics = std::sync::Arc::new(warden_gateway::metrics::Metrics::new());
    let auditor = std::sync::Arc::new(
        warden_gateway::guard::audit::open(config, metrics).await.map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let url = warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pins = warden_store::pins::PinStore::open(&url).await.map_err(|e| anyhow::anyhow!("the pin store: {e}"))?;
    let integrity =
        warden_gateway::guard::integrity::Integrity::new(config, std::sync::Arc::new(pins), auditor.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let held = warden_store::QuarantineStore::open(&url).await.map_err(|e| anyhow::anyhow!("the quarantine: {e}"))?;
    let quarantine =
        warden_gateway::guard::quarantine::Quarantine::new(config, std::sync::Arc::new(held), auditor.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let approval_store =
        warden_store::ApprovalStore::open(&url).await.map_err(|e| anyhow::anyhow!("the approval store: {e}"))?;
    let approvals = warden_gateway::guard::approve::Approvals::new(
        config,
        std::sync::Arc::new(approval_store),
        auditor.clone(),
        std::sync::Arc::new(warden_gateway::clock::SystemClock),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let contained =
        warden_store::ContainmentStore::open(&url).await.map_err(|e| anyhow::anyhow!("the containment store: {e}"))?;
    let gw = Gateway::from_config(
        config,
        warden_gateway::gateway::Parts {
            auditor,
            integrity: std::sync::Arc::new(integrity),
            quarantine: std::sync::Arc::new(quarantine),
            approvals: std::sync::Arc::new(approvals),
            containment: warden_gateway::guard::contain::Containment::new(std::sync::Arc::new(contained)),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Contained servers stay contained across a restart: applied before anything connects.
    gw.sync_containment().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if gw.credentials.has_oauth() {
        let grants = warden_store::UpstreamTokenStore::open(&url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        gw.credentials.attach_store(std::sync::Arc::new(grants));
    }
    if config.output.server_errors == warden_gateway::config::ServerErrors::Keep {
        let kept = warden_store::ServerErrorStore::open(&url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = gw.kept_errors.set(kept);
    }
    if gw.authorizer.engine().is_empty() {
        tracing::warn!("no policies are configured ([policy] files): every call will be denied");
    }
    gw.start();
    if let Some(addr) = &config.admin.listen {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!("admin listener (metrics, operator API) on http://{bound}");
        let mut app = warden_gateway::front::admin::router(gw.clone());
        let gates = warden_gateway::gates::gates_of(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(console) = warden_gateway::front::console::Console::open(config, gw.clone(), bound, gates)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            tracing::info!("operator console on {}/console/", console.origin());
            app = app.merge(warden_gateway::front::console::router(console));
        }
        let limits = HttpLimits::of(&config.gateway);
        tokio::spawn(listener::serve(listener, app, limits, std::future::pending(), Duration::ZERO));
    }
    warden_gateway::gates::start(config, gw.auditor.notifier().cloned()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(gw)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr();
    let gw = start_gateway(&config).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    // The bound address, not the configured one: with port 0 the system chooses the port, and the
    // Host and Origin checks must name it.
    let bound = listener.local_addr()?;
    let guard = OriginGuard::new(bound, &config.gateway.allowed_hosts, &config.gateway.allowed_origins);
    let app = http::router(gw.clone(), &config.gateway.path, guard);
    tracing::info!("Warden listening on http://{bound}{}", config.gateway.path);
    let limits = HttpLimits::of(&config.gateway);
    // Open streams are given a moment to finish; calls in flight are drained by the gateway.
    let served = listener::serve(listener, app, limits, shutdown_signal(), Duration::from_secs(3)).await;
    tracing::info!("shutting down");
    gw.shutdown().await;
    Ok(served?)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
