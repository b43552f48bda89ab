//! The web console (`/console`) in a real browser: headless Chromium, driven through chromedriver,
//! against real nodes. Each test is one user's story, told through the DOM contract the console
//! keeps (ids, routes, data attributes), plus the few checks only raw HTTP can make (status codes,
//! forged forms). Without Chromium and chromedriver installed, every test says it skipped and passes.

#[path = "console/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::{say, skip, Browser, PAGE};
use common::*;
use fantoccini::Locator;
use reqwest::header::{CACHE_CONTROL, CONTENT_DISPOSITION, COOKIE, LOCATION, ORIGIN};

/// The console's session cookie.
const SESSION: &str = "artstore_session";

/// A client for console requests outside the browser: follows no redirect (so a 303 stays
/// visible) and trusts the cluster CA under TLS.
fn raw_http(c: &LocalCluster) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if c.tls() {
        let pem = std::fs::read(c.ca_cert_path()).expect("cluster CA");
        for cert in reqwest::Certificate::from_pem_bundle(&pem).expect("CA PEM") {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().expect("an HTTP client builds")
}

/// Signs in through the form and waits for the dashboard.
async fn sign_in(b: &Browser, client_id: &str, secret: &str) {
    b.open("/console/sign-in").await;
    b.fill("#client_id", client_id).await;
    b.fill("#client_secret", secret).await;
    b.click("#sign-in-submit").await;
    b.wait("table#nodes").await;
    assert_eq!(b.path().await, "/console", "signing in lands on the dashboard");
}

/// `(value of attribute a, value of attribute b, ...)` of one element, as strings.
async fn attrs(e: &fantoccini::elements::Element, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        out.push(e.attr(n).await.ok().flatten().unwrap_or_default());
    }
    out
}

/// Polls the page until `js` (an expression) is truthy, or fails after `timeout`.
async fn until(b: &Browser, timeout: Duration, what: &str, js: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let v = b.wd.execute(&format!("return !!({js});"), vec![]).await.unwrap_or_default();
        if v == serde_json::Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what} on {}", b.here().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the upload list shows `li.upload[data-state=done]` and returns its file id.
