//! The HTTP server closes slow clients: a request's headers must arrive within the header
//! timeout (also the limit for a kept-alive connection waiting for its next request), its body
//! within the body timeout (408), and a connection with no bytes moving for the idle timeout
//! is dropped. Real sockets against the engine's webhook server on 127.0.0.1, with short
//! timeouts so the test takes seconds.

mod common;

use std::time::{Duration, Instant};

use concord::server::HttpTimeouts;
use concord::{Engine, EngineOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER: Duration = Duration::from_secs(1);
const BODY: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(3);
/// Scheduling slack on a busy two-core machine.
const SLACK: Duration = Duration::from_millis(1_500);

async fn server() -> (std::net::SocketAddr, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::open(
        &dir.path().join("state.db"),
        EngineOptions {
            settings: concord::Settings {
                http: HttpTimeouts {
                    header: HEADER,
                    body: BODY,
                    idle: IDLE,
                },
                ..common::fast_settings()
            },
            ..EngineOptions::default()
        },
    )
    .await
    .expect("engine opens");
    let cancel = tokio_util::sync::CancellationToken::new();
    let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel)
        .await
        .expect("server");
    (addr, engine, dir)
}

/// Reads until the server closes the connection (or it errors); returns when, and what came.
async fn until_closed(stream: &mut TcpStream, give_up: Duration) -> (Option<Duration>, String) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = give_up.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    Some(started.elapsed()),
                    String::from_utf8_lossy(&got).into(),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (None, String::from_utf8_lossy(&got).into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_silent_clients_are_disconnected_within_the_timeouts() {
    let (addr, _engine, _dir) = server().await;
    let mut tasks = Vec::new();
    // Three send nothing at all.
    for _ in 0..3 {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let (closed, _) = until_closed(&mut s, HEADER + SLACK * 4).await;
            ("silent", closed, HEADER + SLACK)
        }));
    }
    // Four send a request line byte by byte, slower than the header timeout allows.
    for _ in 0..4 {
        tasks.push(tokio::spawn(async move {
            let s = TcpStream::connect(addr).await.expect("connect");
            let (mut r, w) = s.into_split();
            let writer = tokio::spawn(trickle_head(w));
            let started = Instant::now();
            let mut buf = [0u8; 256];
            let closed = loop {
                match tokio::time::timeout(HEADER + SLACK * 4, r.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
                    Ok(Ok(_)) => {}
                    Err(_) => break None,
                }
            };
            writer.abort();
            ("slow headers", closed, HEADER + SLACK)
        }));
    }
    for t in tasks {
        let (kind, closed, bound) = t.await.expect("task");
        let closed = closed.unwrap_or_else(|| panic!("a {kind} client is never disconnected"));
        assert!(
            closed <= bound,
            "a {kind} client is disconnected within the header timeout ({closed:?} > {bound:?})"
        );
    }
}

/// Sends `POST /hooks/x HTTP/1.1\r\nHost: a` a byte every 200 ms (never finishing the head).
async fn trickle_head(mut w: tokio::net::tcp::OwnedWriteHalf) {
    for b in b"POST /hooks/x HTTP/1.1\r\nHost: a" {
        if w.write_all(&[*b]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_with_a_408_and_the_connection_closed() {
    let (addr, _engine, _dir) = server().await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        b"POST /hooks/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
    )
    .await
    .expect("head");
    let started = Instant::now();
    let body = [b' '; 200];
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        // A byte every 100 ms: 20 s for the body, ten times the body timeout.
        for b in body {
            if w.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(BODY + SLACK * 4, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break None,
        }
    };
    writer.abort();
    let answer = String::from_utf8_lossy(&got);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a body slower than the body timeout is answered 408: {answer}"
    );
    let closed = closed.expect("the connection of a slow body is closed");
    assert!(
        closed <= BODY + SLACK,
        "and closed within the body timeout ({closed:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_waiting_for_its_next_request_is_closed() {
    let (addr, _engine, _dir) = server().await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /hooks/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .expect("request");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"),
        "a complete request is answered (an unknown system: 404)"
    );
    let (closed, _) = until_closed(&mut s, HEADER + SLACK * 4).await;
    let closed = closed.expect("an idle kept-alive connection is closed");
    assert!(
        closed <= HEADER + SLACK,
        "an idle kept-alive connection is closed within the header timeout ({closed:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_size_limit_is_refused() {
    let (addr, _engine, _dir) = server().await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/hooks/x"))
        .header("content-type", "application/json")
        .body(vec![b' '; concord::server::MAX_BODY + 1])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413, "a body over MAX_BODY is refused");
}
