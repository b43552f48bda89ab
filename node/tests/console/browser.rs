//! [`Browser`]: headless Chromium driven through a chromedriver child process, for the console's
//! user-story tests.
//!
//! Invariants: every browser gets a fresh profile folder (no cookie or cache leaks between tests),
//! and dropping it ends chromedriver, its Chromium and every helper process that names the
//! profile, even when the test panicked before [`Browser::close`].

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show an element the test waits for.
pub const PAGE: Duration = Duration::from_secs(10);

/// Why the browser tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .into_iter()
        .find(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} not found (apt-get install {package})"))
}

/// Prints `line` on the real stderr, past the test harness's capture, so skips and screenshot
/// paths show up in a plain `cargo test` run.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Returns true (after saying why) when `test` must be skipped because no browser is installed.
pub fn skip(test: &str) -> bool {
    match unavailable() {
        Some(why) => {
            say(&format!("{test}: skipped: {why}"));
            true
        }
        None => false,
    }
}

/// The chromedriver process and the profile folder its Chromium uses.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Self {
        let profile = tempfile::Builder::new().prefix("artstore-chromium-").tempdir().expect("profile folder");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port for chromedriver");
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).expect("chromedriver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group, so that Chromium and its helpers end with it.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port, profile };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn user_data_dir(&self) -> PathBuf {
        self.profile.path().join("profile")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        use rustix::process::{kill_process, kill_process_group, Pid, Signal};
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Helpers that started their own session still name the profile on their command line.
        let profile = self.user_data_dir().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&profile) {
                if let Some(pid) = Pid::from_raw(pid) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
        }
    }
}

/// One headless Chromium session pointed at a node's console.
pub struct Browser {
    pub wd: fantoccini::Client,
    base: String,
    driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium; `base` is the node URL pages are opened
    /// relative to. Chromium accepts the test cluster's CA through `--ignore-certificate-errors`.
    pub async fn start(base: &str) -> Self {
        let driver = Driver::start();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--ignore-certificate-errors",
            // English pages whatever the machine's locale, so the tests read the same everywhere.
            "--lang=en-US",
        ]
        .map(String::from)
        .into();
        args.push(format!("--user-data-dir={}", driver.user_data_dir().display()));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": { "intl.accept_languages": "en-US,en" },
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!("a JSON object") };
        let wd = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("no Chromium session: {e}\nchromedriver log:\n{}", driver_log(&driver)));
        Self { wd, base: base.trim_end_matches('/').to_string(), driver }
    }

    /// The absolute URL of `path` on the node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Navigates to `path` (e.g. `/console/files`) and waits for the page to load.
    pub async fn open(&self, path: &str) {
        self.wd.goto(&self.url(path)).await.unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The path of the current page (without query).
    pub async fn path(&self) -> String {
        self.wd.current_url().await.map(|u| u.path().to_string()).unwrap_or_default()
    }

    /// Waits up to [`PAGE`] for an element matching `css`.
    pub async fn wait(&self, css: &str) -> Element {
        match self.wd.wait().at_most(PAGE).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no `{css}` on {} within {PAGE:?}: {e}\n{}", self.here().await, self.page_text().await),
        }
    }

    /// Every element matching `css` on the current page.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.wd.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    /// Whether the current page has an element matching `css`.
    pub async fn has(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    /// Types `text` into the field `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        field.send_keys(text).await.unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.wait(css).await.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Ticks or clears the checkbox `css`, whatever it showed before.
    pub async fn set_checked(&self, css: &str, checked: bool) {
        let boxed = self.wait(css).await;
        if boxed.is_selected().await.unwrap_or_else(|e| panic!("state of `{css}`: {e}")) != checked {
            boxed.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
        }
    }

    /// The text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// The cookie `name` as the browser holds it for the current page (HttpOnly ones included).
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        let all = self.wd.get_all_cookies().await.expect("cookies");
        all.into_iter().find(|c| c.name() == name)
    }

    /// Every cookie of the current page as a `Cookie:` header value.
    pub async fn cookie_header(&self) -> String {
        let all = self.wd.get_all_cookies().await.expect("cookies");
        all.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; ")
    }

    /// Saves a PNG of the viewport as `<target>/console-screenshots/<name>.png` and says where.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.wd.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        say(&format!("screenshot: {}", path.display()));
        path
    }

    /// The visible text of the page, for failure messages.
    pub async fn page_text(&self) -> String {
        match self.wd.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default().chars().take(2000).collect(),
            Err(_) => String::new(),
        }
    }

    /// The current URL, for failure messages.
    pub async fn here(&self) -> String {
        self.wd.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    /// Ends the WebDriver session (Chromium quits), then chromedriver.
    pub async fn close(self) {
        let Browser { wd, driver, .. } = self;
        let _ = wd.close().await;
        drop(driver);
    }
}

fn driver_log(driver: &Driver) -> String {
    std::fs::read_to_string(driver.profile.path().join("chromedriver.log")).unwrap_or_default()
}

/// `target/console-screenshots`, under `CARGO_TARGET_DIR` when it is set.
pub fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(t) if t.is_absolute() => t,
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    target.join("console-screenshots")
}
