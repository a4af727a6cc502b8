//! The offline parsers on fixture files: what they read, and that every error names the
//! line (CSV) or the series (Prometheus) and says what is wrong.

use leakwatch_analyze::{parse_csv, parse_prometheus_query_range, InputError};
use leakwatch_detect::{Point, SeriesKey};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn csv_error(name: &str) -> (usize, String) {
    match parse_csv(fixture(name).as_slice()) {
        Err(InputError::Csv { line, message }) => (line, message),
        other => panic!("{name}: expected a CSV error, got {other:?}"),
    }
}

#[test]
fn csv_reads_names_times_values_and_limits() {
    let series = parse_csv(fixture("samples.csv").as_slice()).unwrap();
    let keys: Vec<String> = series.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "java-svc/threads{Analytics-#}",
            "java-svc/threads",
            "svc/sockets{CLOSE_WAIT 127.0.0.1:8443}",
            "heap_used"
        ]
    );
    let analytics = &series[0];
    assert_eq!(
        analytics.key,
        SeriesKey::from_text("java-svc", "threads", "Analytics-#")
    );
    assert_eq!(
        analytics.points,
        vec![
            Point::new(1_700_000_000.0, 10.0),
            Point::new(1_700_000_010.0, 25.0),
            Point::new(1_700_000_020.5, 41.0)
        ]
    );
    assert_eq!(analytics.limit, Some(32_768.0));
    // An empty limit cell keeps the last limit given.
    assert_eq!(series[2].limit, Some(1024.0));
    // Plain names: resource only; RFC 3339 with an offset.
    assert_eq!(series[3].key, SeriesKey::from_text("", "heap_used", ""));
    assert_eq!(series[3].points, vec![Point::new(1_700_000_020.0, 1.5e9)]);
    assert_eq!(series[3].limit, None);
}

#[test]
fn csv_errors_name_the_line_and_the_problem() {
    let (line, message) = csv_error("missing_header.csv");
    assert_eq!(line, 1);
    assert!(
        message.contains("missing header") && message.contains("time,series,value[,limit]"),
        "{message}"
    );

    let (line, message) = csv_error("wrong_column_count.csv");
    assert_eq!(line, 3);
    assert!(
        message.contains("expected 3 columns") && message.contains("found 2"),
        "{message}"
    );

    let (line, message) = csv_error("bad_time.csv");
    assert_eq!(line, 3);
    assert!(
        message.contains("2023-13-01T00:00:00Z") && message.contains("month 13"),
        "{message}"
    );

    let (line, message) = csv_error("nan_value.csv");
    assert_eq!(line, 3);
    assert!(
        message.contains("\"NaN\" is not a finite number"),
        "{message}"
    );

    let (line, message) = csv_error("bad_value.csv");
    assert_eq!(line, 3);
    assert!(message.contains("\"many\""), "{message}");

    let (line, message) = csv_error("unsorted.csv");
    assert_eq!(line, 5);
    assert!(
        message.contains("series threads")
            && message.contains("on line 3")
            && message.contains("time order"),
        "{message}"
    );

    let (line, message) = csv_error("bad_name.csv");
    assert_eq!(line, 2);
    assert!(message.contains("without a closing"), "{message}");

    let (line, message) = csv_error("bad_limit.csv");
    assert_eq!(line, 2);
    assert!(message.contains("limit \"-5\""), "{message}");

    // The Display form leads with the line, as people read it.
    let error = parse_csv(fixture("nan_value.csv").as_slice()).unwrap_err();
    assert!(error.to_string().starts_with("line 3: "), "{error}");
    assert!(matches!(
        parse_csv(&b""[..]),
        Err(InputError::Csv { line: 1, .. })
    ));
}

#[test]
fn prometheus_matrix_maps_labels_to_keys_and_skips_nan() {
    let parsed = parse_prometheus_query_range(&fixture("query_range.json")).unwrap();
    assert!(parsed.restarts.is_empty());
    let series = parsed.series;
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0].key,
        SeriesKey::from_text("java-svc", "threads", "Analytics-#")
    );
    assert_eq!(series[0].limit, Some(32_768.0));
    assert_eq!(series[0].points.len(), 3);
    assert_eq!(series[0].points[2], Point::new(1_700_000_020.5, 41.0));
    // A plain application metric: a gauge named by metric and its distinguishing labels.
    assert_eq!(
        series[1].key,
        SeriesKey::from_text("10.0.0.1:9090", "gauge", "go_goroutines{pod=api-7d9}")
    );
    assert_eq!(
        series[1].points,
        vec![
            Point::new(1_700_000_000.0, 9.0),
            Point::new(1_700_000_020.0, 250.0)
        ]
    );
}

/// `process_start_time_seconds` is read as the targets' restarts, not judged: each change
/// of a start time is a restart at the new start time (or at the sample that showed it,
/// when the start time is not between the two samples), of the target the labels name.
#[test]
fn prometheus_start_times_are_restarts() {
    let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"go_goroutines","instance":"api:8080","job":"api"},
         "values":[[1000,"10"],[1060,"12"],[1120,"5"],[1180,"7"],[1240,"3"]]},
        {"metric":{"__name__":"process_start_time_seconds","instance":"api:8080","job":"api"},
         "values":[[1000,"900.25"],[1060,"900.3"],[1120,"1101.5"],[1180,"1101.5"],[1240,"1190"]]},
        {"metric":{"__name__":"process_start_time_seconds","instance":"db:5432","job":"db"},
         "values":[[1000,"500"],[1060,"500"],[1120,"7"]]}
    ]}}"#;
    let parsed = parse_prometheus_query_range(body.as_bytes()).unwrap();
    assert_eq!(parsed.series.len(), 1, "start times are not judged");
    assert_eq!(parsed.series[0].key.target, "api:8080");
    let restarts: Vec<(&str, f64)> = parsed
        .restarts
        .iter()
        .map(|r| (r.target.as_str(), r.t))
        .collect();
    // api: a wobble of 0.05 s is the same process; 1101.5 lies between 1060 and 1120; 1190
    // between 1180 and 1240. db: a start time going back is another process too, seen at
    // the sample that showed it.
    assert_eq!(
        restarts,
        vec![
            ("api:8080", 1101.5),
            ("db:5432", 1120.0),
            ("api:8080", 1190.0)
        ]
    );
    assert!(parsed.restarts[0]
        .reason
        .contains("process_start_time_seconds"));
}

#[test]
fn prometheus_errors_are_clear() {
    let error = parse_prometheus_query_range(&fixture("query_range_error.json"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("status \"error\"")
            && error.contains("parse error")
            && error.contains("bad_data"),
        "{error}"
    );

    let error = parse_prometheus_query_range(&fixture("query_vector.json"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("resultType is \"vector\"") && error.contains("query_range"),
        "{error}"
    );

    let error = parse_prometheus_query_range(&fixture("query_range_bad_value.json")).unwrap_err();
    match error {
        InputError::PrometheusSeries { series, message } => {
            assert!(series.contains("api/gauge{up}"), "{series}");
            assert!(
                message.contains("sample 2") && message.contains("\"one\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }

    let error = parse_prometheus_query_range(b"<html>")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a query_range response"), "{error}");
}
