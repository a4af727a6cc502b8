//! Every /proc parser on arbitrary bytes: none may panic, whatever the kernel (or a
//! malicious process name) puts in front of it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leakwatch_proc::parse::parse_everything(data);
});
