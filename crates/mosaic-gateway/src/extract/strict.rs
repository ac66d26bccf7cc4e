//! A deserializer over a parsed JSON body that holds request types to their shape, the
//! rule of the whole API in one place rather than an attribute per type:
//!
//! - a struct is read from a JSON object only: serde's derive also reads one from an
//!   array (`[]` would pass as `{}` for a type whose fields are all optional);
//! - a field the struct does not name is refused (`unknown field "disabeld"`), so a typo
//!   is an error instead of a silent no-op.
//!
//! Both hold at every depth (`limits: [1, 2]` is refused like a top-level array). Types
//! with `#[serde(flatten)]` or internally tagged enums read through serde's own buffer and
//! keep serde's behaviour; no request type uses them. Response bodies are not read this
//! way, so clients stay lenient about fields a newer gateway adds.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Value};

/// Reads `T` from `value` under the rules above; the error names where it went wrong
/// (`limits.max_model_calls: invalid type …`).
pub fn from_value<'a, T: serde::Deserialize<'a>>(value: &'a Value) -> Result<T, String> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => e.into_inner().to_string(),
            _ => format!("{path}: {}", e.into_inner()),
        }
    })
}

struct Strict<'a>(&'a Value);

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                // `1.0` is an integer to JSON Schema, and so to the API.
                (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => match f < 0.0 {
                    true => visitor.visit_i64(f as i64),
                    false => visitor.visit_u64(f as u64),
                },
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => Err(Error::invalid_type(unexpected(self.0), &visitor)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = Seq(items.iter());
                let value = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(value),
                    _ => Err(Error::invalid_length(
                        items.len(),
                        &"fewer elements in array",
                    )),
                }
            }
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
        }
    }

    /// Integer fields are int64 on the wire, as the document's formats say (free JSON,
    /// read through `deserialize_any`, keeps any number).
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.as_u64() {
            Some(u) if i64::try_from(u).is_err() => Err(Error::custom(format!(
                "{u} is larger than the largest integer the API takes ({})",
                i64::MAX
            ))),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(map) = self.0 else {
            return Err(Error::invalid_type(unexpected(self.0), &visitor));
        };
        if let Some(key) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(Error::unknown_field(key, fields));
        }
        visitor.visit_map(Fields::new(map))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Object(map) if map.len() == 1 => match map.iter().next() {
                Some((variant, value)) => visitor.visit_enum(Variant { variant, value }),
                None => Err(Error::invalid_type(Unexpected::Map, &visitor)),
            },
            other => Err(Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Fields<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Fields {
            iter: map.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Strict(value)),
            None => Err(Error::custom("a value was asked for before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An externally tagged enum variant with data: `{"variant": value}`.
struct Variant<'a> {
    variant: &'a str,
    value: &'a Value,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = Error;
    type Variant = Strict<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Strict<'de>), Error> {
        let variant = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.variant))?;
        Ok((variant, Strict(self.value)))
    }
}

impl<'de> VariantAccess<'de> for Strict<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_struct("", fields, visitor)
    }
}

/// The fields a struct type names, as its derived `Deserialize` tells them (`None` for a
/// type that is not a plain struct, such as a map). The query extractor refuses other
/// parameters with them.
pub fn fields_of<'de, T: serde::Deserialize<'de>>() -> Option<&'static [&'static str]> {
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => None,
    }
}

struct Probe;

#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Found(None)
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Some(fields)))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Limits {
        max: Option<u32>,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Update {
        name: Option<String>,
        #[serde(default)]
        limits: Option<Limits>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default, alias = "colour")]
        color: Option<Shade>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Shade {
        Dark,
        Light,
    }

    fn read(v: Value) -> Result<Update, String> {
        from_value(&v)
    }

    #[test]
    fn objects_of_the_right_shape_read_as_serde_would() {
        let v = json!({"name": "x", "limits": {"max": 3}, "tags": ["a"], "colour": "dark"});
        assert_eq!(
            read(v),
            Ok(Update {
                name: Some("x".into()),
                limits: Some(Limits { max: Some(3) }),
                tags: vec!["a".into()],
                color: Some(Shade::Dark),
            })
        );
        assert_eq!(read(json!({"limits": null})), Ok(Update::default()));
    }

    #[test]
    fn an_array_is_not_an_object_at_any_depth() {
        assert_eq!(
            read(json!([])),
            Err("invalid type: sequence, expected struct Update".into())
        );
        assert_eq!(
            read(json!({"limits": [1, 2]})),
            Err("limits: invalid type: sequence, expected struct Limits".into())
        );
    }

    #[test]
    fn unknown_fields_are_named_with_the_expected_ones() {
        assert_eq!(
            read(json!({"nmae": "x"})),
            Err(
                "unknown field `nmae`, expected one of `name`, `limits`, `tags`, `color`, `colour`"
                    .into()
            )
        );
        assert_eq!(
            read(json!({"limits": {"max": 1, "min": 0}})),
            Err("limits: unknown field `min`, expected `max`".into())
        );
    }

    #[test]
    fn numbers_keep_their_range_checks() {
        assert!(read(json!({"limits": {"max": -1}}))
            .is_err_and(|e| e.starts_with("limits.max: invalid value: integer `-1`")));
        assert!(read(json!({"limits": {"max": 1.5}})).is_err());
        assert!(from_value::<u64>(&json!(9_223_372_036_854_775_808u64)).is_err());
        assert!(from_value::<Value>(&json!(9_223_372_036_854_775_808u64)).is_ok());
        assert_eq!(
            read(json!({"limits": {"max": 2.0}})).map(|u| u.limits),
            Ok(Some(Limits { max: Some(2) }))
        );
        assert!(read(json!({"color": "grey"})).is_err_and(|e| e.contains("unknown variant")));
    }

    #[test]
    fn a_struct_tells_its_fields() {
        assert_eq!(fields_of::<Limits>(), Some(&["max"][..]));
        assert_eq!(fields_of::<Value>(), None);
    }

    #[test]
    fn free_json_stays_free() {
        let v = json!({"any": [1, {"x": null}], "n": -2.5});
        assert_eq!(from_value::<Value>(&v), Ok(v.clone()));
    }
}
