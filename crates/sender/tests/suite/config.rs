//! The example configurations under `testdata/config/`: each parses and validates, and an
//! unknown key injected into any of their tables is rejected.

use std::path::PathBuf;

use mtasts_sender::{Config, ConfigError, Settings};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/config")
        .join(name)
}

fn check(name: &str) -> Config {
    let config = Config::load(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Settings::from_config(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
    config
}

macro_rules! example_test {
    ($test:ident, $file:literal) => {
        #[test]
        fn $test() {
            check($file);
        }
    };
}

example_test!(minimal_example_parses, "minimal.toml");
example_test!(full_example_parses, "full.toml");
example_test!(dane_example_parses, "dane.toml");
example_test!(unix_example_parses, "unix.toml");
example_test!(inbound_example_parses, "inbound.toml");

#[test]
fn empty_file_is_the_default() {
    assert_eq!(check("minimal.toml"), Config::default());
}

#[test]
fn full_example_sets_every_section() {
    let config = check("full.toml");
    assert_eq!(config.timeout, 5);
    assert!(config.dane);
    assert!(config.http.listen.is_empty());
    assert_eq!(config.cache.negative_ttl, 900);
    assert_eq!(config.cache.store_retry, 30);
    assert_eq!(config.tls_levels.len(), 3);
    assert!(config.profiles.contains_key("postfix-tlsrpt"));
    assert!(config.socketmap.unix.is_some());
}

/// Every table header of every example gets a bogus key; each variant must be rejected.
#[test]
fn unknown_keys_are_rejected_in_every_table_of_every_example() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/config");
    let mut variants = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // The top level, then after each `[table]` header (not `[[array]]`, not inline).
        let mut positions = vec![0];
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.starts_with('[') && !line.starts_with("[[") && !line.starts_with("[tls_levels]")
            {
                positions.push(i + 1);
            }
        }
        for at in positions {
            let mut injected = lines.clone();
            injected.insert(at, "bogus_key_for_test = 1");
            let injected = injected.join("\n");
            let err = Config::from_toml_str(&injected).unwrap_err();
            assert!(
                matches!(err, ConfigError::Syntax { .. }),
                "{}: {err}",
                path.display()
            );
            assert!(err.to_string().contains("bogus_key_for_test"), "{err}");
            variants += 1;
        }
    }
    assert!(variants >= 8, "{variants}");
}
