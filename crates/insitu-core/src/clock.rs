//! The platform's clock: Unix seconds, as the store keeps times.

use time::OffsetDateTime;

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
