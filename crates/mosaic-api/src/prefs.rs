//! User preferences: a typed key/value set per user. Every key is known here with its
//! type, so a surface can render an editor and the gateway can refuse nonsense.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The type of a preference's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefType {
    Bool,
    /// An integer within the inclusive range.
    Integer {
        min: i64,
        max: i64,
    },
    /// Free text up to `max_len` characters.
    String {
        max_len: usize,
    },
    /// One of a fixed set of strings.
    Choice {
        options: &'static [&'static str],
    },
}

/// One known preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefSpec {
    pub key: &'static str,
    pub value_type: PrefType,
    pub description: &'static str,
}

/// Every preference a user can set.
pub const PREFERENCES: &[PrefSpec] = &[
    PrefSpec {
        key: "theme",
        value_type: PrefType::Choice {
            options: &["system", "light", "dark"],
        },
        description: "Colour theme of the web UI and TUI",
    },
    PrefSpec {
        key: "timezone",
        value_type: PrefType::String { max_len: 64 },
        description: "IANA time zone used to show times, e.g. Europe/Berlin",
    },
    PrefSpec {
        key: "locale",
        value_type: PrefType::String { max_len: 35 },
        description: "BCP 47 language tag, e.g. en-GB",
    },
    PrefSpec {
        key: "default_agent",
        value_type: PrefType::String { max_len: 128 },
        description: "Agent new sessions start with",
    },
    PrefSpec {
        key: "default_route",
        value_type: PrefType::String { max_len: 128 },
        description: "Model route used when an agent names none",
    },
    PrefSpec {
        key: "show_thinking",
        value_type: PrefType::Bool,
        description: "Show models' thinking in transcripts",
    },
    PrefSpec {
        key: "page_size",
        value_type: PrefType::Integer { min: 1, max: 500 },
        description: "Rows per page in lists",
    },
];

/// Look a preference up by key.
pub fn pref_spec(key: &str) -> Option<&'static PrefSpec> {
    PREFERENCES.iter().find(|p| p.key == key)
}

impl PrefType {
    /// A short human description of the accepted values.
    pub fn describe(&self) -> String {
        match self {
            PrefType::Bool => "true | false".into(),
            PrefType::Integer { min, max } => format!("integer {min}..={max}"),
            PrefType::String { max_len } => format!("text (max {max_len})"),
            PrefType::Choice { options } => options.join(" | "),
        }
    }

    /// Check a value against this type; the error says what was expected.
    pub fn validate(&self, value: &Value) -> Result<(), String> {
        match self {
            PrefType::Bool => match value {
                Value::Bool(_) => Ok(()),
                _ => Err("expected true or false".into()),
            },
            PrefType::Integer { min, max } => match value.as_i64() {
                Some(n) if n >= *min && n <= *max => Ok(()),
                _ => Err(format!("expected an integer from {min} to {max}")),
            },
            PrefType::String { max_len } => match value.as_str() {
                Some(s) if s.chars().count() <= *max_len => Ok(()),
                Some(_) => Err(format!("expected at most {max_len} characters")),
                None => Err("expected a string".into()),
            },
            PrefType::Choice { options } => match value.as_str() {
                Some(s) if options.contains(&s) => Ok(()),
                _ => Err(format!("expected one of: {}", options.join(", "))),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preference {
    pub key: String,
    pub value: Value,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetPreferenceRequest {
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PreferenceList {
    pub items: Vec<Preference>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn preference_values_are_checked_against_their_type() {
        let theme = pref_spec("theme").map(|p| p.value_type);
        assert_eq!(theme.map(|t| t.validate(&json!("dark"))), Some(Ok(())));
        assert!(matches!(
            theme.map(|t| t.validate(&json!("pink"))),
            Some(Err(_))
        ));
        let size = pref_spec("page_size").map(|p| p.value_type);
        assert_eq!(size.map(|t| t.validate(&json!(20))), Some(Ok(())));
        assert!(matches!(size.map(|t| t.validate(&json!(0))), Some(Err(_))));
        assert!(matches!(
            size.map(|t| t.validate(&json!("20"))),
            Some(Err(_))
        ));
        assert!(pref_spec("no_such_key").is_none());
    }
}
