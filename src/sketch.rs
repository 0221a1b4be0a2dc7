//! Distinct readers in fixed space: HyperLogLog++ sketches (Cloudflare's `cardinality-estimator`)
//! of the readers' keyed hashes, one per feed, day and reader family, stored as blobs.
//!
//! Why a sketch: one row per reader let anyone with a loop of User-Agents (or of
//! `X-Forwarded-For` values behind a trusted proxy) grow the store and every figure computed from
//! it without bound. A sketch answers "how many distinct readers" in a size fixed by its
//! precision, whatever the traffic, and two sketches of the same precision merge into the sketch
//! of the union, which is what replicas sharing a database (each merges its flush into the stored
//! sketch) and the 7-day window (up to 7 daily sketches merged) need.
//!
//! The input is already a uniform 64-bit value (SipHash-2-4 of address and User-Agent under the
//! database's secret, see `readership::reader_hash`), so it goes in as the hash itself
//! ([`Sketch::insert`] calls `insert_hash`): no second hasher, nothing seeded per process, and the
//! same reader gives the same register update on every replica.
//!
//! Two precisions:
//! - [`ALL`] (p = 12): every reader of a feed-day, the headline figure. Exact (up to hash
//!   collisions) to 128 readers, then 4,096 six-bit registers: 3,084 bytes, standard error
//!   1.04/√4096 ≈ 1.6%.
//! - [`FAMILY`] (p = 8): one reader family's share (Miniflux, NetNewsWire…). Exact to 128
//!   readers (at most 512 bytes), then 256 registers: 204 bytes, ≈ 6.5%. The shares are scaled to
//!   the headline when shown, so the breakdown adds up to the figure.
//!
//! The stored form is ours, not the crate's serde form (which carries an in-memory tagged pointer):
//! `[version, precision, representation]` then the small form's 8 bytes or the array's / the
//! registers' 32-bit words, little-endian. A blob that does not parse is refused with an error,
//! never trusted into an estimate.

use cardinality_estimator::CardinalityEstimator;

/// Precision of the sketch of all readers of a feed-day.
pub const ALL: u8 = 12;
/// Precision of a reader family's sketch.
pub const FAMILY: u8 = 8;

/// Largest stored blob: the p = 12 registers (771 words) and the 3-byte header.
pub const MAX_BLOB: usize = 3 + 4 * (4096 * 6 / 32 + 3);
/// Largest stored family blob: a full array (128 words) and the header.
pub const MAX_FAMILY_BLOB: usize = 3 + 4 * 128;

const VERSION: u8 = 1;
const SMALL: u8 = 0;
const ARRAY: u8 = 1;
const HLL: u8 = 3;

// The hasher is never used: readers go in as their keyed hash (`insert_hash`).
type All = CardinalityEstimator<u64, std::hash::DefaultHasher, 12, 6>;
type Family = CardinalityEstimator<u64, std::hash::DefaultHasher, 8, 6>;

#[derive(Clone)]
enum Inner {
    All(All),
    Family(Family),
}

/// A mergeable estimate of distinct readers, of one of the two precisions.
#[derive(Clone)]
pub struct Sketch(Inner);

/// A blob that is not a sketch, or two sketches that cannot merge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("readership sketch: {0}")]
pub struct SketchError(pub &'static str);

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(p={}, ≈{})", self.precision(), self.estimate())
    }
}

impl Sketch {
    /// An empty sketch of precision [`ALL`] or [`FAMILY`].
    pub fn new(precision: u8) -> Sketch {
        if precision == ALL {
            Sketch(Inner::All(All::new()))
        } else {
            debug_assert_eq!(precision, FAMILY);
            Sketch(Inner::Family(Family::new()))
        }
    }

    pub fn precision(&self) -> u8 {
        match self.0 {
            Inner::All(_) => ALL,
            Inner::Family(_) => FAMILY,
        }
    }

    /// Adds one reader's keyed hash.
    pub fn insert(&mut self, hash: u64) {
        match &mut self.0 {
            Inner::All(s) => s.insert_hash(hash),
            Inner::Family(s) => s.insert_hash(hash),
        }
    }

