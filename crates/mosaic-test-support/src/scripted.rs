//! A scripted HTTP server on loopback, speaking whatever wire format a test scripts: each request gets the next scripted answer (a
//! status, headers, and body chunks sent with delays), and every request is recorded.
//! A server may also check each request as the real API would ([`Check`]) and refuse it
//! instead, without using up an answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait before the status line (a slow first byte).
    pub delay: Duration,
    /// Body pieces, each sent after its delay.
    pub chunks: Vec<(Duration, Vec<u8>)>,
    /// After the pieces, drop the connection mid-body instead of ending it.
    pub cut_off: bool,
}

impl Answer {
    /// A `text/event-stream` answer whose events are the given `data:` payloads.
    pub fn sse_data<S: AsRef<str>>(payloads: &[S]) -> Answer {
        Answer::sse_raw(
            &payloads
                .iter()
                .map(|p| format!("data: {}\n\n", p.as_ref()))
                .collect::<Vec<_>>(),
        )
    }

    /// A `text/event-stream` answer from raw pieces, each sent as one chunk.
    pub fn sse_raw<S: AsRef<str>>(pieces: &[S]) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            delay: Duration::ZERO,
            chunks: pieces
                .iter()
                .map(|p| (Duration::ZERO, p.as_ref().as_bytes().to_vec()))
                .collect(),
            cut_off: false,
        }
    }

    /// A named-event answer (`event: NAME` + `data: JSON`), as Anthropic and the
    /// Responses API stream.
    pub fn sse_events(events: &[(&str, Value)]) -> Answer {
        Answer::sse_raw(
            &events
                .iter()
                .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
                .collect::<Vec<_>>(),
        )
    }

    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            delay: Duration::ZERO,
            chunks: vec![(Duration::ZERO, body.to_string().into_bytes())],
            cut_off: false,
        }
    }

    /// A whole body of any type: an HTML error page, a proxy's plain text.
    pub fn body(status: u16, content_type: &str, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            delay: Duration::ZERO,
            chunks: vec![(Duration::ZERO, body.as_bytes().to_vec())],
            cut_off: false,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    /// Then this raw piece (bytes that need not be UTF-8), after `delay`.
    pub fn then_bytes(mut self, delay: Duration, bytes: &[u8]) -> Answer {
        self.chunks.push((delay, bytes.to_vec()));
        self
    }

    /// After its pieces, drop the connection in the middle of the body (a chunked body
    /// never terminated), as a crashing server or a cut network would.
    pub fn then_cut_off(mut self) -> Answer {
        self.cut_off = true;
        self
    }

    /// Pause before every chunk (pacing).
    pub fn paced(mut self, every: Duration) -> Answer {
        for chunk in &mut self.chunks {
            chunk.0 = every;
        }
        self
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A rule of the real API about the request body: `Some` is the refusal it answers with.
pub type Check = Arc<dyn Fn(&Value) -> Option<Answer> + Send + Sync>;

#[derive(Default)]
struct Script {
    answers: Vec<Answer>,
    next: usize,
    received: Vec<Recorded>,
    check: Option<Check>,
}

/// The server; stops when dropped.
pub struct Scripted {
    pub base_url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    /// Serve `answers` in order (the last one repeats), on 127.0.0.1.
    pub async fn start(answers: Vec<Answer>) -> Scripted {
        Scripted::start_on("127.0.0.1:0", answers).await
    }

    /// Serve on another address: `[::1]:0`, or `127.0.0.2:0` (another loopback address,
    /// which an address policy can allow while refusing 127.0.0.1).
    pub async fn start_on(addr: &str, answers: Vec<Answer>) -> Scripted {
        Scripted::serve(addr, answers, None).await
    }

    /// Serve `answers` in order, refusing a request `check` refuses (the refusal uses no
    /// answer up).
    pub async fn start_checked(answers: Vec<Answer>, check: Check) -> Scripted {
        Scripted::serve("127.0.0.1:0", answers, Some(check)).await
    }

    async fn serve(addr: &str, answers: Vec<Answer>, check: Option<Check>) -> Scripted {
        let script = Arc::new(Mutex::new(Script {
            answers,
            check,
            ..Script::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Scripted {
            base_url: format!("http://{addr}"),
            script,
            task,
        }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().received.clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(script): State<Arc<Mutex<Script>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let answer = {
        let mut s = script.lock().unwrap();
        s.received.push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        });
        let refusal = match (&s.check, s.received.last()) {
            (Some(check), Some(request)) => check(&request.body),
            _ => None,
        };
        match refusal {
            Some(refusal) => Some(refusal),
            None => {
                let i = s.next.min(s.answers.len().saturating_sub(1));
                s.next += 1;
                s.answers.get(i).cloned()
            }
        }
    };
    let Some(answer) = answer else {
        return Response::builder()
            .status(500)
            .body(Body::from("no answer scripted"))
            .unwrap();
    };
    tokio::time::sleep(answer.delay).await;
    let chunks = answer.chunks.clone();
    let stream = futures_util::stream::iter(chunks).then(|(delay, bytes)| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, std::io::Error>(Bytes::from(bytes))
    });
    // A body that fails makes the server abort the connection; a moment first, so the
    // pieces before are on the wire rather than dropped with it.
    let cut = futures_util::stream::iter(answer.cut_off.then_some(())).then(|()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err(std::io::Error::other("scripted cut-off"))
    });
    let stream = stream.chain(cut);
    let mut builder = Response::builder().status(answer.status);
    for (k, v) in &answer.headers {
        builder = builder.header(k, v);
    }
    builder.body(Body::from_stream(stream)).unwrap()
}
