//! CSV input: `time,series,value[,limit]`, one sample per row.
//!
//! - `time`: unix seconds (integer or fractional) or RFC 3339.
//! - `series`: `target/resource{attribution}`, `resource{attribution}`, `target/resource`
//!   or a plain `name`. The part before `{` is split at its last `/` into target and
//!   resource (no `/`: empty target); the text between the first `{` and the closing `}`
//!   is the attribution (absent: the total). A plain name such as `heap_used` becomes the
//!   resource `heap_used` of the empty target. So `java-svc/threads{Analytics-#}` is
//!   target `java-svc`, resource `threads`, attribution `Analytics-#`.
//! - `value`: a finite number.
//! - `limit` (optional column, may be empty): the resource's limit; the last non-empty
//!   limit given for a series wins (limits can be raised while a service runs).
//!
//! Fields may be double-quoted (with `""` for a quote) when they contain commas. Blank lines
//! and lines starting with `#` are skipped. Rows of different series may interleave, but
//! each series' rows must be in time order (equal times are allowed).
//!
//! The header names the columns, in any order: `time` (or `ts_ms`, unix milliseconds, as
//! the agent writes the `series.csv` of an incident folder: `series,ts_ms,value`),
//! `series`, `value` and optionally `limit`.
//!
//! A series whose resource ends in `.limit` (`threads.limit{max_process}`, as the agent
//! stores the limit a resource runs into) is not a series of its own: its last value is the
//! limit of the series it caps (`threads{Analytics-#}` and `threads` of the same target),
//! unless a `limit` column gave one. A limit series that caps nothing is kept as it is.
//!
//! [`parse_restarts_csv`] reads restarts for the same targets: `time,target[,reason]`.

use crate::error::InputError;
use leakwatch_detect::{Point, Restart, Series, SeriesKey};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

const HEADER_HELP: &str = "time,series,value[,limit]";
const RESTARTS_HELP: &str = "time,target[,reason]";

/// Where each column is.
#[derive(Clone, Copy)]
struct Columns {
    time: usize,
    /// `ts_ms`: the time column holds unix milliseconds.
    millis: bool,
    series: usize,
    value: usize,
    limit: Option<usize>,
    count: usize,
}

impl Columns {
    /// From the header's names; `None` unless it names exactly the columns this reads.
    fn from_header(names: &[String]) -> Option<Columns> {
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        let (time, millis) = match (find("time"), find("ts_ms")) {
            (Some(i), None) => (i, false),
            (None, Some(i)) => (i, true),
            _ => return None,
        };
        let columns = Columns {
            time,
            millis,
            series: find("series")?,
            value: find("value")?,
            limit: find("limit"),
            count: names.len(),
        };
        let known = 3 + usize::from(columns.limit.is_some());
        (known == names.len()).then_some(columns)
    }
}

/// Maps a series name to its key; see the module documentation for the grammar (it is
/// `SeriesKey`'s `FromStr`, the one place the spelling is defined).
pub fn parse_series_name(name: &str) -> Result<SeriesKey, String> {
    name.parse()
        .map_err(|e: leakwatch_detect::ParseKeyError| e.to_string())
}

/// Splits one CSV line into fields, honouring double quotes.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.trim().is_empty() && !quoted {
            in_quotes = true;
            quoted = true;
            field.clear();
        } else if c == ',' {
            fields.push(if quoted {
                std::mem::take(&mut field)
            } else {
                field.trim().to_string()
            });
            field.clear();
            quoted = false;
        } else {
            field.push(c);
        }
    }
    if in_quotes {
        return Err("a quoted field is not closed".to_string());
    }
    fields.push(if quoted {
        field
    } else {
        field.trim().to_string()
    });
    Ok(fields)
}

struct Building {
    key: SeriesKey,
    points: Vec<Point>,
    limit: Option<f64>,
    last_line: usize,
}

