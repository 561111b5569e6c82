//! placeholder
pub mod sky;
pub mod zones;
