//! What callers send, as types. Each is checked here, once, whichever
//! adapter (REST route or server function) received it; an operation that
//! holds one knows it is well-formed.

use std::str::FromStr;

use serde::Deserialize;

use crate::error::AppError;
use crate::models::ActivityKind;

/// A catalog id: a positive whole number. Made only through the checks
/// below, which refuse anything else with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupId(i64);

impl BackupId {
    pub fn get(self) -> i64 {
        self.0
    }

    fn refused() -> AppError {
        AppError::BadRequest("A backup id is a positive whole number.".into())
    }
}

impl TryFrom<i64> for BackupId {
    type Error = AppError;

    fn try_from(id: i64) -> Result<Self, AppError> {
        if id > 0 {
            Ok(BackupId(id))
        } else {
            Err(Self::refused())
        }
    }
}

/// From a URL path segment: digits only (no signs, dots or escapes reach the
/// catalog).
impl FromStr for BackupId {
    type Err = AppError;

    fn from_str(raw: &str) -> Result<Self, AppError> {
        raw.parse::<i64>().map_err(|_| Self::refused())?.try_into()
    }
}

/// A job id. Anything that is not one names no job: 404, as for an unknown
/// one, so a caller learns nothing from the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobId(uuid::Uuid);

impl JobId {
    pub fn get(self) -> uuid::Uuid {
        self.0
    }
}

impl FromStr for JobId {
    type Err = AppError;

    fn from_str(raw: &str) -> Result<Self, AppError> {
        raw.parse()
            .map(JobId)
            .map_err(|_| AppError::NotFound("job not found".into()))
    }
}

/// Which page of the catalog: `skip` entries from the newest, then at most
/// `limit` (brought into 1..=[`lms_backup::catalog::MAX_PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub skip: i64,
    #[serde(default = "Paging::default_limit")]
    pub limit: i64,
}

impl Paging {
    fn default_limit() -> i64 {
        20
    }

    /// `skip` no less than 0, `limit` within the catalog's page size.
    pub(super) fn clamped(self) -> Paging {
        Paging {
            skip: self.skip.max(0),
            limit: self.limit.clamp(1, lms_backup::catalog::MAX_PAGE),
        }
    }
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            skip: 0,
            limit: Self::default_limit(),
        }
    }
}

/// The `{"confirm": true}` a destructive request must carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Confirmation {
    #[serde(default)]
    pub confirm: bool,
}

impl Confirmation {
    /// 400 unless the caller confirmed.
    pub(super) fn require(self) -> Result<(), AppError> {
        if self.confirm {
            Ok(())
        } else {
            Err(AppError::BadRequest(
                "Send {\"confirm\": true}: this replaces all current data.".into(),
            ))
        }
    }
}

/// A manual backup's optional notes (the engine checks their length and
/// characters against its configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NewBackup {
    pub notes: Option<String>,
}

/// Why a backup is pinned (the engine checks length and characters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PinReason {
    pub reason: String,
}

/// How many audit entries to show: brought into 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityLimit(i64);

impl ActivityLimit {
    pub const MAX: i64 = 100;

    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for ActivityLimit {
    fn from(limit: i64) -> Self {
        ActivityLimit(limit.clamp(1, Self::MAX))
    }
}

/// What part of the activity log to show: a kind and a person, each
/// optional. Made only through [`ActivityFilter::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter(lms_backup::audit::Filter);

impl ActivityFilter {
    /// Longest person name accepted (the log keeps names of at most 64
    /// characters, and marks unverified ones).
    pub const MAX_PERSON_CHARS: usize = 80;

    /// A blank person means everyone; a name with control characters or
    /// longer than [`Self::MAX_PERSON_CHARS`] is refused with 400. (An
    /// unknown kind never gets here: it does not deserialize.)
    pub fn new(kind: Option<ActivityKind>, person: Option<String>) -> Result<Self, AppError> {
        let person = person
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        if let Some(p) = &person {
            if p.chars().count() > Self::MAX_PERSON_CHARS || p.chars().any(char::is_control) {
                return Err(AppError::BadRequest(format!(
                    "A person is a name of at most {} characters.",
                    Self::MAX_PERSON_CHARS
                )));
            }
        }
        Ok(ActivityFilter(lms_backup::audit::Filter { kind, person }))
    }

