//! Flat little-endian arrays with a small header (magic, element kind, length), so that a
//! truncated or foreign file is an error instead of garbage vectors.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

const MAGIC: &[u8; 4] = b"FEDA";

fn write_raw(path: &Path, kind: u8, len: usize, bytes: &[u8]) -> Result<()> {
    let ctx = || format!("writing {}", path.display());
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).ctx(ctx)?);
    f.write_all(MAGIC).ctx(ctx)?;
    f.write_all(&[kind, 0, 0, 0]).ctx(ctx)?;
    f.write_all(&(len as u64).to_le_bytes()).ctx(ctx)?;
    f.write_all(bytes).ctx(ctx)?;
    let f = f
        .into_inner()
        .map_err(|e| Error::storage(ctx(), e.into_error()))?;
    f.sync_all().ctx(ctx)
}

fn read_raw(path: &Path, kind: u8, width: usize) -> Result<(usize, Vec<u8>)> {
    let ctx = || format!("reading {}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ctx(ctx)?
        .read_to_end(&mut bytes)
        .ctx(ctx)?;
    if bytes.len() < 16 || &bytes[..4] != MAGIC || bytes[4] != kind {
        return Err(Error::Internal(format!(
            "{} is not a Feed array file of the expected kind",
            path.display()
        )));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    if len.checked_mul(width).and_then(|n| n.checked_add(16)) != Some(bytes.len()) {
        return Err(Error::Internal(format!(
            "{} is truncated: expected {len} elements",
            path.display()
        )));
    }
    bytes.drain(..16);
    Ok((len, bytes))
}

macro_rules! array_io {
    ($write:ident, $read:ident, $t:ty, $kind:expr) => {
        pub fn $write(path: &Path, values: &[$t]) -> Result<()> {
            let mut bytes = Vec::with_capacity(values.len() * std::mem::size_of::<$t>());
            for v in values {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            write_raw(path, $kind, values.len(), &bytes)
        }

        pub fn $read(path: &Path) -> Result<Vec<$t>> {
            const W: usize = std::mem::size_of::<$t>();
            let (_, bytes) = read_raw(path, $kind, W)?;
            Ok(bytes
                .chunks_exact(W)
                .map(|c| <$t>::from_le_bytes(c.try_into().expect("width")))
                .collect())
        }
    };
}

array_io!(write_f32s, read_f32s, f32, 1);
array_io!(write_u32s, read_u32s, u32, 2);
array_io!(write_u64s, read_u64s, u64, 3);
array_io!(write_i64s, read_i64s, i64, 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.f32");
        write_f32s(&p, &[1.0, -2.5, 3.25]).unwrap();
        assert_eq!(read_f32s(&p).unwrap(), vec![1.0, -2.5, 3.25]);
        assert!(read_u32s(&p).is_err(), "kind is checked");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_f32s(&p).is_err(), "truncation is detected");
    }
}
