//! Rendering for leakwatch's dashboard and reports: plain data in, HTML, SVG and Markdown
//! text out.
//!
//! The crate does no I/O: no clock, no files, no network, no database, no JSON. The HTTP
//! layer (`leakwatch-agent`'s `http.rs`) and the CLI (`leakwatch report`) read the data,
//! fill the types of [`model`], and call [`page`] or [`report`]. Everything is therefore
//! testable from literal inputs, and a page is a function of its data.
//!
//! - [`downsample`]: min/max per pixel column, so a chart costs one pass over the points
//!   and draws O(width) however long the range.
//! - [`chart`]: one SVG time-series chart: several lines with a legend, the limit as a
//!   dashed line, restart markers, and a finding's trend and forecast.
//! - [`page`]: the dashboard's overview and target pages (inline CSS and a tiny inline
//!   script for drag-to-zoom; no external assets).
//! - [`report`]: a self-contained HTML report with inline SVG, and the same in Markdown.
//!
//! Every string that comes from a process (thread names, command lines, peers, stderr) is
//! untrusted and goes through [`escape::html`] before it reaches markup.

#![forbid(unsafe_code)]

pub mod chart;
pub mod downsample;
pub mod escape;
pub mod format;
pub mod model;
pub mod page;
pub mod report;
pub mod scale;
