//! Micro-batches on local disk and S3: appended beside the day partition, read merged on the
//! primary key by every reader, compacted without losing or doubling a row, even when a
//! compaction is interrupted between its replace and its deletes.

use super::*;
use crate::lake::on_both;
use crate::support::Fixture;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use twslake::lake::layout::{DataObject, MicroBatch, Partition};
use twslake::query::collect;
use twslake::query::status;
use twslake::query::Scans;

fn ts(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn q(seq: i64, at: DateTime<Utc>, ingested_at: DateTime<Utc>, bid: f64) -> Quote {
    Quote {
        ts: at + chrono::Duration::microseconds(seq),
        date: twslake::calendar::trading_date(at),
        con_id: 1000 + seq % 3,
        seq,
        sec_type: twslake::domain::SecType::Stock,
        bid: Some(bid),
        ask: Some(bid + 0.01),
        ingested_at,
        ..Default::default()
    }
}

/// (seq, bid) of every row the polars scan returns for SPY's quotes, sorted by seq.
async fn scanned(lake: &Lake) -> Vec<(i64, f64)> {
    let spy = Symbol::new("SPY").unwrap();
    let filter = twslake::query::ScanFilter::symbol(&spy);
    let df = collect(Scans::new(lake).scan(Dataset::Quotes, &filter).await.unwrap()).await.unwrap();
    let seqs = df.column("seq").unwrap().i64().unwrap().clone();
    let bids = df.column("bid").unwrap().f64().unwrap().clone();
    let mut out: Vec<(i64, f64)> = seqs.into_no_null_iter().zip(bids.into_no_null_iter()).collect();
    out.sort_by_key(|r| r.0);
    out
}

/// (seq, bid) of every row `read_partition` returns, over all partitions, sorted by seq.
async fn read(lake: &Lake) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> =
        stored(lake, &Symbol::new("SPY").unwrap()).await.iter().map(|q| (q.seq, q.bid.unwrap())).collect();
    out.sort_by_key(|r| r.0);
    out
}

