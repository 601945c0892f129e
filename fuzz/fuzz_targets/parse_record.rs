//! One record as JSON text (a LookupEvents CloudTrailEvent, a Lake row).
#![no_main]

use libfuzzer_sys::fuzz_target;

use kmsrot::trail::reader::{parse_record, ReadOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let opts = ReadOptions {
            include_data_events: true,
            ..ReadOptions::default()
        };
        let _ = parse_record(text, "fuzz", &opts);
    }
});
