//! `mosaic complete`: one question to a route or `provider/model` through the gateway's
//! OpenAI-compatible endpoint, the answer printed as it streams (or whole).

use std::io::{Read, Write};

use anyhow::Result;
use clap::Args;
use mosaic_client::{routing_of, Routing};
use serde_json::{json, Value};

use crate::commands::{usage as usage_error, Ctx};
use crate::output::json;

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// A route name or provider/model.
    #[arg(long, short)]
    pub model: String,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// Say on standard error which provider answered, what it fell back from, and the
    /// tokens used.
    #[arg(long, short)]
    pub verbose: bool,
    /// The prompt; `-` reads it from standard input.
    pub prompt: String,
}

/// Where the answer came from, on standard error (`--verbose`).
fn report_routing(routing: &Routing) {
    for f in &routing.fallbacks {
        eprintln!("fell back from {}/{}: {}", f.provider, f.model, f.error);
    }
    if let (Some(provider), Some(model)) = (&routing.provider, &routing.model) {
        eprintln!("answered by {provider}/{model}");
    }
}

fn report_usage(usage: &Value) {
    if usage.is_object() {
        eprintln!(
            "tokens: {} in ({} cached), {} out",
            usage["prompt_tokens"],
            usage["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap_or(0),
            usage["completion_tokens"]
        );
    }
}

pub async fn complete(ctx: &Ctx, args: CompleteArgs) -> Result<()> {
    let prompt = if args.prompt == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        args.prompt
    };
    if prompt.trim().is_empty() {
        return Err(usage_error("the prompt is empty"));
    }
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": prompt}));
    let mut body = json!({"model": args.model, "messages": messages});
    let client = ctx.client()?;
    let mut out = std::io::stdout();

    if args.no_stream {
        let answer = client.chat_completions(&body).await?;
        if args.verbose {
            report_routing(&routing_of(&answer));
        }
        if ctx.json {
            json(&answer)?;
        } else {
            let text = answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default();
            write!(out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        if args.verbose {
            report_usage(&answer["usage"]);
        }
        return Ok(());
    }

    body["stream_options"] = json!({"include_usage": true});
    let mut stream = client.chat_completions_stream(&body).await?;
    if args.verbose {
        report_routing(stream.routing());
    }
    let mut at_line_start = true;
    let mut usage = Value::Null;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                if !at_line_start {
                    writeln!(out)?;
                }
                return Err(e.into());
            }
        };
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            usage = u.clone();
        }
        if ctx.json {
            writeln!(out, "{chunk}")?;
            continue;
        }
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            if !text.is_empty() {
                write!(out, "{text}")?;
                out.flush()?;
                at_line_start = text.ends_with('\n');
            }
        }
    }
    if !at_line_start {
        writeln!(out)?;
    }
    if args.verbose {
        report_usage(&usage);
    }
    Ok(())
}
