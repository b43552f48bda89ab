//! Downloads a file to a path; if the transfer is interrupted (Ctrl-C, a network outage), running
//! the example again continues from `<path>.part` instead of starting over. The result is checked
//! against the file's SHA-256 before it appears under its name.
//!
//! ```sh
//! export ARTSTORE_URL=http://127.0.0.1:8081,http://127.0.0.1:8082
//! export ARTSTORE_CLIENT_ID=admin ARTSTORE_CLIENT_SECRET=...
//! cargo run -p artstore-client --example resumable_download -- FILE_ID report.pdf
//! ```

use artstore_client::{partial_path, Client, ClientError, RetryPolicy};

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
    let mut args = std::env::args().skip(1);
    let (Some(id), Some(target)) = (args.next(), args.next()) else {
        return Err("usage: resumable_download FILE_ID PATH".into());
    };
    let target = std::path::PathBuf::from(target);
    // Ride out longer outages than the default before giving up (the partial file stays anyway).
    let retry = RetryPolicy { max_attempts: 8, ..RetryPolicy::default() };
    let client = client_from_env()?.with_retry_policy(retry);

    let part = partial_path(&target);
    if let Ok(meta) = std::fs::metadata(&part) {
        println!("resuming: {} already holds {} bytes", part.display(), meta.len());
    }
    let progress = |done: u64, total: u64| eprint!("\r{done} of {total} bytes");
    match client.download_to_path(&id, &target, progress).await {
        Ok(info) => {
            eprintln!();
            println!("{} → {} ({} bytes, SHA-256 {} verified)", info.id, target.display(), info.size, info.sha256);
            Ok(())
        }
        Err(e @ ClientError::Unavailable(_)) => {
            eprintln!();
            println!("interrupted; run the same command again to continue from {}", part.display());
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}
