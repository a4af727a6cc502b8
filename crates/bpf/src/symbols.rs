//! Names the frames of traced stacks from the processes' own mappings: ELF symbol tables,
//! DWARF line information where the binary has it (inlined functions included), and perf
//! maps a JIT wrote (`/tmp/perf-PID.map`), by blazesym, the libbpf project's symboliser.

use crate::sites::{Frame, Site};
use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{CodeInfo, Input, Symbolized, Symbolizer};
use std::collections::BTreeMap;

fn place(code: Option<&CodeInfo<'_>>) -> Option<String> {
    let code = code?;
    let line = code.line?;
    Some(leakwatch_model::text::visible(&format!(
        "{}:{line}",
        code.file.to_string_lossy()
    )))
}

/// Names every frame whose process still runs, expanding inlined calls into frames of their
/// own (innermost first). The first frame of a stack is where the call was made; every
/// other frame is a return address, looked up one byte before (inside the call).
/// `Err` names the processes that could not be read (exited, or not permitted).
pub fn symbolise(sites: &mut [Site]) -> Result<(), String> {
    let symbolizer = Symbolizer::new();
    let mut by_pid: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for site in sites.iter() {
        by_pid.entry(site.pid).or_default().extend(
            site.frames
                .iter()
                .enumerate()
                .map(|(i, f)| lookup_addr(i, f.addr)),
        );
    }
    let mut unreadable = Vec::new();
    for (pid, mut addrs) in by_pid {
        addrs.sort_unstable();
        addrs.dedup();
        // /proc/PID/map_files needs CAP_SYS_ADMIN; without it, the paths in /proc/PID/maps.
        let found = [true, false].into_iter().find_map(|map_files| {
            let mut process = Process::new(pid.into());
            process.map_files = map_files;
            symbolizer
                .symbolize(&Source::Process(process), Input::AbsAddr(&addrs))
                .ok()
        });
        let Some(found) = found else {
            unreadable.push(pid);
            continue;
        };
        let mut names: BTreeMap<u64, Vec<Frame>> = BTreeMap::new();
        for (addr, sym) in addrs.iter().zip(found) {
            let Symbolized::Sym(sym) = sym else { continue };
            let module = sym.module.as_ref().map(|m| {
                let path = std::path::Path::new(m);
                leakwatch_model::text::visible(
                    &path
                        .file_name()
                        .unwrap_or(path.as_os_str())
                        .to_string_lossy(),
                )
            });
            // `f` with `g` inlined into it and `h` into `g`: sym is f (its place: where it
            // calls g), inlined [g, h], each with its own place (where it calls the next, or
            // the address itself for h). Innermost first: h, g, f.
            let mut frames = Vec::new();
            for inlined in sym.inlined.iter().rev() {
                frames.push(Frame {
                    addr: *addr,
                    symbol: Some(leakwatch_model::text::visible(&inlined.name)),
                    module: module.clone(),
                    place: place(inlined.code_info.as_ref()),
                });
            }
            frames.push(Frame {
                addr: *addr,
                symbol: Some(leakwatch_model::text::visible(&sym.name)),
                module,
                place: place(sym.code_info.as_deref()),
            });
            names.insert(*addr, frames);
        }
        for site in sites.iter_mut().filter(|s| s.pid == pid) {
            let mut named = Vec::with_capacity(site.frames.len());
            for (i, frame) in site.frames.iter().enumerate() {
                match names.get(&lookup_addr(i, frame.addr)) {
                    Some(expanded) => named.extend(expanded.iter().map(|f| Frame {
                        addr: frame.addr,
                        ..f.clone()
                    })),
                    None => named.push(frame.clone()),
                }
            }
            site.frames = named;
        }
    }
    if unreadable.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the code of pid {unreadable:?} could not be read to name its frames (the process \
             exited before the trace ended, or reading it is not permitted)"
        ))
    }
}

/// The address to look up for the `i`th frame: a return address is one past its call.
fn lookup_addr(i: usize, addr: u64) -> u64 {
    if i == 0 {
        addr
    } else {
        addr.saturating_sub(1)
    }
}
