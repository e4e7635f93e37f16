//! Per-tenant policy: which types to find, how sure to be, what never to flag,
//! the tenant's own recognizers, and the operator per type. The gateway stores
//! a tenant's policy as JSON; [`Policy`] (de)serializes as a [`PolicySpec`] and
//! compiles custom patterns once, on construction.

use crate::anonymize::Operator;
use crate::custom::CustomRecognizer;
use crate::entity::{BuiltIn, BuiltInSet, EntityType};
use crate::error::PolicyError;
use crate::lang::{LangSet, Language};
use crate::text::fold_into;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

/// The default minimum score for a finding to be reported.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

fn default_threshold() -> f32 {
    DEFAULT_THRESHOLD
}

/// A tenant-defined recognizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomRecognizerSpec {
    /// A regular expression (Rust `regex` syntax, linear time, no look-around).
    Regex {
        /// The entity type it reports (a new name or a built-in one).
        entity: String,
        /// The pattern.
        pattern: String,
        /// Score of a match before context.
        #[serde(default = "default_custom_score")]
        score: f32,
        /// Words near a match that raise its score.
        #[serde(default)]
        context: Vec<String>,
    },
    /// A list of words or phrases, matched on word boundaries.
    Words {
        /// The entity type it reports.
        entity: String,
        /// The words or phrases.
        words: Vec<String>,
        /// Score of a match.
        #[serde(default = "default_word_score")]
        score: f32,
        /// Whether case must match (default: no).
        #[serde(default)]
        case_sensitive: bool,
    },
}

fn default_custom_score() -> f32 {
    0.6
}

fn default_word_score() -> f32 {
    0.85
}

/// The serializable form of a policy, as stored per tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Types to report; `None` reports every built-in and custom type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<EntityType>>,
    /// Minimum score for a finding to be reported.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Per-type minimum scores that override `threshold`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thresholds: BTreeMap<EntityType, f32>,
    /// Values never flagged (compared case-insensitively, whole value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_list: Vec<String>,
    /// The tenant's own recognizers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_recognizers: Vec<CustomRecognizerSpec>,
    /// Operator per type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operators: BTreeMap<EntityType, Operator>,
    /// Operator for types without an entry in `operators`.
    #[serde(default)]
    pub default_operator: Operator,
    /// Language hints (`en`, `de`, `fr`, `es`, `nl`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
    /// Regions (ISO 3166 alpha-2) for national-format phone numbers; empty means
    /// US, CA, GB, DE, FR, ES, NL, IT, IL, IN, BR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_regions: Vec<String>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            entities: None,
            threshold: DEFAULT_THRESHOLD,
            thresholds: BTreeMap::new(),
            allow_list: Vec::new(),
            custom_recognizers: Vec::new(),
            operators: BTreeMap::new(),
            default_operator: Operator::default(),
            languages: Vec::new(),
            phone_regions: Vec::new(),
        }
    }
}

/// A compiled policy, cheap to share (`Arc<Policy>`) across requests of a tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "PolicySpec", into = "PolicySpec")]
pub struct Policy {
    spec: PolicySpec,
    builtins: BuiltInSet,
    custom_all: bool,
    custom_enabled: HashSet<EntityType>,
    allow: HashSet<String>,
    pub(crate) custom: Vec<CustomRecognizer>,
    pub(crate) regions: Vec<phonenumber::country::Id>,
    pub(crate) languages: LangSet,
}

impl Default for Policy {
    fn default() -> Self {
        // The default spec has nothing to compile, so this cannot fail.
        Policy::new(PolicySpec::default())
            .unwrap_or_else(|_| unreachable!("default policy compiles"))
    }
}

fn check_range(value: f32, field: &'static str) -> Result<(), PolicyError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(PolicyError::OutOfRange { field })
    }
}

/// Parses a phone region, accepting `UK` for `GB`.
fn region(code: &str) -> Result<phonenumber::country::Id, PolicyError> {
    let upper = code.trim().to_ascii_uppercase();
    let upper = if upper == "UK" {
        "GB".to_owned()
    } else {
        upper
    };
    phonenumber::country::Id::from_str(&upper)
        .map_err(|_| PolicyError::UnknownRegion(code.to_owned()))
}

