//! The demo server's resources: the support handbook and a customer-directory notice, so
//! `resources/list` and `resources/read` can be exercised through a gateway.

use rmcp::{
    ErrorData as McpError,
    model::{ReadResourceResult, Resource, ResourceContents},
};
use serde_json::json;

use crate::data;

pub const HANDBOOK_URI: &str = "demo://docs/handbook";
pub const CUSTOMERS_URI: &str = "demo://customers/index";

pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(HANDBOOK_URI, "handbook")
            .with_title("Support handbook")
            .with_description("The built-in support handbook searched by `search_docs`.")
            .with_mime_type("text/markdown"),
        Resource::new(CUSTOMERS_URI, "customer-index")
            .with_title("Customer index")
            .with_description("Customer ids known to `lookup_customer` (no personal data).")
            .with_mime_type("application/json"),
    ]
}

pub fn read(uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        HANDBOOK_URI => ResourceContents::text(data::handbook(), uri).with_mime_type("text/markdown"),
        CUSTOMERS_URI => {
            let ids: Vec<_> = data::CUSTOMERS.iter().map(|c| c.customer_id).collect();
            ResourceContents::text(json!({ "customer_ids": ids }).to_string(), uri).with_mime_type("application/json")
        }
        _ => {
            return Err(McpError::resource_not_found(
                format!("no resource at `{uri}`"),
                Some(json!({ "uri": uri })),
            ));
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}