    /// Estimated distinct readers.
    pub fn estimate(&self) -> u64 {
        match &self.0 {
            Inner::All(s) => s.estimate() as u64,
            Inner::Family(s) => s.estimate() as u64,
        }
    }

    /// Adds `other`'s readers (a set union); both must have the same precision.
    pub fn merge(&mut self, other: &Sketch) -> Result<(), SketchError> {
        match (&mut self.0, &other.0) {
            (Inner::All(a), Inner::All(b)) => a.merge(b),
            (Inner::Family(a), Inner::Family(b)) => a.merge(b),
            _ => return Err(SketchError("precisions differ")),
        }
        Ok(())
    }

    /// Bytes held on the heap and inline (what the memory bound counts).
    pub fn size_of(&self) -> usize {
        match &self.0 {
            Inner::All(s) => s.size_of(),
            Inner::Family(s) => s.size_of(),
        }
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = match &self.0 {
            Inner::All(s) => serde_json::to_value(s),
            Inner::Family(s) => serde_json::to_value(s),
        }
        .expect("a sketch serialises");
        // The crate's form: [tagged word, null | [u32…]].
        let word = value[0].as_u64().unwrap_or(0);
        let tag = (word & 3) as u8;
        let mut out = vec![VERSION, self.precision(), tag];
        match value[1].as_array() {
            None => out.extend_from_slice(&word.to_le_bytes()),
            Some(words) => {
                out.reserve(words.len() * 4);
                for w in words {
                    out.extend_from_slice(&(w.as_u64().unwrap_or(0) as u32).to_le_bytes());
                }
            }
        }
        out
    }

    /// Reads a stored form back.
    pub fn from_bytes(blob: &[u8]) -> Result<Sketch, SketchError> {
        let [version, precision, tag, rest @ ..] = blob else {
            return Err(SketchError("too short"));
        };
        if *version != VERSION {
            return Err(SketchError("unknown version"));
        }
        let registers = match *precision {
            ALL => 1usize << ALL,
            FAMILY => 1usize << FAMILY,
            _ => return Err(SketchError("unknown precision")),
        };
        let value = match *tag {
            SMALL => {
                let word: [u8; 8] = rest.try_into().map_err(|_| SketchError("bad small form"))?;
                let word = u64::from_le_bytes(word);
                if word & 3 != 0 {
                    return Err(SketchError("bad small form"));
                }
                serde_json::json!([word, null])
            }
            ARRAY | HLL => {
                if rest.len() % 4 != 0 {
                    return Err(SketchError("ragged words"));
                }
                let words: Vec<u32> = rest
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                if *tag == HLL {
                    if words.len() != registers * 6 / 32 + 3 {
                        return Err(SketchError("bad register count"));
                    }
                    // Word 0 is the count of zero registers, word 1 their harmonic sum: the
                    // estimate trusts both, so a value no sketch can hold is refused here.
                    let sum = f32::from_bits(words[1]);
                    if words[0] as usize > registers || !sum.is_finite() || sum <= 0.0 {
                        return Err(SketchError("bad register summary"));
                    }
                } else if !(3..=128).contains(&words.len()) || words.contains(&0) {
                    return Err(SketchError("bad array form"));
                }
                serde_json::json!([u64::from(*tag), words])
            }
            _ => return Err(SketchError("unknown representation")),
        };
        let inner = if *precision == ALL {
            Inner::All(serde_json::from_value(value).map_err(|_| SketchError("refused"))?)
        } else {
            Inner::Family(serde_json::from_value(value).map_err(|_| SketchError("refused"))?)
        };
        Ok(Sketch(inner))
    }
}

