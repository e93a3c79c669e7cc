//! The directory driven over real HTTP on 127.0.0.1, as a SCIM client would.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::schema::{ENTERPRISE, ERROR, GROUP, LIST, PATCH_OP, USER};
use super::{BODY_LIMIT, Directory, DirectorySeed, SCIM_JSON, seed};
use crate::demo::people;

const TOKEN: &str = "scim-test-token";

struct Fixture {
    dir: Directory,
    client: reqwest::Client,
    _stop: DropGuard,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a SCIM error with this status and scimType.
    fn scim_error(&self, status: u16, scim_type: Option<&str>, rule: &str) {
        assert_eq!(self.status.as_u16(), status, "{rule}: {}", self.body);
        assert_eq!(
            self.body["schemas"],
            json!([ERROR]),
            "{rule}: errors are SCIM Error messages"
        );
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{rule}: the error's status is the HTTP status, as a string"
        );
        assert_eq!(
            self.body["scimType"].as_str(),
            scim_type,
            "{rule}: scimType: {}",
            self.body
        );
    }
}

async fn start(seed: DirectorySeed) -> Fixture {
    let cancel = CancellationToken::new();
    let dir = Directory::start(TOKEN.into(), seed, cancel.clone())
        .await
        .expect("the directory starts on 127.0.0.1");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client");
    Fixture {
        dir,
        client,
        _stop: cancel.drop_guard(),
    }
}

/// A directory of the demo company of 60 people (seed 7).
async fn fixture() -> Fixture {
    start(seed(7, 60)).await
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.dir.base_url())
        };
        let mut request = self.client.request(method, url).bearer_auth(TOKEN);
        if let Some(b) = body {
            request = request.header("content-type", SCIM_JSON).body(b);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("the directory answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body.to_string()), &[])
            .await
    }

    async fn put(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::PUT, path, Some(body.to_string()), headers)
            .await
    }

    async fn patch(&self, path: &str, operations: Value) -> Answer {
        self.patch_if(path, operations, &[]).await
    }

    async fn patch_if(&self, path: &str, operations: Value, headers: &[(&str, &str)]) -> Answer {
        let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
        self.send(Method::PATCH, path, Some(body.to_string()), headers)
            .await
    }

    async fn create_user(&self, user_name: &str) -> Value {
        let a = self
            .post(
                "/Users",
                json!({
                    "schemas": [USER, ENTERPRISE],
                    "userName": user_name,
                    "externalId": format!("X-{user_name}"),
                    "name": { "givenName": "Test", "familyName": "Person" },
                    "displayName": "Test Person",
                    "title": "Tester",
                    "active": true,
                    "emails": [{ "value": user_name, "type": "work", "primary": true }],
                    "phoneNumbers": [{ "value": "+14155550100", "type": "work" }],
                    ENTERPRISE: { "employeeNumber": format!("T-{user_name}"), "department": "QA" },
                }),
            )
            .await;
        assert_eq!(a.status, 201, "a valid user is created: {}", a.body);
        a.body
    }

    /// The ids a filter finds among the users.
    async fn find(&self, filter: &str) -> Vec<String> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/Users", self.dir.base_url()),
            &[("filter", filter), ("count", "200")],
        )
        .expect("url");
        let a = self.get(url.as_str()).await;
        assert_eq!(a.status, 200, "filter {filter} is supported: {}", a.body);
        ids(&a.body["Resources"])
    }
}

