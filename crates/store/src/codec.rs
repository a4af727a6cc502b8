//! Byte encodings inside chunks: varints, the integer delta + run-length codec, Gorilla-style
//! XOR, presence runs, and the one-value "token" used by the open (not yet sealed) block.
//!
//! The module is public so the `month` example can measure one codec against the other on the
//! same data; the store itself encodes each chunk with both and keeps the smaller
//! ([`encode_best`]).

use std::fmt;

/// A chunk could not be decoded: its bytes are truncated or inconsistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptChunk(pub &'static str);

impl fmt::Display for CorruptChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CorruptChunk {}

/// Which value codec a chunk uses; stored as the chunk's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Integers only: first value, then deltas divided by their greatest common divisor as
    /// zigzag varints; up to two unchanged values before a change ride in the change's two
    /// low bits, longer runs of unchanged values take one token.
    IntDelta,
    /// Any `f64`: Gorilla-style XOR of consecutive bit patterns with a leading/trailing-zero
    /// window (Pelkonen et al., VLDB 2015).
    Xor,
    /// Integers only, like `IntDelta` but each token is the value itself and runs are runs
    /// of zeros: for columns that are mostly zero with isolated spikes (rollup envelopes),
    /// where deltas would pay every spike twice.
    IntValue,
    /// Every value has the same bits: the value once (a zigzag varint for integers, eight
    /// bytes otherwise). Most series of a quiet host hold still for hours, and in a block
    /// with tens of thousands of them the bytes saved on each add up.
    Constant,
}

const TAG_INT_DELTA: u8 = 0;
const TAG_XOR: u8 = 1;
const TAG_INT_VALUE: u8 = 2;
const TAG_CONSTANT_INT: u8 = 3;
const TAG_CONSTANT_BITS: u8 = 4;

/// 2^53: every integer of at most this magnitude is exact in an `f64`.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn get_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64, CorruptChunk> {
    let mut result = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *buf.get(*pos).ok_or(CorruptChunk("truncated varint"))?;
        *pos += 1;
        // The tenth byte may only carry the top bit of a u64.
        if shift == 63 && byte > 1 {
            return Err(CorruptChunk("varint overflows 64 bits"));
        }
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(result);
        }
        shift += 7;
    }
}

pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// The value as an integer if the integer codec can carry it exactly. Negative zero is
/// excluded because it would come back as positive zero.
pub(crate) fn as_safe_int(value: f64) -> Option<i64> {
    // The round trip through i64 below rejects fractions.
    if value.is_nan() || value.abs() > MAX_SAFE_INTEGER {
        return None;
    }
    let int = value as i64;
    (int as f64 == value && !(int == 0 && value.is_sign_negative())).then_some(int)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn safe_ints(values: &[f64]) -> Option<Vec<i64>> {
    values.iter().map(|&value| as_safe_int(value)).collect()
}

/// Encodes `values` with `codec`, appending to `out`. Returns false (and leaves `out`
/// untouched) when an integer codec is asked to carry a non-integer.
pub fn encode_with(values: &[f64], codec: Codec, out: &mut Vec<u8>) -> bool {
    match codec {
        Codec::IntDelta | Codec::IntValue => match safe_ints(values) {
            Some(ints) => {
                encode_int_stream(&ints, codec == Codec::IntValue, out);
                true
            }
            None => false,
        },
        Codec::Xor => {
            encode_xor(values, out);
            true
        }
        Codec::Constant => encode_constant(values, out),
    }
}

fn encode_constant(values: &[f64], out: &mut Vec<u8>) -> bool {
    let Some(first) = values.first() else {
        return false;
    };
    if values
        .iter()
        .any(|value| value.to_bits() != first.to_bits())
    {
        return false;
    }
    match as_safe_int(*first) {
        Some(int) => {
            out.push(TAG_CONSTANT_INT);
            put_uvarint(out, zigzag(int));
        }
        None => {
            out.push(TAG_CONSTANT_BITS);
            out.extend_from_slice(&first.to_bits().to_le_bytes());
        }
    }
    true
}

/// Encodes `values` with whichever codec gives fewer bytes and returns the one chosen.
pub fn encode_best(values: &[f64], out: &mut Vec<u8>) -> Codec {
    if encode_constant(values, out) {
        return Codec::Constant;
    }
    let start = out.len();
    let Some(ints) = safe_ints(values) else {
        encode_xor(values, out);
        return Codec::Xor;
    };
    encode_int_stream(&ints, false, out);
    let mut best = (Codec::IntDelta, out.len() - start);
    // XOR needs at least the tag, the first value and one bit per further value, and the
    // value codec at least a byte per run; when the delta encoding is already that small
    // (the common flat chunk), skip trying the others.
    let xor_min_len = match values.len() {
        0 => 1,
        n => 9 + (n - 1).div_ceil(8),
    };
    if best.1 <= xor_min_len.min(5) {
        return Codec::IntDelta;
    }
    // Values as tokens only pay off when most of them are zero (envelope columns).
    let zeros = ints.iter().filter(|&&int| int == 0).count();
    let mut candidate = Vec::new();
    for codec in [Codec::IntValue, Codec::Xor] {
        if codec == Codec::IntValue && zeros * 2 < ints.len() {
            continue;
        }
        if codec == Codec::Xor && best.1 <= xor_min_len {
            continue;
        }
        candidate.clear();
        match codec {
            Codec::Xor => encode_xor(values, &mut candidate),
            _ => encode_int_stream(&ints, true, &mut candidate),
        }
        if candidate.len() < best.1 {
            out.truncate(start);
            out.extend_from_slice(&candidate);
            best = (codec, candidate.len());
        }
    }
    best.0
}

/// Decodes `n` values written by [`encode_with`] or [`encode_best`], appending to `out`.
pub fn decode(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    out: &mut Vec<f64>,
) -> Result<(), CorruptChunk> {
    let tag = *buf.get(*pos).ok_or(CorruptChunk("missing codec tag"))?;
    match tag {
        TAG_INT_DELTA | TAG_INT_VALUE => {
            let mut ints = Vec::with_capacity(n);
            decode_int_stream(buf, pos, n, &mut ints)?;
            out.extend(ints.into_iter().map(|int| int as f64));
            Ok(())
        }
        TAG_XOR => decode_xor(buf, pos, n, out),
        TAG_CONSTANT_INT => {
            *pos += 1;
            let value = unzigzag(get_uvarint(buf, pos)?) as f64;
            out.extend(std::iter::repeat_n(value, n));
            Ok(())
        }
        TAG_CONSTANT_BITS => {
            let bytes = buf
                .get(*pos + 1..*pos + 9)
                .ok_or(CorruptChunk("truncated constant"))?;
            *pos += 9;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes);
            out.extend(std::iter::repeat_n(
                f64::from_bits(u64::from_le_bytes(raw)),
                n,
            ));
            Ok(())
        }
        _ => Err(CorruptChunk("unknown codec tag")),
    }
}

/// Runs of up to this many unchanged values are carried in the low bits of the next change.
const MAX_INLINE_RUN: u64 = 2;
/// Low-bit pattern of a token that is a run of unchanged values, not a change.
const RUN_TOKEN: u64 = 3;

