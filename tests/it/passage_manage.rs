//! The Manage API's users, with the app API key: statuses, shapes with no `null`s, metadata
//! validation, pagination, and isolation between apps.

use keyhaven::passage::apps::AppSettings;
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{assert_passage_rate_limited, Backend, TestApp},
};

both_backends!(
    users_crud_with_the_documented_statuses,
    user_objects_never_carry_null,
    metadata_is_validated_against_the_schema,
    list_users_pages_and_filters,
    another_apps_key_gets_nothing,
    auth_identifier_check_and_public_signup,
    requests_are_throttled_per_client_and_per_key,
    abandoned_sign_ups_are_pruned,
    api_keys_are_added_and_revoked_without_downtime,
);

struct Passage {
    app_id: String,
    key: String,
}

async fn passage_app(app: &TestApp) -> Passage {
    passage_app_with(app, |_| {}).await
}

async fn passage_app_with(app: &TestApp, tweak: impl FnOnce(&mut AppSettings)) -> Passage {
    let created = crate::passage::create_app(app, |s| {
        s.allowed_identifier = "email".into();
        tweak(s);
    })
    .await;
    Passage {
        app_id: created.app_id,
        key: created.key,
    }
}

impl Passage {
    async fn call(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let url = app.url(&format!("/v1/apps/{}{path}", self.app_id));
        let mut req = app.http.request(method, url).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        app.send(req).await
    }

    /// A body-less `call` that keeps the headers too.
    async fn call_full(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
    ) -> (reqwest::StatusCode, HeaderMap, Value) {
        let url = app.url(&format!("/v1/apps/{}{path}", self.app_id));
        app.send_full(app.http.request(method, url).bearer_auth(&self.key))
            .await
    }
}

use reqwest::{header::HeaderMap, Method};

