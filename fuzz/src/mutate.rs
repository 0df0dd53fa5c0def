//! Random edits of a seed, drawn by proptest (so a failing case shrinks to fewer, smaller edits).

use proptest::prelude::*;

/// Byte strings that make parsers take unusual paths.
const TOKENS: &[&[u8]] = &[
    b"Content-Length: ",
    b"content-length:",
    b"Content-Type: application/json\r\n",
    b"\r\n\r\n",
    b"\r\n",
    b"\n",
    b"99999999999999999999",
    b"4294967296",
    b"-1",
    b"0",
    b"1e308",
    b"1.5",
    b"\"\\ud800\"",
    b"\"\\udfff\\ud800\"",
    b"\xff\xfe",
    b"\xc3",
    b"\x00",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"\"jsonrpc\":\"2.0\"",
    b"\"id\":",
    b"\"method\":",
    b"\"params\":",
    b"\"result\":",
    b"\"error\":",
    b"\"kind\":\"transition\"",
    b"\"kind\":\"episode\"",
    b"[[roles]]",
    b"[templates]",
    b"= '''",
    b"{observation}",
    b"{",
];

/// One edit; positions are taken modulo the input's length.
#[derive(Debug, Clone)]
pub enum Edit {
    FlipBit(u32, u8),
    SetByte(u32, u8),
    Insert(u32, Vec<u8>),
    InsertToken(u32, usize),
    Delete(u32, u16),
    Duplicate(u32, u16),
    Truncate(u32),
    Splice(u32, usize, u32),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u32>(), 0u8..8).prop_map(|(p, b)| Edit::FlipBit(p, b)),
        (any::<u32>(), any::<u8>()).prop_map(|(p, b)| Edit::SetByte(p, b)),
        (any::<u32>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, v)| Edit::Insert(p, v)),
        (any::<u32>(), 0..TOKENS.len()).prop_map(|(p, t)| Edit::InsertToken(p, t)),
        (any::<u32>(), 1u16..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<u32>(), 1u16..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        any::<u32>().prop_map(Edit::Truncate),
        (any::<u32>(), any::<usize>(), any::<u32>()).prop_map(|(p, s, q)| Edit::Splice(p, s, q)),
    ]
}

/// Applies `edits` to `seed`; `others` are the seeds a splice may take a tail from.
pub fn apply(seed: &[u8], edits: &[Edit], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let at = |p: u32, len: usize| if len == 0 { 0 } else { p as usize % (len + 1) };
        match e {
            Edit::FlipBit(p, b) if !out.is_empty() => {
                let i = *p as usize % out.len();
                out[i] ^= 1 << b;
            }
            Edit::SetByte(p, v) if !out.is_empty() => {
                let i = *p as usize % out.len();
                out[i] = *v;
            }
            Edit::Insert(p, bytes) => {
                let i = at(*p, out.len());
                out.splice(i..i, bytes.iter().copied());
            }
            Edit::InsertToken(p, t) => {
                let i = at(*p, out.len());
                out.splice(i..i, TOKENS[*t].iter().copied());
            }
            Edit::Delete(p, n) => {
                let i = at(*p, out.len());
                let end = (i + *n as usize).min(out.len());
                out.drain(i..end);
            }
            Edit::Duplicate(p, n) => {
                let i = at(*p, out.len());
                let end = (i + *n as usize).min(out.len());
                let copy = out[i..end].to_vec();
                out.splice(end..end, copy);
            }
            Edit::Truncate(p) => out.truncate(at(*p, out.len())),
            Edit::Splice(p, s, q) if !others.is_empty() => {
                let other = &others[s % others.len()];
                let i = at(*p, out.len());
                let j = at(*q, other.len());
                out.truncate(i);
                out.extend_from_slice(&other[j..]);
            }
            _ => {}
        }
    }
    out
}

/// A seed from `seeds` with up to `max_edits` edits, or (one time in five) random bytes.
pub fn input(seeds: std::sync::Arc<Vec<Vec<u8>>>, max_edits: usize) -> impl Strategy<Value = Vec<u8>> {
    let edited = {
        let seeds = seeds.clone();
        (0..seeds.len().max(1), prop::collection::vec(edit(), 0..=max_edits))
            .prop_map(move |(i, edits)| apply(seeds.get(i).map_or(&[][..], |s| &s[..]), &edits, &seeds))
    };
    prop_oneof![4 => edited, 1 => prop::collection::vec(any::<u8>(), 0..512)]
}
