//! The duplicate window of each stream a publisher writes to, as the
//! server reports it: read once per stream and kept.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

/// Each stream's duplicate window, by stream name.
#[derive(Debug, Default)]
pub(super) struct Windows(RwLock<HashMap<&'static str, Duration>>);

impl Windows {
    /// The window of `stream`, if it was read.
    pub(super) fn get(&self, stream: &str) -> Option<Duration> {
        self.0.read().ok()?.get(stream).copied()
    }

    /// Keeps the window of `stream`.
    pub(super) fn insert(&self, stream: &'static str, window: Duration) {
        if let Ok(mut windows) = self.0.write() {
            windows.insert(stream, window);
        }
    }
}