async fn users_crud_with_the_documented_statuses(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = passage_app(&app).await;
    let (status, created) = p
        .call(
            &app,
            Method::POST,
            "/users",
            Some(json!({"email": "Ann@Example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let user = &created["user"];
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["status"], "active");
    let id = user["id"].as_str().unwrap();

    let (status, got) = p
        .call(&app, Method::GET, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["user"], created["user"]);

    let (status, _) = p
        .call(
            &app,
            Method::POST,
            "/users",
            Some(json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!(status, 400, "a taken email");

    let (status, updated) = p
        .call(
            &app,
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"phone": "+4915123456789"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["user"]["phone"], "+4915123456789");
    assert_eq!(updated["user"]["email"], "ann@example.com");

    let (status, off) = p
        .call(
            &app,
            Method::PATCH,
            &format!("/users/{id}/deactivate"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(off["user"]["status"], "inactive");
    let (status, on) = p
        .call(&app, Method::PATCH, &format!("/users/{id}/activate"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(on["user"]["status"], "active");

    let (status, _) = p
        .call(&app, Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = p
        .call(&app, Method::GET, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "user_not_found");
    assert!(body["error"].is_string());

    for bad in [
        json!({}),
        json!({"email": "nope"}),
        json!({"phone": "123"}),
        json!({"nickname": "x"}),
    ] {
        let (status, body) = p
            .call(&app, Method::POST, "/users", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_request");
    }
    // Malformed JSON gets the Passage shape too.
    let url = app.url(&format!("/v1/apps/{}/users", p.app_id));
    let malformed = app
        .http
        .post(url)
        .bearer_auth(&p.key)
        .header("content-type", "application/json")
        .body("{\"email\":");
    let (status, body) = app.send(malformed).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_request");
}

async fn user_objects_never_carry_null(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = passage_app(&app).await;
    let (_, created) = p
        .call(
            &app,
            Method::POST,
            "/users",
            Some(json!({"phone": "+4915123456789"})),
        )
        .await;
    let user = created["user"].as_object().unwrap();
    for (k, v) in user {
        assert!(!v.is_null(), "{k} is null");
    }
    assert_eq!(user["email"], "");
    assert_eq!(user["external_id"], "");
    assert_eq!(user["last_login_at"], "0001-01-01T00:00:00Z");
    assert_eq!(user["login_count"], 0);
    assert_eq!(user["user_metadata"], json!({}));
    assert_eq!(user["recent_events"], json!([]));
    assert_eq!(user["webauthn_devices"], json!([]));
    assert_eq!(user["webauthn_types"], json!([]));
    assert_eq!(user["social_connections"], json!({}));
    let manage: Value =
        serde_json::from_str(include_str!("../contracts/passage-manage.swagger.json")).unwrap();
    let schema = &manage["paths"]["/apps/{app_id}/users/{user_id}"]["get"]["responses"]["200"]
        ["schema"]["properties"]["user"]["properties"];
    for (name, prop) in schema.as_object().unwrap() {
        let v = user
            .get(name)
            .unwrap_or_else(|| panic!("user.{name} missing"));
        let ok = match prop["type"].as_str().unwrap() {
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        };
        assert!(ok, "user.{name} has the wrong type: {v}");
    }
}

async fn metadata_is_validated_against_the_schema(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = passage_app(&app).await;
    let (status, created) = p
        .call(
            &app,
            Method::POST,
            "/users",
            Some(json!({"email": "a@b.co", "user_metadata": {"plan": "pro", "seats": 3}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["user"]["id"].as_str().unwrap();
    assert_eq!(
        created["user"]["user_metadata"],
        json!({"plan": "pro", "seats": 3})
    );
    let (status, updated) = p
        .call(
            &app,
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"user_metadata": {"seats": 5}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        updated["user"]["user_metadata"],
        json!({"plan": "pro", "seats": 5})
    );
    for bad in [
        json!({"seats": "five"}),
        json!({"unknown": 1}),
        json!("text"),
    ] {
        let (status, body) = p
            .call(
                &app,
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"user_metadata": bad})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let (_, after) = p
        .call(&app, Method::GET, &format!("/users/{id}"), None)
        .await;
    assert_eq!(
        after["user"]["user_metadata"],
        json!({"plan": "pro", "seats": 5}),
        "unchanged"
    );
}

async fn list_users_pages_and_filters(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = passage_app(&app).await;
    for i in 0..5 {
        let email = format!("user{i}@example.com");
        p.call(&app, Method::POST, "/users", Some(json!({"email": email})))
            .await;
    }
    // Newest first by default, 2 per page, anchored to the first answer's `created_before`.
    let (status, first) = p.call(&app, Method::GET, "/users?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["total_users"], 5);
    assert_eq!(
        (first["page"].as_i64(), first["limit"].as_i64()),
        (Some(1), Some(2))
    );
    let anchor = first["created_before"].as_i64().unwrap();
    let last_href = first["_links"]["last"]["href"].as_str().unwrap();
    assert!(last_href.contains("page=3&limit=2"), "{last_href}");
    // Anchors are whole seconds: a user created after the anchor's second is not listed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    p.call(
        &app,
        Method::POST,
        "/users",
        Some(json!({"email": "late@example.com"})),
    )
    .await;
    let mut seen: Vec<String> = Vec::new();
    let mut href = first["_links"]["self"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    loop {
        let path = href.split_once(&p.app_id).unwrap().1.to_string();
        let (status, page) = p.call(&app, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["created_before"], anchor);
        seen.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
        let next = page["_links"]["next"]["href"].as_str().unwrap().to_string();
        if next == href {
            break;
        }
        href = next;
    }
    // The pages walk one big page's order, each user once, none created after the anchor.
    let (_, all) = p
        .call(
            &app,
            Method::GET,
            &format!("/users?limit=500&created_before={anchor}"),
            None,
        )
        .await;
    let all: Vec<String> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, all);
    let mut sorted = seen.clone();
    sorted.sort();
    let expected: Vec<String> = (0..5).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(sorted, expected);
    let (_, oldest) = p
        .call(
            &app,
            Method::GET,
            "/users?limit=1&order_by=created_at:ASC",
            None,
        )
        .await;
    assert_eq!(oldest["users"][0]["email"], all.last().unwrap().as_str());
    assert_eq!(oldest["total_users"], 6);
    let (_, inactive) = p
        .call(&app, Method::GET, "/users?status=inactive", None)
        .await;
    assert_eq!(inactive["total_users"], 0);
    let (_, one) = p
        .call(
            &app,
            Method::GET,
            "/users?identifier=USER3@example.com",
            None,
        )
        .await;
    assert_eq!(one["users"].as_array().unwrap().len(), 1);
    assert_eq!(one["users"][0]["email"], "user3@example.com");
    for bad in [
        "/users?limit=many",
        "/users?order_by=email:ASC",
        "/users?page=x",
    ] {
        assert_eq!(p.call(&app, Method::GET, bad, None).await.0, 400, "{bad}");
    }
}

async fn another_apps_key_gets_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let a = passage_app(&app).await;
    let other = passage_app(&app).await;
    let (_, created) = a
        .call(
            &app,
            Method::POST,
            "/users",
            Some(json!({"email": "a@b.co"})),
        )
        .await;
    let id = created["user"]["id"].as_str().unwrap();
    // B's key on A's app, and no key at all.
    let wrong = Passage {
        app_id: a.app_id.clone(),
        key: other.key.clone(),
    };
    for p in [
        &wrong,
        &Passage {
            app_id: a.app_id.clone(),
            key: String::new(),
        },
    ] {
        for (method, path) in [
            (Method::GET, format!("/users/{id}")),
            (Method::DELETE, format!("/users/{id}")),
            (Method::PATCH, format!("/users/{id}/deactivate")),
        ] {
            let (status, body) = p.call(&app, method.clone(), &path, None).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert_eq!(body["code"], "invalid_access_token");
            assert!(!body.to_string().contains("a@b.co"));
        }
    }
    // A wrong key on the shared users route is refused, not taken for the Auth API.
    let (status, body) = wrong.call(&app, Method::GET, "/users", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.get("users").is_none());
    // B's own key on B's app does not see A's user.
    let (status, _) = other
        .call(&app, Method::GET, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 404);
    let (_, a_user) = a
        .call(&app, Method::GET, &format!("/users/{id}"), None)
        .await;
    assert_eq!(a_user["user"]["status"], "active", "untouched");
}

async fn auth_identifier_check_and_public_signup(b: Backend) {
    let app = TestApp::spawn(b).await;
    // `plan` is asked for at sign-up.
    let p = passage_app_with(&app, |s| s.user_metadata_schema[0].registration = true).await;
    let base = app.url(&format!("/v1/apps/{}", p.app_id));
    // No app key: the Auth API's behaviour, even with some other bearer token.
    let check = |identifier: &str| {
        app.send(
            app.http
                .get(format!(
                    "{base}/users?identifier={}",
                    crate::harness::urlencode(identifier)
                ))
                .bearer_auth("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"),
        )
    };
    let (status, body) = check("new@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"user": null}));

    let (status, created) = app
        .send(
            app.http
                .post(format!("{base}/users"))
                .json(&json!({"identifier": "New@Example.com", "user_metadata": {"plan": "free"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let user = &created["user"];
    let required = [
        "email",
        "email_verified",
        "id",
        "phone",
        "phone_verified",
        "status",
        "user_metadata",
        "webauthn",
        "webauthn_types",
    ];
    for field in required {
        assert!(
            user.get(field).is_some_and(|v| !v.is_null()),
            "{field}: {user}"
        );
    }
    assert_eq!(user["email"], "new@example.com");
    assert_eq!(user["user_metadata"], json!({"plan": "free"}));
    let (_, found) = check("NEW@example.com").await;
    assert_eq!(found["user"]["id"], user["id"]);

    let (status, body) = app
        .send(
            app.http
                .post(format!("{base}/users"))
                .json(&json!({"identifier": "+4915123456789"})),
        )
        .await;
    assert_eq!(status, 400, "this app takes emails only: {body}");
    assert_eq!(body["code"], "invalid_request");

    let closed = passage_app_with(&app, |s| s.public_signup = false).await;
    let (status, body) = app
        .send(
            app.http
                .post(app.url(&format!("/v1/apps/{}/users", closed.app_id)))
                .json(&json!({"identifier": "x@example.com"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "operation_not_allowed");
    let (status, body) = app
        .send(
            app.http
                .get(app.url("/v1/apps/nope/users?identifier=a@b.co")),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "app_not_found");
}

async fn requests_are_throttled_per_client_and_per_key(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.rate_limit_calls = 5;
        // Windows are fixed: a day-long one keeps the test from straddling two of them.
        c.rate_limit_period_seconds = 86_400;
    })
    .await;
    let p = passage_app(&app).await;
    let public = || app.send(app.http.get(app.url(&format!("/v1/apps/{}", p.app_id))));
    for _ in 0..5 {
        assert_eq!(public().await.0, 200);
    }
    let window = app.config.rate_limit_period_seconds;
    let refused = app
        .send_full(app.http.get(app.url(&format!("/v1/apps/{}", p.app_id))))
        .await;
    assert_passage_rate_limited(&refused, window);
    // The app key has its own budget; wrong keys spend the client's.
    for _ in 0..5 {
        assert_eq!(p.call(&app, Method::GET, "/users", None).await.0, 200);
    }
    let refused = p.call_full(&app, Method::GET, "/users").await;
    assert_passage_rate_limited(&refused, window);
    let wrong = Passage {
        app_id: p.app_id.clone(),
        key: "kh_wrong".into(),
    };
    let refused = wrong.call_full(&app, Method::GET, "/users").await;
    assert_passage_rate_limited(&refused, window);
    // Any other Bearer value spends the client's budget too, on every route.
    for path in ["", "/register/otp"] {
        let url = app.url(&format!("/v1/apps/{}{path}", p.app_id));
        let method = if path.is_empty() {
            Method::GET
        } else {
            Method::POST
        };
        let body = serde_json::json!({"identifier": "x@example.com"});
        let refused = app
            .send_full(app.http.request(method, url).bearer_auth("x").json(&body))
            .await;
        assert_passage_rate_limited(&refused, window);
    }
}

/// A sign-up whose identifier is never verified does not hold it for ever: housekeeping drops
/// pending users after a while, and only them.
async fn abandoned_sign_ups_are_pruned(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = passage_app_with(&app, |s| s.require_identifier_verification = true).await;
    let url = app.url(&format!("/v1/apps/{}/users", p.app_id));
    let body = json!({"identifier": "left@example.com"});
    let (status, pending) = app.send(app.http.post(&url).json(&body)).await;
    assert_eq!(status, 201, "{pending}");
    let body = json!({"email": "kept@example.com"});
    let (status, active) = p.call(&app, Method::POST, "/users", Some(body)).await;
    assert_eq!(status, 201, "{active}");
    let user = |created: &Value| format!("/users/{}", created["user"]["id"].as_str().unwrap());
    let (_, read) = p.call(&app, Method::GET, &user(&pending), None).await;
    assert_eq!(read["user"]["status"], "pending", "{read}");
    // As if the housekeeping ran once the pending user had waited long enough.
    let later = keyhaven::domain::now_ms() + 1;
    assert_eq!(app.store.prune_pending_users(later).await.unwrap(), 1);
    let (status, body) = p.call(&app, Method::GET, &user(&pending), None).await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (404, &json!("user_not_found"))
    );
    assert_eq!(p.call(&app, Method::GET, &user(&active), None).await.0, 200);
    // The identifier is free again.
    let body = json!({"identifier": "left@example.com"});
    assert_eq!(app.send(app.http.post(&url).json(&body)).await.0, 201);
}

/// An app has several named keys: a new one is created, deployed, and the old one revoked,
/// which holds at once on every node.
async fn api_keys_are_added_and_revoked_without_downtime(b: Backend) {
    let app = TestApp::spawn(b).await;
    let second_node = app.another_node().await;
    let old = passage_app(&app).await;
    let body = json!({"name": "deploy 2027"});
    let (status, created) = old.call(&app, Method::POST, "/api-keys", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let new = Passage {
        app_id: old.app_id.clone(),
        key: created["secret"].as_str().unwrap().to_string(),
    };
    assert_ne!(new.key, old.key);
    let (status, listed) = new.call(&app, Method::GET, "/api-keys", None).await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "deploy 2027"]);
    assert!(
        !listed.to_string().contains(&new.key),
        "secrets are never listed"
    );
    for key in [&old, &new] {
        assert_eq!(key.call(&app, Method::GET, "/users", None).await.0, 200);
    }
    let old_id = listed["api_keys"][0]["id"].as_str().unwrap();
    let path = format!("/api-keys/{old_id}");
    assert_eq!(new.call(&app, Method::DELETE, &path, None).await.0, 200);
    // Revoked at once, on this node and on the other.
    let (status, body) = old.call(&app, Method::GET, "/users", None).await;
    assert_eq!(status, 401, "{body}");
    let url = format!("{}/v1/apps/{}/users", second_node.base, old.app_id);
    let (status, _) = app.send(app.http.get(&url).bearer_auth(&old.key)).await;
    assert_eq!(status, 401);
    let (status, _) = app.send(app.http.get(&url).bearer_auth(&new.key)).await;
    assert_eq!(status, 200);
    // The last key stays; unknown keys are not found.
    let new_id = created["api_key"]["id"].as_str().unwrap();
    let (status, body) = new
        .call(&app, Method::DELETE, &format!("/api-keys/{new_id}"), None)
        .await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (400, &json!("invalid_request")),
        "{body}"
    );
    let (status, body) = new.call(&app, Method::DELETE, &path, None).await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (404, &json!("api_key_not_found")),
        "{body}"
    );
    let (_, listed) = new.call(&app, Method::GET, "/api-keys", None).await;
    assert!(listed["api_keys"][0]["revoked_at"].is_string(), "{listed}");
    assert!(
        listed["api_keys"][1].get("revoked_at").is_none(),
        "{listed}"
    );
}
