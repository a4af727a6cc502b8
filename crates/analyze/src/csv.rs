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

use crate::error::InputError;
use leakwatch_detect::{Point, Series, SeriesKey};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

const HEADER_HELP: &str = "time,series,value[,limit]";

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
    let mut header: Option<usize> = None;
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
        let Some(n_columns) = header else {
            let names: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if names != ["time", "series", "value"] && names != ["time", "series", "value", "limit"]
            {
                return Err(InputError::csv(
                    line_number,
                    format!("missing header: expected `{HEADER_HELP}`, found `{line}`"),
                ));
            }
            header = Some(names.len());
            continue;
        };
        if fields.len() != n_columns && !(n_columns == 4 && fields.len() == 3) {
            return Err(InputError::csv(
                line_number,
                format!(
                    "expected {n_columns} columns ({HEADER_HELP}), found {}",
                    fields.len()
                ),
            ));
        }
        let t =
            crate::time::parse_time(&fields[0]).map_err(|why| InputError::csv(line_number, why))?;
        let name = fields[1].as_str();
        let value_text = fields[2].as_str();
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
        let limit = match fields.get(3).map(|f| f.trim()) {
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
    Ok(building
        .into_iter()
        .map(|b| Series::new(b.key, b.points, b.limit))
        .collect())
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
    fn quoted_fields_may_hold_commas() {
        assert_eq!(
            split_fields(r#"1, "a,b""c", 3"#).unwrap(),
            vec!["1".to_string(), "a,b\"c".to_string(), "3".to_string()]
        );
        assert!(split_fields(r#"1,"open"#).is_err());
    }
}
