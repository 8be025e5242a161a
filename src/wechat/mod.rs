//! The WeChat API client.
pub mod config;
pub use config::ApiConfig;
