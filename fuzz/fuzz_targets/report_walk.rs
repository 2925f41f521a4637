//! The container walker: `mtasts_report::walk` on any bytes, with small limits, never panics, finds at
//! least one item, labels every item below its input, and classes every error. When byte 0 is odd the
//! bytes are also written to a file and read by `walk_path`, which streams gzip and XML: it must answer
//! exactly as `walk` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mtasts_proto::dmarc::Mode;
use mtasts_report::{Found, Limits, walk, walk_path};

fn limits(mode: Mode) -> Limits {
    let mut limits = Limits::default();
    limits.max_report_bytes = 1 << 20;
    limits.max_total_bytes = 4 << 20;
    limits.max_zip_entries = 16;
    limits.max_depth = 4;
    limits.max_parts = 64;
    limits.max_input_bytes = 1 << 20;
    limits.dmarc_mode = mode;
    limits
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let mode = if flags & 2 == 0 {
        Mode::Summary
    } else {
        Mode::Full
    };
    let limits = limits(mode);
    let found = walk(input, "in", &limits);
    assert!(!found.is_empty());
    for item in &found {
        let source = item.source();
        assert!(source == "in" || source.starts_with("in#"), "{source}");
        if let Found::Error(e) = item {
            assert!(!e.message.is_empty());
        }
    }
    if flags & 1 == 1 {
        // One file per fuzzing process, in memory-backed /dev/shm when there is one.
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("mtasts-fuzz-walk-{}", std::process::id()));
        std::fs::write(&path, input).expect("write the input file");
        let streamed = walk_path(&path, &limits).expect("walk_path");
        let in_memory = walk(input, &path.display().to_string(), &limits);
        let _ = std::fs::remove_file(&path);
        assert_eq!(streamed, in_memory, "walk_path and walk disagree");
    }
});
