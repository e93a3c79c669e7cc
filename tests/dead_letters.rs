//! Dead letters as support staff read them: the system's reason in its own words, failures
//! grouped by cause with counts, a validation refusal flagged as failing again, each write's
//! timeline of attempts, and a whole cause replayed or discarded at once.

mod common;

use std::sync::Arc;

use common::{Harness, ada};
use concord::api::auth::{Principal, Role, Tokens};
use serde_json::{Value, json};

fn refusal(message: &str) -> Value {
    json!({ "error": "validation_failed", "message": message,
            "fields": [{ "field": "salary_cents", "message": message }] })
}

#[tokio::test]
async fn dead_letters_are_grouped_by_cause_and_a_cause_is_replayed_or_discarded_at_once() {
    let h = Harness::start(|_| {}).await;
    let tokens = Arc::new(Tokens::default());
    let support = tokens.issue(Principal::new("pat", Role::Support));
    let (base, client) = common::serve_console(&h.engine, tokens, "concord-dead-letter-test").await;
    let get = |path: String| {
        let (client, support) = (client.clone(), support.clone());
        async move {
            let r = client
                .get(path)
                .bearer_auth(&support)
                .send()
                .await
                .expect("console answers");
            assert_eq!(r.status().as_u16(), 200, "a read succeeds");
            r.json::<Value>().await.expect("JSON")
        }
    };

    // Payroll refuses the next four creates: three for the same reason with different
    // amounts, one for another reason.
    for cents in [60_100_000, 75_000_000, 81_200_000] {
        h.payroll.fail_next_with(
            422,
            refusal(&format!(
                "salary_cents {cents} exceeds the payroll limit of 50000000"
            )),
        );
    }
    h.payroll
        .fail_next_with(422, refusal("hire_date must not be in the future"));
    for n in 1..=4 {
        let mut person = ada();
        person["employee_id"] = json!(format!("E200{n}"));
        person["email"] = json!(format!("p{n}@acme.example"));
        person["full_name"] = json!(format!("Person {n}"));
        h.hris.edit(&format!("H{n}"), person);
    }
    h.settle().await;
    assert!(h.payroll.is_empty(), "every create was refused");

    let causes = get(format!("{base}/api/dead-letters/causes")).await;
    let causes = causes.as_array().cloned().unwrap_or_default();
    assert_eq!(causes.len(), 2, "two causes: {causes:?}");
    let salary = &causes[0];
    assert_eq!(
        salary["count"],
        json!(3),
        "the three refusals over the limit are one cause"
    );
    assert!(
        salary["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("salary_cents ")
                && m.ends_with("exceeds the payroll limit of 50000000")),
        "the cause reads as the system's sentence, not its JSON: {salary}"
    );
    assert_eq!(
        (salary["fails_again"].clone(), salary["fields"].clone()),
        (json!(true), json!(["salary_cents"])),
        "a validation refusal fails again until the record or mapping changes, and names its field"
    );
    assert_eq!(causes[1]["count"], json!(1));

    // Each dead letter reads the same, with its timeline.
    let first = salary["ids"][0].as_i64().expect("an id");
    let one = get(format!("{base}/api/dead-letters/{first}")).await;
    assert!(
        one["message"]
            .as_str()
            .is_some_and(|m| m.contains("exceeds the payroll limit"))
    );
    let log = one["attempt_log"].as_array().cloned().unwrap_or_default();
    assert_eq!(log.len(), 1, "one attempt, refused: {log:?}");
    assert_eq!(
        (
            log[0]["attempt"].clone(),
            log[0]["status"].clone(),
            log[0]["retry_at"].clone()
        ),
        (json!(1), json!(422), Value::Null),
        "the attempt is on the timeline with the system's status, and no retry followed"
    );

    // The limit was raised: the cause is replayed as one, and the three reach payroll.
    let replayed = client
        .post(format!("{base}/api/dead-letters/replay-selected"))
        .bearer_auth(&support)
        .json(&json!({ "ids": salary["ids"] }))
        .send()
        .await
        .expect("replay");
    assert_eq!(replayed.status().as_u16(), 200, "the cause is replayed");
    h.settle().await;
    assert_eq!(
        h.payroll.len(),
        3,
        "the three replayed creates reach payroll"
    );

    // The other is discarded as a group, with a reason.
    let other = causes[1]["ids"].clone();
    let refused = client
        .post(format!("{base}/api/dead-letters/discard-selected"))
        .bearer_auth(&support)
        .json(&json!({ "ids": other, "reason": " " }))
        .send()
        .await
        .expect("discard");
    assert_eq!(refused.status().as_u16(), 422, "discarding needs a reason");
    let discarded: Value = client
        .post(format!("{base}/api/dead-letters/discard-selected"))
        .bearer_auth(&support)
        .json(&json!({ "ids": other, "reason": "hire cancelled" }))
        .send()
        .await
        .expect("discard")
        .json()
        .await
        .expect("JSON");
    assert_eq!(discarded["discarded"], json!(1), "{discarded}");
    let left = get(format!("{base}/api/dead-letters/causes")).await;
    assert_eq!(left, json!([]), "no dead letter is left");
}
