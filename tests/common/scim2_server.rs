//! scim2-server (PyPI, pinned in tests/fixtures/scim2-server/requirements.txt, installed by
//! scripts/setup.sh into target/scim2-venv): a real SCIM 2.0 server, in memory, started per
//! test on a free 127.0.0.1 port and killed when the test ends (pass or fail). Its request log
//! (`"PATCH /v2/Users/… HTTP/1.1" 412`) tells what Concord sent and what it was answered.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tempfile::TempDir;

pub const TOKEN: &str = "scim-test-token";

pub struct Scim2Server {
    child: Child,
    dir: TempDir,
    base: String,
    client: reqwest::Client,
}

/// One request from the server's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub method: String,
    pub target: String,
    pub status: u16,
}

fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/scim2-venv/bin/scim2-server");
    assert!(
        bin.exists(),
        "scim2-server is not installed at {}: run scripts/setup.sh",
        bin.display()
    );
    bin
}

impl Scim2Server {
    /// A server requiring [`TOKEN`], announcing every feature (PATCH, filter, ETag).
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A server announcing `provider_config` as its ServiceProviderConfig (e.g. PATCH
    /// unsupported).
    pub async fn start_with(provider_config: Option<Value>) -> Self {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let stderr = std::fs::File::create(dir.path().join("requests.log")).expect("log");
            let mut command = Command::new(binary());
            command.args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                TOKEN,
            ]);
            if let Some(config) = &provider_config {
                let file = dir.path().join("spc.json");
                std::fs::write(&file, config.to_string()).expect("config file");
                command.arg("--service-provider-config").arg(file);
            }
            let child = command
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("starting scim2-server failed: {e}"));
            let mut server = Self {
                child,
                dir,
                base: format!("http://127.0.0.1:{port}/v2"),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client"),
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) => failures.push(e),
            }
        }
        panic!("scim2-server did not start: {failures:?}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "scim2-server exited with {status}: {}",
                    self.log_text()
                ));
            }
            let probe = self
                .client
                .get(format!("{}/ServiceProviderConfig", self.base))
                .bearer_auth(TOKEN)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("scim2-server did not answer within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The base URL of a proxy in front of the server that holds every answer back for
    /// `delay` (the request itself reaches the server at once): a slow server, so that a
    /// process killed mid-request has writes in flight whose outcome it never learns. The
    /// counter is the number of POSTs sent on and not yet answered.
    pub async fn slow_base(&self, delay: Duration) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = self
            .base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let posts = Arc::new(AtomicUsize::new(0));
        let counter = posts.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let posts = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut first = vec![0u8; 8192];
                    let Ok(n) = client.read(&mut first).await else {
                        return;
                    };
                    let is_post = first[..n].starts_with(b"POST ");
                    if server.write_all(&first[..n]).await.is_err() {
                        return;
                    }
                    if is_post {
                        posts.fetch_add(1, Ordering::SeqCst);
                    }
                    let (mut client_read, mut client_write) = client.split();
                    let (mut server_read, mut server_write) = server.split();
                    let up = tokio::io::copy(&mut client_read, &mut server_write);
                    let down = async {
                        tokio::time::sleep(delay).await;
                        let copied = tokio::io::copy(&mut server_read, &mut client_write).await;
                        if is_post {
                            posts.fetch_sub(1, Ordering::SeqCst);
                        }
                        copied
                    };
                    let _ = tokio::join!(up, down);
                });
            }
        });
        (format!("http://{addr}/v2"), posts)
    }

    /// The SCIM base URL, `http://127.0.0.1:<port>/v2`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// Every request logged so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.log_text()
            .lines()
            .filter_map(|line| {
                let (_, quoted) = line.split_once('"')?;
                let (request, rest) = quoted.split_once('"')?;
                let mut parts = request.split(' ');
                let method = parts.next()?.to_owned();
                let target = super::json_server::decode(parts.next()?);
                let status = rest.split_whitespace().next()?.parse().ok()?;
                Some(Logged {
                    method,
                    target,
                    status,
                })
            })
            .collect()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/scim+json");
        if let Some(b) = body {
            request = request.body(b.to_string());
        }
        let response = match request.send().await {
            Ok(response) => response,
            // Its stderr (the request log, and a traceback if it died) says why it stopped
            // answering: the test's temporary directory goes when the test ends.
            Err(e) => {
                let log = self.log_text();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                // The state letter of /proc/PID/stat: Z once it has exited (not yet reaped).
                let state = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                    .ok()
                    .and_then(|stat| stat.get(stat.rfind(')')? + 2..)?.chars().next())
                    .map_or_else(|| "gone".to_owned(), |c| format!("in state {c}"));
                panic!(
                    "scim2-server answers: {e}; its process is {state}; the end of its log:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            }
        };
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            etag,
        )
    }

    /// Every resource of `endpoint` (`/Users`, `/Groups`), paging as a client would.
    pub async fn all(&self, endpoint: &str) -> Vec<Map<String, Value>> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let (status, page, _) = self
                .call(
                    reqwest::Method::GET,
                    &format!("{endpoint}?startIndex={start}&count=200"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "listing {endpoint}: {page}");
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap_or(0) as usize;
            let n = resources.len();
            out.extend(resources.into_iter().filter_map(|r| r.as_object().cloned()));
            if n == 0 || out.len() >= total {
                return out;
            }
            start += n;
        }
    }

    /// The User whose externalId is `external_id`.
    pub async fn user(&self, external_id: &str) -> Map<String, Value> {
        self.all("/Users")
            .await
            .into_iter()
            .find(|u| u.get("externalId") == Some(&json!(external_id)))
            .unwrap_or_else(|| panic!("scim2-server holds no user {external_id}"))
    }

    pub async fn create(&self, endpoint: &str, resource: Value) -> Map<String, Value> {
        let (status, body, _) = self
            .call(reqwest::Method::POST, endpoint, Some(resource))
            .await;
        assert_eq!(status, 201, "creating in {endpoint}: {body}");
        body.as_object().cloned().unwrap_or_default()
    }

    /// A PatchOp sent directly, as another provisioning client would (no If-Match).
    pub async fn patch(&self, endpoint: &str, id: &str, operations: Value) {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations
        });
        let (status, answer, _) = self
            .call(
                reqwest::Method::PATCH,
                &format!("{endpoint}/{id}"),
                Some(body),
            )
            .await;
        assert!(
            matches!(status, 200 | 204),
            "a direct PATCH of {endpoint}/{id}: {status} {answer}"
        );
    }

    /// A direct PUT of a resource with `changes` merged in at the top level, as a client of a
    /// server without PATCH would.
    pub async fn put(&self, endpoint: &str, id: &str, changes: Value) {
        let (status, mut resource, _) = self
            .call(reqwest::Method::GET, &format!("{endpoint}/{id}"), None)
            .await;
        assert_eq!(status, 200, "reading {endpoint}/{id}: {resource}");
        if let (Some(r), Value::Object(c)) = (resource.as_object_mut(), changes) {
            r.remove("meta");
            r.extend(c);
        }
        let (status, answer, _) = self
            .call(
                reqwest::Method::PUT,
                &format!("{endpoint}/{id}"),
                Some(resource),
            )
            .await;
        assert_eq!(status, 200, "a direct PUT of {endpoint}/{id}: {answer}");
    }

    pub async fn delete(&self, endpoint: &str, id: &str) {
        let (status, answer, _) = self
            .call(reqwest::Method::DELETE, &format!("{endpoint}/{id}"), None)
            .await;
        assert_eq!(status, 204, "a direct DELETE of {endpoint}/{id}: {answer}");
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
