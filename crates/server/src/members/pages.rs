//! Members' pages.
