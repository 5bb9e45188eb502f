//! Garbage, truncated and oversized frames never crash or hang the simulator, and a well-behaved
//! client keeps being served meanwhile. Seeded, bounded in count and time.

use std::time::Duration;

use ibapi::contracts::Contract;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{client, start, AFTER_CLOSE};
use twslake::sim::proto::{self, out_id};
use twslake::sim::wire;

const CASES: usize = 160;

fn greeting() -> Vec<u8> {
    let mut g = b"API\0".to_vec();
    g.extend(wire::with_length(b"v213..226"));
    g
}

/// A session past the handshake, as client `id`.
async fn logged_in(addr: &str, id: i32) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&greeting()).await?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await?;
    s.write_all(&wire::frame(out_id::START_API, &proto::StartApi { client_id: Some(id), optional_capabilities: None }))
        .await?;
    Ok(s)
}

fn garbage(rng: &mut StdRng, case: usize) -> (bool, Vec<u8>) {
    let mut random = |n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    match case % 8 {
        0 => (false, random(1 + case % 300)),
        1 => (false, [greeting(), random(case % 64)].concat()),
        2 => (false, [b"API\0".to_vec(), vec![0xFF, 0xFF, 0xFF, 0xFF]].concat()),
        3 => {
            // A frame with a plausible length and a random id and payload.
            let id: i32 = 200 + (case as i32 * 7) % 120;
            let mut body = id.to_be_bytes().to_vec();
            body.extend(random(case % 48));
            (true, wire::with_length(&body))
        }
        4 => (true, [vec![0, 0, 0, 100], 220i32.to_be_bytes().to_vec(), random(10)].concat()),
        5 => (true, vec![0x40, 0, 0, 0, 1, 2, 3]),
        6 => (true, wire::with_length(&[&9i32.to_be_bytes()[..], b"1\0SPY\0STK\0"].concat())),
        _ => {
            let cancels = [
                out_id::CANCEL_MKT_DATA,
                out_id::CANCEL_HISTORICAL_DATA,
                out_id::CANCEL_HEAD_TIMESTAMP,
                out_id::CANCEL_CONTRACT_DATA,
            ];
            let id = cancels[case % 4];
            (true, wire::frame(id, &proto::ReqIdOnly { req_id: Some(rng.random()) }))
        }
    }
}

async fn throw(addr: String, case: usize, bytes: Vec<u8>, login: bool) {
    let session = async {
        let mut s =
            if login { logged_in(&addr, 10_000 + case as i32).await? } else { TcpStream::connect(&addr).await? };
        s.write_all(&bytes).await?;
        let mut sink = [0u8; 4096];
        // Read whatever comes back until the gateway closes or goes quiet.
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_crashes_and_others_keep_being_served() {
    let sim = start(AFTER_CLOSE).await;
    let good = client(&sim, 1).await;
    let mut rng = StdRng::seed_from_u64(42);
    let cases: Vec<(usize, bool, Vec<u8>)> = (0..CASES)
        .map(|i| {
            let (login, bytes) = garbage(&mut rng, i);
            (i, login, bytes)
        })
        .collect();
    let addr = sim.address();
    let fuzz = tokio::spawn(async move {
        for chunk in cases.chunks(16) {
            let tasks: Vec<_> = chunk
                .iter()
                .cloned()
                .map(|(i, login, bytes)| tokio::spawn(throw(addr.clone(), i, bytes, login)))
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        }
    });
    let mut served = 0;
    while !fuzz.is_finished() {
        let d =
            good.contract_details(&Contract::stock("QQQ").build()).await.expect("the good client is served throughout");
        assert_eq!(d.len(), 1);
        served += 1;
    }
    tokio::time::timeout(Duration::from_secs(60), fuzz)
        .await
        .expect("fuzzing is bounded")
        .expect("no panic in the fuzzer");
    assert!(served > 0);
    // The gateway still accepts and serves new clients, and recorded the garbage it understood.
    let late = client(&sim, 2).await;
    assert_eq!(late.contract_details(&Contract::stock("SPY").build()).await.expect("served").len(), 1);
    assert!(sim.requests().iter().any(|r| r.kind.starts_with("cancel_")));
    assert!(sim.requests().iter().any(|r| r.kind == "text_frame"));
}
