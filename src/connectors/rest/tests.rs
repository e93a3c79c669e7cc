//! The `rest` connector's unit tests: config validation, paging, cursors, signatures.

use super::*;

#[test]
fn a_link_header_yields_the_next_page() {
    let h = r#"<http://x/items?_page=1>; rel="first", <http://x/items?_page=3>; rel="next", <http://x/items?_page=9>; rel="last""#;
    assert_eq!(
        next_link(h).as_deref(),
        Some("http://x/items?_page=3"),
        "rel=next is followed"
    );
    assert_eq!(
        next_link(r#"<http://x/items?_page=1>; rel="first""#),
        None,
        "no next on the last page"
    );
}

#[test]
fn config_errors_name_the_bad_key() {
    let bad = serde_json::json!({
        "base_url": "http://127.0.0.1:1",
        "objects": { "employee": { "path": "/e", "pagination": { "style": "page", "page_param": "p", "size_param": "s", "size": "ten" } } }
    });
    let err = RestConfig::parse("hris", &bad)
        .expect_err("size must be a number")
        .to_string();
    assert!(
        err.contains("objects.employee.pagination"),
        "the message names the key: {err}"
    );
    let unknown = serde_json::json!({ "base_url": "http://127.0.0.1:1", "objcts": {} });
    let err = RestConfig::parse("hris", &unknown)
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("objcts"), "an unknown key is named: {err}");
}

#[test]
fn a_cursor_is_capped_at_the_start_of_its_listing_in_its_own_shape() {
    let cap = DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    assert_eq!(
        capped_cursor("2026-01-03T10:00:00.000Z", cap),
        "2026-01-02T00:00:00.000Z",
        "a cursor past the listing's start is brought back to it"
    );
    assert_eq!(
        capped_cursor("2026-01-01T10:00:00.000Z", cap),
        "2026-01-01T10:00:00.000Z",
        "an earlier cursor is kept as it is"
    );
    assert_eq!(
        capped_cursor("1767398400000", cap),
        cap.timestamp_millis().to_string(),
        "milliseconds stay milliseconds"
    );
}

#[test]
fn cursors_only_move_forward() {
    assert_eq!(
        later_cursor(Some("2026-01-02T00:00:00Z"), "2026-01-01T00:00:00Z"),
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        later_cursor(Some("2026-01-02T00:00:00Z"), "2026-01-03T00:00:00Z"),
        "2026-01-03T00:00:00Z"
    );
    assert_eq!(later_cursor(None, "17"), "17");
}