fn ids(resources: &Value) -> Vec<String> {
    resources
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|u| u["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().expect("an id").to_owned()
}

fn user_path(resource: &Value) -> String {
    format!("/Users/{}", id(resource))
}

#[tokio::test]
async fn every_route_needs_the_bearer_token() {
    let f = fixture().await;
    let url = format!("{}/Users", f.dir.base_url());
    for (what, auth) in [
        ("no Authorization header", None),
        ("a wrong token", Some("Bearer nope")),
        ("another scheme", Some("Basic c2NpbTpzY2lt")),
    ] {
        let mut request = f.client.get(&url);
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let r = request.send().await.expect("answer");
        assert_eq!(r.status(), 401, "{what} is refused");
        assert!(
            r.headers().contains_key("www-authenticate"),
            "a 401 says how to authenticate"
        );
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["schemas"], json!([ERROR]), "the 401 is a SCIM error");
    }
    let schemes = f
        .client
        .get(format!("{}/ServiceProviderConfig", f.dir.base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(schemes.status(), 401, "discovery needs the token too");
    let ok = f.get("/Users").await;
    assert_eq!(ok.status, 200, "the token opens the API");
    assert_eq!(
        ok.header("content-type"),
        SCIM_JSON,
        "answers are application/scim+json"
    );
    let lower = f
        .client
        .get(&url)
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(lower.status(), 200, "the scheme name is case-insensitive");
    let stats = f.dir.stats();
    assert_eq!(stats.with_status(401), 4, "refusals are counted");
    assert_eq!(stats.with_status(200), 2, "answers are counted");
}

#[tokio::test]
async fn discovery_documents_describe_the_server() {
    let f = fixture().await;
    let spc = f.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["patch"]["supported"], true, "PATCH is supported");
    assert_eq!(spc["bulk"]["supported"], false, "bulk is not");
    assert_eq!(spc["filter"]["supported"], true, "filters are supported");
    assert_eq!(spc["filter"]["maxResults"], 200, "with 200 results at most");
    assert_eq!(spc["sort"]["supported"], true, "sorting is supported");
    assert_eq!(spc["etag"]["supported"], true, "ETags are supported");
    assert_eq!(
        spc["authenticationSchemes"][0]["type"], "oauthbearertoken",
        "bearer tokens authenticate"
    );

    let types = f.get("/ResourceTypes").await.body;
    assert_eq!(types["schemas"], json!([LIST]), "resource types are listed");
    assert_eq!(types["totalResults"], 2, "User and Group");
    let user = &types["Resources"][0];
    assert_eq!(
        (&user["name"], &user["endpoint"], &user["schema"]),
        (&json!("User"), &json!("/Users"), &json!(USER)),
        "the User resource type"
    );
    assert_eq!(
        user["schemaExtensions"],
        json!([{ "schema": ENTERPRISE, "required": false }]),
        "users carry the enterprise extension"
    );
    assert_eq!(
        f.get("/ResourceTypes/Group").await.body["schema"],
        GROUP,
        "one resource type by name"
    );

    let schemas = f.get("/Schemas").await.body;
    assert_eq!(schemas["totalResults"], 3, "User, EnterpriseUser, Group");
    let by_id = |id: &str| {
        schemas["Resources"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("schema {id} is listed"))
    };
    let attr = |schema: &Value, name: &str| {
        schema["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} is defined"))
    };
    let sub_names = |a: &Value| -> BTreeSet<String> {
        a["subAttributes"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let core = by_id(USER);
    let user_name = attr(&core, "userName");
    assert_eq!(
        (
            &user_name["type"],
            &user_name["required"],
            &user_name["uniqueness"]
        ),
        (&json!("string"), &json!(true), &json!("server")),
        "userName is a required, unique string"
    );
    for name in ["displayName", "title", "active", "externalId"] {
        attr(&core, name);
    }
    assert_eq!(
        attr(&core, "active")["type"],
        "boolean",
        "active is a boolean"
    );
    assert_eq!(
        sub_names(&attr(&core, "name")),
        ["familyName", "formatted", "givenName"]
            .map(String::from)
            .into(),
        "name's sub-attributes"
    );
    for multi in ["emails", "phoneNumbers"] {
        let a = attr(&core, multi);
        assert_eq!(a["multiValued"], true, "{multi} is multi-valued");
        assert_eq!(
            sub_names(&a),
            ["primary", "type", "value"].map(String::from).into(),
            "{multi}'s sub-attributes"
        );
    }
    let enterprise = by_id(ENTERPRISE);
    attr(&enterprise, "employeeNumber");
    attr(&enterprise, "department");
    assert!(
        sub_names(&attr(&enterprise, "manager"))
            .is_superset(&["value", "displayName"].map(String::from).into()),
        "manager has value and displayName"
    );
    let members = attr(&by_id(GROUP), "members");
    assert!(
        sub_names(&members).is_superset(&["value", "display", "$ref"].map(String::from).into()),
        "members have value, display and $ref"
    );
    assert_eq!(
        f.get(&format!("/Schemas/{ENTERPRISE}")).await.body["id"],
        ENTERPRISE,
        "one schema by its URN"
    );
    f.get("/Schemas/urn:nope")
        .await
        .scim_error(404, None, "an unknown schema is 404");
}

#[tokio::test]
async fn the_seed_is_the_demo_company_as_a_directory() {
    let s = seed(7, 60);
    let again = seed(7, 60);
    let strip = |s: &DirectorySeed| {
        s.users
            .iter()
            .chain(&s.groups)
            .map(|r| (r.id.clone(), r.body.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&s), strip(&again), "same seed, same directory");
    assert_ne!(strip(&s), strip(&seed(8, 60)), "another seed, another one");
    let company = people::seed_systems(7, 60);
    assert_eq!(
        s.users(),
        company.hris.len() - company.hris_only,
        "everyone in the HRIS but its recent hires has an account"
    );
    assert!(
        !s.email_differs.is_empty() && !s.phone_differs.is_empty(),
        "a few people's e-mail and phone differ from the HRIS's"
    );
    let f = start(s.clone()).await;
    let snapshot = f.dir.snapshot();
    assert_eq!(
        snapshot.users.len(),
        s.users(),
        "the server serves the seed"
    );
    assert_eq!(
        snapshot.groups.len(),
        people::DEPARTMENTS.len(),
        "a group per department"
    );
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    for (hris, _) in &company.hris {
        let number = hris["employee_id"].as_str().expect("number");
        let Some(id) = f.dir.user_id_by_employee(number) else {
            continue;
        };
        let u = f.dir.user(&id).expect("the user");
        assert_eq!(u["externalId"], number, "externalId is the employee number");
        assert_eq!(
            u["emails"][0]["value"], u["userName"],
            "userName is the work e-mail"
        );
        assert_eq!(
            (&u["emails"][0]["type"], &u["emails"][0]["primary"]),
            (&json!("work"), &json!(true)),
            "the work e-mail is primary"
        );
        assert_eq!(u["phoneNumbers"][0]["type"], "work", "a work phone");
        assert_eq!(
            u["active"],
            hris["status"] != "Terminated",
            "{number}: only people who left are inactive"
        );
        assert_eq!(
            u[ENTERPRISE]["department"], hris["department"],
            "department"
        );
        let email_differs = s.email_differs.iter().any(|n| n == number);
        assert_eq!(
            u["userName"] != hris["work_email"],
            email_differs,
            "{number}: the e-mail differs only for the chosen few"
        );
        let phone = u["phoneNumbers"][0]["value"].as_str().unwrap_or_default();
        let phone_differs = s.phone_differs.iter().any(|n| n == number);
        assert_eq!(
            digits(phone) != format!("1{}", digits(hris["phone"].as_str().unwrap_or_default()))
                && digits(phone) != digits(hris["phone"].as_str().unwrap_or_default()),
            phone_differs,
            "{number}: the phone differs only for the chosen few ({phone} vs {})",
            hris["phone"]
        );
        if let Some(manager) = hris["manager_id"].as_str() {
            let manager_id = f
                .dir
                .user_id_by_employee(manager)
                .expect("managers have accounts");
            assert_eq!(
                u[ENTERPRISE]["manager"]["value"], manager_id,
                "the manager is referred to by id"
            );
        }
    }
    let engineering = snapshot
        .groups
        .iter()
        .find(|g| g["displayName"] == "Engineering")
        .expect("an Engineering group");
    let member = &engineering["members"][0];
    assert!(
        member["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!(
                "/Users/{}",
                member["value"].as_str().unwrap_or("?")
            ))),
        "members carry their $ref: {member}"
    );
}

#[tokio::test]
async fn created_resources_have_location_etag_and_meta() {
    let f = fixture().await;
    let a = f
        .post(
            "/Users",
            json!({ "schemas": [USER], "userName": "new.hire@qa.example" }),
        )
        .await;
    assert_eq!(a.status, 201, "POST creates: {}", a.body);
    let meta = &a.body["meta"];
    assert_eq!(
        a.header("location"),
        meta["location"],
        "Location is meta.location"
    );
    assert_eq!(
        a.header("etag"),
        "W/\"1\"",
        "a new resource is version 1, weakly tagged"
    );
    assert_eq!(meta["version"], "W/\"1\"", "meta.version is the ETag");
    assert_eq!(meta["resourceType"], "User", "meta.resourceType");
    assert_eq!(
        meta["created"], meta["lastModified"],
        "created is the first modification"
    );
    let created = meta["created"].as_str().expect("created");
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[19] == b'.',
        "times are RFC 3339 with milliseconds: {created}"
    );
    assert_eq!(
        a.body["schemas"],
        json!([USER]),
        "no extension, no extension schema"
    );
    let got = f.get(a.header("location")).await;
    assert_eq!(got.status, 200, "the Location answers");
    assert_eq!(got.header("etag"), "W/\"1\"", "GET answers the ETag");
    assert_eq!(got.body, a.body, "GET answers what POST did");
    let not_modified = f
        .send(
            Method::GET,
            a.header("location"),
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(
        not_modified.status, 304,
        "If-None-Match with the current tag is 304"
    );

    let g = f
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Testers", "members": [{ "value": id(&a.body) }] }),
        )
        .await;
    assert_eq!(g.status, 201, "a group is created: {}", g.body);
    assert_eq!(
        g.body["members"][0]["display"], "new.hire@qa.example",
        "a member's display is filled in (the userName, without a displayName)"
    );
}

