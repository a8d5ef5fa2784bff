//! One rule for turning a case id or a program's label into a file name.
//!
//! A case id holds `/` and `=` (`syslog-rate/after/records=400`) and a program's label spaces and colons, none of
//! which belong in a file name; dhat profiles, scratch directories and the cross-check's tool outputs are all named
//! by this one function, so a case's files are found under the same stem wherever they are written.

/// `text` with every character other than an ASCII letter, digit, `-` or `.` replaced by `_`.
pub fn file_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_and_labels_become_safe_stems() {
        assert_eq!(
            file_stem("syslog-rate/after/records=400"),
            "syslog-rate_after_records_400"
        );
        assert_eq!(
            file_stem("python3: bytearray of 200 MiB"),
            "python3__bytearray_of_200_MiB"
        );
        assert_eq!(file_stem("a.b-c"), "a.b-c");
    }
}
