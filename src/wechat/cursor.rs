//! The cursors of a paged listing (`user/get`'s `next_openid`,
//! `batch/get_by_user`'s and `groupchat/list`'s `next_cursor`): each page's
//! next cursor must be one the server never handed out before, or it is
//! repeating a page and the listing stops with [`ApiError::RepeatedPage`]
//! instead of looping for ever.

use std::collections::HashSet;

use super::error::ApiError;

/// The cursors a listing was handed so far, and its pages.
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    seen: HashSet<String>,
    pages: usize,
}

impl Cursors {
    /// Counts one page whose next cursor is `next` (None: the list is
    /// over); a `next` handed out before is a repeated page.
    pub(crate) fn page(
        &mut self,
        next: Option<&str>,
        account_id: &str,
        endpoint: &'static str,
    ) -> Result<(), ApiError> {
        self.pages += 1;
        match next {
            Some(next) if !self.seen.insert(next.to_string()) => Err(ApiError::RepeatedPage {
                account_id: account_id.to_string(),
                endpoint,
                pages: self.pages,
            }),
            _ => Ok(()),
        }
    }

    /// Pages counted so far.
    pub(crate) fn pages(&self) -> usize {
        self.pages
    }
}
