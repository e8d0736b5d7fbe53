//! A slot: the connections serving one audience of one server, one lane per protocol era, and
//! what has been learned about which eras the server speaks.

use super::{Lane, ServerInfo};
use crate::config::ProtocolChoice;
use crate::hub::{Audience, Hub};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_protocol::{Era, RpcError};
use warden_upstream::{Connection, UpstreamError};

/// The connections serving one audience of one server.
pub struct Slot {
    /// The server.
    pub info: Arc<ServerInfo>,
    /// Who the slot serves.
    pub audience: Audience,
    lanes: [Arc<Lane>; 2],
    support: Mutex<[Support; 2]>,
    last_used: Mutex<Instant>,
}

/// What a slot has learned about one era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    Unknown,
    Yes,
    /// Refused at this time; tried again after [`ERA_REFUSAL_MEMORY`], in case the refusal came
    /// from a server that was still starting.
    No(Instant),
}

/// How long an era the server refused is not tried again.
const ERA_REFUSAL_MEMORY: Duration = Duration::from_secs(300);

fn era_index(era: Era) -> usize {
    match era {
        Era::Legacy => 0,
        Era::Modern => 1,
    }
}

impl Slot {
    /// The slot of `audience`; its connections present `caller`'s credential when the server's
    /// is obtained per caller (without a caller they present none, and requests are refused).
    pub(crate) fn new(
        info: Arc<ServerInfo>,
        audience: Audience,
        hub: Arc<Hub>,
        caller: Option<Arc<warden_policy::Principal>>,
    ) -> Arc<Slot> {
        let provider = info.credentials.as_ref().and_then(|c| c.provider(&info.name, caller));
        let lanes = [Era::Legacy, Era::Modern]
            .map(|era| Lane::new(info.clone(), audience.clone(), era, hub.clone(), provider.clone()));
        Arc::new(Slot {
            info,
            audience,
            lanes,
            support: Mutex::new([Support::Unknown; 2]),
            last_used: Mutex::new(Instant::now()),
        })
    }

    pub(crate) fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(crate) fn idle(&self) -> Duration {
        self.last_used.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// The lane for a client of `era`, connected: the same era when the server speaks it, the
    /// other one otherwise.
    pub async fn lane(&self, era: Era) -> Result<(Arc<Lane>, Arc<Connection>, u64), RpcError> {
        let other = match era {
            Era::Legacy => Era::Modern,
            Era::Modern => Era::Legacy,
        };
        let order: &[Era] = match self.info.protocol {
            ProtocolChoice::Legacy => &[Era::Legacy],
            ProtocolChoice::Modern => &[Era::Modern],
            ProtocolChoice::Auto => &[era, other],
        };
        let mut refused = Vec::new();
        for &e in order {
            if matches!(self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)], Support::No(t) if t.elapsed() < ERA_REFUSAL_MEMORY)
            {
                refused.push(e);
                continue;
            }
            let lane = &self.lanes[era_index(e)];
            match lane.connection().await {
                Ok((conn, generation)) => {
                    self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)] = Support::Yes;
                    return Ok((lane.clone(), conn, generation));
                }
                Err(UpstreamError::EraUnsupported { .. }) => {
                    self.support.lock().unwrap_or_else(|p| p.into_inner())[era_index(e)] = Support::No(Instant::now());
                    refused.push(e);
                }
                Err(other) => return Err(other.to_rpc()),
            }
        }
        Err(RpcError::new(
            warden_protocol::error::UPSTREAM_UNAVAILABLE,
            format!("server '{}' speaks no protocol era Warden can use (refused: {refused:?})", self.info.name),
        ))
    }

    /// The lane that would serve `era` if it is already connected, without connecting.
    pub fn connected_lane(&self, era: Era) -> Option<(Arc<Lane>, Arc<Connection>)> {
        let support = *self.support.lock().unwrap_or_else(|p| p.into_inner());
        let pick = |e: Era| {
            let lane = &self.lanes[era_index(e)];
            lane.current().map(|c| (lane.clone(), c))
        };
        match support[era_index(era)] {
            Support::No(_) => None,
            _ => pick(era),
        }
        .or_else(|| pick(if era == Era::Legacy { Era::Modern } else { Era::Legacy }))
    }

    /// Both lanes.
    pub fn lanes(&self) -> &[Arc<Lane>; 2] {
        &self.lanes
    }

    /// Stops both lanes.
    pub async fn shutdown(&self) {
        for l in &self.lanes {
            l.shutdown().await;
        }
    }
}
