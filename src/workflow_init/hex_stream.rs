//! Hex text as a stream, both ways: a writer that hex-encodes what passes through it (to store specs without a
//! whole hex string), and a reader that decodes the `binary` field of a spec file straight from the file, so the
//! streaming init never holds the hex text (2x the compressed module in seed B) or the decoded bytes (1x).
//!
//! The reader reports the same errors as `hex::decode` on the whole text would: an odd length wins over a bad
//! character, and of bad characters the first one counts, by its byte index. Because a stream learns the length
//! only at the end, [`HexFieldReader::finish_scan`] reads the rest of the field after a failure to decide.

use std::io::{BufRead, Read, Write};

/// Hex-encodes (lowercase) everything written to it into `inner`.
pub struct HexEncodingWriter<W: Write> {
    inner: W,
    scratch: Vec<u8>,
}

impl<W: Write> HexEncodingWriter<W> {
    pub fn new(inner: W) -> HexEncodingWriter<W> {
        HexEncodingWriter {
            inner,
            scratch: Vec::with_capacity(16 * 1024),
        }
    }

    /// The writer underneath, after flushing.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl<W: Write> Write for HexEncodingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let taken = bytes.len().min(8 * 1024);
        self.scratch.clear();
        for &byte in &bytes[..taken] {
            self.scratch.push(HEX_DIGITS[(byte >> 4) as usize]);
            self.scratch.push(HEX_DIGITS[(byte & 0x0f) as usize]);
        }
        self.inner.write_all(&self.scratch)?;
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Why the hex field of a spec could not be read as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum HexFieldError {
    /// The hex text itself is malformed, exactly as `hex::decode` would say.
    Hex(hex::FromHexError),
    /// The field or what follows it is not the JSON the spec writer produces.
    Layout(String),
}

/// Decodes the hex text of a JSON string field from `source`, which is positioned just after the opening quote,
/// and stops at the closing quote.
pub struct HexFieldReader<R: BufRead> {
    source: R,
    /// Hex characters (bytes) seen so far.
    hex_chars_seen: usize,
    /// The high nibble of a byte whose low nibble has not arrived yet.
    pending_high_nibble: Option<u8>,
    /// The first byte that is not a hex digit, and its index in the hex text.
    first_invalid: Option<(u8, usize)>,
    /// A layout problem (unterminated string, an escape) found while reading.
    layout_error: Option<String>,
    /// The closing quote has been read.
    closed: bool,
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The layout errors found both by the scan after a failure and by the reads: one wording for each, whichever finds it.
const CUT_SHORT: &str = "the binary field ends without its closing quote: the file is cut short";
const HOLDS_ESCAPE: &str = "the binary field holds a JSON escape: spec writers store plain hex";

fn stream_failure(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

impl<R: BufRead> HexFieldReader<R> {
    pub fn new(source: R) -> HexFieldReader<R> {
        HexFieldReader {
            source,
            hex_chars_seen: 0,
            pending_high_nibble: None,
            first_invalid: None,
            layout_error: None,
            closed: false,
        }
    }

    /// Number of decoded bytes handed out so far (the compressed module's size, once the field is read).
    pub fn decoded_bytes(&self) -> u64 {
        (self.hex_chars_seen / 2) as u64
    }

    /// Reads the rest of the field without decoding it, then what follows it (`}` and whitespace to the end of
    /// the file), and gives the error the whole field deserves, if any: layout first, then an odd length, then the
    /// first bad character. Call it when the stream's consumer is done, whether it succeeded or not.
    pub fn finish_scan(mut self) -> Result<(), HexFieldError> {
        while !self.closed && self.layout_error.is_none() {
            let available = match self.source.fill_buf() {
                Ok(available) => available,
                Err(error) => {
                    self.layout_error = Some(format!("cannot read the binary field: {error}"));
                    break;
                }
            };
            if available.is_empty() {
                self.layout_error = Some(CUT_SHORT.to_string());
                break;
            }
            let mut used = 0;
            for &byte in available {
                used += 1;
                if byte == b'"' {
                    self.closed = true;
                    break;
                }
                if byte == b'\\' {
                    self.layout_error = Some(HOLDS_ESCAPE.to_string());
                    break;
                }
                if hex_value(byte).is_none() && self.first_invalid.is_none() {
                    self.first_invalid = Some((byte, self.hex_chars_seen));
                }
                self.hex_chars_seen += 1;
            }
            self.source.consume(used);
        }
        if let Some(layout) = self.layout_error.take() {
            return Err(HexFieldError::Layout(layout));
        }
        let mut trailer = Vec::new();
        self.source
            .by_ref()
            .take(4096)
            .read_to_end(&mut trailer)
            .map_err(|error| {
                HexFieldError::Layout(format!("cannot read after the binary field: {error}"))
            })?;
        let trailer_text = String::from_utf8_lossy(&trailer);
        if trailer_text.trim() != "}" {
            return Err(HexFieldError::Layout(format!(
                "expected `}}` after the binary field (the spec writer puts it last), found {:?}",
                trailer_text.chars().take(40).collect::<String>()
            )));
        }
        if !self.hex_chars_seen.is_multiple_of(2) {
            return Err(HexFieldError::Hex(hex::FromHexError::OddLength));
        }
        if let Some((byte, index)) = self.first_invalid {
            return Err(HexFieldError::Hex(hex::FromHexError::InvalidHexCharacter {
                c: byte as char,
                index,
            }));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for HexFieldReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.first_invalid.is_some() || self.layout_error.is_some() {
            return Err(stream_failure("the binary field is not plain hex"));
        }
        let mut written = 0;
        while written < out.len() && !self.closed {
            let available = self.source.fill_buf()?;
            if available.is_empty() {
                self.layout_error = Some(CUT_SHORT.to_string());
                return Err(stream_failure("the binary field is cut short"));
            }
            let mut used = 0;
            for &byte in available {
                if written == out.len() {
                    break;
                }
                if byte == b'"' {
                    used += 1;
                    self.closed = true;
                    break;
                }
                if byte == b'\\' {
                    self.layout_error = Some(HOLDS_ESCAPE.to_string());
                    self.source.consume(used);
                    return Err(stream_failure("the binary field holds an escape"));
                }
                let Some(nibble) = hex_value(byte) else {
                    self.first_invalid = Some((byte, self.hex_chars_seen));
                    self.hex_chars_seen += 1;
                    self.source.consume(used + 1);
                    return Err(stream_failure("the binary field is not plain hex"));
                };
                self.hex_chars_seen += 1;
                used += 1;
                match self.pending_high_nibble.take() {
                    None => self.pending_high_nibble = Some(nibble),
                    Some(high) => {
                        out[written] = (high << 4) | nibble;
                        written += 1;
                    }
                }
            }
            self.source.consume(used);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_stream(field: &str) -> (Vec<u8>, Result<(), HexFieldError>) {
        let mut reader = HexFieldReader::new(field.as_bytes());
        let mut decoded = Vec::new();
        let _ = reader.read_to_end(&mut decoded);
        (decoded, reader.finish_scan())
    }

    #[test]
    fn decodes_what_the_writer_encoded() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
        let mut writer = HexEncodingWriter::new(Vec::new());
        writer.write_all(&bytes).unwrap();
        let mut text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        assert_eq!(text, hex::encode(&bytes));
        text.push_str("\"}\n");
        let (decoded, finish) = decode_stream(&text);
        assert_eq!(decoded, bytes);
        assert_eq!(finish, Ok(()));
    }

    #[test]
    fn errors_match_hex_decode_on_the_whole_text() {
        for hex_text in ["0g", "abc", "00zz11", "0a0bx", "ÿÿ", "", "0A0b"] {
            let expected = hex::decode(hex_text).err().map(HexFieldError::Hex);
            let (_, finish) = decode_stream(&format!("{hex_text}\"}}"));
            assert_eq!(finish.err(), expected, "for {hex_text:?}");
        }
    }

    #[test]
    fn layout_errors_name_what_was_expected() {
        let (_, finish) = decode_stream("00ff");
        assert_eq!(
            finish,
            Err(HexFieldError::Layout(
                "the binary field ends without its closing quote: the file is cut short"
                    .to_string()
            ))
        );
        let (_, finish) = decode_stream("00ff\", \"extra\": 1}");
        assert!(
            matches!(finish, Err(HexFieldError::Layout(message)) if message.starts_with("expected `}`"))
        );
    }
}
