//! `leakwatch-analyze`: offline inputs and evaluation for the detection engine.
//!
//! - [`parse_csv`] and [`parse_prometheus_query_range`] turn exported samples (CSV, or a
//!   Prometheus `query_range` response) into [`leakwatch_detect::Series`]. They take
//!   readers or bytes, never paths, so fixtures are plain files and callers choose the I/O.
//!   A Prometheus response's `process_start_time_seconds` series become restarts.
//! - [`corpus`] generates the synthetic evaluation corpus: leaks (linear, steps, sawtooth,
//!   sub-linear, masked by restarts) and healthy look-alikes (warm-up, caches filling to a
//!   plateau, bursts, daily cycles, level shifts), each with its ground truth.
//! - [`score`] replays the corpus through the engine and two baselines (a static 75%
//!   threshold and Prometheus' `predict_linear`) and reports detection, attribution,
//!   delay, lead time before exhaustion and false alarms; the `leakwatch-score` binary
//!   prints it as a markdown table or JSON.

#![forbid(unsafe_code)]

pub mod corpus;
mod csv;
mod error;
pub mod evaluate;
pub mod generate;
mod prometheus;
pub mod rng;
pub mod score;
mod time;

pub use csv::{parse_csv, parse_restarts_csv, parse_series_name};
pub use error::InputError;
pub use prometheus::{parse_prometheus_query_range, QueryRange, START_TIME_METRIC};
pub use time::parse_time;
