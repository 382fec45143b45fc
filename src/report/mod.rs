//! `ctrace report`: one self-contained HTML page about a store selection or Tracefiles.
//!
//! - [`model`]: what the page shows, gathered through the store's selection code
//!   (`store::select`, as `options`), `diff` and the profile generator;
//! - [`kinds`]: which kind of thing each syscall does;
//! - [`html`], [`parts`], [`svg`]: the page, one part of it, the timeline.

pub mod html;
pub mod kinds;
pub mod model;
pub mod parts;
pub mod svg;

pub use html::page;
pub use model::Report;
