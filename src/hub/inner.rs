//! The hub's shared core (its store, clock, client, admission and delivery wake-up), in a leaf
//! so that the request side (the parent) and the delivery task ([`super::deliver`]) both use it
//! without depending on each other.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use super::verify;
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::topics::ChangedTopics;

/// The hub state its request side and its delivery task share.
pub(crate) struct Inner {
    pub(super) config: Arc<Config>,
    pub(super) store: Arc<dyn Store>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) client: reqwest::Client,
    /// Other replicas write to this store (PostgreSQL), so a delivery renders its document
    /// afresh instead of trusting this replica's cache.
    pub(super) shared_store: bool,
    pub(super) admission: Mutex<verify::Admission>,
    pub(super) in_flight: Semaphore,
    /// What writes changed, waiting to be marked (shared with the [`crate::app::App`]).
    pub(super) topics: Arc<ChangedTopics>,
    /// Wakes the delivery task: rows were marked.
    pub(super) due: Notify,
    pub(super) stop: watch::Sender<bool>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The runtime the hub was made on: verifications run there, not on the HTTP worker that
    /// took the request, so the client's connections live beside the delivery task's.
    pub(super) runtime: tokio::runtime::Handle,
}
