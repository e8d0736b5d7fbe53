//! `warden bench`: tools/call throughput, latency and CPU cost through the gateway against the
//! same server directly, in one run, so that the ratios are comparable on a noisy machine.
//!
//! The upstream is the demo server and the gateway is `warden serve` (HTTP) or `warden run`
//! (stdio), each a separate process started from this binary; the load generator runs here at a
//! fixed concurrency. Direct and gateway rounds alternate, and the report gives the median of the
//! rounds, including the CPU time each process spent per call (from /proc).

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

/// Options of `warden bench`.
/// The gateway under test authorizes every call, as a deployment does: the demo server's tools for
/// everyone, with tenant binding beside.
const BENCH_POLICIES: &str = r#"@id("demo") permit (principal, action == Action::"call_tool", resource in Server::"demo");
@id("tenant-binding") forbid (principal, action, resource)
when { context.args.hasTag("tenant_id") && !(principal has tenant && context.args.getTag("tenant_id") == principal.tenant) };
"#;

const BENCH_POLICY_CONFIG: &str = "trusted = true\n\n[policy]\nfiles = [\"bench.cedar\"]\n";

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds per target (direct and gateway alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Protocol era of the client: legacy (sessions) or modern (stateless).
    #[arg(long, default_value = "legacy")]
    era: String,
    /// Transport between client, gateway and server: http (`warden serve`) or stdio (`warden run`).
    #[arg(long, default_value = "http")]
    transport: String,
    /// Size of the echoed text, in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Time the upstream tool takes, in milliseconds (0: the `echo` tool, no work at all).
    #[arg(long, default_value_t = 0)]
    tool_ms: u64,
    /// Audit durability of the gateway: batched or sync (the audit log is always on).
    #[arg(long, default_value = "batched")]
    audit: String,
    /// Charge every call against a rate limit (one too large to refuse anything), so that the
    /// limit's cost is measured.
    #[arg(long)]
    rate_limit: bool,
    /// Keep the gateway's limits and taint in this Redis (`[state] redis`), shared as between
    /// gateways: with `--rate-limit`, each call is one Redis round trip.
    #[arg(long, value_name = "URL")]
    state_redis: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The `warden` binary whose gateway is measured (default: this one). The server, the client
    /// and the measurement stay this binary's, so two builds compare on equal terms.
    #[arg(long, value_name = "PATH")]
    gateway: Option<std::path::PathBuf>,
}

/// The `[limits]` and `[state]` of `--rate-limit` and `--state-redis` (with the approvals key
/// gateways sharing state must share, written to `dir`).
fn state_config(args: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<String> {
    let mut s = String::new();
    if args.rate_limit {
        s.push_str("\n[limits]\nper_principal = { rate = \"1000000/s\", burst = 1000000 }\n");
    }
    if let Some(url) = &args.state_redis {
        std::fs::write(
            dir.join("bench-state.key"),
            rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        )?;
        s.push_str(&format!(
            "\n[state]\nredis = {url:?}\n\n[approvals]\nstate_key = {{ file = \"bench-state.key\" }}\n"
        ));
    }
    Ok(s)
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listened on port {port}")
}

/// CPU time (user + system) a process has used, in microseconds.
fn cpu_us(pid: u32) -> f64 {
    if pid == 0 {
        return 0.0;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) * 1_000_000.0 / 100.0
}

/// The child processes of `pid` (the servers a `warden run` started: one per protocol lane in
/// use), found by scanning /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|candidate| {
            let stat = std::fs::read_to_string(format!("/proc/{candidate}/stat")).unwrap_or_default();
            let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
            ppid == Some(pid)
        })
        .collect()
}

/// One target's measurements.
#[derive(Debug, Clone)]
struct Round {
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    /// CPU microseconds per call spent by the upstream, the gateway and this load generator.
    cpu_us: [f64; 3],
}