/// The integer codecs on raw `i64`s; the delta one also encodes timestamp lists. Callers
/// keep terms within 2^61 in magnitude (values are within 2^53, interval offsets within a
/// block span), so a zigzagged term shifted left by two cannot overflow.
///
/// ```text
/// chunk := tag:u8 divisor:varint first:zigzag-varint token*
/// token := (zigzag(term / divisor) << 2 | r):varint   r < 3 zero terms, then this term
///        | (run << 2 | 3):varint                      `run` zero terms
/// term  := value - previous value   (IntDelta: zero = unchanged)
///        | value                    (IntValue: zero = zero)
/// ```
fn encode_int_stream(ints: &[i64], by_value: bool, out: &mut Vec<u8>) {
    let term = |i: usize| {
        if by_value {
            ints[i]
        } else {
            ints[i].wrapping_sub(ints[i - 1])
        }
    };
    out.push(if by_value {
        TAG_INT_VALUE
    } else {
        TAG_INT_DELTA
    });
    let mut divisor = 0u64;
    for i in 1..ints.len() {
        divisor = gcd(divisor, term(i).unsigned_abs());
    }
    // A divisor of 2^63 does not fit an i64; fall back to 1, which divides everything.
    if divisor == 0 || divisor > i64::MAX as u64 {
        divisor = 1;
    }
    put_uvarint(out, divisor);
    let Some(&first) = ints.first() else {
        return;
    };
    put_uvarint(out, zigzag(first));
    let mut zeros = 0u64;
    for i in 1..ints.len() {
        let term = term(i);
        if term == 0 {
            zeros += 1;
            continue;
        }
        let inline = if zeros <= MAX_INLINE_RUN {
            zeros
        } else {
            put_uvarint(out, (zeros << 2) | RUN_TOKEN);
            0
        };
        put_uvarint(out, (zigzag(term / divisor as i64) << 2) | inline);
        zeros = 0;
    }
    if zeros > 0 {
        put_uvarint(out, (zeros << 2) | RUN_TOKEN);
    }
}

/// The delta codec on raw `i64`s, for timestamp lists.
pub(crate) fn encode_ints(ints: &[i64], out: &mut Vec<u8>) {
    encode_int_stream(ints, false, out);
}

/// Decodes either integer codec.
pub(crate) fn decode_int_stream(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), CorruptChunk> {
    let by_value = match buf.get(*pos) {
        Some(&TAG_INT_DELTA) => false,
        Some(&TAG_INT_VALUE) => true,
        _ => return Err(CorruptChunk("expected an integer codec")),
    };
    *pos += 1;
    let divisor = get_uvarint(buf, pos)?;
    if divisor == 0 || divisor > i64::MAX as u64 {
        return Err(CorruptChunk("bad divisor"));
    }
    if n == 0 {
        return Ok(());
    }
    let mut current = unzigzag(get_uvarint(buf, pos)?);
    out.push(current);
    let zero_value = |current: i64| if by_value { 0 } else { current };
    let mut remaining = (n - 1) as u64;
    while remaining > 0 {
        let token = get_uvarint(buf, pos)?;
        let (zeros, term) = if token & 3 == RUN_TOKEN {
            (token >> 2, None)
        } else {
            (token & 3, Some(unzigzag(token >> 2)))
        };
        let needed = zeros + u64::from(term.is_some());
        if needed == 0 || needed > remaining || term == Some(0) {
            return Err(CorruptChunk("bad integer token"));
        }
        if zeros > 0 {
            current = zero_value(current);
            for _ in 0..zeros {
                out.push(current);
            }
        }
        if let Some(term) = term {
            let scaled = term.wrapping_mul(divisor as i64);
            current = if by_value {
                scaled
            } else {
                current.wrapping_add(scaled)
            };
            out.push(current);
        }
        remaining -= needed;
    }
    Ok(())
}

/// Decodes a delta-coded timestamp list.
pub(crate) fn decode_ints(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    out: &mut Vec<i64>,
) -> Result<(), CorruptChunk> {
    if buf.get(*pos) != Some(&TAG_INT_DELTA) {
        return Err(CorruptChunk("expected the integer delta codec"));
    }
    decode_int_stream(buf, pos, n, out)
}

struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Bits not yet written, in the low `n_pending` bits (at most 7 between calls).
    pending: u128,
    n_pending: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            pending: 0,
            n_pending: 0,
        }
    }

    /// Writes the low `count` bits (at most 64) of `value`, most significant first.
    fn write(&mut self, value: u64, count: u32) {
        if count == 0 {
            return;
        }
        let masked = if count == 64 {
            value
        } else {
            value & ((1u64 << count) - 1)
        };
        self.pending = (self.pending << count) | u128::from(masked);
        self.n_pending += count;
        while self.n_pending >= 8 {
            self.n_pending -= 8;
            self.out.push((self.pending >> self.n_pending) as u8);
        }
        self.pending &= (1u128 << self.n_pending) - 1;
    }

    fn finish(self) {
        if self.n_pending > 0 {
            self.out.push((self.pending << (8 - self.n_pending)) as u8);
        }
    }
}

