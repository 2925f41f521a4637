//! [`mtasts_report::walk_path`] on files and directories made in a temporary folder.

use mtasts_report::{Code, Found, Limits, walk_path};

const TLS_JSON: &str = r#"{"organization-name": "Example", "report-id": "r1",
  "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
  "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]}"#;

fn codes(found: &[Found]) -> Vec<(String, &'static str)> {
    found
        .iter()
        .map(|f| {
            let kind = match f {
                Found::TlsRpt { .. } => "tlsrpt",
                Found::Dmarc { .. } => "dmarc",
                Found::Error(e) => e.code.as_str(),
                _ => "other",
            };
            let name = std::path::Path::new(f.source())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), kind)
        })
        .collect()
}

#[test]
fn a_file_is_labelled_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.json");
    std::fs::write(&file, TLS_JSON).expect("write");
    let found = walk_path(&file, &Limits::default()).expect("walk");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].source(), file.display().to_string());
}

#[test]
fn a_maildir_is_walked_in_name_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::write(dir.path().join("new/2"), TLS_JSON).expect("write");
    std::fs::write(dir.path().join("cur/1"), TLS_JSON).expect("write");
    std::fs::write(dir.path().join("cur/0"), b"junk").expect("write");
    let found = walk_path(dir.path(), &Limits::default()).expect("walk");
    assert_eq!(
        codes(&found),
        vec![
            ("0".to_owned(), "unrecognized"),
            ("1".to_owned(), "tlsrpt"),
            ("2".to_owned(), "tlsrpt")
        ]
    );
}

#[test]
fn a_file_past_max_input_bytes_is_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.json"), TLS_JSON).expect("write");
    let mut limits = Limits::default();
    limits.max_input_bytes = 16;
    let found = walk_path(dir.path(), &limits).expect("walk");
    assert_eq!(codes(&found), vec![("big.json".to_owned(), "too-large")]);
}

#[test]
fn files_past_max_files_give_one_too_large_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..5 {
        std::fs::write(dir.path().join(format!("{i}.json")), TLS_JSON).expect("write");
    }
    let mut limits = Limits::default();
    limits.max_files = 2;
    let found = walk_path(dir.path(), &limits).expect("walk");
    let too_large = found
        .iter()
        .filter(|f| matches!(f, Found::Error(e) if e.code == Code::TooLarge));
    assert_eq!(too_large.count(), 1);
    assert_eq!(found.len(), 3);
}

#[test]
fn directories_nested_past_the_depth_are_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut deep = dir.path().to_path_buf();
    for i in 0..12 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("r.json"), TLS_JSON).expect("write");
    let found = walk_path(dir.path(), &Limits::default()).expect("walk");
    assert_eq!(found.len(), 1);
    assert!(
        matches!(&found[0], Found::Error(e) if e.code == Code::TooLarge),
        "{found:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).expect("symlink");
    std::fs::write(dir.path().join("r.json"), TLS_JSON).expect("write");
    let found = walk_path(dir.path(), &Limits::default()).expect("walk");
    assert_eq!(codes(&found), vec![("r.json".to_owned(), "tlsrpt")]);
}

#[test]
fn a_missing_path_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing-here");
    let err = walk_path(&missing, &Limits::default()).expect_err("missing");
    assert!(err.to_string().contains("nothing-here"), "{err}");
}
