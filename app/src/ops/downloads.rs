//! Downloads: which part of an archive a request asks for, and which
//! request of a download is audited. A download may take many requests (a
//! browser or `curl -C -` resuming with `Range`, a `HEAD` first); it is
//! recorded once, by the request that starts it: the whole file, or a range
//! from its first byte. Refusals are always recorded.

use super::BackupId;
use crate::error::AppError;
use crate::ssr::{AdminUser, AppState};

/// What a download request asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct DownloadRequest<'a> {
    /// The `Range` header, if any.
    pub range: Option<&'a str>,
    /// A `HEAD` request: the headers only.
    pub head: bool,
}

/// The bytes of the archive to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Whole,
    /// Inclusive byte positions.
    Range(u64, u64),
    /// A range past the end (416).
    Unsatisfiable,
}

/// An archive opened for a request, and the part of it to send.
pub struct ServedDownload {
    pub download: lms_backup::Download,
    pub part: Part,
}

/// Opens a backup's archive for download after checking it against its
/// manifest; audits the request that starts a download. The caller
/// streams the part.
pub async fn open_download(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
    request: DownloadRequest<'_>,
) -> Result<ServedDownload, AppError> {
    let opened = state.engine.open_download(id.get()).await;
    let part = opened.as_ref().ok().map(|dl| match request.range {
        Some(spec) => parse_range(spec, dl.size),
        None => Part::Whole,
    });
    let starts_a_download = match part {
        None => true,
        Some(Part::Whole | Part::Range(0, _)) => !request.head,
        Some(Part::Range(..) | Part::Unsatisfiable) => false,
    };
    if starts_a_download {
        state
            .engine
            .audit_download(id.get(), &admin.actor(), &opened)
            .await;
    }
    let download = opened?;
    Ok(ServedDownload {
        download,
        part: part.unwrap_or(Part::Whole),
    })
}

/// The part a `Range` header asks for: a single byte range, or the whole
/// file for anything else we do not serve (several ranges, other units).
fn parse_range(spec: &str, size: u64) -> Part {
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Part::Whole;
    };
    if spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Part::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (false, true) => first
            .parse::<u64>()
            .ok()
            .map(|s| (s, size.saturating_sub(1))),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(size.saturating_sub(1)))),
            _ => None,
        },
        (true, false) => last
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (size.saturating_sub(n), size.saturating_sub(1))),
        (true, true) => None,
    };
    match parsed {
        Some((start, end)) if start < size && start <= end => Part::Range(start, end),
        Some(_) => Part::Unsatisfiable,
        None => Part::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed() {
        assert_eq!(parse_range("bytes=0-99", 1000), Part::Range(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Part::Range(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Part::Range(900, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), Part::Range(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Part::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Part::Whole);
        assert_eq!(parse_range("items=0-1", 1000), Part::Whole);
        assert_eq!(parse_range("bytes=5-1", 1000), Part::Whole);
    }
}
