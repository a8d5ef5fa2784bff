//! Stored workflow specs: one JSON file per workflow, whose `binary` field carries the module zlib-compressed and
//! hex-encoded, as seed B's engine stores it (the hex text is 2x the compressed module).
//!
//! The writer streams module → zlib → hex → file, so storing a workflow never holds its hex text. It always writes
//! the fields in one order, `binary` last and as plain hex, which is what lets the streaming init read the small
//! header with serde and stream the field itself ([`read_spec_header`]).
//!
//! Corrupt workflows ([`SpecCorruption`]) are written the same way with one defect each, so a startup can show
//! that one bad workflow fails alone, with a clear error, while the rest initialise.

use super::hex_stream::HexEncodingWriter;
use super::module_generation::{ModuleDefect, ModuleShape, generate_module};
use crate::payload::Rng;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A stored workflow spec as the engine deserialises it whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSpec {
    pub name: String,
    pub owner: String,
    /// The module, zlib-compressed then hex-encoded.
    pub binary: String,
}

/// The spec's fields other than `binary`, which the streaming init reads with serde.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SpecHeader {
    pub name: String,
    pub owner: String,
}

/// What the writer wrote ahead of the hex text, byte for byte; the streaming reader looks for it.
pub const BINARY_FIELD_OPENING: &[u8] = b"\"binary\":\"";
/// The longest header (everything before the hex text) the streaming reader accepts.
pub const MAX_SPEC_HEADER_BYTES: usize = 64 * 1024;

/// Sizes of one stored spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSpec {
    pub module_bytes: u64,
    pub compressed_bytes: u64,
    /// The whole file, hex text included.
    pub spec_bytes: u64,
    /// Where the hex text starts in the file.
    pub hex_offset: u64,
}

/// Counts bytes on their way to `inner`.
struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `module` as the spec of workflow `name` at `path`: header, then module → zlib → hex, then `"}`.
pub fn write_spec(path: &Path, name: &str, module: &[u8]) -> anyhow::Result<StoredSpec> {
    use anyhow::Context as _;
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create the spec", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let header = format!(
        "{{\"name\":{},\"owner\":{},",
        serde_json::to_string(name)?,
        serde_json::to_string("memproof-startup")?
    );
    out.write_all(header.as_bytes())?;
    out.write_all(BINARY_FIELD_OPENING)?;
    let hex_offset = (header.len() + BINARY_FIELD_OPENING.len()) as u64;
    let counted = CountingWriter {
        inner: HexEncodingWriter::new(&mut out),
        written: 0,
    };
    let mut compressor = ZlibEncoder::new(counted, Compression::default());
    compressor.write_all(module)?;
    let counted = compressor.finish()?;
    let compressed_bytes = counted.written;
    counted.inner.into_inner()?;
    out.write_all(b"\"}\n")?;
    out.flush()?;
    Ok(StoredSpec {
        module_bytes: module.len() as u64,
        compressed_bytes,
        spec_bytes: hex_offset + 2 * compressed_bytes + 3,
        hex_offset,
    })
}

/// One defect a corrupt workflow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecCorruption {
    /// A character in the middle of the hex text is not a hex digit.
    MalformedHex,
    /// A run of compressed bytes in the middle is overwritten: the stream no longer inflates.
    CorruptCompression,
    /// The module was cut to 60% of its length before compression: it decompresses, but does not parse.
    TruncatedModule,
    /// The module parses but does not validate (a type mismatch).
    InvalidModule,
}

impl SpecCorruption {
    /// Every kind, in the order a scenario cycles through them.
    pub const ALL: [SpecCorruption; 4] = [
        SpecCorruption::MalformedHex,
        SpecCorruption::CorruptCompression,
        SpecCorruption::TruncatedModule,
        SpecCorruption::InvalidModule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SpecCorruption::MalformedHex => "malformed_hex",
            SpecCorruption::CorruptCompression => "corrupt_compression",
            SpecCorruption::TruncatedModule => "truncated_module",
            SpecCorruption::InvalidModule => "invalid_module",
        }
    }
}

