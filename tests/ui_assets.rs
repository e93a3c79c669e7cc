//! The console UI as a browser gets it, over real HTTP on loopback: a content-hashed asset in
//! the compressed form the browser accepts, cached for a year; `index.html` (also for the app's
//! own routes) revalidated on every load; a missing asset a 404 nobody caches.

use std::time::Duration;

use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING};

struct Served {
    base: String,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let ui = dir.path();
    std::fs::create_dir_all(ui.join("assets")).expect("assets dir");
    std::fs::write(ui.join("index.html"), "<html>console</html>").expect("index");
    std::fs::write(ui.join("assets/app-3f9a1c.js"), "console.log('plain')").expect("js");
    std::fs::write(ui.join("assets/app-3f9a1c.js.br"), "BROTLI-BYTES").expect("br");
    std::fs::write(ui.join("assets/app-3f9a1c.js.gz"), "GZIP-BYTES").expect("gz");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("addr");
    let app = concord::ui_assets::router(ui);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served {
        base: format!("http://{addr}"),
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test]
async fn assets_are_compressed_and_cached_for_a_year_and_the_page_is_revalidated() {
    let s = serve().await;
    let c = client();
    let header = |r: &reqwest::Response, h| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let br = c
        .get(format!("{}/assets/app-3f9a1c.js", s.base))
        .header(ACCEPT_ENCODING, "gzip, deflate, br")
        .send()
        .await
        .expect("asset");
    assert_eq!(br.status(), 200);
    assert_eq!(
        header(&br, CONTENT_ENCODING).as_deref(),
        Some("br"),
        "a browser that takes brotli gets the brotli copy"
    );
    assert_eq!(
        header(&br, CACHE_CONTROL).as_deref(),
        Some("public, max-age=31536000, immutable"),
        "a content-hashed asset is cached for a year"
    );
    assert_eq!(br.text().await.expect("body"), "BROTLI-BYTES");

    let gz = c
        .get(format!("{}/assets/app-3f9a1c.js", s.base))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(
        header(&gz, CONTENT_ENCODING).as_deref(),
        Some("gzip"),
        "gzip when that is all it takes"
    );
    let plain = c
        .get(format!("{}/assets/app-3f9a1c.js", s.base))
        .send()
        .await
        .expect("asset");
    assert_eq!(
        (
            header(&plain, CONTENT_ENCODING),
            plain.text().await.expect("body")
        ),
        (None, "console.log('plain')".to_owned()),
        "the plain file for a client that takes no compression"
    );

    let missing = c
        .get(format!("{}/assets/app-000000.js", s.base))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), 404, "a missing asset is a 404");
    assert_eq!(
        header(&missing, CACHE_CONTROL),
        None,
        "a 404 is not cached for a year"
    );

    for path in ["/", "/exceptions/5"] {
        let page = c
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), 200, "{path} is the app");
        assert_eq!(
            header(&page, CACHE_CONTROL).as_deref(),
            Some("no-cache"),
            "{path}: the page naming the assets is revalidated on every load"
        );
        assert_eq!(page.text().await.expect("body"), "<html>console</html>");
    }
}