/// Reads CSV samples into series, in order of first appearance. Errors name the line.
pub fn parse_csv<R: Read>(reader: R) -> Result<Vec<Series>, InputError> {
    let reader = BufReader::new(reader);
    let mut header: Option<Columns> = None;
    let mut building: Vec<Building> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut last_line = 0;
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        last_line = line_number;
        let line = line.map_err(|e| InputError::Io(format!("line {line_number}: {e}")))?;
        let line = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = split_fields(line).map_err(|why| InputError::csv(line_number, why))?;
        let Some(columns) = header else {
            let names: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            let Some(columns) = Columns::from_header(&names) else {
                return Err(InputError::csv(
                    line_number,
                    format!(
                        "missing header: expected `{HEADER_HELP}` (or the `series,ts_ms,value` of an incident folder), found `{line}`"
                    ),
                ));
            };
            header = Some(columns);
            continue;
        };
        // A trailing limit column may be left out of a row.
        let short_ok =
            columns.limit == Some(columns.count - 1) && fields.len() == columns.count - 1;
        if fields.len() != columns.count && !short_ok {
            return Err(InputError::csv(
                line_number,
                format!(
                    "expected {} columns ({HEADER_HELP}), found {}",
                    columns.count,
                    fields.len()
                ),
            ));
        }
        let t = if columns.millis {
            let text = fields[columns.time].trim();
            match text.parse::<f64>() {
                Ok(ms) if ms.is_finite() => ms / 1000.0,
                _ => {
                    return Err(InputError::csv(
                        line_number,
                        format!("cannot parse ts_ms {text:?}: expected unix milliseconds"),
                    ))
                }
            }
        } else {
            crate::time::parse_time(&fields[columns.time])
                .map_err(|why| InputError::csv(line_number, why))?
        };
        let name = fields[columns.series].as_str();
        let value_text = fields[columns.value].as_str();
        let v: f64 = value_text.parse().map_err(|_| {
            InputError::csv(
                line_number,
                format!("cannot parse value {value_text:?} as a number"),
            )
        })?;
        if !v.is_finite() {
            return Err(InputError::csv(
                line_number,
                format!("value {value_text:?} is not a finite number"),
            ));
        }
        let limit = match columns.limit.and_then(|i| fields.get(i)).map(|f| f.trim()) {
            None | Some("") => None,
            Some(text) => match text.parse::<f64>() {
                Ok(limit) if limit.is_finite() && limit > 0.0 => Some(limit),
                _ => {
                    return Err(InputError::csv(
                        line_number,
                        format!("limit {text:?} is not a positive finite number"),
                    ))
                }
            },
        };
        let slot = match index_of.get(name) {
            Some(&slot) => slot,
            None => {
                let key =
                    parse_series_name(name).map_err(|why| InputError::csv(line_number, why))?;
                building.push(Building {
                    key,
                    points: Vec::new(),
                    limit: None,
                    last_line: line_number,
                });
                index_of.insert(name.to_string(), building.len() - 1);
                building.len() - 1
            }
        };
        let series = &mut building[slot];
        if let Some(previous) = series.points.last() {
            if t < previous.t {
                return Err(InputError::csv(
                    line_number,
                    format!(
                        "series {name}: time {t} is before {} on line {}; rows of a series must be in time order",
                        previous.t, series.last_line
                    ),
                ));
            }
        }
        series.points.push(Point::new(t, v));
        series.last_line = line_number;
        if limit.is_some() {
            series.limit = limit;
        }
    }
    if header.is_none() {
        return Err(InputError::csv(
            last_line.max(1),
            format!("missing header: expected `{HEADER_HELP}`, the input has no rows"),
        ));
    }
    Ok(fold_limits(
        building
            .into_iter()
            .map(|b| Series::new(b.key, b.points, b.limit))
            .collect(),
    ))
}

/// Turns `.limit` series into the limits of the series they cap (see the module
/// documentation); limit series that cap nothing are kept.
fn fold_limits(series: Vec<Series>) -> Vec<Series> {
    let (limits, mut values): (Vec<Series>, Vec<Series>) =
        series.into_iter().partition(|s| s.key.is_limit);
    let mut unused = Vec::new();
    for limit in limits {
        let Some(last) = limit.points.last().map(|p| p.v).filter(|v| *v > 0.0) else {
            unused.push(limit);
            continue;
        };
        let mut used = false;
        for capped in values.iter_mut() {
            let caps = capped.key.limit() == limit.key
                || capped
                    .key
                    .resource
                    .limit_series(&capped.key.target)
                    .as_ref()
                    == Some(&limit.key);
            if caps {
                used = true;
                capped.limit.get_or_insert(last);
            }
        }
        if !used {
            unused.push(limit);
        }
    }
    values.extend(unused);
    values
}

