//! Paging through a CMS's published items by time, for the catch-up sweep and backfill alike.
//!
//! Pages are keyed by time: each listing starts at the newest change the previous page held, so
//! an item edited mid-listing (which moves to the end of the CMS's order) never shifts another
//! past a page boundary unseen. The CMS's own cursor is used only to step over a page whose items
//! all share one timestamp. Items at a page boundary may therefore be listed twice; callers
//! deduplicate (accepting content is idempotent).

use super::{CmsAdapter, ListError, Listed};

/// The coarsest CMS timestamp: WordPress writes whole seconds.
const TIMESTAMP_GRAIN_MS: i64 = 1000;

/// One step of a listing.
pub enum Paged {
    /// The next page's items changed since the window's start (oldest change first), and the
    /// newest change among them: every item changed before it has now been listed.
    Items { items: Vec<Listed>, newest: i64 },
    /// Everything has been listed.
    End,
    /// This CMS (or its configuration) cannot list.
    Unlisted,
}

pub struct Pager<'a> {
    adapter: &'a dyn CmsAdapter,
    since: i64,
    cursor: Option<String>,
    ended: bool,
}

impl<'a> Pager<'a> {
    /// Lists what `adapter` published or changed since `since_ms` (unix ms; 0 for everything).
    pub fn new(adapter: &'a dyn CmsAdapter, since_ms: i64) -> Pager<'a> {
        Pager {
            adapter,
            since: since_ms,
            cursor: None,
            ended: false,
        }
    }

    pub async fn next(&mut self) -> Result<Paged, ListError> {
        if self.ended {
            return Ok(Paged::End);
        }
        let Some(page) = self
            .adapter
            .list_published(self.since, self.cursor.as_deref())
            .await?
        else {
            self.ended = true;
            return Ok(Paged::Unlisted);
        };
        let since = self.since;
        // A CMS filter coarser than ours (whole seconds or minutes, a site's local time) can
        // list items changed before the window: never hand those on (for the sweep they may
        // predate the source's first sweep). CMS timestamps may be cut to the second
        // (WordPress), so an item stamped within the second before `since` may be newer than
        // it: kept.
        let items: Vec<Listed> = page
            .items
            .into_iter()
            .filter(|item| item.changed_ms + TIMESTAMP_GRAIN_MS > since)
            .collect();
        let newest = items.iter().map(|i| i.changed_ms).fold(since, i64::max);
        self.cursor = match page.next {
            None => {
                self.ended = true;
                None
            }
            Some(_) if newest > since => {
                self.since = newest;
                None
            }
            // A page of one timestamp that the CMS cannot page past: stop here (a sweep's
            // watermark stays at that timestamp and its next sweep starts there again).
            Some(next) if self.cursor.as_deref() == Some(next.as_str()) => {
                self.ended = true;
                None
            }
            Some(next) => Some(next),
        };
        Ok(Paged::Items { items, newest })
    }
}
