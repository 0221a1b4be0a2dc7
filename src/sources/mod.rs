//! Where articles come from besides the API: files (`import`).
pub mod import;
