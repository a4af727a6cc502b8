//! The block format: all series of one target over one aligned time span at one resolution,
//! stored as a single blob so a target's hour costs one row instead of one row per series.
//!
//! ```text
//! block   := format:u8 n_series:varint entry*          (entries sorted by series id)
//! entry   := id_delta:varint runs payload_len:varint payload
//! runs    := n:varint (gap:varint len:varint)*         (presence on the block's grid)
//! payload := raw:    values                            (one chunk, see codec.rs)
//!          | rollup: layout:u8 last min max count      (four chunks of the same length;
//!                                                       for integers min and max are
//!                                                       stored relative to an envelope,
//!                                                       see encode_rollup_payload)
//! ```
//!
//! The grid of a raw block is the list of interval timestamps sealed with it (table
//! `intervals`, shared by all targets so jittery timestamps are stored once per hour); the grid
//! of a rollup block is `start + i * step`.

use crate::codec::{self, put_runs, put_uvarint, CorruptChunk, Runs};

const BLOCK_FORMAT: u8 = 1;

/// One rollup cell: the samples whose time falls in `[start_ms, start_ms + step)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, a multiple of its step (milliseconds since the epoch).
    pub start_ms: i64,
    /// Smallest sample in the bucket.
    pub min: f64,
    /// Largest sample in the bucket.
    pub max: f64,
    /// The latest sample in the bucket.
    pub last: f64,
    /// How many raw samples the bucket summarises.
    pub count: u32,
}

impl Bucket {
    pub(crate) fn of_point(start_ms: i64, value: f64) -> Bucket {
        Bucket {
            start_ms,
            min: value,
            max: value,
            last: value,
            count: 1,
        }
    }

    /// Folds in a bucket that comes later in time.
    pub(crate) fn absorb(&mut self, later: &Bucket) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.last = later.last;
        self.count = self.count.saturating_add(later.count);
    }
}

/// Folds time-ordered buckets (or points as one-sample buckets) into `step`-aligned buckets.
pub(crate) fn fold_buckets(input: impl IntoIterator<Item = Bucket>, step_ms: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    // Inputs are time-ordered, so the division is only needed when a bucket ends.
    let mut current_end = i64::MIN;
    for bucket in input {
        if bucket.start_ms < current_end {
            if let Some(current) = out.last_mut() {
                current.absorb(&bucket);
                continue;
            }
        }
        let start_ms = bucket.start_ms.div_euclid(step_ms) * step_ms;
        current_end = start_ms.saturating_add(step_ms);
        out.push(Bucket { start_ms, ..bucket });
    }
    out
}

pub(crate) struct BlockWriter {
    body: Vec<u8>,
    n_series: u64,
    previous_id: i64,
    grid_len: u32,
}

impl BlockWriter {
    /// A block on a grid of `grid_len` cells (intervals or buckets).
    pub(crate) fn new(grid_len: u32) -> Self {
        BlockWriter {
            body: Vec::new(),
            n_series: 0,
            previous_id: 0,
            grid_len,
        }
    }

    /// Adds one series; ids must come in increasing order.
    pub(crate) fn push(&mut self, id: i64, runs: &[(u32, u32)], payload: &[u8]) {
        debug_assert!(self.n_series == 0 || id > self.previous_id);
        put_uvarint(&mut self.body, (id - self.previous_id) as u64);
        put_runs(&mut self.body, runs, self.grid_len);
        put_uvarint(&mut self.body, payload.len() as u64);
        self.body.extend_from_slice(payload);
        self.previous_id = id;
        self.n_series += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.n_series == 0
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 6);
        out.push(BLOCK_FORMAT);
        put_uvarint(&mut out, self.n_series);
        out.extend_from_slice(&self.body);
        out
    }
}

pub(crate) struct BlockEntry<'a> {
    pub(crate) id: i64,
    pub(crate) runs: Runs,
    pub(crate) payload: &'a [u8],
}