/// Merges the stored sketch `a` with `b` (either may be absent), for a store's read-modify-write.
pub fn merge_blobs(a: Option<&[u8]>, b: &[u8]) -> Result<Vec<u8>, SketchError> {
    let mut merged = Sketch::from_bytes(b)?;
    if let Some(a) = a {
        // A stored blob that no longer parses is replaced rather than wedging every later flush.
        if let Ok(stored) = Sketch::from_bytes(a) {
            merged.merge(&stored)?;
        }
    }
    Ok(merged.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Well-spread 64-bit values standing in for the readers' keyed hashes.
    fn hashes(seed: u64, n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(move |i| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&seed.to_le_bytes());
            b[8..].copy_from_slice(&i.to_le_bytes());
            xxhash_rust::xxh3::xxh3_64(&b)
        })
    }

    #[test]
    fn small_sets_are_exact_and_round_trip() {
        for precision in [ALL, FAMILY] {
            for n in [0u64, 1, 2, 3, 17, 128] {
                let mut s = Sketch::new(precision);
                for h in hashes(7, n) {
                    s.insert(h);
                    s.insert(h);
                }
                assert_eq!(s.estimate(), n, "p={precision} n={n}");
                let back = Sketch::from_bytes(&s.to_bytes()).unwrap();
                assert_eq!(back.estimate(), n);
                assert_eq!(
                    back.to_bytes(),
                    s.to_bytes(),
                    "the stored form is canonical"
                );
            }
        }
    }

    #[test]
    fn large_sets_stay_within_the_error_in_fixed_space() {
        // 3 standard errors: the estimate misses by more only about once in 370 runs, and the
        // inputs here are fixed, so the test is deterministic.
        for (precision, n, max_blob) in [(ALL, 100_000u64, MAX_BLOB), (FAMILY, 20_000, 3 + 204)] {
            let mut s = Sketch::new(precision);
            for h in hashes(1, n) {
                s.insert(h);
            }
            let err = 1.04 / f64::from(1u32 << precision).sqrt();
            let got = s.estimate() as f64;
            assert!(
                (got - n as f64).abs() <= 3.0 * err * n as f64,
                "p={precision}: {got} for {n}"
            );
            let blob = s.to_bytes();
            assert_eq!(blob.len(), max_blob, "the dense form has a fixed size");
            assert_eq!(Sketch::from_bytes(&blob).unwrap().estimate(), s.estimate());
        }
    }

    #[test]
    fn merging_is_a_union() {
        // Two replicas see overlapping readers; the merged blob counts each once.
        let mut a = Sketch::new(ALL);
        let mut b = Sketch::new(ALL);
        for h in hashes(3, 60) {
            a.insert(h);
        }
        for h in hashes(3, 100) {
            b.insert(h);
        }
        let merged = merge_blobs(Some(&a.to_bytes()), &b.to_bytes()).unwrap();
        assert_eq!(Sketch::from_bytes(&merged).unwrap().estimate(), 100);
        // Into nothing stored, and across representations (array into dense).
        assert_eq!(merge_blobs(None, &a.to_bytes()).unwrap(), a.to_bytes());
        let mut big = Sketch::new(ALL);
        for h in hashes(4, 10_000) {
            big.insert(h);
        }
        let m = Sketch::from_bytes(&merge_blobs(Some(&a.to_bytes()), &big.to_bytes()).unwrap())
            .unwrap();
        let e = m.estimate() as f64;
        assert!((e - 10_060.0).abs() < 10_060.0 * 0.05, "{e}");
        let fam = Sketch::new(FAMILY);
        assert!(a.clone().merge(&fam).is_err(), "precisions never mix");
    }

    #[test]
    fn corrupt_blobs_are_refused() {
        let mut s = Sketch::new(ALL);
        for h in hashes(5, 1000) {
            s.insert(h);
        }
        let good = s.to_bytes();
        let mut zeros = good.clone();
        zeros[3..7].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut short = good.clone();
        short.pop();
        for bad in [
            vec![],
            vec![1, 12],
            vec![2, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 12, 2],
            vec![1, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 12, 1, 1, 0, 0, 0],
            short,
            zeros,
        ] {
            assert!(Sketch::from_bytes(&bad).is_err(), "{bad:?}");
        }
        // A stored blob gone bad is replaced by the new readers.
        let fresh = Sketch::new(ALL).to_bytes();
        assert_eq!(merge_blobs(Some(&[9, 9]), &fresh).unwrap(), fresh);
    }
}
