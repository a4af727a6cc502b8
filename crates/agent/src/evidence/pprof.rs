//! A Go service's heap profile (`/debug/pprof/heap`): pprof's `profile.proto`, gzipped,
//! decoded with prost (the messages below are the subset of
//! github.com/google/pprof/proto/profile.proto this needs, same field numbers), summed per
//! allocation site, for heap.rs to rank what grows.

use std::collections::BTreeMap;
use std::io::Read;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
}

/// Decoded profiles larger than this are refused (the download is capped too).
const MAX_DECODED: u64 = 256 * 1024 * 1024;

/// Decodes a profile, gunzipping it first when it is gzipped (as Go serves it).
pub fn decode(bytes: &[u8]) -> Result<Profile, String> {
    let raw: Vec<u8> = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_DECODED + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("not a gzipped profile: {e}"))?;
        if out.len() as u64 > MAX_DECODED {
            return Err(format!("the profile is larger than {MAX_DECODED} bytes"));
        }
        out
    } else {
        bytes.to_vec()
    };
    <Profile as prost::Message>::decode(raw.as_slice())
        .map_err(|e| format!("not a pprof profile: {e}"))
}

/// In-use objects and bytes per allocation site: the innermost frame outside the Go
/// runtime, with up to two callers (`main.leak <- main.handle <- net/http.HandlerFunc.ServeHTTP`).
pub fn inuse_by_site(profile: &Profile) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let string = |i: i64| -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| profile.string_table.get(i))
            .map_or("", String::as_str)
    };
    let index = |name: &str| {
        profile
            .sample_type
            .iter()
            .position(|t| string(t.r#type) == name)
    };
    let (Some(objects), Some(space)) = (index("inuse_objects"), index("inuse_space")) else {
        return Err("no inuse_objects/inuse_space in the profile (not a heap profile)".into());
    };
    let functions: BTreeMap<u64, &str> = profile
        .function
        .iter()
        .map(|f| (f.id, string(f.name)))
        .collect();
    let locations: BTreeMap<u64, &Location> = profile.location.iter().map(|l| (l.id, l)).collect();
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for sample in &profile.sample {
        // Each location may hold inlined frames, innermost first.
        let frames: Vec<&str> = sample
            .location_id
            .iter()
            .filter_map(|id| locations.get(id))
            .flat_map(|l| l.line.iter())
            .filter_map(|line| functions.get(&line.function_id).copied())
            .skip_while(|f| f.starts_with("runtime."))
            .take(3)
            .collect();
        let site = if frames.is_empty() {
            "(runtime)".to_string()
        } else {
            leakwatch_model::text::visible(&frames.join(" <- "))
        };
        let value = |i: usize| sample.value.get(i).copied().unwrap_or(0).max(0) as u64;
        let entry = out.entry(site).or_default();
        entry.0 = entry.0.saturating_add(value(objects));
        entry.1 = entry.1.saturating_add(value(space));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A profile as Go writes one: two samples of main.leak (one through an inlined
    /// helper) and one of the runtime only.
    fn profile() -> Profile {
        let strings = [
            "",
            "alloc_objects",
            "count",
            "alloc_space",
            "bytes",
            "inuse_objects",
            "inuse_space",
            "runtime.mallocgc",
            "main.leak",
            "main.serve",
            "runtime.main",
        ];
        let vt = |t: i64, u: i64| ValueType { r#type: t, unit: u };
        let loc = |id: u64, fns: &[u64]| Location {
            id,
            line: fns.iter().map(|&f| Line { function_id: f }).collect(),
        };
        Profile {
            sample_type: vec![vt(1, 2), vt(3, 4), vt(5, 2), vt(6, 4)],
            sample: vec![
                Sample {
                    location_id: vec![1, 2, 3],
                    value: vec![10, 640, 4, 256],
                },
                Sample {
                    location_id: vec![1, 2],
                    value: vec![1, 64, 1, 64],
                },
                Sample {
                    location_id: vec![1, 4],
                    value: vec![2, 32, 2, 32],
                },
            ],
            location: vec![loc(1, &[1]), loc(2, &[2]), loc(3, &[3]), loc(4, &[4])],
            function: (1..=4)
                .map(|id| Function {
                    id,
                    name: [7, 8, 9, 10][id as usize - 1],
                })
                .collect(),
            string_table: strings.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn heap_profiles_are_summed_per_allocation_site() {
        let bytes = profile().encode_to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        let gzipped = gz.finish().unwrap();
        for input in [&bytes, &gzipped] {
            let sites = inuse_by_site(&decode(input).unwrap()).unwrap();
            assert_eq!(sites["main.leak <- main.serve"], (4, 256));
            assert_eq!(sites["main.leak"], (1, 64));
            assert_eq!(sites["(runtime)"], (2, 32), "{sites:?}");
        }
    }

    #[test]
    fn what_is_not_a_heap_profile_is_said() {
        assert!(decode(b"\x1f\x8bnot gzip")
            .unwrap_err()
            .contains("not a gzipped profile"));
        assert!(decode(b"\xff\xff\xff")
            .unwrap_err()
            .contains("not a pprof profile"));
        let mut cpu = profile();
        cpu.sample_type.truncate(2);
        assert!(inuse_by_site(&cpu)
            .unwrap_err()
            .contains("not a heap profile"));
    }
}