struct BitReader<'a> {
    buf: &'a [u8],
    /// Next byte of `buf` to load.
    byte: usize,
    /// Loaded bits not yet read, in the low `n_loaded` bits.
    loaded: u128,
    n_loaded: u32,
}

impl BitReader<'_> {
    /// Reads `count` (at most 64) bits, most significant first.
    fn read(&mut self, count: u32) -> Result<u64, CorruptChunk> {
        while self.n_loaded < count {
            let byte = *self
                .buf
                .get(self.byte)
                .ok_or(CorruptChunk("truncated XOR stream"))?;
            self.byte += 1;
            self.loaded = (self.loaded << 8) | u128::from(byte);
            self.n_loaded += 8;
        }
        self.n_loaded -= count;
        let value = (self.loaded >> self.n_loaded) as u64;
        self.loaded &= (1u128 << self.n_loaded) - 1;
        Ok(if count == 64 {
            value
        } else {
            value & ((1u64 << count) - 1)
        })
    }
}

fn encode_xor(values: &[f64], out: &mut Vec<u8>) {
    out.push(TAG_XOR);
    let Some(first) = values.first() else {
        return;
    };
    let mut writer = BitWriter::new(out);
    let mut previous = first.to_bits();
    writer.write(previous, 64);
    // No window yet: the first non-zero XOR always writes its own.
    let mut window: Option<(u32, u32)> = None;
    for value in &values[1..] {
        let bits = value.to_bits();
        let xor = bits ^ previous;
        previous = bits;
        if xor == 0 {
            writer.write(0, 1);
            continue;
        }
        writer.write(1, 1);
        // Five bits hold the leading-zero count, so it is capped at 31.
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        match window {
            Some((window_leading, window_trailing))
                if leading >= window_leading && trailing >= window_trailing =>
            {
                writer.write(0, 1);
                writer.write(
                    xor >> window_trailing,
                    64 - window_leading - window_trailing,
                );
            }
            _ => {
                let meaningful = 64 - leading - trailing;
                writer.write(1, 1);
                writer.write(u64::from(leading), 5);
                writer.write(u64::from(meaningful - 1), 6);
                writer.write(xor >> trailing, meaningful);
                window = Some((leading, trailing));
            }
        }
    }
    writer.finish();
}

fn decode_xor(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    out: &mut Vec<f64>,
) -> Result<(), CorruptChunk> {
    *pos += 1;
    if n == 0 {
        return Ok(());
    }
    let mut reader = BitReader {
        buf,
        byte: *pos,
        loaded: 0,
        n_loaded: 0,
    };
    let mut previous = reader.read(64)?;
    out.push(f64::from_bits(previous));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if reader.read(1)? == 1 {
            let (leading, trailing) = if reader.read(1)? == 0 {
                window.ok_or(CorruptChunk("XOR window reused before it was set"))?
            } else {
                let leading = reader.read(5)? as u32;
                let meaningful = reader.read(6)? as u32 + 1;
                if leading + meaningful > 64 {
                    return Err(CorruptChunk("XOR window wider than 64 bits"));
                }
                let trailing = 64 - leading - meaningful;
                window = Some((leading, trailing));
                (leading, trailing)
            };
            let meaningful = 64 - leading - trailing;
            previous ^= reader.read(meaningful)? << trailing;
        }
        out.push(f64::from_bits(previous));
    }
    // Whole bytes were loaded; the unread bits of the last one are padding.
    *pos = reader.byte;
    Ok(())
}

/// Appends the token for `value` given the series' previous value (0.0 before the first):
/// `0` = same bits, even `2k` = integer delta `unzigzag(k)`, `1` = eight raw little-endian
/// bytes follow. Unchanged small integers therefore cost one byte.
pub(crate) fn put_token(out: &mut Vec<u8>, previous: f64, value: f64) {
    if value.to_bits() == previous.to_bits() {
        out.push(0);
        return;
    }
    if let (Some(previous), Some(value)) = (as_safe_int(previous), as_safe_int(value)) {
        // Both are within 2^53, so the zigzag fits in 55 bits and the shift cannot overflow;
        // the values differ, so the result is at least 2.
        put_uvarint(out, zigzag(value - previous) << 1);
        return;
    }
    out.push(1);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
}