#[tokio::test]
async fn invalid_requests_get_scim_errors() {
    let f = fixture().await;
    f.create_user("taken@qa.example").await;
    f.post("/Users", json!({ "userName": "TAKEN@qa.example" }))
        .await
        .scim_error(
            409,
            Some("uniqueness"),
            "userName is unique whatever its case",
        );
    let other = f.create_user("other@qa.example").await;
    f.patch(
        &user_path(&other),
        json!([{ "op": "replace", "path": "userName", "value": "taken@qa.example" }]),
    )
    .await
    .scim_error(
        409,
        Some("uniqueness"),
        "a PATCH cannot take a taken userName",
    );
    f.send(Method::POST, "/Users", Some("{\"userName\": ".into()), &[])
        .await
        .scim_error(400, Some("invalidSyntax"), "malformed JSON is 400");
    f.send(Method::POST, "/Users", Some("[1, 2]".into()), &[])
        .await
        .scim_error(400, Some("invalidSyntax"), "a body is a JSON object");
    f.post("/Users", json!({ "displayName": "No Name" }))
        .await
        .scim_error(400, Some("invalidValue"), "userName is required");
    f.post("/Users", json!({ "userName": "x@qa.example", "active": 5 }))
        .await
        .scim_error(400, Some("invalidValue"), "active is a boolean");
    f.post(
        "/Users",
        json!({ "userName": "x@qa.example", "emails": [
            { "value": "a@qa.example", "primary": true },
            { "value": "b@qa.example", "primary": true },
        ] }),
    )
    .await
    .scim_error(400, Some("invalidValue"), "one primary e-mail at most");
    f.post(
        "/Groups",
        json!({ "displayName": "G", "members": [{ "value": "nobody" }] }),
    )
    .await
    .scim_error(
        400,
        Some("invalidValue"),
        "members are users of the directory",
    );
    f.get("/Users/nope")
        .await
        .scim_error(404, None, "an unknown user is 404");
    f.patch(
        "/Users/nope",
        json!([{ "op": "replace", "path": "title", "value": "x" }]),
    )
    .await
    .scim_error(404, None, "patching an unknown user is 404");
    f.get("/Nothing")
        .await
        .scim_error(404, None, "an unknown endpoint is 404");
    f.send(Method::DELETE, "/Users", None, &[])
        .await
        .scim_error(405, None, "a method an endpoint does not take is 405");
    let text = f
        .client
        .post(format!("{}/Users", f.dir.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body("userName=x")
        .send()
        .await
        .expect("answer");
    assert_eq!(text.status(), 415, "only JSON bodies are taken");
    let plain = f
        .client
        .post(format!("{}/Users", f.dir.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "userName": "plain@qa.example" }))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        plain.status(),
        201,
        "application/json is taken as well as SCIM's type"
    );
}