/// Generates a module of `shape` and stores it as workflow `name`, with `corruption` applied if given.
pub fn generate_and_store_workflow(
    path: &Path,
    name: &str,
    rng: &mut Rng,
    shape: &ModuleShape,
    corruption: Option<SpecCorruption>,
) -> anyhow::Result<StoredSpec> {
    let mut shape = shape.clone();
    if corruption == Some(SpecCorruption::InvalidModule) {
        shape.defect = Some(ModuleDefect::TypeMismatchInLastFunction);
    }
    let mut module = generate_module(rng, &shape);
    if corruption == Some(SpecCorruption::TruncatedModule) {
        module.truncate(module.len() * 3 / 5);
    }
    let stored = write_spec(path, name, &module)?;
    drop(module);
    match corruption {
        Some(SpecCorruption::MalformedHex) => {
            overwrite_in_file(path, stored.hex_offset + stored.compressed_bytes, b"zz")?;
        }
        Some(SpecCorruption::CorruptCompression) => {
            // 64 bytes of 0xff (as hex) a third of the way in: valid hex, invalid deflate data.
            let at = stored.hex_offset + 2 * (stored.compressed_bytes / 3);
            let run = (stored.compressed_bytes / 3).clamp(1, 64) as usize;
            overwrite_in_file(path, at, &b"ff".repeat(run))?;
        }
        _ => {}
    }
    Ok(stored)
}

fn overwrite_in_file(path: &Path, offset: u64, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)?;
    Ok(())
}

/// The spec file of workflow `name` in `dir`.
pub fn spec_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Every spec file in `dir`, sorted by name.
pub fn list_specs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the stored specs", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads a spec's header from `source` up to and including the opening quote of `binary`, leaving `source` at
/// the first hex character, and parses the header's other fields with serde.
pub fn read_spec_header(source: &mut impl BufRead) -> Result<SpecHeader, String> {
    let mut header = Vec::with_capacity(256);
    loop {
        let available = source
            .fill_buf()
            .map_err(|error| format!("cannot read the spec: {error}"))?;
        if available.is_empty() {
            return Err("expected a \"binary\" field, found the end of the file".to_string());
        }
        let mut used = 0;
        let mut found = false;
        for &byte in available {
            header.push(byte);
            used += 1;
            if header.ends_with(BINARY_FIELD_OPENING) {
                found = true;
                break;
            }
        }
        source.consume(used);
        if found {
            break;
        }
        if header.len() > MAX_SPEC_HEADER_BYTES {
            return Err(format!(
                "expected a \"binary\" field within the first {MAX_SPEC_HEADER_BYTES} bytes"
            ));
        }
    }
    header.truncate(header.len() - BINARY_FIELD_OPENING.len());
    // The header is `{"name":…,"owner":…,`: close it without the binary field and let serde check it.
    header.extend_from_slice(b"\"binary\":\"\"}");
    let spec: WorkflowSpec = serde_json::from_slice(&header)
        .map_err(|error| format!("the spec header is not valid JSON: {error}"))?;
    Ok(SpecHeader {
        name: spec.name,
        owner: spec.owner,
    })
}

/// Reads the compressed module of a spec back out (hex decoded), for tests and tools.
pub fn read_compressed_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut text = String::new();
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    let spec: WorkflowSpec = serde_json::from_str(&text)?;
    Ok(hex::decode(spec.binary)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ModuleShape {
        ModuleShape {
            module_bytes: 60_000,
            data_fraction: 0.25,
            defect: None,
        }
    }

    #[test]
    fn a_stored_spec_is_json_whose_binary_decompresses_to_the_module() {
        let dir = tempfile::tempdir().unwrap();
        let module = generate_module(&mut Rng::new(3), &shape());
        let path = spec_path(dir.path(), "wf-0001");
        let stored = write_spec(&path, "wf-0001", &module).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len() as u64, stored.spec_bytes);
        let spec: WorkflowSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(spec.name, "wf-0001");
        assert_eq!(spec.binary.len() as u64, 2 * stored.compressed_bytes);
        let compressed = hex::decode(&spec.binary).unwrap();
        let mut decompressed = Vec::new();
        flate2::read::ZlibDecoder::new(&compressed[..])
            .read_to_end(&mut decompressed)
            .unwrap();
        assert_eq!(decompressed, module);
        assert!(
            stored.compressed_bytes * 2 < stored.module_bytes,
            "modules compress about as real ones do: {stored:?}"
        );
    }

    #[test]
    fn the_header_reader_stops_at_the_first_hex_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = spec_path(dir.path(), "wf \"quoted\"");
        write_spec(&path, "wf \"quoted\"", b"\0asm").unwrap();
        let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let header = read_spec_header(&mut reader).unwrap();
        assert_eq!(header.name, "wf \"quoted\"");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert!(
            rest.starts_with("78"),
            "zlib's header byte comes first: {rest}"
        );
    }

    #[test]
    fn a_file_without_a_binary_field_is_refused_with_what_was_expected() {
        let error = read_spec_header(&mut &b"{\"name\":\"x\"}"[..]).unwrap_err();
        assert_eq!(
            error,
            "expected a \"binary\" field, found the end of the file"
        );
    }
}