pub(crate) fn get_token(buf: &[u8], pos: &mut usize, previous: f64) -> Result<f64, CorruptChunk> {
    let header = get_uvarint(buf, pos)?;
    match header {
        0 => Ok(previous),
        1 => {
            let bytes = buf
                .get(*pos..*pos + 8)
                .ok_or(CorruptChunk("truncated raw value"))?;
            *pos += 8;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes);
            Ok(f64::from_bits(u64::from_le_bytes(raw)))
        }
        even if even & 1 == 0 => {
            let base = as_safe_int(previous).ok_or(CorruptChunk("integer delta on a float"))?;
            let value = base
                .checked_add(unzigzag(even >> 1))
                .ok_or(CorruptChunk("integer delta overflows"))?;
            Ok(value as f64)
        }
        _ => Err(CorruptChunk("unknown token header")),
    }
}

/// Presence of a series on a grid (the intervals of a raw block, the buckets of a rollup
/// block) as `(start index, length)` runs.
pub(crate) type Runs = Vec<(u32, u32)>;

/// Writes `runs` on a grid of `grid_len` cells. A series present in every cell, by far the
/// most common case, is the single byte 0; otherwise the number of runs, then each run as
/// the gap since the previous one and its length.
pub(crate) fn put_runs(out: &mut Vec<u8>, runs: &[(u32, u32)], grid_len: u32) {
    if grid_len > 0 && runs == [(0, grid_len)] {
        out.push(0);
        return;
    }
    put_uvarint(out, runs.len() as u64);
    let mut end = 0u32;
    for &(start, len) in runs {
        put_uvarint(out, u64::from(start - end));
        put_uvarint(out, u64::from(len));
        end = start + len;
    }
}

pub(crate) fn get_runs(buf: &[u8], pos: &mut usize, grid_len: u32) -> Result<Runs, CorruptChunk> {
    let n_runs = get_uvarint(buf, pos)?;
    if n_runs == 0 {
        if grid_len == 0 {
            return Err(CorruptChunk("full presence on an empty grid"));
        }
        return Ok(vec![(0, grid_len)]);
    }
    if n_runs > u64::from(grid_len) {
        return Err(CorruptChunk("more runs than grid cells"));
    }
    let mut runs = Vec::with_capacity(n_runs as usize);
    let mut end = 0u64;
    for _ in 0..n_runs {
        let start = end + get_uvarint(buf, pos)?;
        let len = get_uvarint(buf, pos)?;
        end = start.saturating_add(len);
        if len == 0 || end > u64::from(grid_len) {
            return Err(CorruptChunk("run outside the grid"));
        }
        runs.push((start as u32, len as u32));
    }
    Ok(runs)
}

/// Number of cells covered by `runs`.
pub(crate) fn runs_len(runs: &[(u32, u32)]) -> usize {
    runs.iter().map(|&(_, len)| len as usize).sum()
}

/// Grid indices covered by `runs`, in order.
pub(crate) fn run_indices(runs: &[(u32, u32)]) -> impl Iterator<Item = u32> + '_ {
    runs.iter().flat_map(|&(start, len)| start..start + len)
}

