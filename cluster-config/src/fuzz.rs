//! Fuzzing `config.toml` parsing and validation: any text is either refused with a message or
//! becomes a configuration whose validation reports problems; never a panic.

use proptest::prelude::*;

use crate::NodeConfig;

fn parse_and_validate(text: &str) {
    if let Ok(mut c) = toml::from_str::<NodeConfig>(text) {
        c.resolve_paths(std::path::Path::new("/nonexistent-base"));
        let _ = c.validate();
    }
}

#[test]
fn the_seed_corpus_is_refused_or_validated() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        parse_and_validate(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
    }
}

/// Lines from the configuration's own vocabulary, so random files get past the parser.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("node_id = 1".to_string()),
        Just("[tls]\nca_cert = \"a\"\ncert = \"b\"\nkey = \"c\"".to_string()),
        Just("[limits]".to_string()),
        Just("[storage]".to_string()),
        Just("[auth]".to_string()),
        Just("[raft]".to_string()),
        ("[a-z_]{1,24}", any::<i64>()).prop_map(|(k, v)| format!("{k} = {v}")),
        ("[a-z_]{1,24}", ".{0,20}").prop_map(|(k, v)| format!("{k} = {:?}", v)),
        ".{0,40}",
    ];
    proptest::collection::vec(line, 0..30).prop_map(|l| l.join("\n"))
}

proptest! {
    #[test]
    fn any_config_text_is_refused_or_validated(text in config_text()) {
        parse_and_validate(&text);
    }
}
