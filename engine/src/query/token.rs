//! Page tokens: pagination that needs no server-side state, so that any replica can serve the
//! next page. A token carries what the next page needs: which query it continues (a fingerprint
//! of the model, the query text and its parameters), how many items came before, and a 32-bit
//! hash of each item already served. The next page is the ranking computed then, without those
//! items: nothing repeats across pages, whichever server answers and whichever version is ACTIVE
//! by then.
//!
//! A token is not secret and not signed: it only steers its holder's own pages. A hash collision
//! (about one in 4 billion per pair) can only hide an item from a later page, never repeat one.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::expr::Params;
use crate::util::hash::Fnv;
use crate::{Error, Result};

/// The token layout's version: the first byte, so that a later layout can be told apart.
const FORMAT: u8 = 1;
/// Format byte, fingerprint, offset.
const HEADER: usize = 1 + 8 + 4;

/// A decoded page token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// [`fingerprint`] of the query the token continues.
    pub fingerprint: u64,
    /// Items served before the next page (its position offset).
    pub offset: usize,
    served: HashSet<u32>,
}

impl PageToken {
    /// The token of a query's first page.
    pub fn first(fingerprint: u64) -> Self {
        Self {
            fingerprint,
            offset: 0,
            served: HashSet::new(),
        }
    }

    /// Whether `id` was served on an earlier page.
    pub fn served(&self, id: &str) -> bool {
        self.served.contains(&item_hash(id))
    }

    /// The token of the page after this one, which served `ids`.
    pub fn after<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut next = self.clone();
        for id in ids {
            next.served.insert(item_hash(id));
            next.offset += 1;
        }
        next
    }

    /// The token as text: URL-safe base64, about 5.4 characters per item served.
    pub fn encode(&self) -> String {
        let mut hashes: Vec<u32> = self.served.iter().copied().collect();
        // A canonical order: the same pages give the same token.
        hashes.sort_unstable();
        let mut bytes = Vec::with_capacity(HEADER + 4 * hashes.len());
        bytes.push(FORMAT);
        bytes.extend_from_slice(&self.fingerprint.to_le_bytes());
        bytes.extend_from_slice(&(self.offset as u32).to_le_bytes());
        for h in hashes {
            bytes.extend_from_slice(&h.to_le_bytes());
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a token a client sent back; `max_offset` bounds how deep it may go.
    pub fn decode(text: &str, max_offset: usize) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(
                "page_token",
                format!("is not a page token of this server: {why}"),
            )
            .with_hint("send back `next_page_token` as it came, or leave it out for the first page")
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| bad("it is not URL-safe base64"))?;
        if bytes.len() < HEADER || !(bytes.len() - HEADER).is_multiple_of(4) || bytes[0] != FORMAT {
            return Err(bad("its layout is unknown"));
        }
        if (bytes.len() - HEADER) / 4 > max_offset {
            return Err(bad("it goes deeper than the deepest page served"));
        }
        let fingerprint = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let offset = u32::from_le_bytes(bytes[9..13].try_into().expect("4 bytes")) as usize;
        let served: HashSet<u32> = bytes[HEADER..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if offset > max_offset || served.len() > offset {
            return Err(bad("it goes deeper than the deepest page served"));
        }
        Ok(Self {
            fingerprint,
            offset,
            served,
        })
    }
}

/// What a token continues: the model, the query text and its parameter values. Stable across
/// processes and builds (FNV-1a, not the standard library's hasher), so replicas agree.
pub fn fingerprint(model: &str, text: &str, params: &Params) -> u64 {
    let mut h = Fnv::default();
    h.write(model.as_bytes());
    h.write(&[0]);
    h.write(text.as_bytes());
    for (name, value) in params {
        h.write(&[0]);
        h.write(name.as_bytes());
        h.write(&[0]);
        h.write(format!("{value:?}").as_bytes());
    }
    h.0
}

fn item_hash(id: &str) -> u32 {
    let mut h = Fnv::default();
    h.write(id.as_bytes());
    (h.0 ^ (h.0 >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamValue;

    #[test]
    fn tokens_round_trip_and_remember_what_was_served() {
        let t = PageToken::first(42).after(["a", "b"]).after(["c"]);
        assert_eq!(t.offset, 3);
        let text = t.encode();
        assert!(text.len() < 40, "{text}");
        let back = PageToken::decode(&text, 1000).unwrap();
        assert_eq!(back, t);
        assert!(back.served("a") && back.served("c") && !back.served("d"));
        // The same pages in another order give the same token.
        assert_eq!(PageToken::first(42).after(["c", "b", "a"]).encode(), text);
    }

    #[test]
    fn foreign_or_damaged_tokens_are_refused_with_the_field() {
        for bad in [
            "",
            "not base64!",
            "AAAA",
            &PageToken::first(1).encode()[..10],
        ] {
            let e = PageToken::decode(bad, 1000).unwrap_err().to_string();
            assert!(e.contains("page_token"), "{bad}: {e}");
        }
        let deep = PageToken::first(1).after(["a", "b", "c"]).encode();
        assert!(PageToken::decode(&deep, 2).is_err());
    }

    #[test]
    fn fingerprints_tell_queries_and_parameters_apart() {
        let mut p = Params::new();
        p.insert("user_id".into(), ParamValue::Str("1".into()));
        let a = fingerprint("m", "SELECT * LIMIT 5", &p);
        assert_eq!(a, fingerprint("m", "SELECT * LIMIT 5", &p));
        assert_ne!(a, fingerprint("n", "SELECT * LIMIT 5", &p));
        assert_ne!(a, fingerprint("m", "SELECT * LIMIT 6", &p));
        p.insert("user_id".into(), ParamValue::Str("2".into()));
        assert_ne!(a, fingerprint("m", "SELECT * LIMIT 5", &p));
        // Pinned: replicas of different builds must agree.
        assert_eq!(item_hash("a"), {
            let h: u64 = 0xaf63_dc4c_8601_ec8c;
            (h ^ (h >> 32)) as u32
        });
    }
}