impl BlockEntry<'_> {
    pub(crate) fn len(&self) -> usize {
        codec::runs_len(&self.runs)
    }

    pub(crate) fn raw_values(&self) -> Result<Vec<f64>, CorruptChunk> {
        let mut values = Vec::with_capacity(self.len());
        let mut pos = 0;
        codec::decode(self.payload, &mut pos, self.len(), &mut values)?;
        Ok(values)
    }

    /// The rollup buckets of this entry, given the block's start and step.
    pub(crate) fn buckets(&self, start_ms: i64, step_ms: i64) -> Result<Vec<Bucket>, CorruptChunk> {
        let n = self.len();
        let layout = *self
            .payload
            .first()
            .ok_or(CorruptChunk("empty rollup payload"))?;
        let mut pos = 1;
        let mut columns: [Vec<f64>; 4] = Default::default();
        for column in &mut columns {
            codec::decode(self.payload, &mut pos, n, column)?;
        }
        let [last, second, third, count] = columns;
        let (min, max): (Vec<f64>, Vec<f64>) = match layout {
            LAYOUT_DIRECT => (second, third),
            LAYOUT_ENVELOPE => (0..n)
                .map(|i| {
                    let (low, high) = envelope(&last, i);
                    (low - second[i], high + third[i])
                })
                .unzip(),
            _ => return Err(CorruptChunk("unknown rollup layout")),
        };
        Ok(codec::run_indices(&self.runs)
            .enumerate()
            .map(|(i, index)| Bucket {
                start_ms: start_ms + i64::from(index) * step_ms,
                min: min[i],
                max: max[i],
                last: last[i],
                count: count[i] as u32,
            })
            .collect())
    }
}

pub(crate) struct BlockReader<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: u64,
    previous_id: i64,
    grid_len: u32,
}

impl<'a> BlockReader<'a> {
    pub(crate) fn new(data: &'a [u8], grid_len: u32) -> Result<Self, CorruptChunk> {
        if data.first() != Some(&BLOCK_FORMAT) {
            return Err(CorruptChunk("unknown block format"));
        }
        let mut pos = 1;
        let remaining = codec::get_uvarint(data, &mut pos)?;
        Ok(BlockReader {
            data,
            pos,
            remaining,
            previous_id: 0,
            grid_len,
        })
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<BlockEntry<'a>>, CorruptChunk> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let delta = codec::get_uvarint(self.data, &mut self.pos)?;
        let id = self
            .previous_id
            .checked_add_unsigned(delta)
            .ok_or(CorruptChunk("series id overflows"))?;
        self.previous_id = id;
        let runs = codec::get_runs(self.data, &mut self.pos, self.grid_len)?;
        let len = codec::get_uvarint(self.data, &mut self.pos)? as usize;
        let payload = self
            .data
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or(CorruptChunk("truncated block entry"))?;
        self.pos += len;
        Ok(Some(BlockEntry { id, runs, payload }))
    }
}

/// Encodes rollup buckets as the four columns last, min, max, count.
/// Rollup payload layouts (first byte of the payload).
const LAYOUT_DIRECT: u8 = 0;
const LAYOUT_ENVELOPE: u8 = 1;

/// Integers up to 2^52 in magnitude: their differences are exact in an `f64`.
fn envelope_safe(value: f64) -> bool {
    value.abs() <= (1u64 << 52) as f64 && (value as i64) as f64 == value
}

/// The envelope of bucket `i`: the lower and upper of its last value and the previous
/// bucket's last value (its own for the first bucket).
fn envelope(last: &[f64], i: usize) -> (f64, f64) {
    let previous = last[i.saturating_sub(1)];
    (previous.min(last[i]), previous.max(last[i]))
}

/// Encodes rollup buckets as four columns. For integers they are last, how far min goes
/// below the envelope of this and the previous last, how far max goes above it, and count:
/// a value that steps between samples has min and max on the envelope, so both columns are
/// runs of zeros and the bucket costs what its change of `last` costs. Other values are
/// stored as last, min, max, count.
pub(crate) fn encode_rollup_payload(buckets: &[Bucket], out: &mut Vec<u8>) {
    let last: Vec<f64> = buckets.iter().map(|b| b.last).collect();
    let count: Vec<f64> = buckets.iter().map(|b| f64::from(b.count)).collect();
    let exact = buckets
        .iter()
        .all(|b| envelope_safe(b.last) && envelope_safe(b.min) && envelope_safe(b.max));
    let (below, above): (Vec<f64>, Vec<f64>) = if exact {
        out.push(LAYOUT_ENVELOPE);
        (0..buckets.len())
            .map(|i| {
                let (low, high) = envelope(&last, i);
                (low - buckets[i].min, buckets[i].max - high)
            })
            .unzip()
    } else {
        out.push(LAYOUT_DIRECT);
        buckets.iter().map(|b| (b.min, b.max)).unzip()
    };
    for column in [&last, &below, &above, &count] {
        codec::encode_best(column, out);
    }
}

