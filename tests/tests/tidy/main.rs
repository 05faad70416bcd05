//! Tidy checks on the repository itself (not the product): documents and the references to them stay true.
mod links;
