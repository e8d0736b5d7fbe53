//! A server-sent event stream from an upstream, cut into chunks anywhere: decoding never panics,
//! no event is larger than the bound, and the events do not depend on where the chunks were cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_protocol::sse::Decoder;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let whole = Decoder::new(MAX).feed(stream);
    let mut chunked = Decoder::new(MAX);
    let at = (cut as usize).min(stream.len());
    let first = chunked.feed(&stream[..at]);
    let second = first.and_then(|mut events| {
        chunked.feed(&stream[at..]).map(|more| {
            events.extend(more);
            events
        })
    });
    match (whole, second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "events depend on where the stream was cut");
            for e in &a {
                assert!(e.data.len() <= MAX, "an event past the bound");
            }
        }
        (Err(_), Err(_)) => {}
        // A stream refused whole may be refused later when cut, and the other way round only at
        // the bound: both are refusals, never a wrong event.
        _ => {}
    }
});
