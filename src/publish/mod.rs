//! The output edge: JSON lines, postcard payloads, the outbox and MQTT.

pub mod json;
pub mod kpi;
pub mod mqtt;
pub mod outbox;
pub mod payload;
pub mod privacy;
pub mod topic;

pub use mqtt::{PublishStats, Publisher};
