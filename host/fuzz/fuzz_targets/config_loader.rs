#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vidhook_fuzz::config(data));