impl Round {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// A stdio MCP peer driven with pipelined requests.
struct StdioPeer {
    stdin: tokio::sync::Mutex<ChildStdin>,
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
}

impl StdioPeer {
    fn start(child: &mut Child) -> anyhow::Result<Arc<StdioPeer>> {
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let w = waiting.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                let waiter = v
                    .get("id")
                    .and_then(Value::as_u64)
                    .and_then(|id| w.lock().unwrap_or_else(|p| p.into_inner()).remove(&id));
                if let Some(tx) = waiter {
                    let _ = tx.send(v);
                }
            }
        });
        Ok(Arc::new(StdioPeer { stdin: tokio::sync::Mutex::new(stdin), waiting }))
    }

    async fn send(&self, msg: &Value) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.stdin.lock().await.write_all(&line).await?;
        Ok(())
    }

    async fn request(&self, id: u64, msg: Value) -> anyhow::Result<Value> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        self.send(&msg).await?;
        Ok(tokio::time::timeout(Duration::from_secs(30), rx).await??)
    }
}

enum Transport {
    Http { client: reqwest::Client, url: String, session: Option<String> },
    Stdio(Arc<StdioPeer>),
}

struct Target {
    transport: Transport,
    tool: String,
    modern: bool,
    arguments: Value,
    /// The upstream's processes and the gateway's process (0 when there is none).
    upstream_pids: Vec<u32>,
    gateway_pid: u32,
    next_id: AtomicU64,
}

fn initialize_msg() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden-bench","version":"1"}}})
}

impl Target {
    async fn new(
        transport: Transport,
        prefix: &str,
        modern: bool,
        args: &BenchArgs,
        upstream_pids: Vec<u32>,
        gateway_pid: u32,
    ) -> anyhow::Result<Target> {
        let (tool, arguments) = if args.tool_ms == 0 {
            ("echo", json!({ "text": "x".repeat(args.payload) }))
        } else {
            ("slow_count", json!({ "steps": 1, "delay_ms": args.tool_ms }))
        };
        let mut t = Target {
            transport,
            tool: format!("{prefix}{tool}"),
            modern,
            arguments,
            upstream_pids,
            gateway_pid,
            next_id: AtomicU64::new(1),
        };
        if !modern {
            let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
            match &mut t.transport {
                Transport::Http { client, url, session } => {
                    let r = client
                        .post(url.as_str())
                        .header("accept", "application/json, text/event-stream")
                        .json(&initialize_msg())
                        .send()
                        .await?;
                    let sid = r
                        .headers()
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                        .context("no session id")?;
                    r.bytes().await?;
                    client
                        .post(url.as_str())
                        .header("mcp-session-id", &sid)
                        .header("mcp-protocol-version", "2025-11-25")
                        .json(&note)
                        .send()
                        .await?
                        .bytes()
                        .await?;
                    *session = Some(sid);
                }
                Transport::Stdio(peer) => {
                    peer.request(0, initialize_msg()).await?;
                    peer.send(&note).await?;
                }
            }
        }
        Ok(t)
    }

    async fn call(&self) -> anyhow::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut params = json!({ "name": self.tool, "arguments": self.arguments });
        if self.modern {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name":"warden-bench","version":"1"}
            });
        }
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
        let answer: Value = match &self.transport {
            Transport::Http { client, url, session } => {
                let mut req = client.post(url.as_str()).header("accept", "application/json, text/event-stream");
                if self.modern {
                    req = req
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", "tools/call")
                        .header("mcp-name", &self.tool);
                } else if let Some(s) = session {
                    req = req.header("mcp-session-id", s).header("mcp-protocol-version", "2025-11-25");
                }
                let resp = req.json(&body).send().await?;
                if !resp.status().is_success() {
                    bail!("HTTP {}", resp.status());
                }
                serde_json::from_slice(&resp.bytes().await?)?
            }
            Transport::Stdio(peer) => peer.request(id, body).await?,
        };
        if answer.get("result").is_none() {
            bail!("error answer: {answer}");
        }
        Ok(())
    }
}

