//! Text from AWS (and from rule and waiver files) made inert for each
//! format it lands in: one place, so every format gets the same care.
//! HTML is escaped by minijinja's autoescape and, for SVG, [`xml_escape`].

/// Unicode characters that reorder how text is shown (Trojan Source).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Text safe to print: control characters (C0 but newline, DEL, C1,
/// including ESC and CSI) and bidi controls become `?`.
pub fn terminal_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_control() && c != '\n') || is_bidi_control(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Text as inert Markdown, for a table cell or a list item: every ASCII
/// punctuation mark is backslash-escaped (so no heading, emphasis, link,
/// image, code span, table cell break or autolink can start), `<`, `>` and
/// `&` become entities (no raw HTML), control characters are dropped and
/// line breaks become spaces.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => {}
            c if c.is_ascii_punctuation() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for XML, SVG and HTML attributes and content, dropping
/// characters XML 1.0 forbids.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Prefixes a cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, carriage return) with an apostrophe, the OWASP-recommended fix.
pub fn neutralise_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_strips_escape_sequences_and_bidi_controls() {
        assert_eq!(terminal_text("a\u{1b}]0;pwned\u{7}b"), "a?]0;pwned?b");
        assert_eq!(terminal_text("\u{1b}[2Jred\u{9b}"), "?[2Jred?");
        assert_eq!(terminal_text("\u{202e}exe.txt"), "?exe.txt");
        assert_eq!(terminal_text("line\nnext"), "line\nnext");
    }

    #[test]
    fn markdown_cannot_start_markup() {
        assert_eq!(md("# H"), "\\# H");
        assert_eq!(md("a | b"), "a \\| b");
        assert_eq!(md("![x](y)"), "\\!\\[x\\]\\(y\\)");
        assert_eq!(md("<img src=x>"), "&lt;img src\\=x&gt;");
        assert_eq!(md("`c`\nnext"), "\\`c\\` next");
        assert_eq!(md("\u{1b}[31m"), "\\[31m");
        assert_eq!(md("ami-0a1"), "ami\\-0a1");
    }

    #[test]
    fn xml_and_csv() {
        assert_eq!(
            xml_escape("<a b=\"c\">&'\u{1}"),
            "&lt;a b=&quot;c&quot;&gt;&amp;&apos;"
        );
        assert_eq!(neutralise_cell("=1+1"), "'=1+1");
        assert_eq!(neutralise_cell("-2"), "'-2");
        assert_eq!(neutralise_cell("ami-1"), "ami-1");
    }
}
