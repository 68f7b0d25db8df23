//! How far a sync has come, as the app is told.

use ferry_protocol::DownloadPage;

/// The phase a sync is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Sending committed changes.
    Upload,
    /// Bringing the server's data.
    Download,
}

/// How far a sync has come, reported as it goes.
///
/// In the upload phase the counts cover the whole upload. In the download phase they cover the
/// entity being downloaded: its objects and removals received, out of the total the server
/// counted when the entity's download began (changes made on the server meanwhile may add a
/// few). The bytes total of a download is estimated from the pages received so far, and equals
/// the bytes received once the entity's last page is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// The entity being downloaded, in the download phase.
    pub entity: Option<String>,
    /// Objects (and, downloading, removals) sent or received so far.
    pub objects_done: usize,
    /// Objects in all, when known (a server that does not count sends none).
    pub objects_total: Option<usize>,
    /// Bytes sent or received so far.
    pub bytes_done: usize,
    /// Bytes in all, when known or estimated.
    pub bytes_total: Option<usize>,
}

impl Progress {
    /// The upload's progress: `objects_done` of `total` changes, `bytes_done` of `bytes`.
    pub(crate) fn upload(
        objects_done: usize,
        total: usize,
        bytes_done: usize,
        bytes: usize,
    ) -> Self {
        Progress {
            phase: Phase::Upload,
            entity: None,
            objects_done,
            objects_total: Some(total),
            bytes_done,
            bytes_total: Some(bytes),
        }
    }

    /// An entity's download, before its first page.
    pub(crate) fn download(entity: &str) -> Progress {
        Progress {
            phase: Phase::Download,
            entity: Some(entity.to_owned()),
            objects_done: 0,
            objects_total: None,
            bytes_done: 0,
            bytes_total: None,
        }
    }

    /// Counts a download page in: its entries and bytes, the total when the page brings it, and
    /// the bytes still to come at the size per entry seen so far. After the last page the totals
    /// are what was received.
    pub(crate) fn advance(&mut self, page: &DownloadPage, bytes: usize) {
        if let Some(total) = page.total {
            self.objects_total = Some(usize::try_from(total).unwrap_or(usize::MAX));
        }
        self.objects_done += page.objects.len() + page.removed.len();
        self.bytes_done += bytes;
        if !page.more {
            self.objects_total = Some(self.objects_done);
            self.bytes_total = Some(self.bytes_done);
            return;
        }
        let total = self.objects_total.map(|total| total.max(self.objects_done));
        self.objects_total = total;
        self.bytes_total = total.filter(|_| self.objects_done > 0).map(|total| {
            let remaining = (total - self.objects_done) as u128;
            let estimate = remaining * self.bytes_done as u128 / self.objects_done as u128;
            self.bytes_done + usize::try_from(estimate).unwrap_or(usize::MAX)
        });
    }
}
