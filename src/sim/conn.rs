//! What a request handler is handed: the gateway's shared state and one connection's state.
//!
//! A leaf under the handlers: it imports none of them, nor the session or the server that drive
//! them, so `contracts`, `history` and `mktdata` depend on this module and not on each other.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::faults::Fault;
use super::market::Market;
use super::pacing::Pacer;
use super::proto::{self, in_id};
use super::record::{Journal, Outcome, RequestRecord};
use super::wire;

/// Messages from the handle to every live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Send a request-less notice with this code.
    Notice(i32),
    /// Close the connection (a dropped socket as the client sees it).
    Drop,
}

/// State shared by all connections.
#[derive(Debug)]
pub struct Shared {
    /// The market.
    pub market: Market,
    /// Historical pacing.
    pub pacer: Mutex<Pacer>,
    /// Faults configured.
    pub faults: Mutex<Vec<Fault>>,
    /// Set once a one-shot fault (drop, malformed) has fired.
    pub fired_drop: AtomicBool,
    /// Set once the malformed-frame fault has fired.
    pub fired_malformed: AtomicBool,
    /// Refuse every connection.
    pub refuse: AtomicBool,
    /// Client ids connected.
    pub clients: Mutex<HashSet<i32>>,
    /// Requests received.
    pub journal: Journal,
    /// Broadcast to connections.
    pub control: broadcast::Sender<Control>,
}

impl Shared {
    /// Whether requests of `kind` are stalled by a fault.
    pub fn stalled(&self, kind: &str) -> bool {
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|f| matches!(f, Fault::Stall(k) if k == kind))
    }

    /// Records a request.
    pub fn record(&self, r: RequestRecord) {
        self.journal.push(r);
    }
}

/// A request left open on this connection.
#[derive(Debug)]
pub enum OpenReq {
    /// A stalled request (counts against the 50-open pacing limit if historical).
    Stalled {
        /// Whether it is a historical request.
        historical: bool,
    },
    /// A market-data stream.
    Stream(JoinHandle<()>),
}

/// The state of one connection, handed to the request handlers.
#[derive(Debug)]
pub struct Conn {
    /// Shared gateway state.
    pub shared: Arc<Shared>,
    /// The client's id.
    pub client_id: i32,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Open requests by id.
    pub open: HashMap<i32, OpenReq>,
    /// Market data type set by the client (1 live, 2 frozen, 3 delayed, 4 delayed frozen).
    pub market_data_type: i32,
}

impl Conn {
    /// A connection of `client_id` whose frames go to `tx`, with nothing open and live market
    /// data (TWS's default type).
    pub fn new(shared: Arc<Shared>, client_id: i32, tx: mpsc::UnboundedSender<Vec<u8>>) -> Self {
        Conn { shared, client_id, tx, open: HashMap::new(), market_data_type: 1 }
    }

    /// Queues a protobuf message.
    pub fn send(&self, msg_id: i32, msg: &impl Message) {
        let _ = self.tx.send(wire::frame(msg_id, msg));
    }

    /// A sender for background streams.
    pub fn sender(&self) -> mpsc::UnboundedSender<Vec<u8>> {
        self.tx.clone()
    }

    /// Sends IB's error message for a request (`id` −1 for none).
    pub fn error(&self, id: i32, code: i32, text: &str) {
        let _ = self.tx.send(error_frame(id, code, text));
    }

    /// Records a request with its outcome.
    pub fn record(&self, mut r: RequestRecord, outcome: Outcome) {
        r.outcome = outcome;
        self.shared.record(r);
    }

    /// Closes request `id` if open (stream aborted, stalled slot released).
    pub fn close(&mut self, id: i32) {
        match self.open.remove(&id) {
            Some(OpenReq::Stream(h)) => h.abort(),
            Some(OpenReq::Stalled { historical: true }) => {
                self.shared.pacer.lock().unwrap_or_else(|e| e.into_inner()).close()
            }
            _ => {}
        }
    }
}

/// An Error frame as TWS sends it.
pub fn error_frame(id: i32, code: i32, text: &str) -> Vec<u8> {
    let msg = proto::ErrorMessage {
        id: Some(id),
        error_time: Some(chrono::Utc::now().timestamp_millis()),
        error_code: Some(code),
        error_msg: Some(text.into()),
    };
    wire::frame(in_id::ERROR, &msg)
}
