//! Users as the Manage API administers them: create, read, update, delete, activate,
//! deactivate, list; identifiers and metadata validated against the app's settings.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    app::AppState,
    crypto,
    domain::{now_ms, Email, PhoneNumber},
    error::Error,
    passage_auth::apps::{App, UserMetadataField},
    storage::UserRow,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub user_metadata: Option<Value>,
}

pub async fn create(s: &AppState, app: &App, req: UserRequest) -> Result<UserRow, Error> {
    let email = req
        .email
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(Email::parse)
        .transpose()?;
    let phone = req
        .phone
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| PhoneNumber::parse(p, None))
        .transpose()?;
    if email.is_none() && phone.is_none() {
        return Err(Error::invalid(
            "identifier",
            "an email or a phone number is required",
        ));
    }
    let metadata = req
        .user_metadata
        .map(|m| metadata(&app.settings.user_metadata_schema, m, None))
        .transpose()?;
    let now = now_ms();
    let user = UserRow {
        id: crypto::random_id(),
        app_id: app.id.clone(),
        email: email.map(|e| e.as_str().to_string()),
        phone: phone.map(|p| p.as_str().to_string()),
        email_verified: 0,
        phone_verified: 0,
        status: "active".into(),
        user_metadata: metadata.map(|m| Value::Object(m).to_string()),
        external_id: String::new(),
        login_count: 0,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    };
    s.store
        .insert_user(&user)
        .await
        .map_err(or_identifier_taken)?;
    Ok(user)
}

pub async fn update(
    s: &AppState,
    app_id: &str,
    user_id: &str,
    req: UserRequest,
) -> Result<UserRow, Error> {
    let app = App::load(&s.store, app_id).await?;
    let mut user = s.store.get_user(app_id, user_id).await?;
    if let Some(email) = req.email {
        // An administrator's change takes effect at once; it is not verified yet.
        let email = (!email.is_empty())
            .then(|| Email::parse(&email))
            .transpose()?;
        let email = email.map(|e| e.as_str().to_string());
        if email != user.email {
            user.email = email;
            user.email_verified = 0;
        }
    }
    if let Some(phone) = req.phone {
        let phone = (!phone.is_empty())
            .then(|| PhoneNumber::parse(&phone, None))
            .transpose()?;
        let phone = phone.map(|p| p.as_str().to_string());
        if phone != user.phone {
            user.phone = phone;
            user.phone_verified = 0;
        }
    }
    if user.email.is_none() && user.phone.is_none() {
        return Err(Error::invalid(
            "identifier",
            "a user keeps an email or a phone number",
        ));
    }
    if let Some(m) = req.user_metadata {
        let current = user
            .user_metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<Map<String, Value>>(m).ok());
        let merged = metadata(&app.settings.user_metadata_schema, m, current)?;
        user.user_metadata = Some(Value::Object(merged).to_string());
    }
    user.updated_at = now_ms();
    s.store
        .update_user(&user)
        .await
        .map_err(or_identifier_taken)?;
    Ok(user)
}

/// The answer when another user holds the email or phone.
pub fn identifier_taken() -> Error {
    Error::Conflict("a user with this identifier exists".into())
}

/// A unique-constraint conflict on a user, told as [`identifier_taken`]; other errors pass.
pub fn or_identifier_taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => identifier_taken(),
        e => e,
    }
}

/// Checks `input` against the app's metadata schema and merges it over `current`: unknown
/// fields and wrong types are refused; `null` removes a field.
pub fn metadata(
    schema: &[UserMetadataField],
    input: Value,
    current: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, Error> {
    let Value::Object(input) = input else {
        return Err(Error::invalid("user_metadata", "must be an object"));
    };
    let mut merged = current.unwrap_or_default();
    for (name, value) in input {
        let field = schema
            .iter()
            .find(|f| f.field_name == name)
            .ok_or_else(|| Error::invalid("user_metadata", format!("unknown field `{name}`")))?;
        if value.is_null() {
            merged.remove(&name);
            continue;
        }
        let ok = match field.field_type.as_str() {
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "date" => value
                .as_str()
                .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
            "email" => value.as_str().is_some_and(|e| Email::parse(e).is_ok()),
            "phone" => value
                .as_str()
                .is_some_and(|p| PhoneNumber::parse(p, None).is_ok()),
            _ => value.is_string(),
        };
        if !ok {
            return Err(Error::invalid(
                "user_metadata",
                format!("`{name}` must be of type {}", field.field_type),
            ));
        }
        merged.insert(name, value);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, t: &str) -> UserMetadataField {
        UserMetadataField {
            id: name.into(),
            field_name: name.into(),
            friendly_name: name.into(),
            field_type: t.into(),
            profile: true,
            registration: false,
        }
    }

    #[test]
    fn metadata_follows_the_schema() {
        let schema = [
            field("plan", "string"),
            field("seats", "integer"),
            field("born", "date"),
        ];
        let m = metadata(&schema, json!({"plan": "pro", "seats": 3}), None).unwrap();
        assert_eq!(Value::Object(m.clone()), json!({"plan": "pro", "seats": 3}));
        let m = metadata(
            &schema,
            json!({"seats": null, "born": "1990-02-01"}),
            Some(m),
        )
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"plan": "pro", "born": "1990-02-01"})
        );
        assert!(metadata(&schema, json!({"nope": 1}), None).is_err());
        assert!(metadata(&schema, json!({"seats": "3"}), None).is_err());
        assert!(metadata(&schema, json!({"born": "01/02/1990"}), None).is_err());
        assert!(metadata(&schema, json!([1]), None).is_err());
    }
}