    pub fn get(&self) -> &lms_backup::audit::Filter {
        &self.0
    }
}

/// An uploaded file's name on the uploader's machine (`?name=` of the
/// upload): without any folder part, at most [`UploadName::MAX_CHARS`]
/// characters, no control characters; a blank one is no name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadName(String);

impl UploadName {
    pub const MAX_CHARS: usize = 255;

    pub fn new(raw: Option<&str>) -> Result<Option<Self>, AppError> {
        let Some(raw) = raw else { return Ok(None) };
        let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.chars().count() > Self::MAX_CHARS || name.chars().any(char::is_control) {
            return Err(AppError::BadRequest(format!(
                "An upload's name is a file name of at most {} characters.",
                Self::MAX_CHARS
            )));
        }
        Ok(Some(UploadName(name.to_owned())))
    }

    pub fn get(&self) -> &str {
        &self.0
    }
}

/// A sign-in attempt. Not `Debug`: the password must not reach a log.
#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_positive_whole_numbers() {
        assert_eq!("42".parse::<BackupId>().map(BackupId::get), Ok(42));
        assert_eq!(BackupId::try_from(7).map(BackupId::get), Ok(7));
        for bad in [
            "../x",
            "%2e%2e%2f",
            "1;rm",
            "-1",
            "0",
            "99999999999999999999999",
            "",
            "1.0",
        ] {
            assert_eq!(bad.parse::<BackupId>(), Err(BackupId::refused()), "{bad:?}");
        }
        for bad in [0, -1, i64::MIN] {
            assert_eq!(BackupId::try_from(bad), Err(BackupId::refused()), "{bad}");
        }
    }

    #[test]
    fn job_ids_that_do_not_parse_are_unknown_jobs() {
        let err = "not-a-uuid".parse::<JobId>().unwrap_err();
        assert_eq!(err.status(), 404);
        assert!("67e55044-10b1-426f-9247-bb680e5fe0c8"
            .parse::<JobId>()
            .is_ok());
    }

    #[test]
    fn only_a_true_confirm_confirms() {
        assert!(Confirmation { confirm: true }.require().is_ok());
        let refused = Confirmation::default().require().unwrap_err();
        assert_eq!(refused.status(), 400);
        assert!(refused.to_string().contains("confirm"));
    }

    #[test]
    fn paging_and_activity_limits_are_brought_into_range() {
        let page = Paging {
            skip: -5,
            limit: 1_000_000,
        }
        .clamped();
        assert_eq!((page.skip, page.limit), (0, lms_backup::catalog::MAX_PAGE));
        assert_eq!(Paging { skip: 3, limit: 0 }.clamped().limit, 1);
        assert_eq!(Paging::default(), Paging { skip: 0, limit: 20 });
        assert_eq!(ActivityLimit::from(0).get(), 1);
        assert_eq!(ActivityLimit::from(500).get(), 100);
        assert_eq!(ActivityLimit::from(30).get(), 30);
    }

    #[test]
    fn activity_filters_take_a_kind_and_a_trimmed_person() {
        let all = ActivityFilter::new(None, Some("   ".into())).unwrap();
        assert_eq!(all.get(), &lms_backup::audit::Filter::default());
        let bob = ActivityFilter::new(Some(ActivityKind::Restores), Some(" bob ".into())).unwrap();
        assert_eq!(bob.get().person.as_deref(), Some("bob"));
        assert_eq!(bob.get().kind, Some(ActivityKind::Restores));
        for bad in ["x".repeat(81), "bob\u{0}".into(), "a\nb".into()] {
            let refused = ActivityFilter::new(None, Some(bad)).unwrap_err();
            assert_eq!(refused.status(), 400);
        }
    }

    #[test]
    fn upload_names_lose_their_folders() {
        let name = |raw| UploadName::new(raw).map(|n| n.map(|n| n.get().to_owned()));
        assert_eq!(name(None), Ok(None));
        assert_eq!(name(Some("  ")), Ok(None));
        assert_eq!(name(Some("nightly.dump")), Ok(Some("nightly.dump".into())));
        assert_eq!(name(Some("C:\\tmp\\a.dump")), Ok(Some("a.dump".into())));
        assert_eq!(name(Some("../../etc/x.dump")), Ok(Some("x.dump".into())));
        assert_eq!(name(Some("a\u{7}.dump")).unwrap_err().status(), 400);
        assert_eq!(name(Some(&"y".repeat(256))).unwrap_err().status(), 400);
    }
}
