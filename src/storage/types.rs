//! Domain values read straight from their columns: text columns decode into enums here, so no
//! status string travels past the storage layer.

use sqlx::{any::AnyTypeInfo, error::BoxDynError, Any, Database, Decode, Type};

use crate::domain::{Channel, LinkKind, OtpStatus, UserStatus, Via};

macro_rules! text_column {
    ($($t:ty: $parse:expr),*) => {$(
        impl Type<Any> for $t {
            fn type_info() -> AnyTypeInfo {
                <String as Type<Any>>::type_info()
            }
        }

        impl<'r> Decode<'r, Any> for $t {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <String as Decode<'r, Any>>::decode(value)?;
                $parse(&text).ok_or_else(|| {
                    format!(concat!("`{}` is not a ", stringify!($t)), text).into()
                })
            }
        }
    )*};
}

text_column!(
    UserStatus: UserStatus::parse,
    LinkKind: LinkKind::parse,
    Channel: Channel::parse,
    OtpStatus: OtpStatus::parse,
    Via: |s: &str| Via::parse(s).ok()
);

/// 0/1 integer flags: portable across both databases through `Any`.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
