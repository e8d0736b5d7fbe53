//! A JSON-RPC frame from a client or a server: parsing never panics, and a frame that parses
//! writes back to one that parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::{Limits, Message};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_frame_bytes: 64 * 1024, max_depth: 32 };
    let Ok(message) = Message::parse(data, &limits) else { return };
    let written = message.to_vec();
    let again = Message::parse(&written, &Limits { max_frame_bytes: usize::MAX, max_depth: 32 })
        .expect("what Warden writes, Warden reads");
    assert_eq!(again.kind(), message.kind());
    assert_eq!(again.method(), message.method());
    assert_eq!(again.id().map(|i| i.raw().to_owned()), message.id().map(|i| i.raw().to_owned()));
});