async fn measure(t: Arc<Target>, args: &BenchArgs) -> anyhow::Result<Round> {
    for _ in 0..200 {
        t.call().await?;
    }
    let cpu_now = |t: &Target| {
        [t.upstream_pids.iter().map(|p| cpu_us(*p)).sum::<f64>(), cpu_us(t.gateway_pid), cpu_us(std::process::id())]
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_now(&t);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (t, stop) = (t.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                match t.call().await {
                    Ok(()) => {
                        let _ = h.record(t0.elapsed().as_micros() as u64);
                    }
                    Err(_) => errors += 1,
                }
            }
            (h, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for w in workers {
        let (h, e) = w.await?;
        all.add(h)?;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = all.len().max(1) as f64;
    let cpu_after = cpu_now(&t);
    let cpu_us = [0, 1, 2].map(|i| ((cpu_after[i] - cpu_before[i]) / calls * 10.0).round() / 10.0);
    Ok(Round {
        requests: all.len(),
        errors,
        seconds,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
        cpu_us,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Starts the direct and gateway targets for the chosen transport, keeping their processes.
async fn targets(
    args: &BenchArgs,
    modern: bool,
    dir: &std::path::Path,
) -> anyhow::Result<(Target, Target, Vec<Process>)> {
    let exe = std::env::current_exe()?;
    let gateway_exe = args.gateway.clone().unwrap_or_else(|| exe.clone());
    let quiet = |c: &mut Command| {
        c.stderr(Stdio::null()).kill_on_drop(true);
    };
    match args.transport.as_str() {
        "http" => {
            let up_port = free_port()?;
            let mut up = Command::new(&exe);
            up.args(["demo-server", "--http", &format!("127.0.0.1:{up_port}")]).stdout(Stdio::null());
            quiet(&mut up);
            let upstream = Process(up.spawn()?);
            wait_listening(up_port).await?;
            let gw_port = free_port()?;
            let config = dir.join("bench.toml");
            std::fs::write(
                &config,
                format!(
                    "[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\n\n[egress]\nallow = [\"127.0.0.1:{up_port}\"]\n\n[servers.demo]\nurl = \"http://127.0.0.1:{up_port}/mcp\"\n{BENCH_POLICY_CONFIG}\n[audit]\ndurability = {:?}\n{}",
                    args.audit,
                    state_config(args, dir)?
                ),
            )?;
            std::fs::write(dir.join("bench.cedar"), BENCH_POLICIES)?;
            let mut gw = Command::new(&gateway_exe);
            gw.args(["serve", "--config"]).arg(&config).env("WARDEN_LOG", "warn").stdout(Stdio::null());
            quiet(&mut gw);
            let gateway = Process(gw.spawn()?);
            wait_listening(gw_port).await?;
            let client =
                reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).tcp_nodelay(true).build()?;
            let (up_pid, gw_pid) = (upstream.0.id().unwrap_or(0), gateway.0.id().unwrap_or(0));
            let http = |port: u16| Transport::Http {
                client: client.clone(),
                url: format!("http://127.0.0.1:{port}/mcp"),
                session: None,
            };
            let direct = Target::new(http(up_port), "", modern, args, vec![up_pid], 0).await?;
            let through = Target::new(http(gw_port), "demo__", modern, args, vec![up_pid], gw_pid).await?;
            Ok((direct, through, vec![upstream, gateway]))
        }
        "stdio" => {
            let piped = |c: &mut Command| {
                c.stdin(Stdio::piped()).stdout(Stdio::piped());
            };
            let mut up = Command::new(&exe);
            up.arg("demo-server");
            piped(&mut up);
            quiet(&mut up);
            let mut upstream = Process(up.spawn()?);
            let direct_peer = StdioPeer::start(&mut upstream.0)?;
            let config = dir.join("bench.toml");
            std::fs::write(
                &config,
                format!(
                    "[servers.demo]\ncommand = {:?}\nargs = [\"demo-server\"]\n{BENCH_POLICY_CONFIG}\n[audit]\ndurability = {:?}\n{}",
                    exe.display().to_string(),
                    args.audit,
                    state_config(args, dir)?
                ),
            )?;
            std::fs::write(dir.join("bench.cedar"), BENCH_POLICIES)?;
            let mut gw = Command::new(&gateway_exe);
            gw.args(["run", "--config"]).arg(&config).env("WARDEN_LOG", "warn");
            piped(&mut gw);
            quiet(&mut gw);
            let mut gateway = Process(gw.spawn()?);
            let gw_peer = StdioPeer::start(&mut gateway.0)?;
            let up_pid = upstream.0.id().unwrap_or(0);
            let gw_pid = gateway.0.id().unwrap_or(0);
            let direct = Target::new(Transport::Stdio(direct_peer), "", modern, args, vec![up_pid], 0).await?;
            let mut through = Target::new(Transport::Stdio(gw_peer), "demo__", modern, args, vec![], gw_pid).await?;
            // The gateway's demo servers are its children, started by now.
            through.call().await?;
            through.upstream_pids = children_of(gw_pid);
            Ok((direct, through, vec![upstream, gateway]))
        }
        other => bail!("--transport must be http or stdio, not {other:?}"),
    }
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let modern = match args.era.as_str() {
        "legacy" => false,
        "modern" => true,
        other => bail!("--era must be legacy or modern, not {other:?}"),
    };
    let dir = std::env::temp_dir().join(format!("warden-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (direct, through, _processes) = targets(&args, modern, &dir).await?;
    let (direct, through) = (Arc::new(direct), Arc::new(through));
    let (mut d_rounds, mut g_rounds) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        d_rounds.push(measure(direct.clone(), &args).await?);
        g_rounds.push(measure(through.clone(), &args).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let summarize = |rs: &[Round]| {
        json!({
            "throughput_rps": median(rs.iter().map(Round::throughput).collect()).round(),
            "p50_us": median(rs.iter().map(|r| r.p50_us as f64).collect()),
            "p99_us": median(rs.iter().map(|r| r.p99_us as f64).collect()),
            "errors": rs.iter().map(|r| r.errors).sum::<u64>(),
            "cpu_us_per_call": {
                "upstream": median(rs.iter().map(|r| r.cpu_us[0]).collect()),
                "gateway": median(rs.iter().map(|r| r.cpu_us[1]).collect()),
                "load_generator": median(rs.iter().map(|r| r.cpu_us[2]).collect()),
            },
        })
    };
    let (d, g) = (summarize(&d_rounds), summarize(&g_rounds));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let report = json!({
        "era": args.era,
        "transport": args.transport,
        "concurrency": args.concurrency,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "payload_bytes": args.payload,
        "tool_ms": args.tool_ms,
        "direct": d,
        "gateway": g,
        "throughput_ratio": (f(&g, "throughput_rps") / f(&d, "throughput_rps") * 1000.0).round() / 1000.0,
        "added_p50_us": f(&g, "p50_us") - f(&d, "p50_us"),
        "added_p99_us": f(&g, "p99_us") - f(&d, "p99_us"),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let work = if args.tool_ms == 0 {
        format!("echo of {} bytes", args.payload)
    } else {
        format!("a tool taking {} ms", args.tool_ms)
    };
    println!(
        "tools/call ({work}) over {}, {} era, concurrency {}, {} x {}s rounds",
        args.transport, args.era, args.concurrency, args.rounds, args.seconds
    );
    println!("{:<10} {:>12} {:>10} {:>10}", "", "req/s", "p50 µs", "p99 µs");
    for (name, v) in [("direct", &d), ("gateway", &g)] {
        println!("{:<10} {:>12} {:>10} {:>10}", name, f(v, "throughput_rps"), f(v, "p50_us"), f(v, "p99_us"));
    }
    let cpu = |v: &Value, k: &str| v["cpu_us_per_call"][k].as_f64().unwrap_or(0.0);
    println!(
        "CPU per call (µs): upstream {} direct / {} via gateway; gateway {}; load generator {} / {}",
        cpu(&d, "upstream"),
        cpu(&g, "upstream"),
        cpu(&g, "gateway"),
        cpu(&d, "load_generator"),
        cpu(&g, "load_generator")
    );
    println!(
        "throughput through the gateway: {:.1}% of direct; added latency p50 {} µs, p99 {} µs",
        f(&report, "throughput_ratio") * 100.0,
        f(&report, "added_p50_us"),
        f(&report, "added_p99_us")
    );
    let errors = f(&d, "errors") + f(&g, "errors");
    if errors > 0.0 {
        println!("errors: {errors}");
    }
    Ok(())
}
