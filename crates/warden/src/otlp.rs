//! The trace exporter's HTTP client, under the egress guard like every connection Warden makes:
//! redirects are not followed, proxies from the environment are ignored, and the collector's name
//! is resolved by the guard, whose checked addresses are the only ones connected to.

use std::sync::Arc;
use std::time::Duration;
use warden_upstream::egress::{Policy, Refused};

/// A blocking client (the exporter sends from its own thread) for `endpoint` only.
pub fn client(endpoint: &str, policy: &Policy) -> anyhow::Result<reqwest012::blocking::Client> {
    let url = policy
        .check_url(endpoint)
        .map_err(|why| anyhow::anyhow!("telemetry.otlp_endpoint is refused by the egress guard: {why}"))?;
    let resolver = Resolver {
        policy: policy.clone(),
        port: url.port_or_known_default().unwrap_or(443),
        http: url.scheme() == "http",
    };
    let build = move || {
        reqwest012::blocking::Client::builder()
            .redirect(reqwest012::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .dns_resolver(Arc::new(resolver))
            .build()
    };
    // A blocking client runs a runtime of its own, which must not be made inside Warden's.
    std::thread::spawn(build)
        .join()
        .map_err(|_| anyhow::anyhow!("the trace exporter's HTTP client could not be built"))?
        .map_err(|e| anyhow::anyhow!("the trace exporter's HTTP client: {e}"))
}

struct Resolver {
    policy: Policy,
    port: u16,
    http: bool,
}

impl reqwest012::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest012::dns::Name) -> reqwest012::dns::Resolving {
        let (policy, port, http) = (self.policy.clone(), self.port, self.http);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host, port, http).await.map_err(|why| {
                tracing::error!(%host, "egress: the trace exporter's connection is refused: {why}");
                Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>
            })?;
            Ok(Box::new(addrs.into_iter()) as reqwest012::dns::Addrs)
        })
    }
}
