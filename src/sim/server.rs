//! The listening gateway: builder, accept loop and the handle tests hold (the state its
//! connections share is in [`super::conn`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::conn::{Control, Shared};
use super::faults::Fault;
use super::market::{Clock, Market, SymbolSpec, WallClock};
use super::pacing::{Pacer, RealTicker, Ticker};
use super::record::{Journal, RequestRecord};
use super::session;

/// Builds and starts a simulator.
#[derive(Debug, Clone)]
pub struct SimBuilder {
    listen: String,
    seed: u64,
    symbols: Vec<SymbolSpec>,
    pacing_scale: f64,
    faults: Vec<Fault>,
    clock: Arc<dyn Clock>,
    ticker: Arc<dyn Ticker>,
    request_log: Option<PathBuf>,
}

/// Entry point: `Sim::builder()`.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// A builder with IB's defaults: 127.0.0.1 on a free port, seed 0, the default symbols,
    /// faithful pacing, no faults, the wall clock.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            listen: "127.0.0.1:0".into(),
            seed: 0,
            symbols: SymbolSpec::defaults(),
            pacing_scale: 1.0,
            faults: Vec::new(),
            clock: Arc::new(WallClock),
            ticker: Arc::new(RealTicker),
            request_log: None,
        }
    }
}

impl SimBuilder {
    /// Address to listen on (`host:port`, port 0 for a free one).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }
    /// Seed of the market.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Symbols to list (known ones keep their parameters; others are generated). MSFT, if
    /// present, has no market-data subscription.
    pub fn symbols<S: AsRef<str>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.symbols = symbols
            .into_iter()
            .map(|s| {
                let mut spec = SymbolSpec::for_symbol(s.as_ref());
                spec.subscribed = spec.symbol != "MSFT";
                spec
            })
            .collect();
        self
    }
    /// Full symbol specs.
    pub fn symbol_specs(mut self, specs: Vec<SymbolSpec>) -> Self {
        self.symbols = specs;
        self
    }
    /// Shrinks every pacing window by this factor.
    pub fn pacing_scale(mut self, scale: f64) -> Self {
        self.pacing_scale = scale;
        self
    }
    /// Adds a fault.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }
    /// The market's "now".
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// The pacing windows' monotonic clock.
    pub fn ticker(mut self, ticker: Arc<dyn Ticker>) -> Self {
        self.ticker = ticker;
        self
    }
    /// Appends one JSON line per request to this file.
    pub fn request_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.request_log = Some(path.into());
        self
    }

    /// Binds and starts serving.
    pub async fn start(self) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(&self.listen).await?;
        let addr = listener.local_addr()?;
        let journal = match &self.request_log {
            Some(p) => Journal::with_file(p)?,
            None => Journal::default(),
        };
        let refuse = self.faults.contains(&Fault::RefuseConnections);
        let (control, _) = broadcast::channel(64);
        let shared = Arc::new(Shared {
            market: Market::new(self.seed, self.symbols, self.clock),
            pacer: Mutex::new(Pacer::new(self.pacing_scale, self.ticker)),
            faults: Mutex::new(self.faults),
            fired_drop: AtomicBool::new(false),
            fired_malformed: AtomicBool::new(false),
            refuse: AtomicBool::new(refuse),
            clients: Mutex::new(HashSet::new()),
            journal,
            control,
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(SimHandle { addr, shared, stop: stop_tx, task: Some(task) })
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else { continue };
                if shared.refuse.load(Ordering::Relaxed) {
                    drop(socket);
                    continue;
                }
                let _ = socket.set_nodelay(true);
                let shared = shared.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    if let Err(e) = session::run(socket, shared, stop).await {
                        tracing::debug!(%peer, "session ended: {e}");
                    }
                });
            }
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `host:port` for `ibapi::Client::connect`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.shared.journal.len()
    }
    /// The requests received so far (the last 100,000; the request log keeps them all).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.journal.all()
    }
    /// The market being served (the truth for tests).
    pub fn market(&self) -> &Market {
        &self.shared.market
    }
    /// Sends a request-less notice (1100, 1101, 1102, …) to every connected client.
    pub fn send_notice(&self, code: i32) {
        let _ = self.shared.control.send(Control::Notice(code));
    }
    /// Drops every connection now.
    pub fn drop_connections(&self) {
        let _ = self.shared.control.send(Control::Drop);
    }
    /// Starts or stops refusing connections.
    pub fn refuse_connections(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::Relaxed);
    }
    /// Adds a fault while running.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }
    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.shared.refuse.store(false, Ordering::Relaxed);
    }
    /// Historical requests currently open.
    pub fn open_historical(&self) -> usize {
        self.shared.pacer.lock().unwrap_or_else(|e| e.into_inner()).open()
    }
    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