async fn micro_batches_merged_and_compacted(f: Fixture) {
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let (day, next) = (ts("2026-11-24T17:00:00Z"), ts("2026-11-25T17:00:00Z"));
    let t0 = ts("2026-11-24T17:00:01Z");
    let t1 = ts("2026-11-24T17:00:03Z");
    // The day file as an earlier run left it, then two flushes of a capture.
    let file: Vec<Quote> = (0..100).map(|i| q(i, day, t0, 1.0)).collect();
    lake.write(Dataset::Quotes, &spy, &quotes::to_batch(&file), None).await.unwrap();
    let flush0: Vec<Quote> = (100..150).map(|i| q(i, day, t1, 2.0)).collect();
    // A retried flush: 120 again, written later with another bid (the later one wins); 130
    // again with the same time and a greater bid (the greater row wins, as in a merge).
    let mut flush1: Vec<Quote> = (150..200).map(|i| q(i, day, t1, 3.0)).collect();
    flush1.push(q(120, day, t1 + chrono::Duration::seconds(2), 9.0));
    flush1.push(q(130, day, t1, 2.5));
    let run = 0x1234_5678_9abc_def0;
    let a = lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&flush0), run, 0).await.unwrap();
    let b = lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&flush1), run, 1).await.unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    // The next trading day has micro-batches only, so far.
    let flush2: Vec<Quote> = (200..210).map(|i| q(i, next, t1, 4.0)).collect();
    lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&flush2), run, 2).await.unwrap();

    // Names are unique: the same (run, seq) is refused and nothing is overwritten.
    let again = lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&flush2[..1]), run, 2).await;
    assert!(again.is_err(), "{} lake: an existing micro-batch is never overwritten", f.name);
    // Bad rows are refused before anything is written.
    let bad = vec![q(300, day, t1, -1.0)];
    assert!(lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&bad), run, 3).await.is_err());

    let p = Partition::for_date(Dataset::Quotes, &spy, None, day.date_naive()).unwrap();
    let p2 = Partition::for_date(Dataset::Quotes, &spy, None, next.date_naive()).unwrap();
    assert_eq!(lake.partitions(Dataset::Quotes, Some(&spy)).await.unwrap(), vec![p.clone(), p2.clone()]);
    assert_eq!(lake.micro_batches(&p).await.unwrap(), [a, b].concat());
    let objects = lake.data_objects(Dataset::Quotes, None).await.unwrap();
    assert_eq!(objects[&p].len(), 3);
    assert!(matches!(objects[&p2][..], [DataObject::MicroBatch(_)]));

    let mut want: Vec<(i64, f64)> = (0..100)
        .map(|i| (i, 1.0))
        .chain((100..150).map(|i| (i, 2.0)))
        .chain((150..200).map(|i| (i, 3.0)))
        .chain((200..210).map(|i| (i, 4.0)))
        .collect();
    want[120].1 = 9.0;
    want[130].1 = 2.5;
    assert_eq!(read(&lake).await, want, "{}: read_partition merges file and micro-batches", f.name);
    assert_eq!(scanned(&lake).await, want, "{}: the polars scan merges as the merge does", f.name);
    let status = status::status(&lake, day).await.unwrap();
    let row = status.iter().find(|r| r.dataset == "quotes").unwrap();
    assert_eq!(row.rows, 210, "{row:?}");
    let v = lake.validate().await.unwrap();
    assert!(v.ok(), "micro-batches are not foreign files: {:?}", v.problems);
    assert_eq!(v.micro_batches, 3);

    // A compaction interrupted after its replace, before its deletes: rows are in the day file
    // and in the micro-batches. Readers still count each once.
    let mut rows = Vec::new();
    for mb in lake.micro_batches(&p).await.unwrap() {
        let path = mb.path();
        let bytes = lake.store().get(&path).await.unwrap().bytes().await.unwrap();
        rows.push(twslake::lake::parquet_io::decode(Dataset::Quotes, path.as_ref(), bytes).unwrap().batch);
    }
    let rows = arrow::compute::concat_batches(&Dataset::Quotes.schema(), &rows).unwrap();
    lake.commit(&p, &rows, &Default::default()).await.unwrap();
    assert_eq!(lake.read_partition_file(&p).await.unwrap().unwrap().batch.num_rows(), 200);
    assert_eq!(read(&lake).await, want, "{}: no row shown twice after an interrupted compaction", f.name);
    assert_eq!(scanned(&lake).await, want);
    assert!(lake.validate().await.unwrap().ok());

    // Compaction: counted before and after, nothing lost, no micro-batch left.
    let done = lake.compact_all(Dataset::Quotes, None).await.unwrap();
    assert_eq!(done.iter().map(|c| (c.micro_batches, c.rows)).collect::<Vec<_>>(), vec![(2, 200), (1, 10)]);
    assert!(lake.micro_batches(&p).await.unwrap().is_empty() && lake.micro_batches(&p2).await.unwrap().is_empty());
    let left = lake.list(Some(&object_store::path::Path::from("quotes"))).await.unwrap();
    assert_eq!(left.len(), 2, "one file per partition: {left:?}");
    assert_eq!(read(&lake).await, want, "{}: compaction loses nothing", f.name);
    assert_eq!(scanned(&lake).await, want);
    let v = lake.validate().await.unwrap();
    assert!(v.ok() && v.micro_batches == 0, "{v:?}");
    assert!(lake.compact_all(Dataset::Quotes, None).await.unwrap().is_empty(), "nothing left to compact");

    // A long capture's roll-up: micro-batches merged into one new micro-batch keep every row.
    let mut mbs = Vec::new();
    for k in 0..3i64 {
        let rows: Vec<Quote> = (210 + 10 * k..220 + 10 * k).map(|i| q(i, day, t1, 5.0)).collect();
        mbs.extend(lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&rows), run, 10 + k as u64).await.unwrap());
    }
    let into = MicroBatch::new(p.clone(), run, 20).unwrap();
    let elsewhere = MicroBatch::new(p2.clone(), run, 21).unwrap();
    assert!(lake.merge_micro_batches(&mbs, &elsewhere).await.is_err(), "micro-batches of another partition");
    assert_eq!(lake.merge_micro_batches(&mbs, &into).await.unwrap(), 30);
    assert_eq!(lake.micro_batches(&p).await.unwrap(), vec![into]);
    want.extend((210..240).map(|i| (i, 5.0)));
    assert_eq!(read(&lake).await, want, "{}: merged micro-batches lose nothing", f.name);
    assert_eq!(scanned(&lake).await, want);
}

on_both!(micro_batches_merged_and_compacted);

/// Readers racing a capture's roll-ups and a compaction always see every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_racing_roll_ups_and_compaction_see_every_row_once() {
    let f = Fixture::local();
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let day = ts("2026-11-24T17:00:00Z");
    let run = 7;
    for k in 0..32i64 {
        let rows: Vec<Quote> = (10 * k..10 * k + 10).map(|i| q(i, day, day, 1.0)).collect();
        lake.append(Dataset::Quotes, &spy, &quotes::to_batch(&rows), run, k as u64).await.unwrap();
    }
    let p = Partition::for_date(Dataset::Quotes, &spy, None, day.date_naive()).unwrap();
    let writer = {
        let (lake, p) = (lake.clone(), p.clone());
        tokio::spawn(async move {
            let mut next = 100;
            loop {
                let mbs = lake.micro_batches(&p).await.unwrap();
                if mbs.len() < 2 {
                    break;
                }
                for pair in mbs.chunks_exact(2) {
                    lake.merge_micro_batches(pair, &MicroBatch::new(p.clone(), run, next).unwrap()).await.unwrap();
                    next += 1;
                }
            }
            lake.compact(&p).await.unwrap().expect("one micro-batch left to compact");
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let d = lake.read_partition(&p).await.unwrap().unwrap();
        assert_eq!(d.batch.num_rows(), 320, "read {reads}");
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    assert_eq!(lake.read_partition_file(&p).await.unwrap().unwrap().batch.num_rows(), 320);
    assert!(lake.micro_batches(&p).await.unwrap().is_empty());
}
