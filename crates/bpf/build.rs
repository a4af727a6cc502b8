//! Compiles the eBPF program (`bpf/creation.bpf.c`) with clang into `OUT_DIR`; the crate
//! embeds the object and loads it with libbpf at run time. Raw tracepoints and fixed
//! tracepoint arguments: no vmlinux.h, no CO-RE relocations are needed.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/creation.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("creation.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let arch_include = format!(
        "-I/usr/include/{}-linux-gnu",
        std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into())
    );
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(arch_include)
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to compile {src}: {s}"),
        Err(e) => panic!(
            "cannot run {clang} to compile {src} ({e}): install clang and libbpf-dev \
             (apt-get install clang libbpf-dev), or set CLANG"
        ),
    }
}
