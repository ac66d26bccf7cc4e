//! What the document says of every operation at once, applied after the routes are
//! collected, so that no route has to remember it:
//!
//! - request objects are closed (`additionalProperties: false`): the `Json` extractor
//!   refuses a field the type does not name, at every depth (`extract::strict`);
//! - a string field named `*_at` is a time (`format: date-time`), the contract's naming
//!   rule for timestamps; times and days have the pattern `mosaic_api::time` holds them
//!   to, and string query parameters are never empty;
//! - the error statuses any operation can answer are listed: 500 always; 401 and 403 where
//!   a credential is needed (missing or refused, too narrow a scope, CSRF); 400 where there
//!   are parameters or a body; 413 and 400 where there is a body; 404 where the path names
//!   something; 409 on every authenticated write (the state it meets may refuse it).

use std::collections::BTreeSet;

use mosaic_api::time;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, Object, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

/// The shared response every listed error status points to.
const ERROR_RESPONSE: &str = "Error";

pub fn apply(doc: &mut OpenApi) {
    close_request_objects(doc);
    shape_values(doc);
    list_error_statuses(doc);
}

fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    writes_and_reads(doc).map(|(_, op)| op)
}

/// Every operation, and whether it writes (any method but GET, HEAD, OPTIONS, TRACE).
fn writes_and_reads(doc: &mut OpenApi) -> impl Iterator<Item = (bool, &mut Operation)> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            (false, &mut item.get),
            (true, &mut item.put),
            (true, &mut item.post),
            (true, &mut item.delete),
            (false, &mut item.options),
            (false, &mut item.head),
            (true, &mut item.patch),
            (false, &mut item.trace),
        ]
        .into_iter()
        .filter_map(|(write, op)| op.as_mut().map(|op| (write, op)))
    })
}

fn close_request_objects(doc: &mut OpenApi) {
    let close = |object: &mut Object| {
        if !object.properties.is_empty() && object.additional_properties.is_none() {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    };
    let mut pending = Vec::new();
    for op in operations(doc) {
        let Some(body) = op.request_body.as_mut() else {
            continue;
        };
        for content in body.content.values_mut() {
            if let Some(schema) = content.schema.as_mut() {
                walk(schema, &mut pending, &mut |o| close(o));
            }
        }
    }
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = components.schemas.get_mut(&name) {
            walk(schema, &mut pending, &mut |o| close(o));
        }
    }
}

/// Whether a schema is a string, or a string or null.
fn is_string(object: &Object) -> bool {
    match &object.schema_type {
        SchemaType::Type(Type::String) => true,
        SchemaType::Array(types) => types.iter().all(|t| matches!(t, Type::String | Type::Null)),
        SchemaType::Type(_) | SchemaType::AnyValue => false,
    }
}

/// Times and days carry the shape `mosaic_api::time` accepts; a query parameter that is a
/// string is never empty (the `Query` extractor refuses `?name=`).
fn shape_values(doc: &mut OpenApi) {
    let mut refs = Vec::new();
    let mut shape = |object: &mut Object| {
        // Fields first: they are walked into after their object.
        for (name, property) in object.properties.iter_mut() {
            if let RefOr::T(Schema::Object(field)) = property {
                if name.ends_with("_at") && field.format.is_none() && is_string(field) {
                    field.format = Some(SchemaFormat::KnownFormat(KnownFormat::DateTime));
                }
            }
        }
        let pattern = match &object.format {
            Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)) => time::TIMESTAMP_PATTERN,
            Some(SchemaFormat::KnownFormat(KnownFormat::Date)) => time::DAY_PATTERN,
            _ => return,
        };
        object.pattern.get_or_insert_with(|| pattern.into());
    };
    for op in operations(doc) {
        for param in op.parameters.iter_mut().flatten() {
            let Some(schema) = param.schema.as_mut() else {
                continue;
            };
            walk(schema, &mut refs, &mut shape);
            if let (ParameterIn::Query, RefOr::T(Schema::Object(object))) =
                (&param.parameter_in, schema)
            {
                if object.schema_type == SchemaType::Type(Type::String) {
                    object.min_length.get_or_insert(1);
                }
            }
        }
    }
    if let Some(components) = doc.components.as_mut() {
        for schema in components.schemas.values_mut() {
            walk(schema, &mut refs, &mut shape);
        }
    }
}

