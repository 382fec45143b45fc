//! `ctrace report`: one self-contained HTML page about a store selection or Tracefiles.
//!
//! - [`model`]: what the page shows, gathered through the store's selection code
//!   (`store::select`, as `options`), `diff` and the profile generator;
//! - [`kinds`]: which kind of thing each syscall does;
//! - [`fleet`]: several stores (one per node) merged, with each part's coverage;
//! - [`html`], [`parts`], [`svg`], [`coverage`]: the page, one part of it, the timeline, the
//!   coverage table.

pub mod coverage;
pub mod fleet;
pub mod html;
pub mod kinds;
pub mod model;
pub mod parts;
pub mod svg;

pub use html::page;
pub use model::Report;
