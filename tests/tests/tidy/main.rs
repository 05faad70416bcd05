//! Tidy checks on the repository itself (not the product): every source file opens with a
//! `//!` doc; documents and the references to them stay true; the gateway's modules import
//! one another without cycles.

mod docs;
mod imports;
mod links;
