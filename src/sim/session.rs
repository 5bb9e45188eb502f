//! One client connection: handshake, client id, the request loop and the writer (where the
//! message-counting faults fire).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::conn::{error_frame, Conn, Control, Shared};
use super::faults::Fault;
use super::proto::{self, in_id, out_id};
use super::record::{Outcome, RequestRecord};
use super::wire::{self, FrameError};
use super::{contracts, history, mktdata};
use crate::domain::codes::{
    notice_text, CLIENT_ID_IN_USE, CLIENT_ID_IN_USE_TEXT, HISTORICAL_FARM_OK, MARKET_DATA_FARM_OK, SEC_DEF_FARM_OK,
};

/// Time a client has to complete the handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The account the simulated login manages.
pub const ACCOUNT: &str = "DU1234567";

struct ClientSlot {
    shared: Arc<Shared>,
    id: i32,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.shared.clients.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

/// Serves one connection until the client leaves, a fault drops it or the gateway stops.
pub async fn run(socket: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Result<(), FrameError> {
    let (mut rd, mut wr) = socket.into_split();
    let range = tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_greeting(&mut rd))
        .await
        .map_err(|_| FrameError::BadHandshake("timeout".into()))??;
    let version = match wire::negotiate(range) {
        Some(v) => v,
        None if range.1 < wire::SERVER_VERSION_RANGE.0 => {
            wr.write_all(&wire::version_refusal(range)).await?;
            let _ = wr.shutdown().await;
            let rec = RequestRecord::new(-1, None, "handshake_refused");
            shared.record(RequestRecord { outcome: Outcome::Error { code: wire::UNSUPPORTED_VERSION }, ..rec });
            return Err(FrameError::BadHandshake(format!("client versions {}..{} refused with 506", range.0, range.1)));
        }
        None => wire::SERVER_VERSION_RANGE.1,
    };
    let now = history::spec::format_eastern(shared.market.now());
    wr.write_all(&wire::handshake_reply(version, &now)).await?;
    let body = tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_body(&mut rd, 4, wire::MAX_REQUEST_FRAME))
        .await
        .map_err(|_| FrameError::BadHandshake("timeout".into()))??;
    let client_id = match wire::split_id(&body) {
        Some((Some(out_id::START_API), payload)) => {
            proto::StartApi::decode(payload).ok().and_then(|s| s.client_id).unwrap_or(0)
        }
        _ => return Err(FrameError::BadHandshake("expected StartApi".into())),
    };
    if !shared.clients.lock().unwrap_or_else(|e| e.into_inner()).insert(client_id) {
        wr.write_all(&error_frame(-1, CLIENT_ID_IN_USE, CLIENT_ID_IN_USE_TEXT)).await?;
        return Ok(());
    }
    let _slot = ClientSlot { shared: shared.clone(), id: client_id };
    let (tx, rx) = mpsc::unbounded_channel();
    let (dead_tx, mut dead) = watch::channel(false);
    let writer = tokio::spawn(writer(wr, rx, shared.clone(), shared.control.subscribe(), dead_tx));
    let mut conn = Conn::new(shared, client_id, tx);
    greet(&conn);
    loop {
        tokio::select! {
            body = wire::read_body(&mut rd, 4, wire::MAX_REQUEST_FRAME) => match body {
                Ok(body) => dispatch(&mut conn, &body),
                Err(e) => { shutdown(&mut conn, writer); return Err(e) }
            },
            _ = stop.changed() => break,
            _ = dead.changed() => break,
        }
    }
    shutdown(&mut conn, writer);
    Ok(())
}

fn shutdown(conn: &mut Conn, writer: JoinHandle<()>) {
    let ids: Vec<i32> = conn.open.keys().copied().collect();
    for id in ids {
        conn.close(id);
    }
    writer.abort();
}

fn greet(conn: &Conn) {
    conn.send(in_id::NEXT_VALID_ID, &proto::NextValidId { order_id: Some(1) });
    conn.send(in_id::MANAGED_ACCOUNTS, &proto::ManagedAccounts { accounts_list: Some(ACCOUNT.into()) });
    for code in [MARKET_DATA_FARM_OK, HISTORICAL_FARM_OK, SEC_DEF_FARM_OK] {
        conn.error(-1, code, notice_text(code));
    }
}

