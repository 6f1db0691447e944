//! Domain values read straight from their columns: text columns decode into enums here, so no
//! status string travels past the storage layer.

use sqlx::{any::AnyTypeInfo, error::BoxDynError, Any, Database, Decode, Type};

use crate::domain::{Channel, LinkKind, UserStatus};

macro_rules! text_column {
    ($($t:ty),*) => {$(
        impl Type<Any> for $t {
            fn type_info() -> AnyTypeInfo {
                <String as Type<Any>>::type_info()
            }
        }

        impl<'r> Decode<'r, Any> for $t {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <String as Decode<'r, Any>>::decode(value)?;
                <$t>::parse(&text).ok_or_else(|| {
                    format!(concat!("`{}` is not a ", stringify!($t)), text).into()
                })
            }
        }
    )*};
}

text_column!(UserStatus, LinkKind, Channel);

/// 0/1 integer flags: portable across both databases through `Any`.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
