//! Wire-level specifications of the WeChat client, run against a small axum
//! fake of the Official Account endpoints (`fake.rs`) on 127.0.0.1.

mod decode_props;
mod fake;
mod faults;
mod fixtures;
mod followers;
mod groups;
mod hostile;
mod kinds;
mod redaction;
mod tokens;
mod users;
