//! The pure layer: types and rules of the bundle, with no I/O, no HTTP, no AWS and no
//! environment. Everything above builds on it; it imports nothing of the crate but itself.

pub mod agents;
pub mod audit;
pub mod clock;
pub mod factor;
pub mod identity;
pub mod phone;
pub mod protect;
pub mod tenant;
pub mod tenant_settings;
pub mod uid;
pub mod unmasking;
