//! Names the frames of traced stacks from the processes' own mappings: ELF symbol tables,
//! DWARF line information where the binary has it, and perf maps a JIT wrote
//! (`/tmp/perf-PID.map`), by blazesym, the libbpf project's symboliser.

use crate::sites::Site;
use blazesym::symbolize::source::{Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::BTreeMap;

/// Fills `symbol`, `module` and `place` of every frame whose process still runs.
pub fn symbolise(sites: &mut [Site]) {
    let symbolizer = Symbolizer::new();
    let mut by_pid: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for site in sites.iter() {
        by_pid
            .entry(site.pid)
            .or_default()
            .extend(site.frames.iter().map(|f| f.addr));
    }
    for (pid, mut addrs) in by_pid {
        addrs.sort_unstable();
        addrs.dedup();
        let source = Source::Process(Process::new(pid.into()));
        let Ok(found) = symbolizer.symbolize(&source, Input::AbsAddr(&addrs)) else {
            continue;
        };
        let mut names: BTreeMap<u64, (String, Option<String>, Option<String>)> = BTreeMap::new();
        for (addr, sym) in addrs.iter().zip(found) {
            if let Symbolized::Sym(sym) = sym {
                let module = sym.module.as_ref().map(|m| {
                    let path = std::path::Path::new(m);
                    path.file_name()
                        .unwrap_or(path.as_os_str())
                        .to_string_lossy()
                        .into_owned()
                });
                let place = sym.code_info.as_ref().and_then(|c| {
                    let file = c.file.to_string_lossy();
                    c.line.map(|line| format!("{file}:{line}"))
                });
                names.insert(
                    *addr,
                    (
                        leakwatch_model::text::visible(&sym.name),
                        module.map(|m| leakwatch_model::text::visible(&m)),
                        place.map(|p| leakwatch_model::text::visible(&p)),
                    ),
                );
            }
        }
        for site in sites.iter_mut().filter(|s| s.pid == pid) {
            for frame in &mut site.frames {
                if let Some((symbol, module, place)) = names.get(&frame.addr) {
                    frame.symbol = Some(symbol.clone());
                    frame.module = module.clone();
                    frame.place = place.clone();
                }
            }
        }
    }
}
