//! Escaping of text that goes into HTML, XML or a Markdown table: case ids, verdict words and failure texts come
//! from specs and from what a case or a tool printed, so none of it may be read as markup. One copy serves the
//! reports and the cross-check's table.

/// Escapes the five characters that are markup in HTML and XML text and attribute values.
pub fn escape_markup(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Makes text safe inside one cell of a Markdown table: no line breaks, no column bars, no inline HTML. A `<` is
/// only escaped where it could open a tag, so `<= 64MiB` stays readable inside a code span.
pub fn escape_markdown_cell(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '|' => escaped.push_str("\\|"),
            '\n' => escaped.push_str("<br>"),
            '<' if chars
                .peek()
                .is_some_and(|next| next.is_ascii_alphabetic() || "/!?".contains(*next)) =>
            {
                escaped.push_str("&lt;")
            }
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_table_cells_are_escaped() {
        assert_eq!(
            escape_markup("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
        assert_eq!(escape_markdown_cell("a | b\n<c>"), "a \\| b<br>&lt;c>");
        assert_eq!(escape_markdown_cell("x <= 64MiB"), "x <= 64MiB");
    }
}