/// Encodes the timestamps of a raw block's intervals, relative to the block start.
pub(crate) fn encode_interval_list(start_ms: i64, timestamps: &[i64]) -> Vec<u8> {
    // Deltas through the integer codec give delta-of-delta with runs: a steady 10 s cadence
    // costs a few bytes per hour, jitter costs a byte or two per interval.
    let mut deltas = Vec::with_capacity(timestamps.len());
    let mut previous = start_ms;
    for &ts in timestamps {
        deltas.push(ts - previous);
        previous = ts;
    }
    let mut out = Vec::new();
    codec::encode_ints(&deltas, &mut out);
    out
}

pub(crate) fn decode_interval_list(
    start_ms: i64,
    n: usize,
    data: &[u8],
) -> Result<Vec<i64>, CorruptChunk> {
    let mut deltas = Vec::with_capacity(n);
    codec::decode_ints(data, &mut 0, n, &mut deltas)?;
    let mut current = start_ms;
    Ok(deltas
        .into_iter()
        .map(|delta| {
            current = current.wrapping_add(delta);
            current
        })
        .collect())
}

/// `ts_ms` rounded down to a multiple of `span_ms` (also for negative times).
pub(crate) fn align_down(ts_ms: i64, span_ms: i64) -> i64 {
    ts_ms.div_euclid(span_ms) * span_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::push_run;

    #[test]
    fn block_entries_round_trip_in_id_order() {
        let mut writer = BlockWriter::new(6);
        let mut payload_a = Vec::new();
        codec::encode_best(&[1.0, 2.0, 3.0], &mut payload_a);
        let mut payload_b = Vec::new();
        codec::encode_best(&[0.5], &mut payload_b);
        writer.push(3, &[(0, 3)], &payload_a);
        writer.push(900, &[(5, 1)], &payload_b);
        let data = writer.finish();

        let mut reader = BlockReader::new(&data, 6).unwrap();
        let a = reader.next_entry().unwrap().unwrap();
        assert_eq!((a.id, a.raw_values().unwrap()), (3, vec![1.0, 2.0, 3.0]));
        let b = reader.next_entry().unwrap().unwrap();
        assert_eq!((b.id, b.raw_values().unwrap()), (900, vec![0.5]));
        assert!(reader.next_entry().unwrap().is_none());
        // The same block read against a smaller grid is rejected, not misread.
        let mut small = BlockReader::new(&data, 3).unwrap();
        small.next_entry().unwrap();
        assert!(small.next_entry().is_err());
    }

    #[test]
    fn rollup_payload_round_trips() {
        let points = [
            (0, 5.0),
            (10_000, 7.0),
            (20_000, 6.0),
            (60_000, 1.0),
            (180_000, 9.0),
        ];
        let buckets = fold_buckets(
            points.iter().map(|&(ts, v)| Bucket::of_point(ts, v)),
            60_000,
        );
        assert_eq!(
            buckets[0],
            Bucket {
                start_ms: 0,
                min: 5.0,
                max: 7.0,
                last: 6.0,
                count: 3
            }
        );
        let mut runs = Runs::new();
        for bucket in &buckets {
            push_run(&mut runs, (bucket.start_ms / 60_000) as u32);
        }
        assert_eq!(runs, vec![(0, 2), (3, 1)]);
        let mut payload = Vec::new();
        encode_rollup_payload(&buckets, &mut payload);
        let entry = BlockEntry {
            id: 1,
            runs,
            payload: &payload,
        };
        assert_eq!(entry.buckets(0, 60_000).unwrap(), buckets);
    }

    #[test]
    fn float_rollups_keep_exact_min_and_max() {
        let buckets = vec![
            Bucket {
                start_ms: 0,
                min: 0.1,
                max: 0.7,
                last: 0.3,
                count: 6,
            },
            Bucket {
                start_ms: 60_000,
                min: -1e300,
                max: f64::INFINITY,
                last: 2.0,
                count: 1,
            },
        ];
        let mut payload = Vec::new();
        encode_rollup_payload(&buckets, &mut payload);
        assert_eq!(payload[0], LAYOUT_DIRECT);
        let entry = BlockEntry {
            id: 1,
            runs: vec![(0, 2)],
            payload: &payload,
        };
        assert_eq!(entry.buckets(0, 60_000).unwrap(), buckets);
    }

    #[test]
    fn interval_list_round_trips_with_jitter() {
        let start = 1_700_000_000_000 / 3_600_000 * 3_600_000;
        let timestamps: Vec<i64> = (0..360).map(|i| start + 3 + i * 10_000 + (i % 7)).collect();
        let data = encode_interval_list(start, &timestamps);
        assert_eq!(decode_interval_list(start, 360, &data).unwrap(), timestamps);
        let steady: Vec<i64> = (0..360).map(|i| start + i * 10_000).collect();
        assert!(encode_interval_list(start, &steady).len() < 10);
    }
}
