//! The catalog image: the bytes of a Raft snapshot and of a backup, written and read as a stream
//! so that neither side ever holds a whole catalog in memory.
//!
//! Format 2 (this release writes it):
//!
//! ```text
//! magic      8 bytes   "ARTSNAP" 0x02
//! pair*      1 byte tag 0x01, key length (u32 LE), key, value length (u32 LE), value
//! end        1 byte tag 0x00, pair count (u64 LE), SHA-256 of every byte before the digest
//! ```
//!
//! The reader checks every length against [`MAX_KEY`] and [`MAX_VALUE`] before it allocates, and
//! the count and digest at the end, so a truncated, padded or altered image is refused. Callers
//! that must not act on a partial image (installing a snapshot, restoring a backup) read it once
//! to [`verify`] it before they change anything. Format 1 (one bincode value holding every pair,
//! written by earlier releases) is still read, whole, by [`pairs_of`].

use std::io::{BufRead, Read, Write};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::engine::KeyValue;
use crate::Error;

const MAGIC: &[u8; 8] = b"ARTSNAP\x02";
const PAIR: u8 = 1;
const END: u8 = 0;
/// Longest key an image may hold (catalog keys are ids and short prefixes).
pub const MAX_KEY: usize = 64 * 1024;
/// Longest value an image may hold: no catalog value is larger than a Raft entry may be.
pub const MAX_VALUE: usize = 64 * 1024 * 1024;

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Storage(format!("not a valid catalog image: {what}"))
}

/// Writes an image pair by pair.
pub struct ImageWriter<W: Write> {
    out: W,
    hash: Sha256,
    pairs: u64,
    bytes: u64,
}

impl<W: Write> ImageWriter<W> {
    pub fn new(out: W) -> Result<Self, Error> {
        let mut w = Self { out, hash: Sha256::new(), pairs: 0, bytes: 0 };
        w.write(MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).map_err(|e| Error::Storage(format!("writing a catalog image: {e}")))
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return Err(Error::Storage(format!(
                "a catalog entry of {} + {} bytes is larger than an image may hold",
                key.len(),
                value.len()
            )));
        }
        self.write(&[PAIR])?;
        self.write(&(key.len() as u32).to_le_bytes())?;
        self.write(key)?;
        self.write(&(value.len() as u32).to_le_bytes())?;
        self.write(value)?;
        self.pairs += 1;
        Ok(())
    }

    /// Ends the image; returns the output, the number of pairs and the image's size in bytes.
    pub fn finish(mut self) -> Result<(W, u64, u64), Error> {
        self.write(&[END])?;
        let pairs = self.pairs;
        self.write(&pairs.to_le_bytes())?;
        let digest = std::mem::take(&mut self.hash).finalize();
        self.out.write_all(&digest).map_err(|e| Error::Storage(format!("writing a catalog image: {e}")))?;
        self.out.flush().map_err(|e| Error::Storage(format!("writing a catalog image: {e}")))?;
        Ok((self.out, pairs, self.bytes + digest.len() as u64))
    }
}

/// Reads an image pair by pair; the last item is an error unless the end, its count and its
/// digest are all right.
pub struct ImageReader<R: Read> {
    input: R,
    hash: Sha256,
    pairs: u64,
    state: State,
}

#[derive(PartialEq)]
enum State {
    Start,
    Pairs,
    Done,
}

impl<R: Read> ImageReader<R> {
    pub fn new(input: R) -> Self {
        Self { input, hash: Sha256::new(), pairs: 0, state: State::Start }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => bad("it ends early"),
            _ => Error::Storage(format!("reading a catalog image: {e}")),
        })?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn read_len(&mut self, max: usize, what: &str) -> Result<usize, Error> {
        let mut len = [0u8; 4];
        self.read(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > max {
            return Err(bad(format!("a {what} of {len} bytes (at most {max})")));
        }
        Ok(len)
    }

    fn next_pair(&mut self) -> Result<Option<KeyValue>, Error> {
        if self.state == State::Start {
            let mut magic = [0u8; 8];
            self.read(&mut magic)?;
            if &magic != MAGIC {
                return Err(bad("it does not start with the format 2 header"));
            }
            self.state = State::Pairs;
        }
        let mut tag = [0u8; 1];
        self.read(&mut tag)?;
        match tag[0] {
            PAIR => {
                let klen = self.read_len(MAX_KEY, "key")?;
                let mut key = vec![0u8; klen];
                self.read(&mut key)?;
                let vlen = self.read_len(MAX_VALUE, "value")?;
                let mut value = vec![0u8; vlen];
                self.read(&mut value)?;
                self.pairs += 1;
                Ok(Some((key, value)))
            }
            END => {
                let mut count = [0u8; 8];
                self.read(&mut count)?;
                if u64::from_le_bytes(count) != self.pairs {
                    return Err(bad(format!("it says {} pairs and holds {}", u64::from_le_bytes(count), self.pairs)));
                }
                let expected = std::mem::take(&mut self.hash).finalize();
                let mut digest = [0u8; 32];
                self.input.read_exact(&mut digest).map_err(|_| bad("its digest is cut short"))?;
                if digest[..] != expected[..] {
                    return Err(bad("its SHA-256 does not match its content"));
                }
                let mut rest = [0u8; 1];
                match self.input.read(&mut rest) {
                    Ok(0) => Ok(None),
                    Ok(_) => Err(bad("bytes follow its end")),
                    Err(e) => Err(Error::Storage(format!("reading a catalog image: {e}"))),
                }
            }
            other => Err(bad(format!("unknown record tag {other}"))),
        }
    }
}

