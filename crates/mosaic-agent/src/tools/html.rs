//! HTML to readable text for `http_fetch`: a reader's view, not a parser.

/// Readable text of an HTML page: scripts, styles and comments dropped, tags stripped
/// (block-level ones become line breaks, list items bullets), common entities decoded,
/// whitespace collapsed. A reader's view, not a parser: good enough for a model.
pub fn to_text(html: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so `lower` indexes `html` too.
    let lower = html.to_ascii_lowercase();
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    while i < html.len() {
        let Some(lt) = html[i..].find('<') else {
            push_text(&mut out, &html[i..]);
            break;
        };
        push_text(&mut out, &html[i..i + lt]);
        i += lt;
        let rest = &lower[i..];
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |end| i + end + 3);
            continue;
        }
        let closing = rest[1..].starts_with('/');
        let name_at = if closing { 2 } else { 1 };
        let name = rest[name_at..]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default();
        if name.is_empty() && !rest[1..].starts_with(['!', '?']) {
            // A bare '<' in text.
            out.push('<');
            i += 1;
            continue;
        }
        i = tag_end(bytes, i);
        if !closing && matches!(name, "script" | "style" | "noscript" | "template" | "svg") {
            i = lower[i..]
                .find(&format!("</{name}"))
                .map_or(html.len(), |at| i + at);
            continue;
        }
        match name {
            // A closing `</li>` adds nothing, so items stay on consecutive lines.
            "li" if !closing => out.push_str("\n- "),
            "li" => {}
            "td" | "th" => out.push(' '),
            "br" | "p" | "div" | "ul" | "ol" | "dl" | "dt" | "dd" | "h1" | "h2" | "h3" | "h4"
            | "h5" | "h6" | "title" | "tr" | "table" | "section" | "article" | "header"
            | "footer" | "nav" | "main" | "aside" | "blockquote" | "pre" | "hr" | "figure"
            | "figcaption" | "form" | "address" | "details" | "summary" => out.push('\n'),
            _ => {}
        }
    }
    collapse(&out)
}

/// The index just after the `>` closing the tag that starts at `start`; quoted
/// attribute values may contain `>`.
fn tag_end(bytes: &[u8], start: usize) -> usize {
    let mut quote = None;
    let mut previous = 0u8;
    for (at, &b) in bytes.iter().enumerate().skip(start + 1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'>' => return at + 1,
            None if (b == b'"' || b == b'\'') && previous == b'=' => quote = Some(b),
            None => {}
        }
        if !b.is_ascii_whitespace() {
            previous = b;
        }
    }
    bytes.len()
}

/// Text between tags, entities decoded; line breaks in the source are just spaces.
fn push_text(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        push_spaced(out, &rest[..amp]);
        let after = &rest[amp + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .unwrap_or(after.len());
        let decoded = match after[name_len..].starts_with(';') {
            true => entity(&after[..name_len]),
            false => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[name_len + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    push_spaced(out, rest);
}

fn push_spaced(out: &mut String, text: &str) {
    out.extend(
        text.chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c }),
    );
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return Some(
            char::from_u32(code)
                .filter(|&c| c != '\0')
                .unwrap_or('\u{fffd}'),
        );
    }
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        _ => return None,
    };
    Some(c)
}

/// One space between words, no blank lines at the ends, at most one blank line between
/// blocks.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for line in text.split('\n') {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            gap = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if gap { "\n\n" } else { "\n" });
        }
        gap = false;
        for (n, word) in words.enumerate() {
            if n > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn html_becomes_readable_text() {
        let html = r#"<!DOCTYPE html><html><head><title>A &amp; B</title>
            <style>p { color: red }</style><script>if (a < b) { alert("<p>x</p>") }</script>
            </head><body><!-- hidden <p>comment</p> -->
            <h1>Hello,   world</h1><p>One <b>bold</b> word&nbsp;and &lt;tags&gt; &#8212; &#x41;.</p>
            <ul><li>first</li><li>second</li></ul><a href="x?a=1&b=2" title="a > b">link</a> 1 < 2
            </body></html>"#;
        assert_eq!(
            to_text(html),
            "A & B\n\nHello, world\n\nOne bold word and <tags> — A.\n\n- first\n- second\nlink 1 < 2"
        );
    }
}
