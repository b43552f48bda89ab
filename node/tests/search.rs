//! Search on a real 3-node cluster: what one node accepts, another finds (`consistent=true`), in
//! Russian and English; filters, sorts and cursor paging over HTTP; deletes leave the index; a
//! node whose index folder is gone rebuilds it from its catalog.

mod common;

use std::time::Duration;

use artstore_client::{ClientError, Search, SortBy, UploadOptions};
use common::*;
use futures::TryStreamExt;

fn opts(description: &str, tags: &[&str], attrs: serde_json::Value) -> UploadOptions {
    UploadOptions {
        description: Some(description.into()),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        attributes: attrs.as_object().cloned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn uploads_are_found_from_every_node_with_filters_sorts_and_paging() {
    let (mut cluster, _) = started_cluster(3, |_| {}).await;
    let n1 = cluster.client(1);
    let n3 = cluster.client(3);

    let contract = n1
        .upload(
            "Договор поставки.pdf",
            b"%PDF contract".to_vec(),
            &UploadOptions {
                content_type: Some("application/pdf".into()),
                ..opts("подписанный документ", &["contracts"], serde_json::json!({"year": 2024, "dept": "закупки"}))
            },
        )
        .await
        .unwrap();
    let report = n1
        .upload(
            "annual reports 2023.txt",
            b"numbers".to_vec(),
            &opts("Archived financial reports", &["finance", "archive"], serde_json::json!({"year": 2023})),
        )
        .await
        .unwrap();

    // Written through node 1, found at once on node 3.
    let hits = n3.search(&Search::text("документы").consistent()).await.unwrap();
    assert_eq!(hits.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), vec![contract.id.as_str()]);
    let hit = &hits.hits[0];
    assert_eq!(
        (hit.name.as_str(), hit.size, hit.sha256.as_str()),
        ("Договор поставки.pdf", 13, contract.sha256.as_str())
    );
    assert_eq!(hit.tags, vec!["contracts"]);
    assert_eq!(hit.custom_attributes["year"], 2024);
    assert!(hit.score > 0.0);
    assert_eq!(n3.search(&Search::text("report").consistent()).await.unwrap().hits[0].id, report.id);
    assert_eq!(n3.search(&Search::text("name:договор").consistent()).await.unwrap().total, 1);
    assert_eq!(n3.search(&Search::text("закупки").consistent()).await.unwrap().total, 1, "attribute values");
    assert_eq!(n3.search(&Search::all().attr_gte("year", 2024).consistent()).await.unwrap().hits[0].id, contract.id);
    assert_eq!(n3.search(&Search::all().content_type("application/pdf")).await.unwrap().total, 1);
    assert_eq!(n3.search(&Search::all().tag("finance").tag("archive")).await.unwrap().hits[0].id, report.id);
    assert_eq!(n3.search(&Search::all().size_min(10)).await.unwrap().hits[0].id, contract.id);

    // Paging over many files returns every one exactly once, in order.
    let mut ids = Vec::new();
    for i in 0..23 {
        let f = n1
            .upload(
                &format!("batch {i:02}.txt"),
                vec![b'x'; i + 1],
                &opts("batch item", &["batch"], serde_json::json!({})),
            )
            .await
            .unwrap();
        ids.push(f.id);
    }
    let by_size: Vec<String> = n3
        .search_all(Search::text("batch").sort(SortBy::Size, false).limit(5).consistent())
        .map_ok(|h| h.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_size, ids, "ascending size is upload order here");
    let by_name: Vec<String> = n3
        .search_all(Search::all().tag("batch").sort(SortBy::Name, true).limit(4))
        .map_ok(|h| h.name)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_name.first().map(String::as_str), Some("batch 22.txt"));
    assert_eq!(by_name.len(), 23);

    // Listing filters too, from the catalog, with a cursor.
    let token = n3.token().await.unwrap();
    let http = cluster.http();
    let list = |query: String| {
        let (http, token, url) = (http.clone(), token.clone(), cluster.url(3));
        async move {
            let resp = http.get(format!("{url}/api/v1/files?{query}")).bearer_auth(token).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, page) = list("tag=batch&limit=10".into()).await;
    assert_eq!(status, 200);
    assert_eq!(page["files"].as_array().unwrap().len(), 10);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = list(format!("tag=batch&limit=100&after={cursor}")).await;
    assert_eq!(rest["files"].as_array().unwrap().len(), 13);
    assert!(rest["next_cursor"].is_null());
    let (_, pdfs) = list("content_type=application/pdf".into()).await;
    assert_eq!(pdfs["files"][0]["id"], contract.id.as_str());
    let (status, err) = list("colour=red".into()).await;
    assert_eq!(status, 400, "{err}");

    // Bad requests are named.
    let err = n3.search(&Search::text("name:(")).await.unwrap_err();
    assert!(matches!(&err, ClientError::BadRequest { message, .. } if message.starts_with("q:")), "{err}");
    let err = n3.search_page(&Search::all(), Some("not-a-cursor")).await.unwrap_err();
    assert!(matches!(&err, ClientError::BadRequest { message, .. } if message.contains("cursor")), "{err}");

    // Deleting removes the file from search everywhere.
    let draft = n1
        .upload(
            "черновик.txt",
            b"draft".to_vec(),
            &UploadOptions { retention_policy: Some("temporary".into()), ttl_days: Some(1), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(n3.search(&Search::text("черновики").consistent()).await.unwrap().total, 1);
    n1.delete_file(&draft.id).await.unwrap();
    assert_eq!(n3.search(&Search::text("черновик").consistent()).await.unwrap().total, 0);

    // A node whose index folder is deleted rebuilds it from the catalog at start-up.
    let index_dir = cluster.node(3).dir.join("data").join("index");
    assert!(index_dir.join("meta.json").exists(), "index lives in {}", index_dir.display());
    cluster.kill(3);
    std::fs::remove_dir_all(&index_dir).unwrap();
    cluster.start(3).unwrap();
    cluster.wait_ready(3, READY).await.unwrap();
    let all = eventually(Duration::from_secs(30), "a rebuilt index", || async {
        n3.search(&Search::all().consistent()).await.ok().filter(|r| r.total == 25)
    })
    .await;
    assert_eq!(all.total, 25);
    assert!(cluster.log(3).contains("search index rebuilt"), "the rebuild is logged");
    assert_eq!(n3.search(&Search::text("документ").consistent()).await.unwrap().hits[0].id, contract.id);
}
