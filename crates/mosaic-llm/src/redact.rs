//! Credentials out of upstream text. Providers and proxies sometimes quote the key they
//! were sent in their errors (`401 Incorrect API key provided: Bearer sk-…`); whatever
//! an upstream says is redacted here before the gateway shows, logs or stores it.
//!
//! [`redact`] removes the credentials the caller holds for the call, in full and in any
//! run of 8 or more of their characters that looks like a piece of a key (a key cut or
//! masked by the upstream), and
//! anything shaped like one: `Bearer …`/`Basic …`, well-known key prefixes (`sk-`,
//! `sk-ant-`, `ghp_`, `AIza`, `xoxb-`, `hf_`, `AKIA`…), `key=…`/`token: …` values,
//! passwords in URLs, and long base64 or hex runs. [`Redacting`] wraps a provider so that
//! every error it returns, before or during a stream, has been through it.

use std::sync::{Arc, LazyLock};

use futures_util::StreamExt;
use regex::{Captures, Regex};

use crate::{BoxFuture, ChatRequest, EventStream, LlmError, Provider};

/// What stands where a credential was.
pub const REDACTED: &str = "[redacted]";

/// Known secrets shorter than this are removed only as whole words; longer ones also
/// wherever this many of their characters appear in a row.
const PARTIAL: usize = 8;

struct Patterns {
    /// An authorization scheme and its credentials: the scheme is kept.
    scheme: Regex,
    /// Tokens with a well-known prefix.
    prefixed: Regex,
    /// `name=value` and `name: value` where the name says it is a secret.
    named: Regex,
    /// `scheme://user:password@`.
    userinfo: Regex,
    /// Long runs of base64 (checked for mixed case and digits) or hex.
    long_run: Regex,
}