impl<R: Read> Iterator for ImageReader<R> {
    type Item = Result<KeyValue, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        match self.next_pair() {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole image without keeping it; returns how many pairs it holds and how many of them
/// `count` picked.
pub fn verify<R: Read>(input: R, count: impl Fn(&[u8]) -> bool) -> Result<(u64, u64), Error> {
    let (mut pairs, mut picked) = (0, 0);
    for pair in ImageReader::new(input) {
        let (k, _) = pair?;
        pairs += 1;
        picked += u64::from(count(&k));
    }
    Ok((pairs, picked))
}

/// Whether `bytes` begin like an image of the current format.
pub fn is_current(mut input: impl BufRead) -> bool {
    input.fill_buf().is_ok_and(|b| b.starts_with(MAGIC))
}

/// Format 1 of the image (earlier releases): every key and value in one bincode value.
#[derive(Deserialize)]
struct FormatOne {
    format: u32,
    pairs: Vec<KeyValue>,
}

/// Every pair of an image in either format, from memory. Format 1 images are decoded whole, as
/// the release that wrote them did.
pub fn pairs_of(bytes: &[u8]) -> Result<Box<dyn Iterator<Item = Result<KeyValue, Error>> + '_>, Error> {
    if bytes.starts_with(MAGIC) {
        return Ok(Box::new(ImageReader::new(bytes)));
    }
    let old: FormatOne = bincode::deserialize(bytes).map_err(|e| bad(format!("neither format 2 nor 1 ({e})")))?;
    if old.format != 1 {
        return Err(bad(format!("format {} is not one this release reads", old.format)));
    }
    Ok(Box::new(old.pairs.into_iter().map(Ok)))
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn image(pairs: &[KeyValue]) -> Vec<u8> {
        let mut w = ImageWriter::new(Vec::new()).unwrap();
        for (k, v) in pairs {
            w.put(k, v).unwrap();
        }
        w.finish().unwrap().0
    }

    fn pairs() -> impl Strategy<Value = Vec<KeyValue>> {
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..40), proptest::collection::vec(any::<u8>(), 0..200)),
            0..20,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn images_round_trip(pairs in pairs()) {
            let bytes = image(&pairs);
            let read: Vec<KeyValue> = ImageReader::new(&bytes[..]).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&read, &pairs);
            prop_assert_eq!(verify(&bytes[..], |_| true).unwrap(), (pairs.len() as u64, pairs.len() as u64));
            prop_assert!(is_current(&bytes[..]));
            prop_assert_eq!(pairs_of(&bytes).unwrap().collect::<Result<Vec<_>, _>>().unwrap(), pairs);
        }

        /// Any cut, any flipped bit and any extra byte is refused, never read as a shorter catalog.
        #[test]
        fn damaged_images_are_refused(pairs in pairs(), at in any::<prop::sample::Index>(), bit in 0u8..8, extra in any::<u8>()) {
            let bytes = image(&pairs);
            let i = at.index(bytes.len());
            prop_assert!(verify(&bytes[..i], |_| true).is_err(), "cut at {}", i);
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            prop_assert!(verify(&flipped[..], |_| true).is_err(), "bit {} of byte {}", bit, i);
            let mut longer = bytes.clone();
            longer.push(extra);
            prop_assert!(verify(&longer[..], |_| true).is_err());
        }

        /// Arbitrary bytes after the header never panic, allocate past the limits or pass.
        #[test]
        fn arbitrary_bytes_are_refused(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&body);
            prop_assert!(verify(&bytes[..], |_| true).is_err());
            // As a format 1 image (bincode) the same bytes must fail or decode, not panic.
            let _ = pairs_of(&body).map(|p| p.count());
        }
    }

    #[test]
    fn lengths_past_the_limits_are_refused_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.push(PAIR);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = verify(&bytes[..], |_| true).unwrap_err().to_string();
        assert!(e.contains("key of 4294967295 bytes"), "{e}");
    }

    #[test]
    fn format_one_images_are_still_read() {
        #[derive(serde::Serialize)]
        struct One {
            format: u32,
            pairs: Vec<KeyValue>,
        }
        let pairs = vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), Vec::new())];
        let bytes = bincode::serialize(&One { format: 1, pairs: pairs.clone() }).unwrap();
        assert!(!is_current(&bytes[..]));
        assert_eq!(pairs_of(&bytes).unwrap().collect::<Result<Vec<_>, _>>().unwrap(), pairs);
        let two = bincode::serialize(&One { format: 7, pairs }).unwrap();
        assert!(pairs_of(&two).is_err());
    }
}