/// Appends `index` to `runs`, extending the last run when adjacent.
pub(crate) fn push_run(runs: &mut Runs, index: u32) {
    if let Some(last) = runs.last_mut() {
        if last.0 + last.1 == index {
            last.1 += 1;
            return;
        }
    }
    runs.push((index, 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator so the round-trip tests cover many shapes without a
    /// dependency on a random-number crate.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn round_trip(values: &[f64], codec: Codec) -> usize {
        let mut buf = vec![0xAA]; // a prefix proves decoding honours `pos`
        assert!(encode_with(values, codec, &mut buf));
        let encoded_len = buf.len() - 1;
        buf.push(0x55); // and a suffix proves `pos` ends exactly after the chunk
        let mut pos = 1;
        let mut decoded = Vec::new();
        decode(&buf, &mut pos, values.len(), &mut decoded).unwrap();
        assert_eq!(pos, buf.len() - 1, "{codec:?} left pos in the wrong place");
        assert_eq!(decoded.len(), values.len());
        for (a, b) in values.iter().zip(&decoded) {
            assert_eq!(a.to_bits(), b.to_bits(), "{codec:?}: {a} came back as {b}");
        }
        encoded_len
    }

    fn shapes() -> Vec<Vec<f64>> {
        let mut rng = SplitMix(7);
        let mut shapes = vec![
            vec![],
            vec![42.0],
            vec![3.0; 360],
            (0..360).map(|i| (i / 50) as f64).collect(),
            // Mostly zero with isolated spikes, where the value codec wins.
            (0..360)
                .map(|i| if i % 37 == 0 { (i % 5 + 1) as f64 } else { 0.0 })
                .collect(),
            (0..360).map(|i| 1e9 + (i * 4096) as f64).collect(),
            vec![
                -5.0,
                5.0,
                -5.0,
                0.0,
                9_007_199_254_740_992.0,
                -9_007_199_254_740_992.0,
            ],
        ];
        let mut rss = 200.0 * 1024.0 * 1024.0;
        shapes.push(
            (0..360)
                .map(|_| {
                    rss += ((rng.next() % 129) as f64 - 64.0) * 4096.0;
                    rss
                })
                .collect(),
        );
        shapes.push((0..360).map(|_| (rng.next() % 1000) as f64 / 7.0).collect());
        // Connection churn: changes separated by runs of every length 0..=5.
        let mut sockets = 40.0;
        shapes.push(
            (0..360)
                .map(|_| {
                    if rng.next() % 3 == 0 {
                        sockets += (rng.next() % 7) as f64 - 3.0;
                    }
                    sockets
                })
                .collect(),
        );
        shapes
    }

    #[test]
    fn both_codecs_round_trip_integer_shapes() {
        for values in shapes() {
            if values.iter().all(|v| as_safe_int(*v).is_some()) {
                round_trip(&values, Codec::IntDelta);
                round_trip(&values, Codec::IntValue);
            }
            round_trip(&values, Codec::Xor);
            if encode_with(&values, Codec::Constant, &mut Vec::new()) {
                round_trip(&values, Codec::Constant);
            }
        }
    }

    #[test]
    fn xor_round_trips_awkward_floats() {
        let values = [
            f64::NAN,
            f64::INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NEG_INFINITY,
            1.5,
            1.5,
            0.1 + 0.2,
        ];
        round_trip(&values, Codec::Xor);
        let mut buf = Vec::new();
        assert!(!encode_with(&values, Codec::IntDelta, &mut buf));
        assert!(buf.is_empty());
    }

    #[test]
    fn flat_chunk_costs_a_few_bytes() {
        // One hour of an unchanged thread count: tag, divisor, first value, and one run token
        // of 359 (two varint bytes); as a constant, the tag and the value.
        assert_eq!(round_trip(&[17.0; 360], Codec::IntDelta), 5);
        assert_eq!(round_trip(&[17.0; 360], Codec::Constant), 2);
        assert_eq!(round_trip(&[0.5; 360], Codec::Constant), 9);
        assert_eq!(encode_best(&[17.0; 360], &mut Vec::new()), Codec::Constant);
        assert!(!encode_with(&[1.0, 2.0], Codec::Constant, &mut Vec::new()));
    }

    #[test]
    fn page_multiples_are_divided_out() {
        let values: Vec<f64> = (0..100).map(|i| 1e8 + (i % 3) as f64 * 4096.0).collect();
        let mut buf = Vec::new();
        encode_with(&values, Codec::IntDelta, &mut buf);
        // One byte per delta once 4096 is divided out, plus the header.
        assert!(buf.len() < 100 + 10, "{} bytes", buf.len());
    }

    #[test]
    fn spikes_pick_the_value_codec() {
        let spikes: Vec<f64> = (0..360)
            .map(|i| if i % 37 == 0 { 2.0 } else { 0.0 })
            .collect();
        assert_eq!(encode_best(&spikes, &mut Vec::new()), Codec::IntValue);
        let steps: Vec<f64> = (0..360).map(|i| (i / 37) as f64).collect();
        assert_eq!(encode_best(&steps, &mut Vec::new()), Codec::IntDelta);
    }

    #[test]
    fn best_picks_the_smaller_encoding() {
        for values in shapes() {
            let mut best = Vec::new();
            let codec = encode_best(&values, &mut best);
            let size = |codec| {
                let mut buf = Vec::new();
                if encode_with(&values, codec, &mut buf) {
                    buf.len()
                } else {
                    usize::MAX
                }
            };
            let smallest = [
                Codec::IntDelta,
                Codec::IntValue,
                Codec::Xor,
                Codec::Constant,
            ]
            .into_iter()
            .map(size)
            .min()
            .unwrap();
            assert_eq!(best.len(), smallest, "chose {codec:?}");
            let mut decoded = Vec::new();
            decode(&best, &mut 0, values.len(), &mut decoded).unwrap();
            assert_eq!(decoded.len(), values.len());
        }
    }

    #[test]
    fn tokens_round_trip_and_unchanged_costs_one_byte() {
        let mut rng = SplitMix(11);
        let mut values = vec![
            0.0,
            0.0,
            5.0,
            5.0,
            -3.0,
            2.5,
            2.5,
            f64::NAN,
            f64::NAN,
            -0.0,
            7.0,
        ];
        values.extend((0..200).map(|_| (rng.next() % 5000) as f64 * 4096.0));
        let mut buf = Vec::new();
        let mut previous = 0.0;
        for &value in &values {
            let before = buf.len();
            put_token(&mut buf, previous, value);
            if value.to_bits() == previous.to_bits() {
                assert_eq!(buf.len() - before, 1);
            }
            previous = value;
        }
        let mut pos = 0;
        let mut previous = 0.0;
        for &value in &values {
            let decoded = get_token(&buf, &mut pos, previous).unwrap();
            assert_eq!(decoded.to_bits(), value.to_bits());
            previous = decoded;
        }
        assert_eq!(pos, buf.len());
    }

    #[test]
    fn runs_round_trip_and_reject_out_of_grid() {
        let mut runs = Runs::new();
        for index in [0, 1, 2, 5, 6, 9] {
            push_run(&mut runs, index);
        }
        assert_eq!(runs, vec![(0, 3), (5, 2), (9, 1)]);
        assert_eq!(runs_len(&runs), 6);
        assert_eq!(
            run_indices(&runs).collect::<Vec<_>>(),
            vec![0, 1, 2, 5, 6, 9]
        );
        let mut buf = Vec::new();
        put_runs(&mut buf, &runs, 10);
        assert_eq!(get_runs(&buf, &mut 0, 10).unwrap(), runs);
        assert!(get_runs(&buf, &mut 0, 9).is_err());
        let mut full = Vec::new();
        put_runs(&mut full, &[(0, 360)], 360);
        assert_eq!(full, vec![0]);
        assert_eq!(get_runs(&full, &mut 0, 360).unwrap(), vec![(0, 360)]);
        assert!(get_runs(&full, &mut 0, 0).is_err());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for values in shapes() {
            for codec in [
                Codec::IntDelta,
                Codec::IntValue,
                Codec::Xor,
                Codec::Constant,
            ] {
                let mut buf = Vec::new();
                if !encode_with(&values, codec, &mut buf) || values.len() < 2 {
                    continue;
                }
                for cut in 0..buf.len() {
                    let mut decoded = Vec::new();
                    let result = decode(&buf[..cut], &mut 0, values.len(), &mut decoded);
                    assert!(result.is_err(), "{codec:?} accepted a chunk cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn varint_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, value);
            assert_eq!(get_uvarint(&buf, &mut 0).unwrap(), value);
        }
        for value in [0, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        let too_long = [0xff; 11];
        assert!(get_uvarint(&too_long, &mut 0).is_err());
    }
}
