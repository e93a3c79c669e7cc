//! json-server 0.17.4 (pinned in tests/fixtures/json-server, installed by scripts/setup.sh) as a
//! real third-party REST system: started on a throwaway copy of a seed file, with the
//! fixture's stamp.js middleware (it sets `updatedAt` on every write and logs each request line
//! to stdout, which [`JsonServer::requests`] reads), and killed by PID when dropped (pass or
//! fail).
//!
//! The collection is `/employees`. Edits and single reads made through the helpers here
//! ("someone edits the record directly in json-server") carry the query `?by=test`, which
//! json-server ignores on an item and the request log keeps, so that they can be told apart from
//! the engine's requests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tempfile::TempDir;

/// The query direct edits carry, as the request log shows it.
pub const DIRECT_EDIT: &str = "by=test";

/// tests/fixtures/json-server: the pinned install, stamp.js and the seeds.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/json-server")
}

/// The `employees` of a seed file, as committed.
pub fn seed_of(fixture: &Path) -> Vec<Map<String, Value>> {
    let text = std::fs::read_to_string(fixture)
        .unwrap_or_else(|e| panic!("the seed {} cannot be read: {e}", fixture.display()));
    let db: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the seed {} is not JSON: {e}", fixture.display()));
    db["employees"]
        .as_array()
        .unwrap_or_else(|| panic!("the seed {} has no employees array", fixture.display()))
        .iter()
        .map(|e| {
            e.as_object()
                .cloned()
                .unwrap_or_else(|| panic!("an employee in {} is not an object", fixture.display()))
        })
        .collect()
}

/// A json-server process on 127.0.0.1, serving a copy of a seed file in its own temp dir.
pub struct JsonServer {
    child: Child,
    dir: TempDir,
    base: String,
    client: reqwest::Client,
}

impl JsonServer {
    /// Starts json-server on a copy of `fixture` and waits (at most 20 s) until it answers.
    pub async fn start(fixture: &Path) -> Self {
        let bin = fixture_dir().join("node_modules/.bin/json-server");
        assert!(
            bin.exists(),
            "json-server is not installed at {}: run scripts/setup.sh (it runs `npm ci` in \
             tests/fixtures/json-server)",
            bin.display()
        );
        let name = fixture
            .file_name()
            .unwrap_or_else(|| panic!("{} names no file", fixture.display()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        // A port can be taken between choosing and binding it: try a few.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = dir.path().join(name);
            std::fs::copy(fixture, &db)
                .unwrap_or_else(|e| panic!("copying the seed {}: {e}", fixture.display()));
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let stdout = std::fs::File::create(dir.path().join("requests.log")).expect("log");
            let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log");
            let child = Command::new(&bin)
                .arg(&db)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--middlewares")
                .arg(fixture_dir().join("stamp.js"))
                .arg("--quiet")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {} failed: {e}", bin.display()));
            // From here on, Drop kills the process whatever happens.
            let mut server = Self {
                child,
                dir,
                base: format!("http://127.0.0.1:{port}"),
                client: client.clone(),
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("json-server did not start: {failures:?}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr =
                    std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
                return Err(format!("json-server exited with {status}: {stderr}"));
            }
            let probe = self
                .client
                .get(format!("{}/employees?_limit=1", self.base))
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if let Ok(answer) = probe
                && answer.status().is_success()
            {
                // Two servers started at once can be given the same free port; the one that
                // lost it answers through the winner. Only this process's own answer counts.
                let pid = answer
                    .headers()
                    .get("x-server-pid")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u32>().ok());
                if pid == Some(self.child.id()) {
                    return Ok(());
                }
                let _ = self.child.kill();
                return Err(format!(
                    "{} was answered by another json-server (pid {pid:?}, ours {})",
                    self.base,
                    self.child.id()
                ));
            }
            if Instant::now() > deadline {
                return Err("json-server did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every request json-server received so far, as `METHOD /path?decoded-query`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (method, uri) = line.split_once(' ')?;
                Some(format!("{method} {}", decode(uri)))
            })
            .collect()
    }

    /// The writes (POST, PUT, PATCH, DELETE) json-server received after the first `skip` requests.
    pub fn writes_since(&self, skip: usize) -> Vec<String> {
        self.requests()
            .into_iter()
            .skip(skip)
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }

    /// The writes that did not come through this harness's direct-edit helpers: the engine's.
    pub fn engine_writes(&self) -> Vec<String> {
        self.writes_since(0)
            .into_iter()
            .filter(|r| !is_direct_edit(r))
            .collect()
    }

    /// One employee as json-server holds it now (read with the direct-edit query, so that
    /// the request log tells a test's reads from the engine's).
    pub async fn get(&self, id: u64) -> Map<String, Value> {
        let response = self
            .client
            .get(format!("{}/employees/{id}?{DIRECT_EDIT}", self.base))
            .send()
            .await
            .expect("json-server answers");
        assert!(
            response.status().is_success(),
            "json-server holds employee {id} (GET answered {})",
            response.status()
        );
        response.json().await.expect("a record")
    }

    /// Every employee json-server holds now, in id order (json-server would take a query here
    /// for a filter, so this read carries none).
    pub async fn all(&self) -> Vec<Map<String, Value>> {
        let response = self
            .client
            .get(format!("{}/employees", self.base))
            .send()
            .await
            .expect("json-server answers");
        assert!(
            response.status().is_success(),
            "json-server lists its employees"
        );
        response.json().await.expect("an array of records")
    }

    /// Someone edits a record directly in json-server (a one-level merge: a nested object is
    /// replaced whole). Returns the record as json-server stored it.
    pub async fn patch(&self, id: u64, fields: Value) -> Map<String, Value> {
        self.write(reqwest::Method::PATCH, id, fields).await
    }

    /// Someone replaces a record directly in json-server.
    pub async fn put(&self, id: u64, record: Value) -> Map<String, Value> {
        self.write(reqwest::Method::PUT, id, record).await
    }

    /// Someone deletes a record directly in json-server.
    pub async fn delete(&self, id: u64) {
        let response = self
            .client
            .delete(format!("{}/employees/{id}?{DIRECT_EDIT}", self.base))
            .send()
            .await
            .expect("json-server answers");
        assert!(
            response.status().is_success(),
            "the direct delete of {id} is taken (json-server answered {})",
            response.status()
        );
    }

    async fn write(&self, method: reqwest::Method, id: u64, body: Value) -> Map<String, Value> {
        let response = self
            .client
            .request(
                method.clone(),
                format!("{}/employees/{id}?{DIRECT_EDIT}", self.base),
            )
            .json(&body)
            .send()
            .await
            .expect("json-server answers");
        assert!(
            response.status().is_success(),
            "the direct {method} of {id} is taken (json-server answered {})",
            response.status()
        );
        response.json().await.expect("the record as stored")
    }
}

impl JsonServer {
    /// Kills the server, as a system that stops answering: every request is refused after.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for JsonServer {
    fn drop(&mut self) {
        // Kill by PID (std's Child::kill), then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a request line from [`JsonServer::requests`] is a direct edit made by a test.
pub fn is_direct_edit(request: &str) -> bool {
    request
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p == DIRECT_EDIT))
}

/// `/path?a=1&b=2` with the query percent-decoded.
pub fn decode(uri: &str) -> String {
    match uri.split_once('?') {
        None => uri.to_owned(),
        Some((path, query)) => {
            let pairs: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
    }
}
