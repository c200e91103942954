//! Decoding of defmt frames against the firmware ELF's `.defmt` table.

use std::sync::Arc;

/// The ELF's defmt table (shared, cheap to clone).
#[derive(Clone)]
pub struct DefmtTable {
    table: Arc<defmt_decoder::Table>,
}

impl DefmtTable {
    /// Parses the table from an ELF image; `Ok(None)` if it has no defmt data.
    pub fn from_elf(elf: &[u8]) -> Result<Option<DefmtTable>, String> {
        if elf.is_empty() {
            return Ok(None);
        }
        match defmt_decoder::Table::parse(elf) {
            Ok(Some(t)) => Ok(Some(DefmtTable { table: Arc::new(t) })),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("cannot read the defmt table: {e}")),
        }
    }

    /// Decodes one complete rzCOBS frame (including its terminating zero).
    /// Returns (level, message).
    pub fn decode_frame(&self, frame: &[u8]) -> Result<(Option<String>, String), String> {
        let mut d = self.table.new_stream_decoder();
        d.received(frame);
        match d.decode() {
            Ok(f) => {
                let level = f.level().map(|l| l.as_str().to_uppercase());
                Ok((level, f.display_message().to_string()))
            }
            Err(e) => Err(format!("{e:?}")),
        }
    }
}
