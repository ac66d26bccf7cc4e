//! W3C Trace Context on every request: one trace per [`crate::Client`], so all that one
//! CLI command or TUI session asks of the gateway is a single trace, and a fresh span id
//! per request as its parent. The gateway continues the trace into the providers, so
//! `mosaic run --trace` can name the trace a user looks for. Only `traceparent` is sent:
//! the client has no vendor state (`tracestate`) and no baggage to carry.
//!
//! Ids come from `rand`'s thread-local generator: they must not collide, not be secret.

use std::fmt;

/// The header every request carries.
pub(crate) const TRACEPARENT: &str = "traceparent";

/// The trace of one client: a random 16-byte id, never all zeros (which W3C reserves
/// for "invalid").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trace {
    id: u128,
}

impl Trace {
    pub(crate) fn new() -> Trace {
        Trace {
            id: nonzero(rand::random::<u128>),
        }
    }

    /// The `traceparent` of one request: version 00, this trace, a new span id, sampled.
    pub(crate) fn traceparent(&self) -> String {
        let span_id = nonzero(rand::random::<u64>);
        format!("00-{self}-{span_id:016x}-01")
    }
}

/// The trace id as W3C writes it: 32 lowercase hex digits.
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.id)
    }
}

/// A draw that is not zero (all-zero ids are invalid in Trace Context).
fn nonzero<T: Default + PartialEq>(draw: impl Fn() -> T) -> T {
    loop {
        let value = draw();
        if value != T::default() {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Client;
    use pretty_assertions::assert_eq;
    use reqwest::Method;

    /// The (trace id, span id) of a well-formed version-00 sampled `traceparent`.
    fn parse(header: &str) -> (String, String) {
        let parts: Vec<&str> = header.split('-').collect();
        assert_eq!(parts.len(), 4, "{header}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{header}");
        let hex = |s: &str, len: usize| {
            assert_eq!(s.len(), len, "{header}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{header}"
            );
            assert!(s.bytes().any(|b| b != b'0'), "all zeros: {header}");
            s.to_string()
        };
        (hex(parts[1], 32), hex(parts[2], 16))
    }

    #[test]
    fn each_traceparent_is_this_trace_with_a_new_span() {
        let trace = Trace::new();
        let (trace_a, span_a) = parse(&trace.traceparent());
        let (trace_b, span_b) = parse(&trace.traceparent());
        assert_eq!(trace_a, trace.to_string());
        assert_eq!(trace_b, trace.to_string());
        assert_ne!(span_a, span_b);
        assert_ne!(Trace::new(), trace);
    }

    #[test]
    fn ids_are_padded_to_their_full_width() {
        assert_eq!(
            Trace { id: 0xab }.to_string(),
            "000000000000000000000000000000ab"
        );
    }

    #[test]
    fn a_zero_draw_is_drawn_again() {
        let draws = std::cell::Cell::new(0u64);
        let value = nonzero(|| {
            draws.set(draws.get() + 1);
            draws.get() / 3
        });
        assert_eq!((value, draws.get()), (1, 3));
    }

    #[test]
    fn every_request_of_a_client_carries_its_trace() {
        let client = Client::new("http://127.0.0.1:1", None).unwrap();
        let header = |req: reqwest::RequestBuilder| {
            let req = req.build().unwrap();
            let values: Vec<_> = req.headers().get_all(TRACEPARENT).iter().collect();
            assert_eq!(values.len(), 1);
            values[0].to_str().unwrap().to_string()
        };
        let (trace_a, span_a) = parse(&header(client.request(Method::GET, "/a", &[])));
        let (trace_b, span_b) = parse(&header(client.request(Method::POST, "/b", &[])));
        assert_eq!(
            (&trace_a, &trace_b),
            (&client.trace_id(), &client.trace_id())
        );
        assert_ne!(span_a, span_b);
        // A client with another token is the same client: same trace.
        let same = client.clone().with_token(Some("t".into()));
        assert_eq!(same.trace_id(), client.trace_id());
        let other = Client::new("http://127.0.0.1:1", None).unwrap();
        assert_ne!(other.trace_id(), client.trace_id());
    }
}
