//! Every operation of the Power Platform connector's swagger, sent exactly as the connector
//! sends it (header `apikey`, query parameters), with its response checked against the
//! swagger's schema.

use axum::http::StatusCode;
use serde_json::Value;

use crate::{
    both_backends,
    harness::{code_in, urlencode, Backend, TestApp},
};

both_backends!(connector_operations_as_the_connector_sends_them);

fn swagger() -> Value {
    serde_json::from_str(include_str!("../contracts/tyntec-2fa.swagger.json")).unwrap()
}

/// (method, path template, operation) for each operationId.
fn operation(swagger: &Value, id: &str) -> (String, String, Value) {
    for (path, ops) in swagger["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["operationId"] == id {
                return (method.to_uppercase(), path.clone(), op.clone());
            }
        }
    }
    panic!("no operation {id}");
}

/// Builds the connector's request for `op` from parameter values by name.
fn request(
    app: &TestApp,
    swagger: &Value,
    id: &str,
    values: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let (method, mut path, op) = operation(swagger, id);
    let mut query = Vec::new();
    for p in op["parameters"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let Some((_, v)) = values.iter().find(|(k, _)| *k == name) else {
            assert_ne!(
                p["required"], true,
                "{id}: required parameter {name} missing"
            );
            continue;
        };
        match p["in"].as_str().unwrap() {
            "path" => path = path.replace(&format!("{{{name}}}"), v),
            "query" => query.push(format!("{name}={}", urlencode(v))),
            other => panic!("{id}: parameter in {other}"),
        }
    }
    let url = app.url(&format!("{path}?{}", query.join("&")));
    app.http
        .request(method.parse().unwrap(), url)
        .header("apikey", &app.key)
}

/// Statuses Keyhaven answers where the connector lists another, on purpose: the tyntec API
/// answers a successful check with 202 VERIFIED (the API's own documentation, and what its
/// clients test for), while the connector definition lists 200 for the same body.
const DEVIATIONS: [(&str, u16, &str); 1] = [("VerifyOTP", 202, "200")];

/// The answered status is one the operation lists (the connector maps each listed status to
/// its own schema, so another status is a contract break, not a reason to borrow 200's schema)
/// or a listed deviation, and the body has that schema's properties with the schema's types.
fn assert_schema(swagger: &Value, id: &str, status: StatusCode, body: &Value) {
    let (_, _, op) = operation(swagger, id);
    let responses = op["responses"].as_object().unwrap();
    let listed_as = DEVIATIONS
        .iter()
        .find(|(op, answered, _)| *op == id && *answered == status.as_u16())
        .map_or(status.as_str(), |(_, _, listed)| *listed);
    let Some(response) = responses.get(listed_as) else {
        let listed: Vec<&String> = responses.keys().collect();
        panic!(
            "{id}: answered status {status} is not listed for the operation \
             (it lists {listed:?}): {body}"
        );
    };
    let schema = &response["schema"];
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    let body = body.as_object().unwrap();
    for (name, p) in props {
        let Some(v) = body.get(name) else {
            assert_eq!(name, "referenceId", "{id}: {name} missing");
            continue;
        };
        match p["type"].as_str().unwrap() {
            "string" => assert!(v.is_string(), "{id}: {name} must be a string: {v}"),
            "integer" => assert!(v.is_i64(), "{id}: {name} must be an integer: {v}"),
            t => panic!("{id}: unexpected type {t}"),
        }
    }
    for name in body.keys() {
        assert!(
            props.contains_key(name),
            "{id}: {name} is not in the connector's schema"
        );
    }
}

async fn connector_operations_as_the_connector_sends_them(b: Backend) {
    let app = TestApp::spawn(b).await;
    let sw = swagger();
    let (status, otp) = app
        .send(request(
            &app,
            &sw,
            "SendOTP",
            &[
                ("number", "+4915123456789"),
                ("text", "Your code {{OTP}}"),
                ("pinLength", "6"),
                ("via", "SMS"),
                ("language", "en"),
                ("country", "DE"),
                ("Sender", "Flow"),
                ("Caller", "+4930123456"),
            ],
        ))
        .await;
    assert_eq!(status, 200, "{otp}");
    assert_schema(&sw, "SendOTP", status, &otp);
    let msg = app.receiver.next_for("+4915123456789").await;
    assert_eq!(msg["sender"], "Flow");
    let text = msg["text"].as_str().unwrap();
    let code = code_in(text);
    assert_eq!(code.len(), 6);
    assert_eq!(text, format!("Your code {code}"));
    let id = otp["otpId"].as_str().unwrap();

    let (status, body) = app
        .send(request(&app, &sw, "StatusOTP", &[("otpID", id)]))
        .await;
    assert_eq!(status, 200);
    assert_schema(&sw, "StatusOTP", status, &body);

    let (status, body) = app
        .send(request(
            &app,
            &sw,
            "ResendOTP",
            &[("otpID", id), ("via", "SMS"), ("Sender", "Again")],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_schema(&sw, "ResendOTP", status, &body);
    let again = app.receiver.next_for("+4915123456789").await;
    assert_eq!(code_in(again["text"].as_str().unwrap()), code);
    assert_eq!(again["sender"], "Again");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = app
        .send(request(
            &app,
            &sw,
            "VerifyOTP",
            &[("otpID", id), ("otpCode", wrong)],
        ))
        .await;
    assert_eq!(
        status, 401,
        "the connector documents 401 for a wrong code: {body}"
    );
    assert_schema(&sw, "VerifyOTP", status, &body);
    let (status, body) = app
        .send(request(
            &app,
            &sw,
            "VerifyOTP",
            &[("otpID", id), ("otpCode", &code)],
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_schema(&sw, "VerifyOTP", status, &body);
    assert_eq!(body["otpStatus"], "VERIFIED");

    let (status, body) = app
        .send(request(&app, &sw, "DeleteOTP", &[("otpID", id)]))
        .await;
    assert_eq!(status, 200);
    assert_schema(&sw, "DeleteOTP", status, &body);

    // applicationId typed integer by the connector, sent through as text.
    let (status, body) = app
        .send(request(
            &app,
            &sw,
            "SendOTP",
            &[("number", "004989202451100"), ("applicationId", "42")],
        ))
        .await;
    assert_eq!(status, 400, "unknown application: {body}");
}