#[allow(clippy::expect_used)] // constant patterns: a typo fails every test at once
static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("a valid constant pattern");
    Patterns {
        scheme: re(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/*=-]{8,}"),
        prefixed: re(concat!(
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_*-]{6,}",
            r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{16,}",
            r"|\bgithub_pat_[A-Za-z0-9_]{16,}",
            r"|\bglpat-[A-Za-z0-9_-]{16,}",
            r"|\bxox[abposr]-[A-Za-z0-9-]{10,}",
            r"|\bAIza[0-9A-Za-z_-]{30,}",
            r"|\bhf_[A-Za-z0-9]{16,}",
            r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        )),
        named: re(concat!(
            r#"(?i)\b((?:x-)?api[_-]?key|key|access[_-]?token|refresh[_-]?token|id[_-]?token"#,
            r#"|token|secret|client[_-]?secret|password|passwd|signature|sig)"#,
            r#"("?\s*[:=]\s*"?)([^\s"'&,;})\[\]][^\s"'&,;})\]]*)"#,
        )),
        userinfo: re(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),
        long_run: re(r"[A-Za-z0-9+/_]{32,}={0,2}"),
    }
});

/// `text` with every credential in `secrets`, and anything shaped like one, replaced by
/// [`REDACTED`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    // Shapes first: they take a masked key (`sk-proj-****abcd`) whole.
    redact_known(&redact_shapes(text), secrets)
}

fn redact_shapes(text: &str) -> String {
    let p = &*PATTERNS;
    let mut out = p
        .userinfo
        .replace_all(text, |c: &Captures| format!("{}{REDACTED}@", &c[1]))
        .into_owned();
    out = p
        .scheme
        .replace_all(&out, |c: &Captures| format!("{}{}{REDACTED}", &c[1], &c[2]))
        .into_owned();
    out = p.prefixed.replace_all(&out, REDACTED).into_owned();
    out = p
        .named
        .replace_all(&out, |c: &Captures| format!("{}{}{REDACTED}", &c[1], &c[2]))
        .into_owned();
    p.long_run
        .replace_all(&out, |c: &Captures| {
            if looks_random(&c[0]) {
                REDACTED.to_string()
            } else {
                c[0].to_string()
            }
        })
        .into_owned()
}

/// A run that is a key rather than a word or a path: all hex, or base64 with upper and
/// lower case letters and digits.
fn looks_random(run: &str) -> bool {
    let run = run.trim_end_matches('=');
    let hex = run.chars().all(|c| c.is_ascii_hexdigit());
    let upper = run.chars().any(|c| c.is_ascii_uppercase());
    let lower = run.chars().any(|c| c.is_ascii_lowercase());
    let digit = run.chars().any(|c| c.is_ascii_digit());
    hex || (upper && lower && digit)
}

/// Remove the known secrets: whole, and (for long ones) any run of [`PARTIAL`] or more
/// of their characters that looks like a piece of a key rather than a word the key
/// happens to contain; one [`REDACTED`] per stretch of text.
fn redact_known(text: &str, secrets: &[&str]) -> String {
    let mut hidden = vec![false; text.len()];
    for secret in secrets.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let short = secret.chars().count() < PARTIAL;
        for (at, _) in text.match_indices(secret) {
            let end = at + secret.len();
            let before = text[..at].chars().next_back();
            let after = text[end..].chars().next();
            let bounded = !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric);
            if bounded || !short {
                hidden[at..end].fill(true);
            }
        }
        if short {
            continue;
        }
        let chars: Vec<(usize, char)> = secret.char_indices().collect();
        let mut partial = vec![false; text.len()];
        for w in 0..=chars.len() - PARTIAL {
            let start = chars[w].0;
            let end = chars.get(w + PARTIAL).map_or(secret.len(), |c| c.0);
            let window = &secret[start..end];
            for (at, _) in text.match_indices(window) {
                partial[at..at + window.len()].fill(true);
            }
        }
        for (start, end) in runs(&partial) {
            if looks_like_a_piece(&text[start..end]) {
                hidden[start..end].fill(true);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut in_hidden = false;
    for (i, c) in text.char_indices() {
        if hidden[i] {
            if !in_hidden {
                out.push_str(REDACTED);
            }
            in_hidden = true;
        } else {
            in_hidden = false;
            out.push(c);
        }
    }
    out
}

/// The stretches of `true`, as byte ranges.
fn runs(marks: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &m) in marks.iter().chain([&false]).enumerate() {
        match (m, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// A piece of a key, not a word: long, or letters and digits mixed ("Fg9hJ3kA", not
/// "scripted" out of `sk-scripted-secret-0123`).
fn looks_like_a_piece(piece: &str) -> bool {
    piece.chars().count() >= 12
        || (piece.chars().any(|c| c.is_alphabetic()) && piece.chars().any(|c| c.is_ascii_digit()))
}

impl LlmError {
    /// The same error with its text through [`redact`].
    pub fn redacted(self, secrets: &[&str]) -> LlmError {
        let r = |s: String| redact(&s, secrets);
        match self {
            LlmError::Connect(m) => LlmError::Connect(r(m)),
            LlmError::Timeout(d) => LlmError::Timeout(d),
            LlmError::Stalled(d) => LlmError::Stalled(d),
            LlmError::BrokeOff { events, detail } => LlmError::BrokeOff {
                events,
                detail: r(detail),
            },
            LlmError::Http {
                status,
                message,
                retry_after,
            } => LlmError::Http {
                status,
                message: r(message),
                retry_after,
            },
            LlmError::Protocol(m) => LlmError::Protocol(r(m)),
            LlmError::Provider(m) => LlmError::Provider(r(m)),
            LlmError::Invalid(m) => LlmError::Invalid(r(m)),
        }
    }
}

/// A provider whose every error, before or during a stream, comes out redacted of its
/// credentials (and of anything shaped like one).
pub struct Redacting {
    inner: Arc<dyn Provider>,
    secrets: Arc<Vec<String>>,
}

impl Redacting {
    pub fn new(inner: Arc<dyn Provider>, secrets: Vec<String>) -> Redacting {
        Redacting {
            inner,
            secrets: Arc::new(secrets),
        }
    }
}

fn clean(e: LlmError, secrets: &[String]) -> LlmError {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    e.redacted(&secrets)
}

impl Provider for Redacting {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let stream = self
                .inner
                .stream(request)
                .await
                .map_err(|e| clean(e, &self.secrets))?;
            let secrets = self.secrets.clone();
            Ok(
                Box::pin(stream.map(move |item| item.map_err(|e| clean(e, &secrets))))
                    as EventStream,
            )
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async move {
            self.inner
                .list_models()
                .await
                .map_err(|e| clean(e, &self.secrets))
        })
    }
}

#[cfg(test)]
mod tests;
