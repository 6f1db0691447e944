//! Every operation of the Passage Auth and Manage swaggers (WebAuthn and social login also
//! have their own suites), called by its documented method and path, each answer's status
//! listed for the operation and its body valid against the schema the swagger gives for it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use keyhaven::bench::authenticator::SoftAuthenticator;

use crate::{
    both_backends,
    harness::{code_in, Backend, TestApp},
    passage::{create_app, link_in, token_of, PassageApp},
};

both_backends!(every_operation_answers_as_documented);

/// Where the connector's generator typed a binary WebAuthn field as an object: the hosted
/// service sent base64url strings (as every other binary field), which passage-js decodes.
const BINARY_FIELDS: [&str; 1] = [".publicKey.user.id"];

struct Contract<'a> {
    app: &'a TestApp,
    /// Shows redirects (social login answers 302) instead of following them.
    http: reqwest::Client,
    swagger: Value,
    called: BTreeSet<String>,
    /// The last answer's `Location`.
    location: Option<url::Url>,
}

impl<'a> Contract<'a> {
    fn load(app: &'a TestApp, text: &str) -> Contract<'a> {
        Contract {
            app,
            http: crate::social::browser(),
            swagger: serde_json::from_str(text).unwrap(),
            called: BTreeSet::new(),
            location: None,
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

    /// Calls `id` with the path parameters filled in order, checks the answer against the
    /// contract and that its status is `want`, and returns its body.
    async fn expect(
        &mut self,
        want: u16,
        id: &str,
        params: &[&str],
        query: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let app = self.app;
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
        let mut req = self.http.request(
            method.parse().unwrap(),
            app.url(&format!("/v1{path}{query}")),
        );
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let (status, headers, body) = app.send_full(req).await;
        self.location = headers
            .get(reqwest::header::LOCATION)
            .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap());
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
        assert_eq!(status, want, "{id} {path}: {body}");
        body
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
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
        if BINARY_FIELDS.iter().any(|f| at.ends_with(f)) {
            assert!(value.is_string(), "{at}: {value} is not base64url text");
            return;
        }
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
        for ops in self.swagger["paths"].as_object().unwrap().values() {
            for op in ops.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap();
                if !self.called.contains(id) {
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
    let mut auth = Contract::load(&app, include_str!("../contracts/passage-auth.swagger.json"));
    let mut manage = Contract::load(
        &app,
        include_str!("../contracts/passage-manage.swagger.json"),
    );
    auth_operations(&app, &p.app_id, &mut auth).await;
    passkey_operations(&p, &mut auth, &mut manage).await;
    social_operations(&app, &mut auth).await;
    manage_operations(&p, &mut manage).await;
    auth.assert_all_called();
    manage.assert_all_called();
}

/// The Auth operations in a user's order.
async fn auth_operations(app: &TestApp, id: &str, c: &mut Contract<'_>) {
    c.expect(200, "Get-app", &[id], "", None, None).await;
    c.expect(404, "Get-app", &["nope"], "", None, None).await;
    c.expect(200, "Get-jwks", &[id], "", None, None).await;
    c.expect(200, "Get-open-id-configuration", &[id], "", None, None)
        .await;

    // Sign up, then log in by email passcode.
    let ann = || Some(json!({"identifier": "ann@example.com"}));
    c.expect(201, "Create-user", &[id], "", None, ann()).await;
    let found = c
        .expect(
            200,
            "Check-user-identifier",
            &[id],
            "?identifier=ann@example.com",
            None,
            None,
        )
        .await;
    assert_eq!(found["user"]["email"], "ann@example.com");
    let bad = "?identifier=not%20an%20email";
    c.expect(400, "Check-user-identifier", &[id], bad, None, None)
        .await;
    let started = c
        .expect(201, "Login-one-time-passcode", &[id], "", None, ann())
        .await;
    let mail = app.mailbox.next_for("ann@example.com").await;
    let code = code_in(mail.split("\n\n").nth(1).unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let attempt = |otp: &str| Some(json!({"otp": otp, "otp_id": started["otp_id"]}));
    c.expect(
        401,
        "Activate-one-time-passcode",
        &[id],
        "",
        None,
        attempt(wrong),
    )
    .await;
    let session = c
        .expect(
            200,
            "Activate-one-time-passcode",
            &[id],
            "",
            None,
            attempt(&code),
        )
        .await;
    let phone = Some(json!({"identifier": "+4915123456789"}));
    c.expect(201, "Register-one-time-passcode", &[id], "", None, phone)
        .await;
    let nobody = Some(json!({"identifier": "nobody@example.com"}));
    c.expect(404, "Login-one-time-passcode", &[id], "", None, nobody)
        .await;

    // Magic links, with the cross-device poll.
    let bo = Some(json!({"identifier": "bo@example.com"}));
    c.expect(201, "Register-magic-link", &[id], "", None, bo)
        .await;
    let started = c
        .expect(200, "Login-magic-link", &[id], "", None, ann())
        .await;
    let poll = || Some(json!({"id": started["magic_link"]["id"]}));
    c.expect(401, "Magic-link-status", &[id], "", None, poll())
        .await;
    let link = token_of(&link_in(&app.mailbox.next_for("ann@example.com").await));
    let activate = || Some(json!({"magic_link": link}));
    c.expect(200, "Activate-magic-link", &[id], "", None, activate())
        .await;
    c.expect(401, "Activate-magic-link", &[id], "", None, activate())
        .await;
    c.expect(200, "Magic-link-status", &[id], "", None, poll())
        .await;
    let unknown = Some(json!({"id": "nope"}));
    c.expect(404, "Magic-link-status", &[id], "", None, unknown)
        .await;

    // Sessions.
    let refresh = |t: &Value| Some(json!({"refresh_token": t}));
    let token = &session["auth_result"]["refresh_token"];
    let renewed = c
        .expect(201, "Refresh-auth-token", &[id], "", None, refresh(token))
        .await;
    c.expect(
        401,
        "Refresh-auth-token",
        &[id],
        "",
        None,
        refresh(&json!("nope")),
    )
    .await;
    let auth_token = renewed["auth_result"]["auth_token"].as_str().unwrap();
    let revoke = format!(
        "?refresh_token={}",
        renewed["auth_result"]["refresh_token"].as_str().unwrap()
    );
    c.expect(200, "Revoke-refresh-token", &[id], &revoke, None, None)
        .await;
    c.expect(400, "Revoke-refresh-token", &[id], "", None, None)
        .await;

    // The current user.
    let t = Some(auth_token);
    c.expect(200, "Get-currentuser", &[id], "", t, None).await;
    c.expect(401, "Get-currentuser", &[id], "", None, None)
        .await;
    c.expect(200, "Get-currentuser-devices", &[id], "", t, None)
        .await;
    c.expect(200, "Get-currentuser-metadata", &[id], "", t, None)
        .await;
    let metadata = |m: Value| Some(json!({ "user_metadata": m }));
    let plan = metadata(json!({"plan": "pro"}));
    c.expect(200, "Update-currentuser-metadata", &[id], "", t, plan)
        .await;
    let wrong_type = metadata(json!({"plan": 1}));
    c.expect(400, "Update-currentuser-metadata", &[id], "", t, wrong_type)
        .await;
    let email = Some(json!({"new_email": "ann2@example.com"}));
    c.expect(200, "Update-email-currentuser", &[id], "", t, email)
        .await;
    let phone = |p: &str| Some(json!({ "new_phone": p }));
    c.expect(
        200,
        "Update-phone-currentuser",
        &[id],
        "",
        t,
        phone("+4915123456788"),
    )
    .await;
    c.expect(400, "Update-phone-currentuser", &[id], "", t, phone("12"))
        .await;
}

/// The Manage operations, with the app key.
async fn manage_operations(p: &PassageApp, c: &mut Contract<'_>) {
    let (id, key) = (p.app_id.as_str(), Some(p.key.as_str()));
    c.expect(200, "GetApp", &[id], "", key, None).await;
    let new_user = Some(json!({"email": "cy@example.com", "user_metadata": {"seats": 2}}));
    let created = c.expect(201, "CreateUser", &[id], "", key, new_user).await;
    let user = created["user"]["id"].as_str().unwrap();
    let taken = Some(json!({"email": "cy@example.com"}));
    c.expect(400, "CreateUser", &[id], "", key, taken.clone())
        .await;
    c.expect(401, "CreateUser", &[id], "", Some("kh_not-the-key"), taken)
        .await;
    c.expect(200, "GetUser", &[id, user], "", key, None).await;
    c.expect(404, "GetUser", &[id, "nope"], "", key, None).await;
    let phone = Some(json!({"phone": "+4915123456787"}));
    c.expect(200, "UpdateUser", &[id, user], "", key, phone)
        .await;
    let wrong_type = Some(json!({"user_metadata": {"seats": "two"}}));
    c.expect(400, "UpdateUser", &[id, user], "", key, wrong_type)
        .await;
    c.expect(200, "DeactivateUser", &[id, user], "", key, None)
        .await;
    c.expect(200, "ActivateUser", &[id, user], "", key, None)
        .await;
    c.expect(200, "ListUserDevices", &[id, user], "", key, None)
        .await;
    c.expect(
        404,
        "DeleteADeviceForAUser",
        &[id, user, "nope"],
        "",
        key,
        None,
    )
    .await;
    c.expect(200, "RevokesRefreshTokens", &[id, user], "", key, None)
        .await;
    let link = Some(json!({"user_id": user, "channel": "email"}));
    c.expect(201, "CreateEmbeddableMagicLink", &[id], "", key, link)
        .await;
    c.expect(200, "DeleteUser", &[id, user], "", key, None)
        .await;
    c.expect(404, "DeleteUser", &[id, user], "", key, None)
        .await;
}

/// The passkey ceremonies with a software authenticator, and the device operations of both
/// APIs on the device they make.
async fn passkey_operations(p: &PassageApp, auth: &mut Contract<'_>, manage: &mut Contract<'_>) {
    let id = p.app_id.as_str();
    let mut browser = SoftAuthenticator::new("https://shop.example").unwrap();
    let who = Some(json!({"identifier": "pat@example.com"}));
    let started = auth
        .expect(200, "Register-webauthn-start", &[id], "", None, who.clone())
        .await;
    let user_id = started["user"]["id"].as_str().unwrap().to_string();
    let created = browser
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let finish = |handshake: &Value, response: Value| {
        Some(json!({
            "handshake_id": handshake["id"],
            "handshake_response": response,
            "user_id": user_id,
        }))
    };
    let body = finish(&started["handshake"], created);
    let session = auth
        .expect(
            201,
            "Register-webauthn-finish",
            &[id],
            "",
            None,
            body.clone(),
        )
        .await;
    auth.expect(400, "Register-webauthn-finish", &[id], "", None, body)
        .await;
    let token = session["auth_result"]["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Some(token.as_str());

    let started = auth
        .expect(200, "Login-webauthn-start", &[id], "", None, who.clone())
        .await;
    let asserted = browser
        .login(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = finish(&started["handshake"], asserted);
    auth.expect(200, "Login-webauthn-finish", &[id], "", None, body.clone())
        .await;
    auth.expect(401, "Login-webauthn-finish", &[id], "", None, body)
        .await;
    let nobody = Some(json!({"identifier": "nobody@example.com"}));
    auth.expect(404, "Login-webauthn-start", &[id], "", None, nobody)
        .await;

    let started = auth
        .expect(
            200,
            "Post-currentuser-add-device-start",
            &[id],
            "",
            t,
            Some(json!({})),
        )
        .await;
    let mut phone = SoftAuthenticator::new("https://shop.example").unwrap();
    let created = phone
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = finish(&started["handshake"], created);
    let added = auth
        .expect(
            201,
            "Post-currentuser-add-device-finish",
            &[id],
            "",
            t,
            body,
        )
        .await;
    let device = added["device"]["id"].as_str().unwrap().to_string();
    let listed = auth
        .expect(200, "Get-currentuser-devices", &[id], "", t, None)
        .await;
    assert_eq!(listed["devices"].as_array().unwrap().len(), 2);
    let name = Some(json!({"friendly_name": "Pat's phone"}));
    auth.expect(
        200,
        "Update-currentuser-device",
        &[id, &device],
        "",
        t,
        name.clone(),
    )
    .await;
    auth.expect(404, "Update-currentuser-device", &[id, "nope"], "", t, name)
        .await;
    auth.expect(
        200,
        "Delete-currentuser-device",
        &[id, &device],
        "",
        t,
        None,
    )
    .await;
    auth.expect(
        404,
        "Delete-currentuser-device",
        &[id, &device],
        "",
        t,
        None,
    )
    .await;

    let key = Some(p.key.as_str());
    let listed = manage
        .expect(200, "ListUserDevices", &[id, &user_id], "", key, None)
        .await;
    let last = listed["devices"][0]["id"].as_str().unwrap().to_string();
    manage
        .expect(
            200,
            "DeleteADeviceForAUser",
            &[id, &user_id, &last],
            "",
            key,
            None,
        )
        .await;
}

/// Social login with a GitHub-shaped provider: authorize, the callback, the token, linking,
/// listing and unlinking, and the App object with the connection.
async fn social_operations(app: &TestApp, c: &mut Contract<'_>) {
    use crate::social::{
        pkce,
        provider::{FakeProvider, Person},
        set_connection, APP_REDIRECT,
    };
    let provider = FakeProvider::start().await;
    let p = create_app(app, |s| s.allowed_redirect_urls = vec![APP_REDIRECT.into()]).await;
    let id = p.app_id.as_str();
    set_connection(
        app,
        &p,
        "github",
        crate::social::settings(&provider, "github"),
    )
    .await;
    let got = c.expect(200, "Get-app", &[id], "", None, None).await;
    assert!(got["app"]["social_connections"]["github"]["client_id"].is_string());

    let (_, challenge) = pkce();
    let elsewhere = authorize_query(&challenge, "https://evil.example/cb");
    c.expect(400, "Get-authorize", &[id], &elsewhere, None, None)
        .await;
    c.expect(
        400,
        "Oauth2-callback",
        &[id],
        "?code=x&state=unknown",
        None,
        None,
    )
    .await;
    let exchange = social_code(
        c,
        &provider,
        id,
        Person {
            id: "31".into(),
            email: None,
            email_verified: false,
        },
    )
    .await;
    let session = c
        .expect(201, "Exchange-social-token", &[id], &exchange, None, None)
        .await;
    c.expect(400, "Exchange-social-token", &[id], &exchange, None, None)
        .await;
    let token = session["auth_result"]["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = Some(token.as_str());

    // The user (GitHub gave no verified email) has no other way in: GitHub stays.
    c.expect(
        200,
        "Get-currentuser-social-connections",
        &[id],
        "",
        bearer,
        None,
    )
    .await;
    c.expect(
        403,
        "Delete-currentuser-social-connection",
        &[id, "github"],
        "",
        None.or(bearer),
        None,
    )
    .await;
    c.expect(
        404,
        "Delete-currentuser-social-connection",
        &[id, "google"],
        "",
        bearer,
        None,
    )
    .await;
    c.expect(
        401,
        "Get-currentuser-social-connections",
        &[id],
        "",
        None,
        None,
    )
    .await;

    // Another user links the same identity: refused; a new identity: linked, then unlinked.
    let other = crate::passage::sign_in(app, &p, "lou@example.com").await;
    let other = Some(other["auth_token"].as_str().unwrap());
    let link = social_code(
        c,
        &provider,
        id,
        Person {
            id: "31".into(),
            email: None,
            email_verified: false,
        },
    )
    .await;
    c.expect(
        403,
        "Currentuser-social-link-account",
        &[id],
        &link,
        other,
        None,
    )
    .await;
    let link = social_code(
        c,
        &provider,
        id,
        Person::verified("32", "lou@users.example"),
    )
    .await;
    c.expect(
        400,
        "Currentuser-social-link-account",
        &[id],
        "?code=x&verifier=y",
        other,
        None,
    )
    .await;
    c.expect(
        201,
        "Currentuser-social-link-account",
        &[id],
        &link,
        other,
        None,
    )
    .await;
    let listed = c
        .expect(
            200,
            "Get-currentuser-social-connections",
            &[id],
            "",
            other,
            None,
        )
        .await;
    assert_eq!(listed["social_connections"]["github"]["provider_id"], "32");
    c.expect(
        200,
        "Delete-currentuser-social-connection",
        &[id, "github"],
        "",
        other,
        None,
    )
    .await;
}

fn authorize_query(challenge: &str, redirect: &str) -> String {
    format!(
        "?redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256&connection_type=github",
        crate::social::urlencode(redirect)
    )
}

/// A social login as `person` up to the app's code: the query that trades it.
async fn social_code(
    c: &mut Contract<'_>,
    provider: &crate::social::provider::FakeProvider,
    id: &str,
    person: crate::social::provider::Person,
) -> String {
    let (verifier, challenge) = crate::social::pkce();
    let query = authorize_query(&challenge, crate::social::APP_REDIRECT);
    c.expect(302, "Get-authorize", &[id], &query, None, None)
        .await;
    let at_provider = c.location.clone().unwrap();
    let to_keyhaven = provider.approve(&at_provider, person);
    let callback = format!("?{}", to_keyhaven.query().unwrap());
    c.expect(302, "Oauth2-callback", &[id], &callback, None, None)
        .await;
    let back = c.location.clone().unwrap();
    let code = crate::social::query(&back)["code"].clone();
    format!("?code={code}&verifier={verifier}")
}
