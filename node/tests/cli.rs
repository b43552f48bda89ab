//! The `artstore` command line against a real 3-node cluster, as a script would use it: every
//! file command's `--output json` is one JSON document on stdout, connection settings come from
//! flags, environment or a profile file, and the exit code tells the kind of failure apart.

mod common;

use std::path::Path;
use std::process::Command;

use artstore_client::wire::{FileInfo, FileList, SearchResults};
use common::*;
use sha2::{Digest, Sha256};

/// The outcome of one `artstore` run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout as one JSON document (fails the test on anything else, or on a failed run).
    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert_eq!(self.code, Some(0), "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.stdout))
    }
}

/// Runs `artstore` with a clean environment: no `ARTSTORE_*` from outside, `HOME` in `home`.
fn artstore(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("ARTSTORE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.env("HOME", home).envs(env.iter().copied()).args(args).output().expect("run artstore");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test]
async fn json_output_of_the_file_commands_parses_and_profiles_supply_the_connection() {
    let (cluster, _) = started_cluster(3, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (id, secret) = cluster.admin_credentials();
    // A profile file with two profiles; flags and environment win over it.
    let profiles = home.join("profiles.toml");
    // Over HTTPS, the profiles name the cluster CA.
    let ca = if cluster.tls() { format!("ca_cert = {:?}\n", cluster.ca_cert_path()) } else { String::new() };
    std::fs::write(
        &profiles,
        format!(
            "[archive]\nurl = \"{},{}\"\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n{ca}\n\
             [stale]\nurl = \"http://127.0.0.1:1\"\nclient_id = \"{id}\"\nclient_secret = \"{secret}\"\n{ca}",
            cluster.url(1),
            cluster.url(2)
        ),
    )
    .unwrap();
    let profile_file = profiles.to_str().unwrap();
    let env = [("ARTSTORE_PROFILE_FILE", profile_file), ("ARTSTORE_PROFILE", "archive")];
    let cli = |args: &[&str]| artstore(home, &env, args);

    let a = home.join("устав.pdf");
    let b = home.join("minutes.txt");
    std::fs::write(&a, b"%PDF charter of the company").unwrap();
    std::fs::write(&b, b"minutes of the board meeting").unwrap();
    let (a_path, b_path) = (a.to_str().unwrap(), b.to_str().unwrap());

    // One path: one record; several: an array of records.
    let one: FileInfo = cli(&["upload", "--tag", "board", "--attr", "year=2026", "--output", "json", a_path]).json();
    assert_eq!((one.name.as_str(), one.sha256.clone()), ("устав.pdf", sha(b"%PDF charter of the company")));
    let many: Vec<FileInfo> = cli(&["upload", "--tag", "board", "--output", "json", a_path, b_path]).json();
    assert_eq!(many.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec!["устав.pdf", "minutes.txt"]);

    // Search with filters, a sort and every page.
    let found: SearchResults =
        cli(&["search", "устав", "--tag", "board", "--attr", "year=2026", "--consistent", "--output", "json"]).json();
    assert_eq!(found.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec![one.id.as_str()]);
    let all: SearchResults = cli(&[
        "search",
        "--tag",
        "board",
        "--sort",
        "name",
        "--order",
        "asc",
        "--limit",
        "1",
        "--all",
        "--consistent",
        "--output",
        "json",
    ])
    .json();
    let names: Vec<&str> = all.hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["minutes.txt", "устав.pdf", "устав.pdf"]);

    // files get / update / list.
    let got: FileInfo = cli(&["files", "get", &one.id, "--output", "json"]).json();
    assert_eq!(got, one);
    let updated: FileInfo = cli(&[
        "files",
        "update",
        &one.id,
        "--description",
        "signed charter",
        "--tag",
        "legal",
        "--attr",
        "year=2027",
        "--output",
        "json",
    ])
    .json();
    assert_eq!((updated.version, updated.tags.clone()), (2, vec!["legal".to_string()]));
    assert_eq!(updated.custom_attributes["year"], "2027");
    let listed: FileList = cli(&["files", "list", "--limit", "2", "--all", "--output", "json"]).json();
    assert_eq!(listed.files.len(), 3);
    assert!(listed.next_cursor.is_none());

    // download: the record, the path, verified; the bytes are the uploaded ones.
    let dst = home.join("copy.pdf");
    let report: serde_json::Value = cli(&["download", &one.id, "-o", dst.to_str().unwrap(), "--output", "json"]).json();
    assert_eq!((report["verified"].as_bool(), report["file"]["id"].as_str()), (Some(true), Some(one.id.as_str())));
    assert_eq!(report["path"].as_str(), dst.to_str());
    assert_eq!(std::fs::read(&dst).unwrap(), b"%PDF charter of the company");

    // files delete (a temporary upload may be deleted).
    let temp: FileInfo = cli(&["upload", "--temporary", "--ttl-days", "1", "--output", "json", b_path]).json();
    let deleted: serde_json::Value = cli(&["files", "delete", &temp.id, "--output", "json"]).json();
    assert_eq!((deleted["id"].as_str(), deleted["deleted"].as_bool()), (Some(temp.id.as_str()), Some(true)));
    assert_eq!(cli(&["files", "get", &temp.id]).code, Some(4));

    // Precedence: the `stale` profile's dead URL is overridden by --url, and by ARTSTORE_URL.
    let stale = [("ARTSTORE_PROFILE_FILE", profile_file)];
    let via_flag = artstore(
        home,
        &stale,
        &["files", "get", &one.id, "--profile", "stale", "--url", &cluster.url(3), "--output", "json"],
    );
    assert_eq!(via_flag.json::<FileInfo>().id, one.id);
    let url3 = cluster.url(3);
    let env_url =
        [("ARTSTORE_PROFILE_FILE", profile_file), ("ARTSTORE_PROFILE", "stale"), ("ARTSTORE_URL", url3.as_str())];
    assert_eq!(artstore(home, &env_url, &["files", "get", &one.id, "--output", "json"]).json::<FileInfo>().id, one.id);
    // Text output is for people, and is not JSON.
    let text = cli(&["files", "get", &one.id]);
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.contains("signed charter") && serde_json::from_str::<serde_json::Value>(&text.stdout).is_err());
}

#[tokio::test]
async fn exit_codes_tell_usage_auth_not_found_unavailable_and_conflict_apart() {
    let (cluster, _) = started_cluster(3, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (id, secret) = cluster.admin_credentials();
    let url = format!("{},{}", cluster.url(1), cluster.url(3));
    let ca = cluster.ca_cert_path().to_string_lossy().into_owned();
    // Over HTTPS the CLI trusts the cluster CA through ARTSTORE_CA_CERT (harmless over HTTP).
    let env = [
        ("ARTSTORE_URL", url.as_str()),
        ("ARTSTORE_CLIENT_ID", id.as_str()),
        ("ARTSTORE_CLIENT_SECRET", secret.as_str()),
        ("ARTSTORE_CA_CERT", ca.as_str()),
    ];
    let cli = |args: &[&str]| artstore(home, &env, args);
    let src = home.join("kept.txt");
    std::fs::write(&src, b"permanent record").unwrap();
    let kept: FileInfo = cli(&["upload", "--output", "json", src.to_str().unwrap()]).json();
    let missing = "01a00000-0000-7000-8000-000000000000";

    // 2: usage — clap's own, and settings or arguments the command cannot use.
    let usage_errors: Vec<Vec<&str>> = vec![
        vec!["files", "get"],
        vec!["search", "--sort", "colour"],
        vec!["files", "update", &kept.id],
        vec!["search", "x", "--attr", "no-equals-sign"],
        vec!["files", "get", &kept.id, "--profile", "nowhere"],
        vec!["files", "get", &kept.id, "--url", "ftp://example.com"],
    ];
    for args in &usage_errors {
        let run = cli(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?} printed {}", run.stdout);
    }
    let no_credentials = artstore(
        home,
        &[("ARTSTORE_URL", url.as_str()), ("ARTSTORE_CA_CERT", ca.as_str())],
        &["files", "get", &kept.id],
    );
    assert_eq!(no_credentials.code, Some(2), "{}", no_credentials.stderr);
    assert!(no_credentials.stderr.contains("no credentials"), "{}", no_credentials.stderr);

    // 3: authentication.
    let wrong = [
        ("ARTSTORE_URL", url.as_str()),
        ("ARTSTORE_CLIENT_ID", id.as_str()),
        ("ARTSTORE_CLIENT_SECRET", "Wrong-Secret-123"),
        ("ARTSTORE_CA_CERT", ca.as_str()),
    ];
    let run = artstore(home, &wrong, &["files", "get", &kept.id, "--output", "json"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // 4: not found, with the server's message.
    for args in
        [vec!["files", "get", missing, "--output", "json"], vec!["download", missing], vec!["files", "delete", missing]]
    {
        let run = cli(&args);
        assert_eq!(run.code, Some(4), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("not found"), "{}", run.stderr);
    }

    // 5: no node reachable.
    let run = artstore(home, &env, &["files", "get", &kept.id, "--url", "http://127.0.0.1:1"]);
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert!(run.stderr.contains("unavailable"), "{}", run.stderr);

    // 6: conflict: a permanent file cannot be deleted.
    let run = cli(&["files", "delete", &kept.id, "--output", "json"]);
    assert_eq!(run.code, Some(6), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(cli(&["files", "get", &kept.id, "--output", "json"]).json::<FileInfo>().id, kept.id);
}