/// Calls `f` on every object schema in `schema` (not through references, which it
/// collects in `refs` by component name).
fn walk(schema: &mut RefOr<Schema>, refs: &mut Vec<String>, f: &mut dyn FnMut(&mut Object)) {
    let schema = match schema {
        RefOr::Ref(r) => {
            if let Some(name) = r.ref_location.strip_prefix("#/components/schemas/") {
                refs.push(name.to_string());
            }
            return;
        }
        RefOr::T(schema) => schema,
    };
    match schema {
        Schema::Object(object) => {
            f(object);
            for property in object.properties.values_mut() {
                walk(property, refs, f);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                walk(items, refs, f);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|s| walk(s, refs, f)),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(|s| walk(s, refs, f)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|s| walk(s, refs, f)),
        _ => {}
    }
}

fn list_error_statuses(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert(
        ERROR_RESPONSE.into(),
        RefOr::T(
            ResponseBuilder::new()
                .description("An error; `error.code` says which, `error.message` why")
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build(),
        ),
    );
    let public_by_default = doc
        .security
        .as_ref()
        .is_none_or(|reqs| reqs.iter().all(|r| *r == SecurityRequirement::default()));
    for (write, op) in writes_and_reads(doc) {
        let public = match &op.security {
            Some(reqs) => reqs.iter().all(|r| *r == SecurityRequirement::default()),
            None => public_by_default,
        };
        let params = op.parameters.as_deref().unwrap_or_default();
        let has_path = params
            .iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path));
        let has_body = op.request_body.is_some();
        let mut statuses = vec!["500"];
        if !public {
            statuses.extend(["401", "403"]);
        }
        if has_body || !params.is_empty() {
            statuses.push("400");
        }
        if has_body {
            statuses.push("413");
        }
        if has_path {
            statuses.push("404");
        }
        // A write may meet state that refuses it: a name taken, a reference to nothing,
        // the last owner or admin, a run under way.
        if write && !public {
            statuses.push("409");
        }
        for status in statuses {
            op.responses
                .responses
                .entry(status.into())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::{ComponentsBuilder, ObjectBuilder, OpenApiBuilder};

    #[test]
    fn string_fields_named_at_are_times_with_their_pattern() {
        let string = |types: SchemaType| ObjectBuilder::new().schema_type(types).build();
        let thing = ObjectBuilder::new()
            .property("created_at", string(SchemaType::Type(Type::String)))
            .property(
                "done_at",
                string(SchemaType::Array(vec![Type::String, Type::Null])),
            )
            .property("name", string(SchemaType::Type(Type::String)))
            .property("seen_at", string(SchemaType::Type(Type::Integer)))
            .build();
        let mut doc = OpenApiBuilder::new()
            .components(Some(
                ComponentsBuilder::new().schema("Thing", thing).build(),
            ))
            .build();
        shape_values(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let field = |name: &str| {
            let f = &doc["components"]["schemas"]["Thing"]["properties"][name];
            (f["format"].clone(), f["pattern"].clone())
        };
        let time = (
            serde_json::json!("date-time"),
            serde_json::json!(time::TIMESTAMP_PATTERN),
        );
        assert_eq!(field("created_at"), time);
        assert_eq!(field("done_at"), time);
        let none = (serde_json::Value::Null, serde_json::Value::Null);
        assert_eq!(field("name"), none);
        assert_eq!(field("seen_at"), none);
    }
}
