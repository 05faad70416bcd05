//! The fixture's resources and resource template, named and worded as the resources
//! scenarios expect. Unknown URIs get a resource-not-found error carrying the URI (SEP-2164).

use rmcp::{
    ErrorData as McpError,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::json;

use crate::media;

const STATIC_TEXT: &str = "test://static-text";
const STATIC_BINARY: &str = "test://static-binary";
const WATCHED: &str = "test://watched-resource";
const STATELESS_TEXT: &str = "test://stateless-static-text";
const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

pub fn list(stateless: bool) -> Vec<Resource> {
    let mut resources = vec![
        Resource::new(STATIC_TEXT, "static-text")
            .with_title("Static Text Resource")
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY, "static-binary")
            .with_title("Static Binary Resource")
            .with_description("A static binary resource (image) for testing")
            .with_mime_type("image/png"),
        Resource::new(WATCHED, "watched-resource")
            .with_title("Watched Resource")
            .with_description("A resource clients can subscribe to")
            .with_mime_type("text/plain"),
    ];
    if stateless {
        resources.push(
            Resource::new(STATELESS_TEXT, "Stateless Static Text")
                .with_description("A static text resource served on the draft path")
                .with_mime_type("text/plain"),
        );
    }
    resources
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("test://template/{id}/data", "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
    ]
}

pub fn read(uri: &str) -> Result<ReadResourceResult, McpError> {
    let text = |text: &str| ResourceContents::text(text, uri);
    let contents = match uri {
        STATIC_TEXT => text("This is the content of the static text resource."),
        STATIC_BINARY => ResourceContents::blob(media::PNG_BASE64, uri).with_mime_type("image/png"),
        WATCHED => text("Watched resource content"),
        STATELESS_TEXT => text("Static text content from the stateless draft path."),
        _ => match template_id(uri) {
            Some(id) => {
                let body = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                ResourceContents::text(body.to_string(), uri).with_mime_type("application/json")
            }
            None => {
                return Err(McpError::resource_not_found(
                    format!("resource not found: {uri}"),
                    Some(json!({ "uri": uri })),
                ));
            }
        },
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// The `{id}` of `test://template/{id}/data`, if `uri` matches the template.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_ids() {
        let cases = [
            ("test://template/123/data", Some("123")),
            ("test://template//data", None),
            ("test://template/a/b/data", None),
            ("test://static-text", None),
        ];
        for (uri, expected) in cases {
            assert_eq!(template_id(uri), expected, "{uri}");
        }
    }
}
