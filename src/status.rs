//! The status of a result, the one vocabulary every stage shares: rules
//! produce `pass`, `fail` and `unknown`, waivers turn a `fail` into
//! `waived`, reports count them.

/// The status of one result: the only vocabulary of the results frame's
/// `status` column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Fail,
    Unknown,
    Waived,
    Pass,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Fail, Status::Unknown, Status::Waived, Status::Pass];

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fail => "fail",
            Status::Unknown => "unknown",
            Status::Waived => "waived",
            Status::Pass => "pass",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