#[tokio::test]
async fn a_huge_body_is_refused() {
    let f = fixture().await;
    let huge = json!({ "userName": "big@qa.example", "title": "x".repeat(BODY_LIMIT + 1) });
    let users = f.dir.len();
    let a = f.post("/Users", huge).await;
    a.scim_error(413, None, "a body over the limit is 413");
    assert_eq!(f.dir.len(), users, "and nothing is created");
}

#[tokio::test]
async fn listings_page_from_one() {
    let f = start(seed(11, 300)).await;
    let total = f.dir.len();
    assert!(total > 250, "a few hundred users");
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= total {
        let page = f
            .get(&format!("/Users?startIndex={start}&count=100"))
            .await
            .body;
        assert_eq!(page["schemas"], json!([LIST]), "a ListResponse");
        assert_eq!(
            page["totalResults"], total,
            "totalResults counts every match, on every page"
        );
        assert_eq!(page["startIndex"], start, "startIndex is echoed");
        let got = ids(&page["Resources"]);
        assert_eq!(
            page["itemsPerPage"],
            got.len(),
            "itemsPerPage counts this page"
        );
        assert_eq!(
            got.len(),
            100.min(total - start + 1),
            "full pages but the last"
        );
        seen.extend(got);
        start += 100;
    }
    let all: Vec<String> = f.dir.snapshot().users.iter().map(id).collect();
    assert_eq!(
        seen, all,
        "the pages hold every user once, in the order created"
    );
    let default = f.get("/Users").await.body;
    assert_eq!(default["itemsPerPage"], 100, "100 by default");
    let capped = f.get("/Users?count=1000").await.body;
    assert_eq!(capped["itemsPerPage"], 200, "count is capped at maxResults");
    let zero = f.get("/Users?startIndex=0&count=2").await.body;
    assert_eq!(zero["startIndex"], 1, "a startIndex below 1 is 1");
    assert_eq!(ids(&zero["Resources"]), all[..2], "and starts at the first");
    let none = f.get("/Users?count=0").await.body;
    assert_eq!(
        (&none["totalResults"], &none["itemsPerPage"]),
        (&json!(total), &json!(0)),
        "count=0 answers only the total"
    );
    let past = f
        .get(&format!("/Users?startIndex={}", total + 5))
        .await
        .body;
    assert_eq!(past["Resources"], json!([]), "past the end, an empty page");
    f.get("/Users?count=many")
        .await
        .scim_error(400, Some("invalidValue"), "count is a number");
    let sorted = f.get("/Users?sortBy=userName&count=200").await.body;
    let names: Vec<String> = sorted["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|u| u["userName"].as_str().unwrap_or_default().to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(names, expected, "sortBy=userName sorts ascending");
    let desc = f
        .get("/Users?sortBy=userName&sortOrder=descending&count=1")
        .await
        .body;
    let mut every: Vec<String> = f
        .dir
        .snapshot()
        .users
        .iter()
        .map(|u| u["userName"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    every.sort();
    assert_eq!(
        desc["Resources"][0]["userName"]
            .as_str()
            .map(str::to_lowercase),
        every.last().cloned(),
        "descending starts from the last"
    );
}

#[tokio::test]
async fn filters_select_users() {
    let f = fixture().await;
    let a = f.create_user("ada.lovelace@qa.example").await;
    let b = f.create_user("alan.turing@qa.example").await;
    let (ida, idb) = (id(&a), id(&b));
    f.patch(
        &user_path(&b),
        json!([{ "op": "replace", "path": "active", "value": false }]),
    )
    .await;
    let by_number = format!(r#"{ENTERPRISE}:employeeNumber eq "T-ada.lovelace@qa.example""#);
    let by_id = format!(r#"id eq "{ida}""#);
    let cases: Vec<(&str, Vec<&String>, &str)> = vec![
        (r#"userName eq "ada.lovelace@qa.example""#, vec![&ida], "eq"),
        (
            r#"USERNAME Eq "ADA.LOVELACE@qa.example""#,
            vec![&ida],
            "names, operators and string values ignore case",
        ),
        (
            r#"externalId eq "X-ada.lovelace@qa.example""#,
            vec![&ida],
            "externalId eq",
        ),
        (
            r#"externalId eq "x-ADA.lovelace@qa.example""#,
            vec![],
            "externalId is case-exact",
        ),
        (
            r#"emails.value eq "alan.turing@qa.example""#,
            vec![&idb],
            "a multi-valued sub-attribute",
        ),
        (
            r#"emails[type eq "work" and value co "turing@qa"]"#,
            vec![&idb],
            "a value filter",
        ),
        (&by_number, vec![&ida], "an extension attribute by URN"),
        (
            r#"userName sw "ada.lovelace@qa" or userName sw "alan.turing@qa""#,
            vec![&ida, &idb],
            "or",
        ),
        (
            r#"userName co "@qa.example" and (userName sw "ada." or userName ew "turing@qa.example") and title eq "Tester""#,
            vec![&ida, &idb],
            "and, parentheses",
        ),
        (
            r#"title eq "Tester" and active eq false"#,
            vec![&idb],
            "booleans",
        ),
        (
            r#"title eq "Tester" and not (active eq false)"#,
            vec![&ida],
            "not",
        ),
        (
            r#"title eq "Tester" and userName ne "ada.lovelace@qa.example""#,
            vec![&idb],
            "ne",
        ),
        (
            r#"title eq "Tester" and userName gt "alan""#,
            vec![&idb],
            "gt on strings",
        ),
        (
            r#"title eq "Tester" and userName lt "alan""#,
            vec![&ida],
            "lt on strings",
        ),
        (
            r#"title eq "Tester" and userName ge "alan.turing@qa.example""#,
            vec![&idb],
            "ge",
        ),
        (
            r#"title eq "Tester" and userName le "ada.lovelace@qa.example""#,
            vec![&ida],
            "le",
        ),
        (&by_id, vec![&ida], "id"),
        (
            r#"title eq "Tester" and displayName pr"#,
            vec![&ida, &idb],
            "pr",
        ),
    ];
    for (filter, expected, rule) in cases {
        let got = f.find(filter).await;
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(got, expected, "{rule}: {filter}");
    }
    let seeded = f.find("active eq false").await;
    let terminated = f
        .dir
        .snapshot()
        .users
        .iter()
        .filter(|u| u["active"] == false)
        .count();
    assert_eq!(
        seeded.len(),
        terminated,
        "active eq false finds the people who left"
    );
    assert!(
        f.find("title pr").await.len() >= 2,
        "pr finds present attributes"
    );

    // Changed since: meta.lastModified compares as an instant. Bob was written last.
    let before = f.dir.user(&idb).expect("b")["meta"]["lastModified"]
        .as_str()
        .expect("lastModified")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    f.patch(
        &user_path(&a),
        json!([{ "op": "replace", "path": "title", "value": "Analyst" }]),
    )
    .await;
    assert_eq!(
        f.find(&format!(r#"meta.lastModified gt "{before}""#)).await,
        vec![ida.clone()],
        "meta.lastModified gt finds what changed since"
    );
    let offset = chrono::DateTime::parse_from_rfc3339(&before)
        .expect("time")
        .with_timezone(&chrono::FixedOffset::east_opt(3600).expect("offset"))
        .to_rfc3339();
    assert_eq!(
        f.find(&format!(r#"meta.lastModified gt "{offset}""#)).await,
        vec![ida.clone()],
        "times compare as instants whatever their offset"
    );
    assert!(
        f.find(&format!(r#"meta.lastModified ge "{before}""#))
            .await
            .contains(&ida),
        "ge"
    );

    let url = |filter: &str| {
        reqwest::Url::parse_with_params(
            &format!("{}/Users", f.dir.base_url()),
            &[("filter", filter)],
        )
        .expect("url")
        .to_string()
    };
    for (bad, rule) in [
        (r#"userName eq"#, "a comparison needs a value"),
        (r#"userName is "x""#, "an unknown operator"),
        (r#"shoeSize eq "44""#, "an unknown attribute"),
        (r#"active gt true"#, "booleans are not ordered"),
        (r#"userName eq "x" and"#, "a dangling and"),
        (r#"(userName eq "x""#, "an unclosed parenthesis"),
        (
            r#"meta.lastModified gt "yesterday""#,
            "a time that is not a time",
        ),
        (r#"userName eq x"#, "strings are quoted"),
    ] {
        f.get(&url(bad))
            .await
            .scim_error(400, Some("invalidFilter"), &format!("{rule}: {bad}"));
    }
    let groups = f
        .get(&url("displayName eq \"engineering\"").replace("/Users", "/Groups"))
        .await;
    assert_eq!(
        groups.body["totalResults"], 1,
        "groups filter too: {}",
        groups.body
    );
}

#[tokio::test]
async fn patch_takes_every_path_form() {
    let f = fixture().await;
    let u = f.create_user("grace.hopper@qa.example").await;
    let path = user_path(&u);
    let a = f
        .patch(
            &path,
            json!([
                { "op": "Replace", "path": "title", "value": "Rear Admiral" },
                { "op": "replace", "path": "name.givenName", "value": "Grace B." },
                { "op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Navy" },
                { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "ghopper@qa.example" },
                { "op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+14155550177" },
                { "op": "Replace", "path": "active", "value": "False" },
            ]),
        )
        .await;
    assert_eq!(
        a.status, 200,
        "PATCH answers 200 with the resource: {}",
        a.body
    );
    let b = &a.body;
    assert_eq!(b["title"], "Rear Admiral", "a plain attribute");
    assert_eq!(b["name"]["givenName"], "Grace B.", "a sub-attribute");
    assert_eq!(b["name"]["familyName"], "Person", "its siblings stay");
    assert_eq!(
        b[ENTERPRISE]["department"], "Navy",
        "an extension attribute by URN"
    );
    assert_eq!(
        b[ENTERPRISE]["employeeNumber"], "T-grace.hopper@qa.example",
        "the extension's others stay"
    );
    assert_eq!(
        b["emails"],
        json!([{ "value": "ghopper@qa.example", "type": "work", "primary": true }]),
        "a value filter with a sub-attribute changes the matching element only"
    );
    assert_eq!(
        b["phoneNumbers"],
        json!([
            { "value": "+14155550100", "type": "work" },
            { "type": "mobile", "value": "+14155550177" },
        ]),
        "replace through an eq filter that matches nothing adds the element"
    );
    assert_eq!(
        b["active"], false,
        "a string boolean is stored as a JSON boolean"
    );
    assert_eq!(a.header("etag"), "W/\"2\"", "one PATCH, one new version");

    let a = f
        .patch(
            &path,
            json!([{ "op": "replace", "value": {
                "active": "True",
                "name.familyName": "Hopper",
                "displayName": "Grace Hopper",
                ENTERPRISE: { "department": "Research" },
                format!("{ENTERPRISE}:employeeNumber"): "E0042",
            } }]),
        )
        .await;
    assert_eq!(a.status, 200, "a PATCH without a path: {}", a.body);
    assert_eq!(
        (
            &a.body["active"],
            &a.body["name"]["familyName"],
            &a.body["displayName"]
        ),
        (&json!(true), &json!("Hopper"), &json!("Grace Hopper")),
        "without a path the value's keys are paths"
    );
    assert_eq!(
        (
            &a.body[ENTERPRISE]["department"],
            &a.body[ENTERPRISE]["employeeNumber"]
        ),
        (&json!("Research"), &json!("E0042")),
        "the extension by URN, as an object or per attribute"
    );

    let a = f
        .patch(
            &path,
            json!([
                { "op": "add", "path": "emails", "value": [
                    { "value": "grace@home.example", "type": "home" },
                    { "value": "GHOPPER@qa.example", "type": "work" },
                ] },
                { "op": "remove", "path": "title" },
            ]),
        )
        .await;
    assert_eq!(
        a.body["emails"].as_array().map(Vec::len),
        Some(2),
        "add appends a new value and does not repeat one already there: {}",
        a.body["emails"]
    );
    assert!(a.body.get("title").is_none(), "remove clears an attribute");
    let a = f
        .patch(
            &path,
            json!([
                { "op": "add", "path": "emails[type eq \"home\"].primary", "value": true },
            ]),
        )
        .await;
    assert_eq!(
        a.body["emails"],
        json!([
            { "value": "ghopper@qa.example", "type": "work", "primary": false },
            { "value": "grace@home.example", "type": "home", "primary": true },
        ]),
        "a new primary value takes primary from the others"
    );
    let a = f
        .patch(
            &path,
            json!([{ "op": "remove", "path": "emails[type eq \"home\"]" }]),
        )
        .await;
    assert_eq!(
        a.body["emails"].as_array().map(Vec::len),
        Some(1),
        "remove through a filter removes the matching element only"
    );

    let manager = f.create_user("boss@qa.example").await;
    let a = f
        .patch(
            &path,
            json!([{ "op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": id(&manager) }]),
        )
        .await;
    assert_eq!(
        a.body[ENTERPRISE]["manager"],
        json!({ "value": id(&manager), "displayName": "Test Person" }),
        "a manager given as a bare id (as Entra ID sends it), its displayName filled in"
    );

    let version = a.header("etag").to_owned();
    let same = f
        .patch(
            &path,
            json!([{ "op": "replace", "path": "displayName", "value": "Grace Hopper" }]),
        )
        .await;
    assert_eq!(
        same.header("etag"),
        version,
        "a PATCH that changes nothing keeps the version"
    );
}

#[tokio::test]
async fn patch_refuses_what_it_cannot_apply() {
    let f = fixture().await;
    let u = f.create_user("edsger@qa.example").await;
    let path = user_path(&u);
    let plain = f
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "title": "Professor" }).to_string()),
            &[],
        )
        .await;
    plain.scim_error(
        400,
        Some("invalidSyntax"),
        "a plain JSON PATCH is not a PatchOp message",
    );
    for (ops, status, scim_type, rule) in [
        (
            json!([{ "op": "merge", "path": "title", "value": "x" }]),
            400,
            "invalidSyntax",
            "an unknown op",
        ),
        (json!([]), 400, "invalidSyntax", "no operations"),
        (
            json!([{ "op": "replace", "path": "shoeSize", "value": "44" }]),
            400,
            "invalidPath",
            "an unknown attribute",
        ),
        (
            json!([{ "op": "replace", "path": "emails[type eq ]", "value": "x" }]),
            400,
            "invalidPath",
            "a broken filter",
        ),
        (
            json!([{ "op": "replace", "path": "title[value eq \"x\"]", "value": "x" }]),
            400,
            "invalidPath",
            "a filter on a single value",
        ),
        (
            json!([{ "op": "replace", "path": "id", "value": "mine" }]),
            400,
            "mutability",
            "id is read-only",
        ),
        (
            json!([{ "op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z" }]),
            400,
            "mutability",
            "meta is read-only",
        ),
        (
            json!([{ "op": "replace", "path": "emails[value co \"nowhere\"].type", "value": "home" }]),
            400,
            "noTarget",
            "a filter that matches nothing and cannot add",
        ),
        (
            json!([{ "op": "remove" }]),
            400,
            "noTarget",
            "remove needs a path",
        ),
        (
            json!([{ "op": "remove", "path": "userName" }]),
            400,
            "invalidValue",
            "userName is required",
        ),
        (
            json!([{ "op": "replace", "path": "active", "value": "maybe" }]),
            400,
            "invalidValue",
            "active is a boolean",
        ),
        (
            json!([{ "op": "replace", "value": "x" }]),
            400,
            "invalidSyntax",
            "no path takes an object",
        ),
    ] {
        f.patch(&path, ops)
            .await
            .scim_error(status, Some(scim_type), rule);
    }
    let after = f.get(&path).await;
    assert_eq!(
        after.header("etag"),
        "W/\"1\"",
        "refused patches change nothing"
    );
    let half = f
        .patch(
            &path,
            json!([
                { "op": "replace", "path": "title", "value": "Professor" },
                { "op": "replace", "path": "nope", "value": "x" },
            ]),
        )
        .await;
    assert_eq!(half.status, 400, "one bad operation fails the request");
    assert_eq!(
        f.get(&path).await.body["title"],
        "Tester",
        "and none of it is applied"
    );
}

#[tokio::test]
async fn if_match_compares_weak_etags() {
    let f = fixture().await;
    let u = f.create_user("barbara@qa.example").await;
    let path = user_path(&u);
    let op = |title: &str| json!([{ "op": "replace", "path": "title", "value": title }]);
    let a = f
        .patch_if(&path, op("One"), &[("if-match", "W/\"1\"")])
        .await;
    assert_eq!(a.status, 200, "the current weak tag matches");
    assert_eq!(a.header("etag"), "W/\"2\"", "the write answers the new tag");
    f.patch_if(&path, op("Two"), &[("if-match", "W/\"1\"")])
        .await
        .scim_error(412, None, "a stale tag is 412");
    let a = f.patch_if(&path, op("Two"), &[("if-match", "\"2\"")]).await;
    assert_eq!(
        a.status, 200,
        "the strong form of the same tag matches (weak comparison)"
    );
    let a = f.patch_if(&path, op("Three"), &[("if-match", "*")]).await;
    assert_eq!(a.status, 200, "* matches any version");
    let a = f
        .patch_if(&path, op("Four"), &[("if-match", "W/\"1\", W/\"4\"")])
        .await;
    assert_eq!(a.status, 200, "a list matches when one of its tags does");
    f.put(
        &path,
        json!({ "userName": "barbara@qa.example" }),
        &[("if-match", "W/\"2\"")],
    )
    .await
    .scim_error(412, None, "PUT honours If-Match");
    f.send(Method::DELETE, &path, None, &[("if-match", "W/\"2\"")])
        .await
        .scim_error(412, None, "DELETE honours If-Match");
    assert_eq!(
        f.get(&path).await.body["title"],
        "Four",
        "refused writes changed nothing"
    );
}

#[tokio::test]
async fn put_replaces_and_keeps_id_and_meta() {
    let f = fixture().await;
    let u = f.create_user("donald@qa.example").await;
    let path = user_path(&u);
    tokio::time::sleep(Duration::from_millis(3)).await;
    let a = f
        .put(
            &path,
            json!({
                "schemas": [USER],
                "id": "something-else",
                "meta": { "created": "2000-01-01T00:00:00Z" },
                "userName": "donald@qa.example",
                "displayName": "Don Knuth",
                "emails": [{ "value": "donald@qa.example", "type": "work", "primary": true }],
            }),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(a.status, 200, "PUT replaces: {}", a.body);
    assert_eq!(a.body["id"], u["id"], "id stays");
    assert_eq!(
        a.body["meta"]["created"], u["meta"]["created"],
        "meta.created stays"
    );
    assert!(
        a.body["meta"]["lastModified"].as_str() > u["meta"]["lastModified"].as_str(),
        "lastModified moves on"
    );
    assert_eq!(a.header("etag"), "W/\"2\"", "the version moves on");
    assert_eq!(a.body["displayName"], "Don Knuth", "what is sent is kept");
    for gone in ["title", "phoneNumbers", "name", "externalId", ENTERPRISE] {
        assert!(
            a.body.get(gone).is_none(),
            "{gone} was not sent, so a replace drops it"
        );
    }
    assert_eq!(
        a.body["schemas"],
        json!([USER]),
        "without extension attributes, no extension schema"
    );
    f.put(&path, json!({ "displayName": "No userName" }), &[])
        .await
        .scim_error(
            400,
            Some("invalidValue"),
            "a PUT carries the required attributes",
        );
    f.put("/Users/nope", json!({ "userName": "x@qa.example" }), &[])
        .await
        .scim_error(404, None, "PUT of an unknown user is 404");
}

#[tokio::test]
async fn group_membership_changes_keep_the_other_members() {
    let f = fixture().await;
    let users: Vec<String> = [
        "m1@qa.example",
        "m2@qa.example",
        "m3@qa.example",
        "m4@qa.example",
    ]
    .iter()
    .map(|n| f.create_user(n))
    .collect::<futures::future::JoinAll<_>>()
    .await
    .iter()
    .map(id)
    .collect();
    let g = f
        .post(
            "/Groups",
            json!({ "schemas": [GROUP], "displayName": "Pilots", "members": [
                { "value": users[0] }, { "value": users[1] },
            ] }),
        )
        .await
        .body;
    let path = format!("/Groups/{}", id(&g));
    let members = |v: &Value| -> Vec<String> {
        v["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let a = f
        .patch(
            &path,
            json!([{ "op": "Add", "path": "members", "value": [{ "value": users[2] }, { "value": users[0] }] }]),
        )
        .await;
    assert_eq!(
        members(&a.body),
        users[..3],
        "add appends new members, keeps the others and repeats none"
    );
    let a = f
        .patch(
            &path,
            json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", users[1]) }]),
        )
        .await;
    assert_eq!(
        members(&a.body),
        [users[0].clone(), users[2].clone()],
        "remove of members[value eq x] removes that member only"
    );
    let a = f
        .patch(
            &path,
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": users[0] }] }]),
        )
        .await;
    assert_eq!(
        members(&a.body),
        [users[2].clone()],
        "remove of members with a value list (as Entra ID sends it) removes those only"
    );
    let a = f
        .patch(
            &path,
            json!([{ "op": "remove", "path": "members[value eq \"gone\"]" }]),
        )
        .await;
    assert_eq!(
        a.status, 200,
        "removing someone who is not a member is not an error"
    );
    f.patch(
        &path,
        json!([{ "op": "add", "path": "members", "value": [{ "value": "nobody" }] }]),
    )
    .await
    .scim_error(
        400,
        Some("invalidValue"),
        "members are users of the directory",
    );
    f.patch(
        &path,
        json!([{ "op": "add", "path": "members", "value": [{ "value": users[3] }] }]),
    )
    .await;
    let before = f.get(&path).await.header("etag").to_owned();
    let d = f
        .send(Method::DELETE, &format!("/Users/{}", users[2]), None, &[])
        .await;
    assert_eq!(d.status, 204, "DELETE answers 204");
    let after = f.get(&path).await;
    assert_eq!(
        members(&after.body),
        [users[3].clone()],
        "a deleted user leaves their groups, the others stay"
    );
    assert_ne!(
        after.header("etag"),
        before,
        "which is a change of the group"
    );
    f.get(&format!("/Users/{}", users[2]))
        .await
        .scim_error(404, None, "a deleted user is gone");
    f.send(Method::DELETE, &format!("/Users/{}", users[2]), None, &[])
        .await
        .scim_error(404, None, "deleting twice is 404");
}

#[tokio::test]
async fn last_modified_moves_forward_with_every_write() {
    let f = fixture().await;
    let u = f.create_user("quick@qa.example").await;
    let path = user_path(&u);
    let mut times = vec![u["meta"]["lastModified"].as_str().expect("time").to_owned()];
    for i in 0..20 {
        let a = f
            .patch(
                &path,
                json!([{ "op": "replace", "path": "title", "value": format!("T{i}") }]),
            )
            .await;
        times.push(
            a.body["meta"]["lastModified"]
                .as_str()
                .expect("time")
                .to_owned(),
        );
        assert_eq!(
            a.header("etag"),
            format!("W/\"{}\"", i + 2),
            "one version per write"
        );
    }
    let instants: Vec<_> = times
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339"))
        .collect();
    assert!(
        instants.windows(2).all(|w| w[0] < w[1]),
        "lastModified strictly increases, even within a millisecond: {times:?}"
    );
}

#[tokio::test]
async fn the_screens_edit_and_the_snapshot_shows() {
    let f = fixture().await;
    let id = f
        .dir
        .user_id_by_employee("E1003")
        .expect("E1003 has an account");
    let before = f.dir.user(&id).expect("user");
    assert!(
        f.dir.edit_user(&id, |u| {
            u.insert("title".into(), json!("Chief Tinkerer"));
        }),
        "an existing user is edited"
    );
    let after = f.get(&format!("/Users/{id}")).await;
    assert_eq!(
        after.body["title"], "Chief Tinkerer",
        "the API serves the edit"
    );
    assert_eq!(after.header("etag"), "W/\"2\"", "an edit is a new version");
    assert!(
        after.body["meta"]["lastModified"].as_str() > before["meta"]["lastModified"].as_str(),
        "and a new modification time"
    );
    f.dir.edit_user(&id, |_| {});
    assert_eq!(
        f.dir.user(&id).expect("user")["meta"]["version"],
        "W/\"2\"",
        "an edit that changes nothing is no new version"
    );
    assert!(!f.dir.edit_user("nobody", |_| {}), "no such user");
    let snapshot = f.dir.snapshot();
    let shown = snapshot
        .users
        .iter()
        .find(|u| u["id"] == id.as_str())
        .expect("in the snapshot");
    assert_eq!(shown, &after.body, "the snapshot is what the API answers");
    let group = snapshot.groups[0]["id"].as_str().expect("group").to_owned();
    assert!(f.dir.edit_group(&group, |g| {
        g.insert("displayName".into(), json!("Renamed"));
    }));
    assert_eq!(
        f.get(&format!("/Groups/{group}")).await.body["displayName"],
        "Renamed"
    );
}
