//! Capacity thresholds that fit the element: a small element (a laptop, a CI container) works
//! until it is genuinely full, then turns `ro` (after consecutive full measurements, audited with
//! its numbers) and uploads get a 507 naming the element and its free space, with nothing
//! half-written.

mod common;

use std::time::Duration;

use artstore_client::{ClientError, UploadOptions};
use common::*;

/// The default pair of elements, with `capacity` bytes for the `rw` one.
fn elements(capacity: i64) -> impl Fn(&mut toml::Table) {
    move |t: &mut toml::Table| {
        let element = |name: &str, mode: &str, cap: Option<i64>| {
            let mut e = toml::Table::new();
            e.insert("name".into(), name.into());
            e.insert("location".into(), format!("data/elements/{name}").into());
            e.insert("mode".into(), mode.into());
            if let Some(c) = cap {
                e.insert("capacity_bytes".into(), c.into());
            }
            toml::Value::Table(e)
        };
        set(
            t,
            "storage",
            "elements",
            toml::Value::Array(vec![element("default", "rw", Some(capacity)), element("temp", "edit", None)]),
        );
        set(t, "storage", "chunk_size_bytes", 64 * 1024);
    }
}

async fn default_mode(c: &LocalCluster) -> String {
    let list = c.client(1).storage_elements().await.unwrap();
    list.elements.iter().find(|e| e.name == "default").map(|e| e.mode.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_two_gigabyte_element_is_not_full_and_stays_rw() {
    // Before: the fixed 20 GB reserve made any element under 20 GB full two seconds after start,
    // and the node switched it to ro for good.
    let (c, _) = started_cluster(1, elements(2_000_000_000)).await;
    let client = c.client(1);
    for i in 0..3 {
        client.upload(&format!("f{i}.txt"), vec![b'x'; 1000], &UploadOptions::default()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert_eq!(default_mode(&c).await, "rw");
    assert!(!c.log(1).contains("switching it to ro"), "{}", c.log(1));
}

#[tokio::test]
async fn a_small_element_fills_up_then_turns_ro_and_refuses_with_507_naming_it() {
    let (c, _) = started_cluster(1, elements(3 * 1024 * 1024)).await;
    let client = c.client(1);
    let mut accepted = 0;
    let refusal = loop {
        match client
            .upload(&format!("f{accepted}.bin"), vec![accepted as u8; 256 * 1024], &UploadOptions::default())
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "a 3 MiB element took {accepted} files of 256 KiB");
    };
    assert!(accepted >= 8, "the element refused uploads long before it was full: {accepted} accepted");
    let ClientError::InsufficientStorage(message) = &refusal else { panic!("expected a 507, got {refusal:?}") };
    assert!(message.contains("default") && message.contains("free"), "{message}");
    // Nothing half-written: exactly the accepted files are in the catalog.
    assert_eq!(client.list_files("", 1000).await.unwrap().files.len(), accepted);

    // Full on consecutive measurements: the element turns ro, audited with the numbers.
    eventually(Duration::from_secs(20), "the full element turning ro", || async {
        (default_mode(&c).await == "ro").then_some(())
    })
    .await;
    let audit = client.audit(1, 1000, Some("element.mode")).await.unwrap();
    let switch = audit.records.iter().find(|r| r.target.contains("→ro")).expect("the switch is audited");
    assert!(switch.target.contains("free of") && switch.target.contains("consecutive"), "{}", switch.target);
    let again = client.upload("late.bin", vec![1; 1000], &UploadOptions::default()).await.unwrap_err();
    assert!(matches!(again, ClientError::InsufficientStorage(_)), "{again:?}");
    assert!(!c.log(1).contains("panicked"));
}
