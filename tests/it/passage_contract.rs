//! Every operation of the Passage Auth and Manage swaggers (WebAuthn and social login have
//! their own suites), called by its documented method and path, each answer's status listed
//! for the operation and its body valid against the schema the swagger gives for it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{code_in, Backend, TestApp},
    passage::{create_app, link_in, token_of, PassageApp},
};

both_backends!(every_operation_answers_as_documented);

/// Operations that belong to the passkey and social-login ceremonies.
fn out_of_scope(path: &str) -> bool {
    path.contains("webauthn") || path.contains("social") || path.contains("/devices/")
}

struct Contract {
    swagger: Value,
    called: BTreeSet<String>,
}

impl Contract {
    fn load(text: &str) -> Contract {
        Contract {
            swagger: serde_json::from_str(text).unwrap(),
            called: BTreeSet::new(),
        }
    }

    /// (method, path template, operation) of an operationId.
    fn operation(&self, id: &str) -> (String, String, Value) {
        for (path, ops) in self.swagger["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if op["operationId"] == id {
                    return (method.to_uppercase(), path.clone(), op.clone());
                }
            }
        }
        panic!("no operation {id}");
    }

    /// Calls `id` with the path parameters filled in order, and checks the answer.
    async fn call(
        &mut self,
        app: &TestApp,
        id: &str,
        params: &[&str],
        query: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (method, template, op) = self.operation(id);
        let mut path = template.clone();
        for value in params {
            let start = path.find('{').unwrap();
            let end = path[start..].find('}').unwrap() + start;
            path.replace_range(start..=end, value);
        }
        assert!(
            !path.contains('{'),
            "{id}: parameters missing for {template}"
        );
        let mut req = app.http.request(
            method.parse().unwrap(),
            app.url(&format!("/v1{path}{query}")),
        );
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let (status, body) = app.send(req).await;
        let status = status.as_u16();
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{id}: status {status} is not documented: {body}"
        );
        // The connector types the empty answers of deletions as `string`.
        let empty_ok = body.is_null() && response["schema"]["type"] == "string";
        if let Some(schema) = response.get("schema").filter(|_| !empty_ok) {
            self.check(schema, &body, id);
        }
        self.called.insert(id.to_string());
        (status, body)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.strip_prefix("#/definitions/").unwrap();
                self.resolve(&self.swagger["definitions"][name])
            }
            None => schema,
        }
    }

    /// Types, required fields (present and not null), enums, nested objects and arrays.
    fn check(&self, schema: &Value, value: &Value, at: &str) {
        let schema = self.resolve(schema);
        if let Some(allowed) = schema["enum"].as_array() {
            assert!(
                allowed.contains(value),
                "{at}: {value} is not one of {allowed:?}"
            );
        }
        let ok = match schema["type"].as_str() {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        assert!(ok, "{at}: {value} is not of type {}", schema["type"]);
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            assert!(
                value.get(name).is_some_and(|v| !v.is_null()),
                "{at}.{name} is required: {value}"
            );
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, prop) in props {
                if let Some(v) = value.get(name) {
                    self.check(prop, v, &format!("{at}.{name}"));
                }
            }
        }
        if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
            for (i, v) in values.iter().enumerate() {
                self.check(items, v, &format!("{at}[{i}]"));
            }
        }
    }

    /// Every operation in scope was called.
    fn assert_all_called(&self) {
        let mut missing = Vec::new();
        for (path, ops) in self.swagger["paths"].as_object().unwrap() {
            for op in ops.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                if !out_of_scope(path) && !self.called.contains(id) {
                    missing.push(id.to_string());
                }
            }
        }
        assert!(missing.is_empty(), "operations not exercised: {missing:?}");
    }
}

async fn every_operation_answers_as_documented(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut auth = Contract::load(include_str!("../contracts/passage-auth.swagger.json"));
    let mut manage = Contract::load(include_str!("../contracts/passage-manage.swagger.json"));
    auth_operations(&app, &p, &mut auth).await;
    manage_operations(&app, &p, &mut manage).await;
    auth.assert_all_called();
    manage.assert_all_called();
}