/// Reads restarts (`time,target[,reason]`, a header first) for [`parse_csv`]'s series: a
/// restart cuts the series of its target into process lives, as the agent's restart records
/// do. `target` is the part of a series name before its last `/` (empty for a plain name).
pub fn parse_restarts_csv<R: Read>(reader: R) -> Result<Vec<Restart>, InputError> {
    let reader = BufReader::new(reader);
    let mut columns: Option<usize> = None;
    let mut restarts = Vec::new();
    let mut last_line = 0;
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        last_line = line_number;
        let line = line.map_err(|e| InputError::Io(format!("line {line_number}: {e}")))?;
        let line = line.trim_start_matches('\u{feff}').trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = split_fields(line).map_err(|why| InputError::csv(line_number, why))?;
        let Some(count) = columns else {
            let names: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            if names != ["time", "target"] && names != ["time", "target", "reason"] {
                return Err(InputError::csv(
                    line_number,
                    format!("missing header: expected `{RESTARTS_HELP}`, found `{line}`"),
                ));
            }
            columns = Some(names.len());
            continue;
        };
        if fields.len() != count && !(count == 3 && fields.len() == 2) {
            return Err(InputError::csv(
                line_number,
                format!(
                    "expected {count} columns ({RESTARTS_HELP}), found {}",
                    fields.len()
                ),
            ));
        }
        let t =
            crate::time::parse_time(&fields[0]).map_err(|why| InputError::csv(line_number, why))?;
        restarts.push(Restart {
            target: fields[1].clone(),
            t,
            old_pid: None,
            new_pid: None,
            reason: fields.get(2).cloned().unwrap_or_default(),
        });
    }
    if columns.is_none() {
        return Err(InputError::csv(
            last_line.max(1),
            format!("missing header: expected `{RESTARTS_HELP}`, the input has no rows"),
        ));
    }
    restarts.sort_by(|a, b| a.t.total_cmp(&b.t));
    Ok(restarts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_map_to_keys() {
        let key = |name| parse_series_name(name).unwrap();
        assert_eq!(
            key("threads{Analytics-#}"),
            SeriesKey::from_text("", "threads", "Analytics-#")
        );
        assert_eq!(
            key("java-svc/threads{Analytics-#}"),
            SeriesKey::from_text("java-svc", "threads", "Analytics-#")
        );
        assert_eq!(
            key("svc/sockets{CLOSE_WAIT 127.0.0.1:8443}"),
            SeriesKey::from_text("svc", "sockets", "CLOSE_WAIT 127.0.0.1:8443")
        );
        assert_eq!(
            key("k8s/ns/pod/fds"),
            SeriesKey::from_text("k8s/ns/pod", "fds", "")
        );
        assert_eq!(key("heap_used"), SeriesKey::from_text("", "heap_used", ""));
        assert!(parse_series_name("threads{oops").is_err());
        assert!(parse_series_name("{x}").is_err());
    }

    #[test]
    fn an_incident_series_csv_is_read_with_its_limit() {
        // As crates/agent/src/evidence/capture.rs writes it.
        let text = "series,ts_ms,value\n\"threads{Leaky-#}\",1700000000000,10\n\"threads{Leaky-#}\",1700000001000,12\n\"threads.limit{max_process}\",1700000000000,4096\n\"threads.limit{max_process}\",1700000001000,8192\n";
        let series = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(series.len(), 1, "{series:?}");
        assert_eq!(
            series[0].key,
            SeriesKey::from_text("", "threads", "Leaky-#")
        );
        assert_eq!(
            series[0].points,
            vec![
                Point::new(1_700_000_000.0, 10.0),
                Point::new(1_700_000_001.0, 12.0)
            ]
        );
        assert_eq!(series[0].limit, Some(8192.0));
        // A limit series that caps nothing stays.
        let text = "time,series,value\n1,svc/fds.limit{max_process},1024\n";
        let series = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(series.len(), 1);
        assert!(series[0].key.is_limit);
        // A limit column wins over a limit series.
        let text =
            "time,series,value,limit\n1,svc/fds,10,500\n1,svc/fds.limit{max_process},1024,\n";
        let series = parse_csv(text.as_bytes()).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].limit, Some(500.0));
        // Columns in another order.
        let text = "series,value,time\nx,1,10\n";
        assert_eq!(
            parse_csv(text.as_bytes()).unwrap()[0].points,
            vec![Point::new(10.0, 1.0)]
        );
        assert!(parse_csv("series,ts_ms,value,extra\n".as_bytes()).is_err());
    }

    #[test]
    fn restarts_are_read_in_time_order() {
        let text = "time,target,reason\n200,svc,exit 2\n100,svc\n";
        let restarts = parse_restarts_csv(text.as_bytes()).unwrap();
        assert_eq!(restarts.len(), 2);
        assert_eq!((restarts[0].t, restarts[0].reason.as_str()), (100.0, ""));
        assert_eq!(
            (restarts[1].target.as_str(), restarts[1].reason.as_str()),
            ("svc", "exit 2")
        );
        let error = parse_restarts_csv("when,who\n".as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("time,target[,reason]"),
            "{error}"
        );
        let error = parse_restarts_csv("time,target\nsoon,svc\n".as_bytes()).unwrap_err();
        assert!(error.to_string().starts_with("line 2"), "{error}");
    }

    #[test]
    fn quoted_fields_may_hold_commas() {
        assert_eq!(
            split_fields(r#"1, "a,b""c", 3"#).unwrap(),
            vec!["1".to_string(), "a,b\"c".to_string(), "3".to_string()]
        );
        assert!(split_fields(r#"1,"open"#).is_err());
    }
}
