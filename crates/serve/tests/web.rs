//! The chat page in headless Chromium, driven over the W3C WebDriver protocol (plain JSON over
//! HTTP to `chromedriver`): open the page, set the temperature to 0 in the settings, type the
//! greeting the test model was fine-tuned on, click Send, wait for the streamed reply (and its
//! collapsible reasoning) in the DOM, and save a screenshot (`chat.png` in a temporary folder,
//! and in `$ASCENT_SCREENSHOT_DIR` when set).
//!
//! Chromium and chromedriver are required. When they are missing the test installs Debian's
//! `chromium` and `chromium-driver` (apt-get, as root or with sudo), so `cargo test` on a fresh
//! machine needs nothing else; if that fails, the test fails and says how to install them.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let dirs = std::env::var("PATH").unwrap_or_default();
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&dirs).map(move |d| d.join(n)).chain([PathBuf::from("/usr/bin").join(n)]))
        .find(|p| p.is_file())
}

/// chromedriver, ended when dropped.
struct Driver {
    child: Child,
    url: String,
    session: Option<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = agent().delete(&format!("{}/session/{s}", self.url)).call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let d = Driver { child, url: format!("http://127.0.0.1:{port}"), session: None };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut r) = agent().get(&format!("{}/status", d.url)).call() {
                let v: Value = r.body_mut().read_json().unwrap_or_default();
                if v["value"]["ready"] == true {
                    return d;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A WebDriver command: its `value`, or a panic with the driver's error.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let a = agent();
        let mut r = match (method, body) {
            ("GET", _) => a.get(&url).call(),
            ("DELETE", _) => a.delete(&url).call(),
            (_, b) => a.post(&url).header("content-type", "application/json").send(b.unwrap_or(json!({})).to_string()),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status().as_u16();
        let v: Value = r.body_mut().read_json().unwrap_or_default();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn session(&self) -> &str {
        self.session.as_deref().expect("a session")
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            &format!("/session/{}/element", self.session()),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/session/{}/element/{e}/clear", self.session()), Some(json!({})));
        self.cmd("POST", &format!("/session/{}/element/{e}/value", self.session()), Some(json!({"text": text})));
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/session/{}/element/{e}/click", self.session()), Some(json!({})));
    }

    fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            &format!("/session/{}/execute/sync", self.session()),
            Some(json!({"script": script, "args": []})),
        )
    }
}

/// Installs Debian's chromium and chromium-driver with apt-get (sudo when not root); the
/// outcome is judged by looking for the binaries afterwards.
fn install_browser() {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.args(["-n", "apt-get"]);
        }
        let _ = c.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdout(Stdio::null()).status();
    };
    eprintln!("installing chromium and chromium-driver (Debian) for this test");
    apt(&["update", "-qq"]);
    apt(&["install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"]);
}

#[test]
fn the_chat_page_streams_a_reply_in_headless_chromium() {
    if find_binary(&["chromium", "chromium-browser"]).is_none() || find_binary(&["chromedriver"]).is_none() {
        install_browser();
    }
    let install = "install them with `apt-get install chromium chromium-driver` (Debian)";
    let chromium = find_binary(&["chromium", "chromium-browser"])
        .unwrap_or_else(|| panic!("Chromium is not installed: {install}"));
    let chromedriver =
        find_binary(&["chromedriver"]).unwrap_or_else(|| panic!("chromedriver is not installed: {install}"));

    let server = start(trained_checkpoint(), &[]);
    let profile = tempfile::tempdir().expect("tempdir");
    let mut driver = Driver::start(&chromedriver);
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,760",
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}}}});
    let v = driver.cmd("POST", "/session", Some(caps));
    driver.session = Some(v["sessionId"].as_str().expect("sessionId").to_string());

    driver.cmd("POST", &format!("/session/{}/url", driver.session()), Some(json!({"url": server.url()})));
    let deadline = Instant::now() + Duration::from_secs(20);
    while driver.script("return document.getElementById('model').textContent") != json!(server.model_name()) {
        assert!(Instant::now() < deadline, "the page did not load the model list");
        std::thread::sleep(Duration::from_millis(100));
    }
    driver.click("#settings summary");
    driver.type_into("#temperature", "0");
    driver.type_into("#input", GREETING);
    driver.click("#send");

    // Wait for the reply: text appears while it streams, then the bubble is marked done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_text_before_done = false;
    let reply = loop {
        let state = driver.script(
            "const m = document.querySelector('.msg.assistant');
             return m ? {text: m.querySelector('.content').textContent, done: m.dataset.done === '1',
                         error: m.classList.contains('error'),
                         deltas: Number(m.dataset.deltas || 0),
                         reasoning: m.querySelector('.reasoning-text').textContent,
                         reasoningShown: !m.querySelector('.reasoning').classList.contains('hidden')} : null",
        );
        if !state.is_null() {
            assert_eq!(state["error"], false, "the page shows an error: {state}");
            let text = state["text"].as_str().unwrap_or("");
            saw_text_before_done |= !text.is_empty() && state["done"] == false;
            if state["done"] == true {
                break state;
            }
        }
        assert!(Instant::now() < deadline, "no finished assistant reply: {state}");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("reply: {reply}; text seen while streaming: {saw_text_before_done}");
    assert_eq!(reply["text"], REPLY, "the streamed reply, put together by the page");
    assert_eq!(reply["reasoning"], THOUGHT, "reasoning in its own collapsible section");
    assert_eq!(reply["reasoningShown"], true);
    assert!(reply["deltas"].as_u64().is_some_and(|d| d > 1), "the page read the reply as a stream of deltas: {reply}");

    let shot = driver.cmd("GET", &format!("/session/{}/screenshot", driver.session()), None);
    let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().expect("base64 PNG")).expect("decodes");
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "a PNG screenshot ({} bytes)", png.len());
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::write(out.path().join("chat.png"), &png).expect("write the screenshot");
    if let Ok(dir) = std::env::var("ASCENT_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(Path::new(&dir).join("chat.png"), &png).expect("write the screenshot");
        println!("screenshot: {dir}/chat.png");
    }
    server.stop().expect("stop");
}
