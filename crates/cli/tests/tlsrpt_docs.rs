//! docs/tlsrpt.md as a reader uses it: every ```toml block is a configuration the resolver
//! accepts (the whole file, with `[tlsrpt]` validated as the daemon validates it at start), and
//! the key table names every `[tlsrpt]` key the configuration has, so neither drifts from the
//! other. (Its ```sh blocks are run by tests/docs.rs.)

use std::path::Path;

fn document() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tlsrpt.md"))
        .expect("docs/tlsrpt.md")
}

/// The bodies of the fenced blocks whose info string is `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(body) => out.push(body),
                None if info.trim() == lang => current = Some(String::new()),
                None => {
                    // Another kind of block: skip to its end.
                    current = None;
                }
            }
            continue;
        }
        if let Some(body) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

#[test]
fn every_toml_block_is_a_configuration_the_resolver_accepts() {
    let text = document();
    let tomls = blocks(&text, "toml");
    assert!(!tomls.is_empty(), "docs/tlsrpt.md shows a configuration");
    for toml in tomls {
        let config = mtasts_sender::Config::from_toml_str(&toml)
            .unwrap_or_else(|e| panic!("docs/tlsrpt.md:\n{toml}\nis refused: {e}"));
        config
            .tlsrpt
            .validate()
            .unwrap_or_else(|e| panic!("docs/tlsrpt.md:\n{toml}\nis not valid: {e}"));
        assert!(config.tlsrpt.enabled);
    }
}

#[test]
fn the_key_table_names_every_tlsrpt_key() {
    let text = document();
    let table: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect::<Vec<_>>();
    // Every key of the configuration, as serde writes the defaults (absent ones as null).
    let defaults = serde_json::to_value(mtasts_sender::tlsrpt::TlsrptConfig::default()).unwrap();
    let mut keys = Vec::new();
    for (key, value) in defaults.as_object().unwrap() {
        match key.as_str() {
            "mail" => keys.extend(
                value
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| format!("mail.{k}")),
            ),
            "socket" => {
                keys.extend(["path", "owner", "group", "mode"].map(|k| format!("socket.{k}")))
            }
            _ => keys.push(key.clone()),
        }
    }
    assert!(keys.len() > 20, "{keys:?}");
    for key in keys {
        let named = format!("`{key}`");
        assert!(
            table.iter().any(|row| row.contains(&named)),
            "docs/tlsrpt.md's key table does not name {named}"
        );
    }
}
