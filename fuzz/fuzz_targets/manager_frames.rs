//! The manager's frame reader, then the request decoder on each frame, on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    multiproc::fuzzing::manager_frames(bytes);
});
