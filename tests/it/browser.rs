//! The HTML report in a real headless Chromium, driven over the DevTools
//! protocol: no console errors, no request to any network address, filters
//! narrow the rows, and a screenshot is saved.
//!
//! Needs Debian's `chromium` (scripts/test.sh installs it). A missing browser
//! fails the test: it never passes unseen.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use super::support::*;

struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    /// Every event received so far.
    events: Vec<Value>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_binary() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "chromium not found: scripts/test.sh installs Debian's chromium package (apt-get install chromium)"
    );
}

impl Browser {
    fn launch(profile: &Path) -> Browser {
        let mut child = Command::new(chromium_binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1400,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("ws://") {
                    let _ = tx.send(line[i..].trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address");
        let (socket, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Page.enable",
            "Network.enable",
            "Runtime.enable",
            "Log.enable",
        ] {
            browser.call(domain, json!({}));
        }
        browser
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let Message::Text(text) = self.socket.read().expect("read from DevTools") else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == json!(id) {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
            self.events.push(value);
        }
    }

    fn wait_for_event(&mut self, method: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.events.iter().any(|e| e["method"] == method) {
            assert!(Instant::now() < deadline, "no {method} event");
            let Message::Text(text) = self.socket.read().expect("read from DevTools") else {
                continue;
            };
            self.events.push(serde_json::from_str(&text).unwrap());
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }
}

/// Nothing of the report reaches past the right edge of a 1400 px window,
/// and nothing is clipped by a box that scrolls: long AWS messages wrap.
fn assert_no_horizontal_overflow(browser: &mut Browser) {
    let over = browser.eval(
        "Array.from(document.querySelectorAll('main *')).filter(e => \
           e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 \
           || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')) \
         .map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 60))",
    );
    assert_eq!(over, json!([]), "overflowing at 1400 px");
    let page = browser
        .eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]");
    assert_eq!(page[0], page[1], "the page scrolls sideways");
}

fn shown(browser: &mut Browser) -> u64 {
    browser
        .eval("Number(document.getElementById('shown').textContent)")
        .as_u64()
        .unwrap()
}

#[test]
fn report_works_offline_in_headless_chromium() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = audit_sample(out_dir.path(), &["--format", "html,csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&out_dir.path().join("findings.csv"));
    let non_passing = rows.iter().filter(|r| r["status"] != "pass").count() as u64;
    let public_fails = rows
        .iter()
        .filter(|r| r["rule_id"] == "AMI-PUBLIC" && r["status"] != "pass")
        .count() as u64;

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::launch(profile.path());
    let url = format!("file://{}", out_dir.path().join("report.html").display());
    browser.call("Page.navigate", json!({"url": url}));
    browser.wait_for_event("Page.loadEventFired");

    assert_no_horizontal_overflow(&mut browser);
    // Printed to PDF, the table holds every finding, not the page on screen,
    // and says so; back on screen it is one page again.
    browser.eval(
        "window.addEventListener('beforeprint', function () { window.__printed = [document.querySelectorAll('#findings-table tbody tr').length, document.getElementById('print-note').textContent]; });",
    );
    let pdf = browser.call("Page.printToPDF", json!({}));
    assert!(pdf["data"].as_str().is_some_and(|d| d.len() > 1000));
    let printed = browser.eval("window.__printed");
    assert_eq!(printed[0], json!(non_passing), "{printed}");
    assert_eq!(
        printed[1],
        json!(format!("Printed: all {non_passing} findings.")),
        "{printed}"
    );
    // Every non-passing result is in the table's data; a page of them is drawn.
    assert_eq!(shown(&mut browser), non_passing);
    let drawn = browser
        .eval("document.querySelectorAll('#findings-table tbody tr').length")
        .as_u64()
        .unwrap();
    assert_eq!(drawn, non_passing.min(100));

    // Filtering by rule narrows to exactly that rule's non-passing results.
    browser.eval("var s = document.getElementById('f-rule'); s.value = 'AMI-PUBLIC'; s.dispatchEvent(new Event('change'));");
    assert_eq!(shown(&mut browser), public_fails);
    assert!(public_fails > 0 && public_fails < non_passing);
    let rules = browser.eval("Array.from(document.querySelectorAll('#findings-table tbody tr td:nth-child(2)')).map(td => td.textContent)");
    assert!(
        rules.as_array().unwrap().iter().all(|r| r == "AMI-PUBLIC"),
        "{rules}"
    );
    // Search narrows further.
    browser.eval("var q = document.getElementById('q'); q.value = 'ami-0a11ce5ec7e7pub1'; q.dispatchEvent(new Event('input'));");
    assert_eq!(shown(&mut browser), 1);
    browser.eval("var q = document.getElementById('q'); q.value = ''; q.dispatchEvent(new Event('input')); var s = document.getElementById('f-rule'); s.value = ''; s.dispatchEvent(new Event('change'));");
    assert_eq!(shown(&mut browser), non_passing);

    // The Pipelines section: the sample factory's 8 pipelines, health as
    // the rules judged it (the throttled distribution read is `unknown`),
    // and every pipeline's lineage reachable from its row.
    let health = browser.eval(
        "Array.from(document.querySelectorAll('#pipelines > table > tbody > tr > td:first-child')).map(td => td.textContent)",
    );
    let health: Vec<&str> = health
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(health.len(), 8, "{health:?}");
    assert_eq!(health.iter().filter(|h| **h == "unknown").count(), 1);
    assert_eq!(health.iter().filter(|h| **h == "failing").count(), 7);
    let linked = browser.eval(
        "Array.from(document.querySelectorAll('#pipelines > table a')).filter(a => document.querySelector(a.getAttribute('href') + ' table.lineage tbody tr')).length",
    );
    assert_eq!(linked, json!(8), "pipelines whose lineage lists builds");
    browser.eval("document.querySelector('#pipelines > table a[href=\"#pipeline-3\"]').click()");
    // hashchange fires after the click returns.
    let opened = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        browser.eval("document.getElementById('pipeline-3').open") == json!(true)
    });
    assert!(opened, "following a pipeline's link opens its lineage");

    // The Adoption section: the organization first, then each account whose
    // fleet was read (the denied one is named as not read instead), both
    // charts drawn, and the 20 furthest behind.
    let adoption = browser.eval(
        "Array.from(document.querySelectorAll('#adoption > table:first-of-type > tbody > tr > td:first-child')).map(td => td.textContent)",
    );
    let adoption: Vec<&str> = adoption
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(adoption.len(), 12, "{adoption:?}");
    assert_eq!(adoption[0], "all");
    assert!(!adoption.contains(&"210010000370"), "{adoption:?}");
    let charts = browser.eval(
        "Array.from(document.querySelectorAll('#adoption figure svg')).filter(s => s.getBoundingClientRect().width > 100 && s.querySelectorAll('rect').length >= 10).length",
    );
    assert_eq!(charts, json!(2));
    let worst = browser.eval("document.querySelectorAll('#adoption-worst tbody tr').length");
    assert_eq!(worst, json!(20));
    let not_read = browser.eval("document.querySelector('#adoption .tile.warn').textContent");
    assert!(
        not_read
            .as_str()
            .unwrap()
            .contains("not read in 4 account-regions"),
        "{not_read}"
    );

    let shot = browser.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("report-screenshot.png"), &png).unwrap();

    // No console errors, no exceptions, and no request leaves the file.
    let errors: Vec<&Value> = browser
        .events
        .iter()
        .filter(|e| {
            e["method"] == "Runtime.exceptionThrown"
                || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let requests: Vec<String> = browser
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .map(|e| {
            e["params"]["request"]["url"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(!requests.is_empty(), "the page load itself is seen");
    let outgoing: Vec<&String> = requests
        .iter()
        .filter(|u| !u.starts_with("file://") && !u.starts_with("data:"))
        .collect();
    assert!(outgoing.is_empty(), "requests to the network: {outgoing:?}");
}

#[test]
fn injected_markup_does_not_run_in_the_browser() {
    let inv_dir = tempfile::tempdir().unwrap();
    let payload =
        "</script><script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
    save(&hostile_inventory(payload, payload, ""), inv_dir.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = amiaudit(&[
        "audit",
        "--inventory",
        path(inv_dir.path()),
        "--out",
        path(out_dir.path()),
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Browser::launch(profile.path());
    let url = format!("file://{}", out_dir.path().join("report.html").display());
    browser.call("Page.navigate", json!({"url": url}));
    browser.wait_for_event("Page.loadEventFired");
    assert_eq!(browser.eval("String(window.__pwned)"), json!("undefined"));
    assert_no_horizontal_overflow(&mut browser);
    // The payload is shown as text in the findings table.
    let text = browser.eval("document.querySelector('#findings-table tbody').textContent");
    assert!(
        text.as_str().unwrap().contains("window.__pwned = 1"),
        "{text}"
    );
    // The remediation command names the hostile group as one quoted word.
    let commands = browser.eval(
        "Array.from(document.querySelectorAll('#findings-table tbody td.mono')).map(td => td.textContent).join('\\n')",
    );
    let commands = commands.as_str().unwrap();
    assert!(
        commands.contains(&format!("--auto-scaling-group-names '{HOSTILE_GROUP}'")),
        "{commands}"
    );
}
