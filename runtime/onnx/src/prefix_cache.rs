//! The prefix cache: each role template's fixed text (before its first placeholder) is run once
//! and its key/value cache reused, so a request computes only its own tokens.

use tracing::{debug, warn};

use crate::decoder::Decoder;
use crate::error::Result;
use crate::kv::Kv;

/// A cached prefix: its token ids and their cache (batch 1).
pub struct PrefixEntry {
    pub ids: Vec<u32>,
    pub kv: Kv,
}

/// Cached prefixes, one slot per role template.
#[derive(Default)]
pub struct PrefixCache {
    slots: Vec<Option<PrefixEntry>>,
}

impl PrefixCache {
    /// Computes a slot for `ids` (`None` leaves the slot empty); returns the slot number.
    pub fn add(&mut self, decoder: &mut Decoder, ids: Option<Vec<u32>>) -> Result<usize> {
        let entry = match ids {
            Some(ids) if ids.len() > 1 => {
                let past = decoder.empty_kv(1)?;
                let input: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
                let mask = vec![1i64; ids.len()];
                let pos: Vec<i64> = (0..ids.len() as i64).collect();
                let fwd = decoder.forward(&input, &mask, &pos, past)?;
                debug!(tokens = ids.len(), "prefix cached");
                Some(PrefixEntry { ids, kv: fwd.kv })
            }
            _ => None,
        };
        self.slots.push(entry);
        Ok(self.slots.len() - 1)
    }

    /// The slot's entry when `prompt` starts with its ids and has tokens after them.
    pub fn lookup(&self, slot: Option<usize>, prompt: &[u32]) -> Option<&PrefixEntry> {
        let e = self.slots.get(slot?)?.as_ref()?;
        if prompt.len() > e.ids.len() && prompt.starts_with(&e.ids) {
            Some(e)
        } else {
            warn!(prefix = e.ids.len(), "the prompt does not start with the cached prefix tokens; computing it whole");
            None
        }
    }
}
