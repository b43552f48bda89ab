//! Uploads a file with tags and attributes, then finds it by search.
//!
//! ```sh
//! export ARTSTORE_URL=http://127.0.0.1:8081,http://127.0.0.1:8082
//! export ARTSTORE_CLIENT_ID=admin ARTSTORE_CLIENT_SECRET=...
//! cargo run -p artstore-client --example upload_and_search -- report.pdf
//! ```

use artstore_client::{Client, Search, SortBy, UploadOptions};

/// A client for the nodes in `ARTSTORE_URL` (comma separated) with the service account in
/// `ARTSTORE_CLIENT_ID` / `ARTSTORE_CLIENT_SECRET`.
fn client_from_env() -> Result<Client, Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let urls = var("ARTSTORE_URL")?;
    Ok(Client::new(urls.split(',').map(str::trim))?
        .with_credentials(var("ARTSTORE_CLIENT_ID")?, var("ARTSTORE_CLIENT_SECRET")?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: upload_and_search FILE")?;
    let path = std::path::Path::new(&path);
    let name = path.file_name().ok_or("the path has no file name")?.to_string_lossy().into_owned();
    let client = client_from_env()?;

    let mut attributes = serde_json::Map::new();
    attributes.insert("source".into(), "sdk-example".into());
    let options = UploadOptions {
        description: Some("uploaded by the upload_and_search example".into()),
        tags: vec!["examples".into()],
        attributes: Some(attributes),
        ..Default::default()
    };
    let file =
        client.upload_path(path, &name, &options, |sent, total| eprint!("\ruploaded {sent} of {total} bytes")).await?;
    eprintln!();
    println!("stored {} as {} (SHA-256 {})", file.name, file.id, file.sha256);

    // `consistent` waits until the answering node's index has seen the upload.
    let search = Search::text(name.as_str()).tag("examples").attr("source", "sdk-example").consistent();
    let page = client.search(&search).await?;
    println!("{} file(s) match {name:?}:", page.total);
    for hit in &page.hits {
        println!("  {}  {}  {} bytes  score {:.2}", hit.id, hit.name, hit.size, hit.score);
    }

    // Every example upload, newest first, page by page.
    use futures::TryStreamExt;
    let mut all = std::pin::pin!(client.search_all(Search::all().tag("examples").sort(SortBy::CreatedAt, true)));
    let mut count = 0;
    while let Some(hit) = all.try_next().await? {
        count += 1;
        if count <= 5 {
            println!("  recent: {} {}", hit.created_at, hit.name);
        }
    }
    println!("{count} example upload(s) in the archive");
    Ok(())
}
