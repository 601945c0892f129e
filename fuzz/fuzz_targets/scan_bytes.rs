//! Any bytes, under any label, through the whole reader: it must return a
//! verdict, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use kmsrot::trail::reader::{scan_bytes, ReadOptions, Verdict};
use kmsrot::trail::scan::{skip_balanced, skip_value};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options and the label, so the fuzzer also
    // explores data events, AWS-named files and digest paths.
    let (flags, body) = data.split_first().unwrap_or((&0, data));
    let opts = ReadOptions {
        include_data_events: flags & 1 != 0,
        ..ReadOptions::default()
    };
    let label = match flags >> 1 & 3 {
        0 => "x.json",
        1 => "111122223333_CloudTrail_us-east-1_20250101T0000Z_abcd.json.gz",
        2 => "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/d.json.gz",
        _ => "events.ndjson",
    };
    // The fast record cutter must agree with the full structural scan on
    // every value the full scan accepts.
    if matches!(body.first(), Some(b'{') | Some(b'[')) {
        if let Ok(end) = skip_value(body, 0) {
            assert_eq!(skip_balanced(body, 0), Ok(end));
        }
    }
    let scan = scan_bytes(label, body, &opts);
    assert!(scan.records_read as usize <= body.len().max(1) * 1024);
    if let Verdict::Corrupt(reason) | Verdict::Skipped(reason) = &scan.verdict {
        assert!(!reason.is_empty());
    }
});