impl Policy {
    /// Compiles a policy from its specification.
    pub fn new(spec: PolicySpec) -> Result<Policy, PolicyError> {
        check_range(spec.threshold, "threshold")?;
        for t in spec.thresholds.values() {
            check_range(*t, "thresholds")?;
        }
        let (builtins, custom_all, custom_enabled) = match &spec.entities {
            None => (BuiltInSet::all(), true, HashSet::new()),
            Some(list) => {
                let mut set = BuiltInSet::empty();
                let mut custom = HashSet::new();
                for e in list {
                    match e {
                        EntityType::BuiltIn(b) => set.insert(*b),
                        other => {
                            custom.insert(other.clone());
                        }
                    }
                }
                (set, false, custom)
            }
        };
        let custom = spec
            .custom_recognizers
            .iter()
            .map(CustomRecognizer::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let regions = spec
            .phone_regions
            .iter()
            .map(|r| region(r))
            .collect::<Result<Vec<_>, _>>()?;
        let allow = spec
            .allow_list
            .iter()
            .filter_map(|v| fold_owned(v))
            .collect();
        let languages = LangSet::from_hints(&spec.languages);
        Ok(Policy {
            spec,
            builtins,
            custom_all,
            custom_enabled,
            allow,
            custom,
            regions,
            languages,
        })
    }

    /// A policy that reports only the given types (everything else default).
    pub fn only(entities: &[BuiltIn]) -> Policy {
        let spec = PolicySpec {
            entities: Some(entities.iter().map(|b| (*b).into()).collect()),
            ..PolicySpec::default()
        };
        Policy::new(spec).unwrap_or_else(|_| unreachable!("a policy without custom parts compiles"))
    }

    /// The same policy with another global threshold (clamped to [0, 1]).
    pub fn with_threshold(mut self, threshold: f32) -> Policy {
        self.spec.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// The specification this policy was compiled from.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// Built-in types the policy enables.
    pub fn enabled_builtins(&self) -> BuiltInSet {
        self.builtins
    }

    /// Whether the policy reports a type.
    pub fn is_enabled(&self, entity: &EntityType) -> bool {
        match entity {
            EntityType::BuiltIn(b) => self.builtins.contains(*b),
            other => self.custom_all || self.custom_enabled.contains(other),
        }
    }

    /// The minimum score for a type.
    pub fn threshold_for(&self, entity: &EntityType) -> f32 {
        self.spec
            .thresholds
            .get(entity)
            .copied()
            .unwrap_or(self.spec.threshold)
    }

    /// The operator for a type.
    pub fn operator_for(&self, entity: &EntityType) -> &Operator {
        self.spec
            .operators
            .get(entity)
            .unwrap_or(&self.spec.default_operator)
    }

    /// Whether a value is on the allow-list.
    pub fn is_allowed(&self, value: &str) -> bool {
        if self.allow.is_empty() {
            return false;
        }
        let mut buf = [0u8; 256];
        match fold_into(value.trim(), &mut buf) {
            Some(folded) => self.allow.contains(folded),
            None => fold_owned(value).is_some_and(|f| self.allow.contains(&f)),
        }
    }
}

fn fold_owned(value: &str) -> Option<String> {
    let folded = value.trim().to_lowercase();
    (!folded.is_empty()).then_some(folded)
}

impl TryFrom<PolicySpec> for Policy {
    type Error = PolicyError;

    fn try_from(spec: PolicySpec) -> Result<Self, Self::Error> {
        Policy::new(spec)
    }
}

impl From<Policy> for PolicySpec {
    fn from(policy: Policy) -> Self {
        policy.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let json = r#"{
            "entities": ["EMAIL_ADDRESS", "EMPLOYEE_ID"],
            "threshold": 0.4,
            "allow_list": ["support@example.com"],
            "custom_recognizers": [{"kind": "regex", "entity": "EMPLOYEE_ID", "pattern": "EMP-\\d{6}", "context": ["employee"]}],
            "operators": {"EMAIL_ADDRESS": {"type": "mask", "keep_last": 3}},
            "default_operator": {"type": "pseudonymize"},
            "languages": ["de"],
            "phone_regions": ["DE", "UK"]
        }"#;
        let policy: Policy = serde_json::from_str(json).expect("valid policy");
        assert!(policy.is_enabled(&BuiltIn::EmailAddress.into()));
        assert!(!policy.is_enabled(&BuiltIn::PhoneNumber.into()));
        assert!(policy.is_allowed("Support@Example.com "));
        assert_eq!(
            policy.operator_for(&BuiltIn::EmailAddress.into()),
            &Operator::Mask {
                keep_last: 3,
                mask_char: '*'
            }
        );
        let back = serde_json::to_string(&policy).expect("serializes");
        let again: Policy = serde_json::from_str(&back).expect("round trip");
        assert_eq!(again.spec(), policy.spec());
    }

    #[test]
    fn rejects_bad_input() {
        let bad = PolicySpec {
            threshold: 1.5,
            ..PolicySpec::default()
        };
        assert_eq!(
            Policy::new(bad).err(),
            Some(PolicyError::OutOfRange { field: "threshold" })
        );
        let bad = PolicySpec {
            phone_regions: vec!["XX".into()],
            ..PolicySpec::default()
        };
        assert!(matches!(
            Policy::new(bad),
            Err(PolicyError::UnknownRegion(_))
        ));
        let bad = PolicySpec {
            custom_recognizers: vec![CustomRecognizerSpec::Regex {
                entity: "X".into(),
                pattern: "(".into(),
                score: 0.5,
                context: vec![],
            }],
            ..PolicySpec::default()
        };
        assert!(matches!(
            Policy::new(bad),
            Err(PolicyError::BadPattern { .. })
        ));
    }
}