/// The Auth operations in a user's order.
async fn auth_operations(app: &TestApp, p: &PassageApp, c: &mut Contract) {
    let id = p.app_id.as_str();
    assert_eq!(c.call(app, "Get-app", &[id], "", None, None).await.0, 200);
    assert_eq!(
        c.call(app, "Get-app", &["nope"], "", None, None).await.0,
        404
    );
    assert_eq!(c.call(app, "Get-jwks", &[id], "", None, None).await.0, 200);
    let (s, _) = c
        .call(app, "Get-open-id-configuration", &[id], "", None, None)
        .await;
    assert_eq!(s, 200);

    // Sign up by email passcode.
    let email = Some(json!({"identifier": "ann@example.com"}));
    let (s, _) = c
        .call(app, "Create-user", &[id], "", None, email.clone())
        .await;
    assert_eq!(s, 201);
    let (s, found) = c
        .call(
            app,
            "Check-user-identifier",
            &[id],
            "?identifier=ann@example.com",
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, found["user"]["email"].as_str()),
        (200, Some("ann@example.com"))
    );
    let (s, _) = c
        .call(
            app,
            "Check-user-identifier",
            &[id],
            "?identifier=not%20an%20email",
            None,
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, started) = c
        .call(
            app,
            "Login-one-time-passcode",
            &[id],
            "",
            None,
            email.clone(),
        )
        .await;
    assert_eq!(s, 201);
    let mail = app.mailbox.next_for("ann@example.com").await;
    let code = code_in(mail.split("\n\n").nth(1).unwrap());
    let wrong = json!({"otp": "000000", "otp_id": started["otp_id"]});
    if code != "000000" {
        let (s, _) = c
            .call(
                app,
                "Activate-one-time-passcode",
                &[id],
                "",
                None,
                Some(wrong),
            )
            .await;
        assert_eq!(s, 401);
    }
    let right = json!({"otp": code, "otp_id": started["otp_id"]});
    let (s, session) = c
        .call(
            app,
            "Activate-one-time-passcode",
            &[id],
            "",
            None,
            Some(right),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(
            app,
            "Register-one-time-passcode",
            &[id],
            "",
            None,
            Some(json!({"identifier": "+4915123456789"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = c
        .call(
            app,
            "Login-one-time-passcode",
            &[id],
            "",
            None,
            Some(json!({"identifier": "nobody@example.com"})),
        )
        .await;
    assert_eq!(s, 404);

    // Magic links, with the cross-device poll.
    let (s, _) = c
        .call(
            app,
            "Register-magic-link",
            &[id],
            "",
            None,
            Some(json!({"identifier": "bo@example.com"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, started) = c
        .call(app, "Login-magic-link", &[id], "", None, email.clone())
        .await;
    assert_eq!(s, 200);
    let poll = Some(json!({"id": started["magic_link"]["id"]}));
    assert_eq!(
        c.call(app, "Magic-link-status", &[id], "", None, poll.clone())
            .await
            .0,
        401
    );
    let link = token_of(&link_in(&app.mailbox.next_for("ann@example.com").await));
    let activate = Some(json!({"magic_link": link}));
    assert_eq!(
        c.call(
            app,
            "Activate-magic-link",
            &[id],
            "",
            None,
            activate.clone()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        c.call(app, "Activate-magic-link", &[id], "", None, activate)
            .await
            .0,
        401
    );
    assert_eq!(
        c.call(app, "Magic-link-status", &[id], "", None, poll)
            .await
            .0,
        200
    );
    let (s, _) = c
        .call(
            app,
            "Magic-link-status",
            &[id],
            "",
            None,
            Some(json!({"id": "nope"})),
        )
        .await;
    assert_eq!(s, 404);

    // Sessions.
    let refresh = session["auth_result"]["refresh_token"].as_str().unwrap();
    let (s, renewed) = c
        .call(
            app,
            "Refresh-auth-token",
            &[id],
            "",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = c
        .call(
            app,
            "Refresh-auth-token",
            &[id],
            "",
            None,
            Some(json!({"refresh_token": "nope"})),
        )
        .await;
    assert_eq!(s, 401);
    let token = renewed["auth_result"]["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    let renewed_refresh = renewed["auth_result"]["refresh_token"].as_str().unwrap();
    let (s, _) = c
        .call(
            app,
            "Revoke-refresh-token",
            &[id],
            &format!("?refresh_token={renewed_refresh}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(app, "Revoke-refresh-token", &[id], "", None, None)
        .await;
    assert_eq!(s, 400);

    // The current user.
    let t = Some(token.as_str());
    assert_eq!(
        c.call(app, "Get-currentuser", &[id], "", t, None).await.0,
        200
    );
    assert_eq!(
        c.call(app, "Get-currentuser", &[id], "", None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        c.call(app, "Get-currentuser-devices", &[id], "", t, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(app, "Get-currentuser-metadata", &[id], "", t, None)
            .await
            .0,
        200
    );
    let (s, _) = c
        .call(
            app,
            "Update-currentuser-metadata",
            &[id],
            "",
            t,
            Some(json!({"user_metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(
            app,
            "Update-currentuser-metadata",
            &[id],
            "",
            t,
            Some(json!({"user_metadata": {"plan": 1}})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = c
        .call(
            app,
            "Update-email-currentuser",
            &[id],
            "",
            t,
            Some(json!({"new_email": "ann2@example.com"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(
            app,
            "Update-phone-currentuser",
            &[id],
            "",
            t,
            Some(json!({"new_phone": "+4915123456788"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(
            app,
            "Update-phone-currentuser",
            &[id],
            "",
            t,
            Some(json!({"new_phone": "12"})),
        )
        .await;
    assert_eq!(s, 400);
}

/// The Manage operations, with the app key.
async fn manage_operations(app: &TestApp, p: &PassageApp, c: &mut Contract) {
    let id = p.app_id.as_str();
    let key = Some(p.key.as_str());
    assert_eq!(c.call(app, "GetApp", &[id], "", key, None).await.0, 200);
    let (s, created) = c
        .call(
            app,
            "CreateUser",
            &[id],
            "",
            key,
            Some(json!({"email": "cy@example.com", "user_metadata": {"seats": 2}})),
        )
        .await;
    assert_eq!(s, 201);
    let user = created["user"]["id"].as_str().unwrap();
    assert_eq!(
        c.call(
            app,
            "CreateUser",
            &[id],
            "",
            key,
            Some(json!({"email": "cy@example.com"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        c.call(
            app,
            "CreateUser",
            &[id],
            "",
            Some("kh_not-the-key"),
            Some(json!({"email": "x@example.com"}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        c.call(app, "GetUser", &[id, user], "", key, None).await.0,
        200
    );
    assert_eq!(
        c.call(app, "GetUser", &[id, "nope"], "", key, None).await.0,
        404
    );
    let (s, _) = c
        .call(
            app,
            "UpdateUser",
            &[id, user],
            "",
            key,
            Some(json!({"phone": "+4915123456787"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .call(
            app,
            "UpdateUser",
            &[id, user],
            "",
            key,
            Some(json!({"user_metadata": {"seats": "two"}})),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        c.call(app, "DeactivateUser", &[id, user], "", key, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(app, "ActivateUser", &[id, user], "", key, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(app, "ListUserDevices", &[id, user], "", key, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(
            app,
            "DeleteADeviceForAUser",
            &[id, user, "nope"],
            "",
            key,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        c.call(app, "RevokesRefreshTokens", &[id, user], "", key, None)
            .await
            .0,
        200
    );
    let (s, _) = c
        .call(
            app,
            "CreateEmbeddableMagicLink",
            &[id],
            "",
            key,
            Some(json!({"user_id": user, "channel": "email"})),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        c.call(app, "DeleteUser", &[id, user], "", key, None)
            .await
            .0,
        200
    );
    assert_eq!(
        c.call(app, "DeleteUser", &[id, user], "", key, None)
            .await
            .0,
        404
    );
}
