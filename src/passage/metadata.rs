//! User metadata checked against the app's schema, and who may write which field.

use serde_json::{Map, Value};

use super::apps::UserMetadataField;
use crate::{
    domain::{Email, PhoneNumber},
    error::Error,
};

/// Who writes user metadata, and so which fields of the schema they may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataWriter {
    /// The Manage API: every field.
    Admin,
    /// Public sign-up: fields marked `registration`.
    Registration,
    /// The signed-in user: fields marked `profile`.
    Profile,
}

impl MetadataWriter {
    fn may_write(self, field: &UserMetadataField) -> bool {
        match self {
            MetadataWriter::Admin => true,
            MetadataWriter::Registration => field.registration,
            MetadataWriter::Profile => field.profile,
        }
    }
}

/// Checks `input` against the app's metadata schema and merges it over `current`: unknown
/// fields, fields `writer` may not set and wrong types are refused; `null` removes a field.
pub fn metadata(
    schema: &[UserMetadataField],
    writer: MetadataWriter,
    input: Value,
    current: Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    let Value::Object(input) = input else {
        return Err(Error::invalid("user_metadata", "must be an object"));
    };
    let mut merged = current;
    for (name, value) in input {
        let field = schema
            .iter()
            .find(|f| f.field_name == name)
            .ok_or_else(|| Error::invalid("user_metadata", format!("unknown field `{name}`")))?;
        if !writer.may_write(field) {
            return Err(Error::invalid(
                "user_metadata",
                format!("`{name}` cannot be set here"),
            ));
        }
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
        use MetadataWriter::Admin;
        let schema = [
            field("plan", "string"),
            field("seats", "integer"),
            field("born", "date"),
        ];
        let m = metadata(
            &schema,
            Admin,
            json!({"plan": "pro", "seats": 3}),
            Map::new(),
        )
        .unwrap();
        assert_eq!(Value::Object(m.clone()), json!({"plan": "pro", "seats": 3}));
        let m = metadata(
            &schema,
            Admin,
            json!({"seats": null, "born": "1990-02-01"}),
            m,
        )
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"plan": "pro", "born": "1990-02-01"})
        );
        assert!(metadata(&schema, Admin, json!({"nope": 1}), Map::new()).is_err());
        assert!(metadata(&schema, Admin, json!({"seats": "3"}), Map::new()).is_err());
        assert!(metadata(&schema, Admin, json!({"born": "01/02/1990"}), Map::new()).is_err());
        assert!(metadata(&schema, Admin, json!([1]), Map::new()).is_err());
    }

    #[test]
    fn each_writer_sets_only_the_fields_marked_for_it() {
        let mut hidden = field("tier", "string");
        hidden.profile = false;
        let mut at_sign_up = field("source", "string");
        at_sign_up.profile = false;
        at_sign_up.registration = true;
        let schema = [hidden, at_sign_up, field("plan", "string")];
        let set = |writer, name: &str| {
            metadata(&schema, writer, json!({ name: "x" }), Map::new()).is_ok()
        };
        use MetadataWriter::*;
        assert_eq!(
            [
                set(Admin, "tier"),
                set(Registration, "tier"),
                set(Profile, "tier")
            ],
            [true, false, false]
        );
        assert_eq!(
            [
                set(Admin, "source"),
                set(Registration, "source"),
                set(Profile, "source")
            ],
            [true, true, false]
        );
        assert_eq!(
            [
                set(Admin, "plan"),
                set(Registration, "plan"),
                set(Profile, "plan")
            ],
            [true, false, true]
        );
    }
}
