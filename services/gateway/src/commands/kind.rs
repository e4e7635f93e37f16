//! The kinds of privacy command and their mapping to the API.

use veil_proto::common::v1::PrivacyCommandType;

/// What the subject asked for, by the right it exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Delete my data (GDPR Art. 17, CCPA right to delete).
    Erase,
    /// Tell me what data you hold about me (GDPR Art. 15, CCPA right to know).
    Access,
    /// Give me my data in a portable format (GDPR Art. 20).
    Export,
    /// Correct data about me that is wrong (GDPR Art. 16).
    Rectify,
    /// Stop using my data for a consent-based purpose (GDPR Art. 7(3)).
    WithdrawConsent,
    /// Do not use my conversations to train AI models.
    OptOutAiTraining,
    /// Objection to processing on legitimate interests (GDPR Art. 21).
    Object,
    /// Restriction of processing (GDPR Art. 18).
    Restrict,
    /// Do not sell or share my personal information (CCPA).
    OptOutSale,
    /// Limit the use of my sensitive personal information (CPRA).
    LimitSensitive,
}

impl CommandKind {
    /// Every kind, in the order of the proto enum.
    pub const ALL: [CommandKind; 10] = [
        CommandKind::Erase,
        CommandKind::Access,
        CommandKind::Export,
        CommandKind::Rectify,
        CommandKind::WithdrawConsent,
        CommandKind::OptOutAiTraining,
        CommandKind::Object,
        CommandKind::Restrict,
        CommandKind::OptOutSale,
        CommandKind::LimitSensitive,
    ];

    /// The proto enum value (`veil.common.v1.PrivacyCommandType`).
    pub fn to_proto(self) -> i32 {
        PrivacyCommandType::from(self) as i32
    }

    /// A stable snake-case name for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Erase => "erase",
            CommandKind::Access => "access",
            CommandKind::Export => "export",
            CommandKind::Rectify => "rectify",
            CommandKind::WithdrawConsent => "withdraw_consent",
            CommandKind::OptOutAiTraining => "opt_out_ai_training",
            CommandKind::Object => "object",
            CommandKind::Restrict => "restrict",
            CommandKind::OptOutSale => "opt_out_sale",
            CommandKind::LimitSensitive => "limit_sensitive",
        }
    }

    /// True for data-subject requests, which go to retention's DSR workflow; the
    /// others are consent or preference changes that consent applies at once.
    pub fn is_data_subject_request(self) -> bool {
        matches!(
            self,
            CommandKind::Erase
                | CommandKind::Access
                | CommandKind::Export
                | CommandKind::Rectify
                | CommandKind::Object
                | CommandKind::Restrict
        )
    }
}

impl From<CommandKind> for PrivacyCommandType {
    fn from(kind: CommandKind) -> Self {
        match kind {
            CommandKind::Erase => PrivacyCommandType::Erase,
            CommandKind::Access => PrivacyCommandType::Access,
            CommandKind::Export => PrivacyCommandType::Export,
            CommandKind::Rectify => PrivacyCommandType::Rectify,
            CommandKind::WithdrawConsent => PrivacyCommandType::WithdrawConsent,
            CommandKind::OptOutAiTraining => PrivacyCommandType::OptOutAiTraining,
            CommandKind::Object => PrivacyCommandType::Object,
            CommandKind::Restrict => PrivacyCommandType::Restrict,
            CommandKind::OptOutSale => PrivacyCommandType::OptOutSaleShare,
            CommandKind::LimitSensitive => PrivacyCommandType::LimitSensitive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CommandKind;
    use veil_proto::common::v1::PrivacyCommandType;

    #[test]
    fn proto_values_are_distinct_and_specified() {
        let mut seen = std::collections::HashSet::new();
        for kind in CommandKind::ALL {
            let value = kind.to_proto();
            assert_ne!(value, PrivacyCommandType::Unspecified as i32, "{kind:?}");
            assert!(seen.insert(value), "{kind:?} reuses {value}");
        }
        assert_eq!(CommandKind::Erase.to_proto(), 1);
        assert_eq!(CommandKind::OptOutSale.to_proto(), 9);
    }
}