async fn uploaded_file_id(b: &Browser) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(failed) = b.all("li.upload[data-state=failed]").await.first() {
            panic!("upload failed: {}", failed.text().await.unwrap_or_default());
        }
        if let Some(done) = b.all("li.upload[data-state=done]").await.first() {
            let link = done.find(Locator::Css("a.uploaded-link")).await.expect("a.uploaded-link in the done upload");
            let href = link.attr("href").await.ok().flatten().unwrap_or_default();
            let id = href.strip_prefix("/console/files/").unwrap_or_else(|| panic!("uploaded link {href:?}"));
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "upload not done within 20 s: {}", b.page_text().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits the search form for `q` and waits for the answer's page (the page before it, listing
/// recent files, has results too).
async fn search(b: &Browser, q: &str) {
    b.fill("#q", q).await;
    b.click("#search-submit").await;
    let deadline = Instant::now() + PAGE;
    loop {
        let url = b.wd.current_url().await.expect("current URL");
        if url.query_pairs().any(|(k, v)| k == "q" && v == q) {
            break;
        }
        assert!(Instant::now() < deadline, "the search for {q:?} never loaded: {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.wait("#results, #no-results").await;
}

/// Searches through the files form until a result links to `id` (the index catches up within
/// moments of an upload); returns the result link's text.
async fn search_finds(b: &Browser, q: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        b.open("/console/files").await;
        search(b, q).await;
        let css = format!("#results tr.file a.file-link[href='/console/files/{id}']");
        if let Some(link) = b.all(&css).await.first() {
            return link.text().await.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "searching {q:?} never found {id}: {}", b.page_text().await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What `fetch()` from the page itself sees of `url` (the HttpOnly cookie goes along).
const FETCH_IN_PAGE: &str = "
    const [url, done] = arguments;
    fetch(url, { credentials: 'same-origin' })
      .then(async r => done({ status: r.status, disposition: r.headers.get('content-disposition'),
                              text: await r.text() }))
      .catch(e => done({ error: String(e) }));";

#[tokio::test(flavor = "multi_thread")]
async fn admin_signs_in_sees_the_cluster_uploads_finds_downloads_and_signs_out() {
    if skip("admin_signs_in_sees_the_cluster_uploads_finds_downloads_and_signs_out") {
        return;
    }
    let t0 = Instant::now();
    let (c, leader) = started_cluster_with(3, true, |_| {}).await;
    let b = Browser::start(&c.url(1)).await;
    let (admin_id, admin_secret) = c.admin_credentials();

    // Without a session, the console sends the visitor to sign in.
    b.open("/console").await;
    assert_eq!(b.path().await, "/console/sign-in");
    sign_in(&b, &admin_id, &admin_secret).await;

    // The session cookie cannot be read by scripts, travels only over TLS and only same-site.
    let cookie = b.cookie(SESSION).await.expect("a session cookie after signing in");
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly: {cookie:?}");
    assert_eq!(cookie.secure(), Some(true), "Secure under TLS: {cookie:?}");
    assert_eq!(cookie.same_site().map(|s| s.to_string()).as_deref(), Some("Strict"), "{cookie:?}");
    assert_eq!(cookie.path(), Some("/console"), "{cookie:?}");
    // It lasts as long as the token inside it (the default lifetime, an hour).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let expires = cookie.expires().and_then(|e| e.datetime()).map(|t| t.unix_timestamp() - now);
    assert!(expires.is_some_and(|left| (3_500..=3_600).contains(&left)), "expires in {expires:?} s: {cookie:?}");
    let script_view = b.wd.execute("return document.cookie", vec![]).await.expect("script runs");
    assert!(!script_view.as_str().unwrap_or_default().contains(SESSION), "scripts see {script_view}");

    // The dashboard: three members, exactly one leader (the one the API names), all reachable.
    let nodes = b.all("table#nodes tr.node").await;
    let mut rows = Vec::new();
    for n in &nodes {
        rows.push(attrs(n, &["data-node-id", "data-role", "data-reachable"]).await);
    }
    assert_eq!(rows.len(), 3, "{rows:?}");
    let leaders: Vec<_> = rows.iter().filter(|r| r[1] == "leader").collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {rows:?}");
    assert_eq!(leaders[0][0], leader.to_string(), "the leader the API names: {rows:?}");
    assert!(rows.iter().all(|r| r[2] == "true"), "every member reachable: {rows:?}");
    for id in c.node_ids() {
        assert!(b.has(&format!("table#elements-summary tr.element[data-node-id='{id}'] meter")).await, "node {id}");
    }

    // Upload a small text file through the files page, described in Russian.
    b.click("#nav-files").await;
    b.wait("form#upload").await;
    assert_eq!(b.path().await, "/console/files");
    let dir = tempfile::tempdir().expect("temp folder");
    let body = "Quarterly summary\nотчёт за третий квартал\n".as_bytes();
    let file = dir.path().join("q3-summary.txt");
    std::fs::write(&file, body).expect("file written");
    b.fill("#upload-tags", "отчёт, finance").await;
    b.fill("#upload-description", "Квартальный отчёт отдела закупок").await;
    b.wait("#upload-files").await.send_keys(&file.to_string_lossy()).await.expect("file chosen");
    b.click("#upload-submit").await;
    let id = uploaded_file_id(&b).await;
    b.wd.execute("document.getElementById('upload-progress').scrollIntoView({block: 'center'})", vec![]).await.ok();
    b.screenshot("files").await;
    let info = c.client(2).get_file(&id).await.expect("the upload is in the catalog");
    assert_eq!((info.name.as_str(), info.size), ("q3-summary.txt", body.len() as u64));
    assert_eq!(info.description, "Квартальный отчёт отдела закупок");
    assert!(info.tags.iter().any(|t| t == "отчёт") && info.tags.iter().any(|t| t == "finance"), "{:?}", info.tags);

    // Found by the Russian word and by another form of it (the index stems Russian); not by nonsense.
    assert_eq!(search_finds(&b, "отчёт", &id).await, "q3-summary.txt");
    assert_eq!(search_finds(&b, "отчёты", &id).await, "q3-summary.txt");
    search(&b, "абракадабра").await;
    b.wait("p#no-results").await;
    assert!(!b.has("#results tr.file").await);

    // The file's page, and its bytes: from the page's own fetch() and with the cookie outside it.
    search_finds(&b, "отчёт", &id).await;
    b.click(&format!("#results a.file-link[href='/console/files/{id}']")).await;
    let meta = b.wait("dl#file-meta").await.text().await.unwrap_or_default();
    assert!(meta.contains("Квартальный отчёт") && meta.contains("отчёт finance"), "file meta: {meta}");
    assert_eq!(b.text("h1#page-title").await, "q3-summary.txt");
    assert!(b.has("form#edit-file").await && b.has("a#delete-file").await, "a writer may edit and delete");
    b.screenshot("file-detail").await;
    let download = b.wait("a#download").await.prop("href").await.ok().flatten().unwrap_or_default();
    assert_eq!(download, c.url(1) + &format!("/console/files/{id}/content"));
    let seen = b.wd.execute_async(FETCH_IN_PAGE, vec![download.clone().into()]).await.expect("fetch runs");
    assert_eq!(seen["status"], 200, "{seen}");
    assert!(seen["disposition"].as_str().is_some_and(|d| d.starts_with("attachment")), "{seen}");
    assert_eq!(seen["text"].as_str(), std::str::from_utf8(body).ok(), "{seen}");
    let http = raw_http(&c);
    let got = http.get(&download).header(COOKIE, format!("{SESSION}={}", cookie.value())).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(got.headers()[CONTENT_DISPOSITION].to_str().unwrap_or_default().starts_with("attachment"));
    assert_eq!(got.bytes().await.unwrap().as_ref(), body, "downloaded bytes are the uploaded ones");
    let anonymous = http.get(&download).send().await.unwrap();
    assert_ne!(anonymous.status(), 200, "no download without a session");

    // A new account's secret is shown once, and it works.
    b.click("#nav-accounts").await;
    b.fill("#account-name", "console-auditor").await;
    b.fill("#account-description", "Reads the archive for audits").await;
    for (role, wanted) in [("reader", true), ("writer", false), ("operator", false), ("admin", false)] {
        b.set_checked(&format!("#role-{role}"), wanted).await;
    }
    b.click("#create-account-submit").await;
    let new_id = b.text("code#new-client-id").await;
    let secret = b.text("code#new-secret").await;
    assert!(secret.len() >= 16, "a real secret: {secret:?}");
    assert!(b.has("button.copy[data-copy-target=new-secret]").await);
    let account = c.client(1).get_account(&new_id).await.expect("account created");
    assert_eq!((account.name.as_str(), account.roles.clone()), ("console-auditor", vec!["reader".to_string()]));
    let token = c
        .http()
        .post(format!("{}/api/v1/auth/token", c.url(1)))
        .basic_auth(&new_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200, "the shown secret signs the new account in");
    b.open("/console/accounts").await;
    b.wait(&format!("table#accounts tr.account[data-client-id='{new_id}']")).await;
    assert!(!b.has("#new-secret").await, "the secret is never shown again");
    assert!(!b.wd.source().await.unwrap_or_default().contains(&secret), "the secret is not in the page");
    b.screenshot("accounts").await;

    // An rw element becomes ro through the confirmation page.
    b.click("#nav-cluster").await;
    b.wait("table#elements").await;
    let mut target = None;
    for row in b.all("table#elements tr.element[data-mode=rw]").await {
        if row.find(Locator::Css("form.mode-change")).await.is_ok() {
            target = Some(row);
            break;
        }
    }
    let row = target.expect("an rw element with a mode-change form");
    let (node, name) = match attrs(&row, &["data-node-id", "data-name"]).await.as_slice() {
        [n, e] => (n.clone(), e.clone()),
        _ => unreachable!(),
    };
    let select = row.find(Locator::Css("select[name=mode]")).await.expect("mode select");
    let mut offered = Vec::new();
    for o in select.find_all(Locator::Css("option")).await.unwrap() {
        offered.push(o.attr("value").await.ok().flatten().unwrap_or_default());
    }
    assert!(offered.contains(&"ro".into()) && !offered.contains(&"edit".into()), "forward modes: {offered:?}");
    select.select_by_value("ro").await.expect("ro chosen");
    row.find(Locator::Css("button.mode-change-submit")).await.unwrap().click().await.unwrap();
    assert!(!b.text("p#consequences").await.trim().is_empty(), "the confirmation says what happens");
    assert!(b.has("a#cancel").await);
    b.click("#confirm-submit").await;
    let notice = b.text("#notice").await;
    assert!(notice.contains(&name) && notice.contains("ro"), "the notice names the change: {notice}");
    // The POST answers 303 to the cluster page, so a reload never posts the change again.
    assert_eq!(b.path().await, "/console/cluster");
    let changed = format!("table#elements tr.element[data-node-id='{node}'][data-name='{name}']");
    assert_eq!(b.wait(&changed).await.attr("data-mode").await.ok().flatten().as_deref(), Some("ro"));
    let elements = c.client(1).storage_elements().await.expect("elements").elements;
    let e = elements.iter().find(|e| e.node_id.to_string() == node && e.name == name).expect("the element");
    assert_eq!(e.mode, "ro", "the API sees the new mode");
    b.screenshot("cluster").await;

    // Back on the dashboard, the charts show what happened. The node samples its counters every
    // 5 s and console.js draws them; from the second sample on, the request chart has a line.
    b.click("#nav-dashboard").await;
    let drawn = "document.querySelector('svg#chart-requests polyline[points*=\",\"]')";
    until(&b, Duration::from_secs(20), "console.js to draw the request chart from two samples", drawn).await;
    b.screenshot("dashboard").await;

    // Signing out ends the session in the browser.
    b.click("#sign-out-submit").await;
    b.wait("form#sign-in").await;
    assert_eq!(b.path().await, "/console/sign-in");
    assert!(b.cookie(SESSION).await.is_none_or(|c| c.value().is_empty()), "cookie cleared");
    b.open("/console").await;
    assert_eq!(b.path().await, "/console/sign-in", "no dashboard after signing out");
    b.close().await;
    say(&format!("admin story: {:.1} s", t0.elapsed().as_secs_f64()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_sees_no_write_actions() {
    if skip("a_reader_sees_no_write_actions") {
        return;
    }
    let t0 = Instant::now();
    let (c, _) = started_cluster_with(1, false, |_| {}).await;
    let file = c.client(1).upload("minutes.txt", b"minutes".to_vec(), &Default::default()).await.unwrap();
    let (secret, _) = account_token(&c, "console-reader", &["reader"]).await;
    let b = Browser::start(&c.url(1)).await;

    // A wrong secret is refused on the sign-in page itself.
    b.open("/console/sign-in").await;
    b.fill("#client_id", "console-reader").await;
    b.fill("#client_secret", "not-the-secret").await;
    b.click("#sign-in-submit").await;
    assert_eq!(b.wait("#error").await.attr("role").await.ok().flatten().as_deref(), Some("alert"));
    assert!(b.cookie(SESSION).await.is_none(), "no session for a wrong secret");
    sign_in(&b, "console-reader", &secret).await;

    // The dashboard and navigation offer nothing a reader may not do; no page has a form that
    // posts anything but signing out.
    let writes = "form[method=post]:not(#sign-out)";
    assert!(b.has("#nav-files").await && b.has("#nav-cluster").await);
    for absent in ["#nav-accounts", "#nav-keys", "#nav-audit", "section#repair", "section#recent-audit", writes] {
        assert!(!b.has(absent).await, "a reader sees no {absent} on the dashboard");
    }
    b.open("/console/files").await;
    b.wait("form#search").await;
    assert!(!b.has("#upload").await && !b.has(writes).await, "no upload form");
    b.open(&format!("/console/files/{}", file.id)).await;
    b.wait("a#download").await;
    for absent in ["#edit-file", "#delete-file", "#finalize", writes] {
        assert!(!b.has(absent).await, "a reader sees no {absent} on a file's page");
    }
    b.open("/console/cluster").await;
    b.wait("table#elements tr.element").await;
    assert!(!b.has("form.mode-change").await && !b.has(writes).await, "no mode changes, no drains");

    // The accounts page is refused, in the browser and by status code.
    b.open("/console/accounts").await;
    // `data-code` carries the API's error code; the status is checked below.
    let code = b.wait("#error[role=alert]").await.attr("data-code").await.ok().flatten();
    assert_eq!(code.as_deref(), Some("forbidden"));
    assert!(!b.has("form#create-account").await);
    assert!(b.has("nav#nav").await && b.has("form#sign-out").await, "the refusal keeps the way on and out");
    let cookies = b.cookie_header().await;
    let http = raw_http(&c);
    let status = http.get(c.url(1) + "/console/accounts").header(COOKIE, &cookies).send().await.unwrap().status();
    assert_eq!(status, 403);

    // Posting what the pages do not offer, with the reader's genuine token, changes nothing.
    let csrf = b.wait("form#sign-out input[name=csrf]").await.attr("value").await.ok().flatten().unwrap_or_default();
    let to_ro = [("mode", "ro"), ("csrf", csrf.as_str())];
    let refused = post_form(&c, &cookies, "/console/cluster/elements/1/default", &to_ro).await;
    assert_eq!(refused.status(), 403, "a reader changes no element");
    let elements = c.client(1).storage_elements().await.unwrap().elements;
    assert!(elements.iter().any(|e| e.node_id == 1 && e.name == "default" && e.mode == "rw"), "{elements:?}");
    let account = [("name", "by-a-reader"), ("roles", "admin"), ("csrf", csrf.as_str())];
    assert_eq!(post_form(&c, &cookies, "/console/accounts", &account).await.status(), 403);
    assert!(!account_named(&c, "by-a-reader").await, "a reader creates no account");

    // The language switch works for readers too.
    b.click("a#lang-ru").await;
    until(&b, PAGE, "a Russian page", "document.documentElement.lang === 'ru'").await;
    let title = b.text("h1#page-title").await;
    assert!(title.chars().any(|ch| ('а'..='я').contains(&ch.to_lowercase().next().unwrap_or(ch))), "{title}");
    b.click("a#lang-en").await;
    until(&b, PAGE, "an English page", "document.documentElement.lang === 'en'").await;
    b.close().await;
    say(&format!("reader story: {:.1} s", t0.elapsed().as_secs_f64()));
}

/// Posts `form` to `path` with the browser's cookies, as a script on another page could not,
/// claiming to come from `origin`.
async fn post_from(
    c: &LocalCluster,
    origin: &str,
    cookies: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    raw_http(c).post(c.url(1) + path).header(COOKIE, cookies).header(ORIGIN, origin).form(form).send().await.unwrap()
}

/// [`post_from`] the console's own origin.
async fn post_form(c: &LocalCluster, cookies: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    post_from(c, &c.url(1), cookies, path, form).await
}

/// Whether `resp` sets the session cookie to a value.
fn sets_session(resp: &reqwest::Response) -> bool {
    let prefix = format!("{SESSION}=");
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.strip_prefix(&prefix).is_some_and(|rest| !rest.starts_with(';') && !rest.is_empty()))
}

async fn account_named(c: &LocalCluster, name: &str) -> bool {
    c.client(1).list_accounts(true).await.unwrap().accounts.iter().any(|a| a.name == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_or_missing_csrf_is_refused() {
    if skip("forged_or_missing_csrf_is_refused") {
        return;
    }
    let t0 = Instant::now();
    let (c, _) = started_cluster_with(1, false, |_| {}).await;
    let (admin_id, admin_secret) = c.admin_credentials();
    let b = Browser::start(&c.url(1)).await;

    // Sign-in has no session to derive a token from (the sign-in form has no csrf field, unlike
    // the contract says); the console refuses sign-in forms posted from another site instead.
    let credentials = [("client_id", admin_id.as_str()), ("client_secret", admin_secret.as_str())];
    let refused = post_from(&c, "https://evil.example", "", "/console/sign-in", &credentials).await;
    assert_eq!(refused.status(), 403, "sign-in posted from another site");
    assert!(!sets_session(&refused), "no session for a cross-site sign-in");
    let refused = raw_http(&c)
        .post(c.url(1) + "/console/sign-in")
        .header("sec-fetch-site", "cross-site")
        .form(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "sign-in the browser marks cross-site");
    assert!(!sets_session(&refused));
    let other_session = post_form(&c, "", "/console/sign-in", &credentials).await;
    assert_eq!(other_session.status(), 303, "the same sign-in from the console's own origin");
    assert!(sets_session(&other_session));
    let other_cookie = other_session.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

    sign_in(&b, &admin_id, &admin_secret).await;
    b.open("/console/accounts").await;
    let csrf = b.wait("form#create-account input[name=csrf]").await.attr("value").await.ok().flatten();
    let csrf = csrf.expect("the form carries a csrf token");
    let cookies = b.cookie_header().await;

    // Forged and missing tokens: 403 with the error element, and no account.
    let cases: [(&str, Option<&str>); 3] =
        [("forged-missing", None), ("forged-wrong", Some("not-the-token")), ("forged-empty", Some(""))];
    for (name, token) in cases {
        let mut form = vec![("name", name), ("roles", "reader")];
        form.extend(token.map(|t| ("csrf", t)));
        let resp = post_form(&c, &cookies, "/console/accounts", &form).await;
        assert_eq!(resp.status(), 403, "{name}");
        assert!(resp.text().await.unwrap().contains("id=\"error\""), "{name}: the page shows #error");
        assert!(!account_named(&c, name).await, "{name} must not be created");
    }

    // The page's token is refused with another session's cookie, and from another site.
    let elsewhere = [("name", "forged-elsewhere"), ("roles", "reader"), ("csrf", csrf.as_str())];
    assert_eq!(post_form(&c, &other_cookie, "/console/accounts", &elsewhere).await.status(), 403, "other session");
    let cross = post_from(&c, "https://evil.example", &cookies, "/console/accounts", &elsewhere).await;
    assert_eq!(cross.status(), 403, "from another site");
    assert!(!account_named(&c, "forged-elsewhere").await);

    // Signing out without the token leaves the session working.
    assert_eq!(post_form(&c, &cookies, "/console/sign-out", &[]).await.status(), 403);
    let dashboard = raw_http(&c).get(c.url(1) + "/console").header(COOKIE, &cookies).send().await.unwrap();
    assert_eq!(dashboard.status(), 200, "still signed in");

    // The same request with the page's own token goes through, and its answer is not cached.
    let genuine = [("name", "made"), ("roles", "reader"), ("csrf", csrf.as_str())];
    let made = post_form(&c, &cookies, "/console/accounts", &genuine).await;
    assert!(made.status().is_success() || made.status().is_redirection(), "{}", made.status());
    if made.status().is_success() {
        assert_eq!(made.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    } else {
        assert!(made.headers().get(LOCATION).is_some());
    }
    assert!(account_named(&c, "made").await, "the genuine form creates the account");

    // A file is never a script or stylesheet of a console page (the CSP allows 'self'): only a
    // navigation or a fetch gets it, sandboxed.
    let js = c
        .client(1)
        .upload("evil.js", b"document.title='owned'".to_vec(), &artstore_client::UploadOptions::default())
        .await
        .unwrap();
    let content = format!("{}/console/files/{}/content", c.url(1), js.id);
    for dest in ["script", "style", "worker"] {
        let r =
            raw_http(&c).get(&content).header(COOKIE, &cookies).header("sec-fetch-dest", dest).send().await.unwrap();
        assert_eq!(r.status(), 403, "loaded as a {dest}");
    }
    let r =
        raw_http(&c).get(&content).header(COOKIE, &cookies).header("sec-fetch-dest", "document").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(csp.contains("sandbox"), "{csp}");

    // A return address with control characters or dot segments is not followed (nor a 500).
    for next in ["/console/\u{1}", "/console/\r\nX: 1", "/console/../api/v1/service-accounts"] {
        let mut form = credentials.to_vec();
        form.push(("next", next));
        let r = post_form(&c, "", "/console/sign-in", &form).await;
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()[LOCATION], "/console", "{next:?}");
    }

    // Signing out revokes the session's token: the cookie's token no longer opens the API.
    let token =
        cookies.split("; ").find_map(|c| c.strip_prefix("artstore_session=")).expect("the session cookie").to_string();
    let api = format!("{}/api/v1/cluster/status", c.url(1));
    assert_eq!(raw_http(&c).get(&api).bearer_auth(&token).send().await.unwrap().status(), 200);
    let out = post_form(&c, &cookies, "/console/sign-out", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status(), 303);
    let after = raw_http(&c).get(&api).bearer_auth(&token).send().await.unwrap();
    assert_eq!(after.status(), 401, "the token of a signed-out session still works");
    b.close().await;
    say(&format!("csrf story: {:.1} s", t0.elapsed().as_secs_f64()));
}
