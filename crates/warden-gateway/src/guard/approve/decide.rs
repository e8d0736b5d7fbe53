//! A person's decision on a pending approval (`warden approvals`, the admin API).

use super::Answer;
use crate::guard::audit::{ApprovalEvent, Auditor};
use std::time::Duration;
use warden_store::ApprovalStorage;
use warden_store::approvals::{Approval, Decided};

/// What a person's decision on an approval came to.
#[derive(Debug)]
pub enum Ruling {
    /// Recorded: the approval as it is now.
    Done(Box<Approval>),
    /// Refused, with why (already decided, expired).
    Refused(String),
    /// No approval has that id.
    Unknown(String),
    /// The decider made the call: nobody decides on their own.
    OwnCall,
}

/// Who decides, and why.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    /// Their name, for the record.
    pub by: &'a str,
    /// Their principal identity when known (the admin API, the console): nobody decides on
    /// their own call.
    pub by_key: Option<&'a str>,
    /// What they said about it, if anything.
    pub reason: Option<&'a str>,
}

/// Records a person's approval or denial of a pending request, and audits it; a decision the
/// audit log cannot record is undone.
pub async fn decide(
    store: &dyn ApprovalStorage,
    auditor: &Auditor,
    id: &str,
    verdict: Answer,
    decider: Decider<'_>,
    use_within: Duration,
) -> Result<Ruling, String> {
    let Decider { by, by_key, reason } = decider;
    let Some(current) = store.get(id).await.map_err(|e| e.to_string())? else {
        return Ok(Ruling::Unknown(format!("no approval has the id {}", crate::names::shown(id))));
    };
    // The same person may hold other credentials than the one that made the call (another
    // client, the console's sign-in): an authenticated decider whose subject is the caller's
    // is refused too.
    if by_key.is_some_and(|k| k == current.principal_key || by == current.actor_id) {
        return Ok(Ruling::OwnCall);
    }
    let now = super::unix_ms(&crate::clock::SystemClock);
    let decided = store.decide(id, verdict, by, now, use_within.as_millis() as i64).await.map_err(|e| e.to_string())?;
    let approval = match decided {
        Decided::Done(a) => a,
        Decided::NotFound => {
            return Ok(Ruling::Unknown(format!("no approval has the id {}", crate::names::shown(id))));
        }
        Decided::AlreadyDecided(status) => return Ok(Ruling::Refused(format!("{id} is already {status}"))),
        Decided::Expired => return Ok(Ruling::Refused(format!("{id} has expired"))),
    };
    let (event, note) = match verdict {
        Answer::Approve => ("approval_granted", "approved by an operator"),
        Answer::Deny => ("approval_denied", "denied by an operator"),
    };
    let said: String = reason.unwrap_or_default().chars().filter(|c| !c.is_control()).take(500).collect();
    let note = if said.trim().is_empty() { note.to_owned() } else { format!("{note}: {}", said.trim()) };
    if let Err(e) = auditor.approval(ApprovalEvent { event, approval: &approval, by: Some(by), note: &note }).await {
        let undone = store.undecide(id, by).await.unwrap_or(false);
        let state = if undone { "it is pending again" } else { "it could NOT be undone" };
        return Err(format!("the audit log did not record the decision ({}); {state}", e.message));
    }
    Ok(Ruling::Done(approval))
}
