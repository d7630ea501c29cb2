//! The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver: sign in, the grid, trigger a run and see it succeed, the
//! catalog and a column's lineage, search, a query with its CSV download and quick chart,
//! a narrow window, labelled controls, and what a viewer sees. Screenshots are kept under
//! the target directory (`tmp/ui-screenshots/`) as artifacts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::ok;
use crate::server_api::{PASSWORD, setup};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on loopback; returns once it answers.
fn chromedriver() -> (Driver, u16) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "chromedriver (Debian package chromium-driver; scripts/test-services.sh installs it)",
        );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Driver(child), port)
}

fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The element `selector` finds, waiting for it; on failure, the page's text and a
/// screenshot (`failure.png`) say what was there instead.
async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            shot(c, "failure").await;
            let page = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("no `{selector}`: {e}\npage: {page}")
        }
    }
}

async fn text(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.unwrap()
}

async fn sign_in(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    css(c, "#login-user").await.send_keys(user).await.unwrap();
    css(c, "#login-password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    css(c, "#login-submit").await.click().await.unwrap();
    css(c, "#sign-out").await;
}

/// The green cells of the `daily` grid.
const GREEN: &str = "section[data-pipeline=daily] td a.cell[data-state=success]";

/// How many elements `selector` finds now.
async fn count(c: &Client, selector: &str) -> usize {
    c.find_all(Locator::Css(selector)).await.unwrap().len()
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_in_headless_chromium() {
    let (_tmp, dir, server, _api) = tokio::task::spawn_blocking(setup).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let (_driver, port) = chromedriver();
    let downloads = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            "prefs": {"download.default_directory": downloads.path(), "download.prompt_for_download": false},
        }),
    );
    // The WebDriver client's TLS stack needs a provider chosen (it speaks plain HTTP here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");

    // Signed out: the sign-in form; a wrong password says so.
    c.goto(&format!("{base}/")).await.unwrap();
    css(&c, "#login-user")
        .await
        .send_keys("u_editor")
        .await
        .unwrap();
    css(&c, "#login-password")
        .await
        .send_keys("wrong password!")
        .await
        .unwrap();
    css(&c, "#login-submit").await.click().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while text(&c, "#login-error").await.is_empty() {
        assert!(Instant::now() < deadline, "no sign-in error shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text(&c, "#login-error")
            .await
            .contains("wrong user name or password")
    );

    // The grid: the scheduled run's tasks, all green.
    sign_in(&c, &base, "u_editor").await;
    css(&c, "section[data-pipeline=daily] table.grid").await;
    assert_eq!(count(&c, GREEN).await, 8);
    shot(&c, "grid").await;

    // Trigger a run and watch it succeed on its page (Gantt and logs).
    css(&c, "button[data-trigger=daily]")
        .await
        .click()
        .await
        .unwrap();
    css(&c, "#run-state").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = js(
            &c,
            "const e = document.querySelector('#run-state'); return e ? e.dataset.state : null",
        )
        .await;
        if state == "success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not succeed: {state}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    css(&c, "svg.gantt rect.bar").await;
    assert_eq!(count(&c, "tr[data-state=success]").await, 8);
    assert!(text(&c, "details.log summary").await.contains("try 1"));
    shot(&c, "run").await;
    // The grid now has two runs.
    c.goto(&format!("{base}/#/pipelines")).await.unwrap();
    css(&c, "section[data-pipeline=daily] table.grid").await;
    assert_eq!(count(&c, GREEN).await, 16);
    // From the keyboard: a grid cell takes the focus and Enter opens its run.
    js(
        &c,
        "document.querySelector('section[data-pipeline=daily] a.cell').focus(); return null",
    )
    .await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    css(&c, "#run-state").await;

    // The catalog, a table, a column's lineage.
    c.goto(&format!("{base}/#/catalog")).await.unwrap();
    css(&c, "#tables tbody tr").await;
    assert!(text(&c, "#tables").await.contains("marts.daily_revenue"));
    css(&c, "a[href='#/tables/marts/daily_revenue']")
        .await
        .click()
        .await
        .unwrap();
    css(&c, "#columns tr[data-column=day]").await;
    assert_eq!(text(&c, "#row-count").await, "366");
    css(&c, "svg.lineage .gnode.current").await;
    css(&c, "button[aria-label='lineage of revenue']")
        .await
        .click()
        .await
        .unwrap();
    let lineage = text(&c, "#column-lineage").await;
    assert!(lineage.contains("Where revenue comes from"), "{lineage}");
    assert!(lineage.contains("stg_orders"), "{lineage}");
    shot(&c, "table").await;

    // Search from the header.
    css(&c, "#search-box")
        .await
        .send_keys("customer\u{E007}")
        .await
        .unwrap();
    css(&c, "#search-hits li").await;
    assert!(text(&c, "#search-hits").await.contains("customer"));

    // SQL: run, results, chart, CSV download.
    c.goto(&format!("{base}/#/sql")).await.unwrap();
    let editor = css(&c, "#sql-editor").await;
    editor.clear().await.unwrap();
    editor
        .send_keys("SELECT day, orders FROM marts.daily_revenue ORDER BY day LIMIT 10")
        .await
        .unwrap();
    css(&c, "#sql-run").await.click().await.unwrap();
    css(&c, "#result-table tbody tr").await;
    assert_eq!(count(&c, "#result-table tbody tr").await, 10);
    assert!(text(&c, "#sql-status").await.contains("10 rows"));
    css(&c, "svg.chart rect.barv").await;
    shot(&c, "sql").await;
    css(&c, "#sql-csv").await.click().await.unwrap();
    let file = downloads.path().join("query.csv");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no CSV downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("day,orders\r\n2024-01-01,"), "{csv}");
    assert_eq!(csv.lines().count(), 11);
    // An error is shown, not a blank.
    let editor = css(&c, "#sql-editor").await;
    editor.clear().await.unwrap();
    editor
        .send_keys("SELECT nope FROM marts.daily_revenue")
        .await
        .unwrap();
    css(&c, "#sql-run").await.click().await.unwrap();
    assert!(text(&c, "#sql-results .error").await.contains("nope"));

    // Every control has a label; a narrow window does not scroll sideways.
    let unlabelled = js(
        &c,
        "return [...document.querySelectorAll('input, select, textarea, button')].filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.outerHTML)",
    )
    .await;
    assert_eq!(unlabelled, json!([]), "controls without a label");
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/#/catalog")).await.unwrap();
    css(&c, "#tables tbody tr").await;
    let wide = js(
        &c,
        "return document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(
        wide.as_i64().unwrap() <= 1,
        "the page is {wide} px too wide"
    );
    shot(&c, "narrow").await;
    c.set_window_size(1280, 900).await.unwrap();

    // A viewer: the catalog, but no pipelines, no queries, no trigger button.
    css(&c, "#sign-out").await.click().await.unwrap();
    css(&c, "#login-user").await;
    sign_in(&c, &base, "u_viewer").await;
    assert!(text(&c, "#view").await.contains("need the analyst role"));
    assert!(c.find(Locator::Css("button[data-trigger]")).await.is_err());
    c.goto(&format!("{base}/#/sql")).await.unwrap();
    assert!(
        text(&c, "#view")
            .await
            .contains("Queries need the analyst role")
    );
    c.goto(&format!("{base}/#/catalog")).await.unwrap();
    css(&c, "#tables tbody tr").await;

    // A one-time password: the form to choose a new one comes first, then the UI.
    let out = ok(&dir, &["users", "add", "otto", "--role", "viewer"]);
    let one_time = out
        .lines()
        .find_map(|l| l.strip_prefix("one-time password (shown once; to change at first login): "))
        .unwrap()
        .to_string();
    css(&c, "#sign-out").await.click().await.unwrap();
    css(&c, "#login-user").await;
    c.goto(&format!("{base}/")).await.unwrap();
    css(&c, "#login-user")
        .await
        .send_keys("otto")
        .await
        .unwrap();
    css(&c, "#login-password")
        .await
        .send_keys(&one_time)
        .await
        .unwrap();
    css(&c, "#login-submit").await.click().await.unwrap();
    css(&c, "#password:not([hidden]) #password-new").await;
    assert_eq!(
        js(&c, "return document.getElementById('nav').hidden").await,
        json!(true)
    );
    shot(&c, "new-password").await;
    // The form at a desktop and a phone width.
    for (width, height, name) in [
        (1400, 900, "new-password-1400"),
        (375, 812, "new-password-375"),
    ] {
        c.set_window_size(width, height).await.unwrap();
        shot(&c, name).await;
    }
    c.set_window_size(1280, 900).await.unwrap();
    let new = "otto's very own passphrase";
    css(&c, "#password-new").await.send_keys(new).await.unwrap();
    css(&c, "#password-again")
        .await
        .send_keys(new)
        .await
        .unwrap();
    css(&c, "#password-submit").await.click().await.unwrap();
    css(&c, "#nav:not([hidden])").await;
    // Then the UI as for any viewer: the home page, and the catalog.
    assert!(text(&c, "#view").await.contains("need the analyst role"));
    c.goto(&format!("{base}/#/catalog")).await.unwrap();
    css(&c, "#tables tbody tr").await;
    assert!(text(&c, "#who").await.contains("otto · viewer"));
    let me = js(
        &c,
        "return fetch('/api/me').then(r => r.json()).then(m => m.must_change_password)",
    )
    .await;
    assert_eq!(me, json!(false));
    c.close().await.unwrap();
}
