//! Tidy checks on the repository itself (not the product): every source file opens with a
//! `//!` doc; documents and the references to them stay true; the gateway's modules import
//! one another without cycles; the LICENSE file is the licence the workspace declares.

mod docs;
mod imports;
mod license;
mod links;
