//! The manager's request decoder (scan, then decode) on arbitrary bytes: never a panic, an abort,
//! or an allocation out of proportion to the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    multiproc::fuzzing::manager_request(bytes);
});
