//! `warden bench`: tools/call throughput and latency through the gateway against the same server
//! directly, in one run, so that the ratios are comparable on a noisy machine.
//!
//! The upstream is the demo server over Streamable HTTP and the gateway is `warden serve`, each a
//! separate process started from this binary; the load generator runs here at a fixed
//! concurrency. Direct and gateway rounds alternate, and the report gives the median of the rounds.

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Options of `warden bench`.
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
    /// Size of the echoed text, in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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

/// One target's measurements.
#[derive(Debug, Clone)]
struct Round {
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Round {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

struct Target {
    url: String,
    tool: String,
    modern: bool,
    session: Option<String>,
}

async fn open(client: &reqwest::Client, url: &str, tool: &str, modern: bool) -> anyhow::Result<Target> {
    let mut t = Target { url: url.to_owned(), tool: tool.to_owned(), modern, session: None };
    if !modern {
        let body = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"warden-bench","version":"1"}}});
        let r = client.post(url).header("accept", "application/json, text/event-stream").json(&body).send().await?;
        let sid = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("no session id")?;
        r.bytes().await?;
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        client
            .post(url)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&note)
            .send()
            .await?
            .bytes()
            .await?;
        t.session = Some(sid);
    }
    Ok(t)
}

async fn call(client: &reqwest::Client, t: &Target, id: u64, text: &str) -> anyhow::Result<()> {
    let mut params = json!({ "name": t.tool, "arguments": { "text": text } });
    let mut req = client.post(&t.url).header("accept", "application/json, text/event-stream");
    if t.modern {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name":"warden-bench","version":"1"}
        });
        req = req
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", &t.tool);
    } else if let Some(s) = &t.session {
        req = req.header("mcp-session-id", s).header("mcp-protocol-version", "2025-11-25");
    }
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params });
    let resp = req.json(&body).send().await?;
    if !resp.status().is_success() {
        bail!("HTTP {}", resp.status());
    }
    let bytes = resp.bytes().await?;
    let v: Value = serde_json::from_slice(&bytes)?;
    if v.get("result").is_none() {
        bail!("error answer: {v}");
    }
    Ok(())
}

async fn measure(client: &reqwest::Client, t: Arc<Target>, args: &BenchArgs) -> anyhow::Result<Round> {
    let text = Arc::new("x".repeat(args.payload));
    // Warm up connections and caches.
    for i in 0..200 {
        call(client, &t, i, &text).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, t, text, stop) = (client.clone(), t.clone(), text.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            let mut errors = 0u64;
            let mut id = (w as u64) << 40;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let t0 = Instant::now();
                match call(&client, &t, id, &text).await {
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
    Ok(Round {
        requests: all.len(),
        errors,
        seconds,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let modern = match args.era.as_str() {
        "legacy" => false,
        "modern" => true,
        other => bail!("--era must be legacy or modern, not {other:?}"),
    };
    let exe = std::env::current_exe()?;
    let up_port = free_port()?;
    let _upstream = Process(
        Command::new(&exe)
            .args(["demo-server", "--http", &format!("127.0.0.1:{up_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?,
    );
    wait_listening(up_port).await?;
    let gw_port = free_port()?;
    let dir = std::env::temp_dir().join(format!("warden-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:{gw_port}\"\n\n[servers.demo]\nurl = \"http://127.0.0.1:{up_port}/mcp\"\n"
        ),
    )?;
    let _gateway = Process(
        Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            .env("WARDEN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?,
    );
    wait_listening(gw_port).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency * 2).tcp_nodelay(true).build()?;
    let direct = Arc::new(open(&client, &format!("http://127.0.0.1:{up_port}/mcp"), "echo", modern).await?);
    let gateway = Arc::new(open(&client, &format!("http://127.0.0.1:{gw_port}/mcp"), "demo__echo", modern).await?);
    let (mut d_rounds, mut g_rounds) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        d_rounds.push(measure(&client, direct.clone(), &args).await?);
        g_rounds.push(measure(&client, gateway.clone(), &args).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let summarize = |rs: &[Round]| {
        json!({
            "throughput_rps": median(rs.iter().map(Round::throughput).collect()).round(),
            "p50_us": median(rs.iter().map(|r| r.p50_us as f64).collect()),
            "p99_us": median(rs.iter().map(|r| r.p99_us as f64).collect()),
            "errors": rs.iter().map(|r| r.errors).sum::<u64>(),
        })
    };
    let (d, g) = (summarize(&d_rounds), summarize(&g_rounds));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let report = json!({
        "era": args.era,
        "concurrency": args.concurrency,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "payload_bytes": args.payload,
        "direct": d,
        "gateway": g,
        "throughput_ratio": (f(&g, "throughput_rps") / f(&d, "throughput_rps") * 1000.0).round() / 1000.0,
        "added_p50_us": f(&g, "p50_us") - f(&d, "p50_us"),
        "added_p99_us": f(&g, "p99_us") - f(&d, "p99_us"),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "tools/call, {} era, concurrency {}, {} x {}s rounds, {}-byte payload",
            args.era, args.concurrency, args.rounds, args.seconds, args.payload
        );
        println!("{:<10} {:>12} {:>10} {:>10}", "", "req/s", "p50 µs", "p99 µs");
        for (name, v) in [("direct", &d), ("gateway", &g)] {
            println!("{:<10} {:>12} {:>10} {:>10}", name, f(v, "throughput_rps"), f(v, "p50_us"), f(v, "p99_us"));
        }
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
    }
    Ok(())
}