/// Writes queued frames, counting them for the message-count faults.
async fn writer(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
    mut control: broadcast::Receiver<Control>,
    dead: watch::Sender<bool>,
) {
    let mut sent: u64 = 0;
    let mut noticed: Vec<i32> = Vec::new();
    loop {
        let frame = tokio::select! {
            f = rx.recv() => match f { Some(f) => f, None => break },
            c = control.recv() => match c {
                Ok(Control::Notice(code)) => error_frame(-1, code, notice_text(code)),
                Ok(Control::Drop) => break,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if wr.write_all(&frame).await.is_err() {
            break;
        }
        sent += 1;
        match after_send(&shared, sent, &mut noticed) {
            AfterSend::Continue => {}
            AfterSend::Write(extra) => {
                if wr.write_all(&extra).await.is_err() {
                    break;
                }
            }
            AfterSend::Drop => break,
        }
    }
    let _ = wr.shutdown().await;
    let _ = dead.send(true);
}

enum AfterSend {
    Continue,
    Write(Vec<u8>),
    Drop,
}

fn after_send(shared: &Shared, sent: u64, noticed: &mut Vec<i32>) -> AfterSend {
    let faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for f in faults {
        match f {
            Fault::DropAfter(n) if sent >= n && !shared.fired_drop.swap(true, Ordering::SeqCst) => {
                return AfterSend::Drop
            }
            Fault::MalformedAfter(n) if sent >= n && !shared.fired_malformed.swap(true, Ordering::SeqCst) => {
                // A length prefix of 1 cannot hold a message id: the client must treat the stream
                // as desynchronised.
                return AfterSend::Write(vec![0, 0, 0, 1, 0xFF]);
            }
            Fault::Notice { code, after } if sent >= after && !noticed.contains(&code) => {
                noticed.push(code);
                return AfterSend::Write(error_frame(-1, code, notice_text(code)));
            }
            _ => {}
        }
    }
    AfterSend::Continue
}

/// Routes one request frame. Nothing a client sends may panic or stop the gateway: unknown ids,
/// text framing and undecodable payloads are answered with IB's errors and the loop goes on.
fn dispatch(conn: &mut Conn, body: &[u8]) {
    let Some((id, payload)) = wire::split_id(body) else {
        return;
    };
    if Fault::silences(&conn.shared.faults.lock().unwrap_or_else(|e| e.into_inner())) {
        return conn.record(RequestRecord::new(conn.client_id, None, "silenced"), Outcome::Stalled);
    }
    let Some(id) = id else {
        conn.record(RequestRecord::new(conn.client_id, None, "text_frame"), Outcome::Error { code: 505 });
        conn.error(-1, 505, "Fatal Error: Unknown message id.");
        return;
    };
    let result = match id {
        out_id::REQ_CONTRACT_DATA => contracts::contract_details(conn, payload),
        out_id::REQ_SEC_DEF_OPT_PARAMS => contracts::option_chain(conn, payload),
        out_id::REQ_HISTORICAL_DATA => history::historical(conn, payload),
        out_id::REQ_HEAD_TIMESTAMP => history::head_timestamp(conn, payload),
        out_id::REQ_MKT_DATA => mktdata::request(conn, payload),
        out_id::REQ_MARKET_DATA_TYPE => mktdata::set_type(conn, payload),
        out_id::CANCEL_MKT_DATA => cancel(conn, payload, "cancel_market_data"),
        out_id::CANCEL_HISTORICAL_DATA => cancel(conn, payload, "cancel_historical_data"),
        out_id::CANCEL_HEAD_TIMESTAMP => cancel(conn, payload, "cancel_head_timestamp"),
        out_id::CANCEL_CONTRACT_DATA => cancel(conn, payload, "cancel_contract_data"),
        out_id::REQ_CURRENT_TIME => {
            conn.send(
                in_id::CURRENT_TIME,
                &proto::CurrentTime { current_time: Some(conn.shared.market.now().timestamp()) },
            );
            conn.record(RequestRecord::new(conn.client_id, None, "current_time"), Outcome::Ok { rows: 1 });
            Ok(())
        }
        other => {
            conn.record(RequestRecord::new(conn.client_id, None, &format!("unsupported:{other}")), Outcome::Accepted);
            Ok(())
        }
    };
    if let Err(e) = result {
        conn.record(
            RequestRecord::new(conn.client_id, None, &format!("undecodable:{id}")),
            Outcome::Error { code: 320 },
        );
        conn.error(-1, 320, &format!("Error reading request. Unable to parse data. {e}"));
    }
}

/// Cancels any id, known or not, quietly (as TWS does for historical and contract requests).
fn cancel(conn: &mut Conn, payload: &[u8], kind: &str) -> Result<(), prost::DecodeError> {
    let req = proto::ReqIdOnly::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    conn.close(id);
    conn.record(RequestRecord::new(conn.client_id, Some(id), kind), Outcome::Accepted);
    Ok(())
}
