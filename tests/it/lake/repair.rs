//! A damaged lake diagnosed and repaired; reads tied to one version of a file; `_tmp/` residue;
//! symbolic links; URL edges.

use crate::ingest::{ingest, sim_at, small_config, AFTER_CLOSE};
use crate::support::*;
use object_store::{GetOptions, GetRange, ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;
use twslake::datasets::Dataset;
use twslake::domain::Symbol;
use twslake::lake::validate::ProblemKind;
use twslake::lake::Location;
use twslake::{Error, Lake};

/// Rows of every bar partition of `symbol`.
async fn rows_by_partition(lake: &Lake, symbol: &Symbol) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ds in [Dataset::EquityBars, Dataset::OptionBars] {
        for p in lake.partitions(ds, Some(symbol)).await.unwrap() {
            let rows = lake.read_partition(&p).await.unwrap().map_or(0, |d| d.batch.num_rows());
            out.insert(p.path().to_string(), rows);
        }
    }
    out
}

/// A zero-byte, a truncated and a random-bytes file in a lake made from the simulator:
/// `update` stops naming one and the repair; `validate` names all three; `validate --repair`
/// moves them to `_quarantine/` and revokes their entries; the next `update` fetches them
/// again, and the lake validates clean with the rows it had.
async fn damaged_files_are_named_quarantined_and_fetched_again(f: Fixture) {
    let sim = sim_at(AFTER_CLOSE).await;
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    assert!(ingest(&sim, &lake, small_config()).await.setup(std::slice::from_ref(&spy)).await.complete());
    let before = rows_by_partition(&lake, &spy).await;
    let daily = before.keys().find(|p| p.contains("/1d-")).unwrap().clone();
    let minute = before.keys().find(|p| p.starts_with("equity_bars") && p.contains("/1min-")).unwrap().clone();
    let option = before.keys().find(|p| p.starts_with("option_bars")).unwrap().clone();
    let store = lake.store();
    let whole = store.get(&minute.as_str().into()).await.unwrap().bytes().await.unwrap();
    store.put(&daily.as_str().into(), PutPayload::from_static(b"")).await.unwrap();
    store.put(&minute.as_str().into(), PutPayload::from(whole.slice(..whole.len() / 2))).await.unwrap();
    let noise: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    store.put(&option.as_str().into(), PutPayload::from(noise)).await.unwrap();

    let stopped = ingest(&sim, &lake, small_config()).await.update(std::slice::from_ref(&spy)).await;
    assert!(!stopped.complete(), "update does not pass over a damaged file ({})", f.name);
    let why = stopped.symbols[0].error.clone().unwrap_or_default();
    assert!(
        [&daily, &minute, &option].iter().any(|p| why.contains(p.as_str())) && why.contains("validate --repair"),
        "the error names the file and the repair ({}): {why}",
        f.name
    );

    let report = lake.validate().await.unwrap();
    for p in [&daily, &minute, &option] {
        let named = report.problems.iter().any(|pb| pb.kind == ProblemKind::Corrupt && &pb.path == p);
        assert!(named, "validate names {p} ({}): {:#?}", f.name, report.problems);
    }
    let done = lake.repair(&report).await.unwrap();
    assert_eq!(done.moved.len(), 3, "{:?}", done.moved);
    assert!(done.revoked > 0);
    for p in [&daily, &minute, &option] {
        let aside = format!("_quarantine/{p}");
        assert!(store.head(&aside.as_str().into()).await.is_ok(), "{aside} kept ({})", f.name);
        assert!(store.head(&p.as_str().into()).await.is_err(), "{p} moved ({})", f.name);
    }
    let after_repair = lake.validate().await.unwrap();
    assert!(after_repair.ok(), "{:#?}", after_repair.problems);
    assert_eq!(after_repair.quarantined, 3);

    let again = ingest(&sim, &lake, small_config()).await.update(std::slice::from_ref(&spy)).await;
    assert!(again.complete(), "{again:#?}");
    assert!(lake.validate().await.unwrap().ok());
    assert_eq!(rows_by_partition(&lake, &spy).await, before, "every row is back ({})", f.name);
}

/// A ranged read pinned to the ETag of an earlier `head` fails once the object is replaced:
/// the ground the footer reads stand on, on the local file system and on S3.
async fn a_pinned_read_notices_a_replaced_object(f: Fixture) {
    let lake = f.lake();
    let path: object_store::path::Path = "equity_bars/x.bin".into();
    lake.store().put(&path, PutPayload::from_static(b"first version of the object")).await.unwrap();
    let meta = lake.store().head(&path).await.unwrap();
    assert!(meta.e_tag.is_some(), "the store gives ETags ({})", f.name);
    let pinned = |m: &object_store::ObjectMeta| GetOptions {
        if_match: m.e_tag.clone(),
        range: Some(GetRange::Bounded(0..5)),
        ..Default::default()
    };
    let same = lake.store().get_opts(&path, pinned(&meta)).await.unwrap().bytes().await.unwrap();
    assert_eq!(&same[..], b"first");
    // A rename over the file (as a local write does), or a PUT (S3).
    lake.store()
        .put(&"_tmp/y".into(), PutPayload::from_static(b"second version, longer than the first"))
        .await
        .unwrap();
    lake.store().rename(&"_tmp/y".into(), &path).await.unwrap();
    let err = lake.store().get_opts(&path, pinned(&meta)).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, object_store::Error::Precondition { .. }), "{err} ({})", f.name);
}

super::on_both!(damaged_files_are_named_quarantined_and_fetched_again, a_pinned_read_notices_a_replaced_object);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footer_reads_name_a_damaged_file_and_the_repair() {
    let f = Fixture::local();
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let batch = twslake::datasets::equity_bars::to_batch(&daily_bars(&[d("2024-03-04")], t("2024-03-05T00:00:00Z")));
    let written = lake.write(Dataset::EquityBars, &spy, &batch, Some("r1")).await.unwrap();
    let path = written[0].partition.path();
    for bytes in [&b""[..], b"PAR1 but then nothing of a footer", &[7u8; 300][..]] {
        lake.store().put(&path, PutPayload::from(bytes.to_vec())).await.unwrap();
        let err = lake.footer_request_ids(&path).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(path.as_ref()) && msg.contains("validate --repair"), "{msg}");
        let err = lake.read_partition(&written[0].partition).await.unwrap_err().to_string();
        assert!(err.contains(path.as_ref()) && err.contains("validate --repair"), "{err}");
    }
    assert!(lake.footer_request_ids(&"equity_bars/none.parquet".into()).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_residue_older_than_an_hour_is_swept_by_the_next_writer() {
    let f = Fixture::local();
    let lake = f.lake();
    let Location::Local(root) = lake.location().clone() else { unreachable!() };
    std::fs::create_dir_all(root.join("_tmp")).unwrap();
    let (old, fresh) = (root.join("_tmp/old.parquet"), root.join("_tmp/fresh.parquet"));
    std::fs::write(&old, b"left by a killed writer").unwrap();
    std::fs::write(&fresh, b"a write under way").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();
    // A manifest put killed between object_store's staging file and its link leaves `NAME#N`.
    let manifest = root.join("_manifest/symbol=SPY");
    std::fs::create_dir_all(&manifest).unwrap();
    let (staged_old, staged_fresh) = (manifest.join("pending-x.json#3"), manifest.join("pending-y.json#1"));
    std::fs::write(&staged_old, b"{").unwrap();
    std::fs::write(&staged_fresh, b"{").unwrap();
    std::fs::File::options().write(true).open(&staged_old).unwrap().set_modified(two_hours_ago).unwrap();
    assert_eq!(lake.validate().await.unwrap().leftover_temp_files, 2);
    // A writer settles a symbol's interrupted writes first (what `setup` and `update` do).
    let writer = f.lake();
    writer.recover_manifest(&Symbol::new("SPY").unwrap()).await.unwrap();
    assert!(!old.exists(), "residue older than an hour is deleted");
    assert!(fresh.exists(), "a recent temporary file may belong to a running write: kept");
    assert!(!staged_old.exists() && staged_fresh.exists(), "old staging files of manifest puts are swept too");
    assert_eq!(lake.validate().await.unwrap().leftover_temp_files, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_inside_the_lake_are_refused_by_writers_and_flagged() {
    let f = Fixture::local();
    let lake = f.lake();
    let Location::Local(root) = lake.location().clone() else { unreachable!() };
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.join("equity_bars")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("equity_bars/symbol=SPY")).unwrap();
    let spy = Symbol::new("SPY").unwrap();
    let batch = twslake::datasets::equity_bars::to_batch(&daily_bars(&[d("2024-03-04")], t("2024-03-05T00:00:00Z")));
    let err = lake.write(Dataset::EquityBars, &spy, &batch, Some("r1")).await.unwrap_err().to_string();
    assert!(err.contains("symbol=SPY") && err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the lake");
    // A linked manifest folder is refused as well.
    std::fs::create_dir_all(root.join("_manifest")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("_manifest/symbol=QQQ")).unwrap();
    let qqq = Symbol::new("QQQ").unwrap();
    let entry = twslake::lake::manifest::Entry::new(
        twslake::lake::manifest::Request::revocation(&qqq),
        t("2024-03-05T00:00:00Z"),
        t("2024-03-05T00:00:00Z"),
        twslake::lake::manifest::Outcome::Empty,
    );
    assert!(lake.record_entry(entry, None).await.is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside the lake");

    let report = lake.validate().await.unwrap();
    let links: Vec<&str> =
        report.problems.iter().filter(|p| p.kind == ProblemKind::Symlink).map(|p| p.path.as_str()).collect();
    assert_eq!(links, ["_manifest/symbol=QQQ", "equity_bars/symbol=SPY"], "{:#?}", report.problems);
    let done = lake.repair(&report).await.unwrap();
    assert_eq!(done.moved.len(), 2);
    assert!(outside.path().exists(), "the link's target is left alone");
    assert!(lake.validate().await.unwrap().ok());
    lake.write(Dataset::EquityBars, &spy, &batch, Some("r1")).await.unwrap();
}

#[test]
fn file_url_without_a_path_is_refused() {
    let err = Location::parse("file://").unwrap_err().to_string();
    assert!(err.contains("file://") && err.contains("names no folder"), "{err}");
    assert!(Lake::open("file://").is_err());
}

#[test]
fn an_endpoint_without_a_scheme_or_a_bad_threshold_is_refused_naming_the_variable() {
    for (var, cmd) in
        [("AWS_ENDPOINT_URL", "status"), ("AWS_ENDPOINT_URL", "validate"), ("AWS_ENDPOINT_URL_S3", "status")]
    {
        let env: Vec<(String, String)> = [
            (var, "localhost:9000"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (code, out, err) = twslake(&[cmd, "--lake", "s3://bucket/lake"], &env);
        assert!(code != 101 && code != 0, "{cmd} with {var}: exit {code}\n{out}\n{err}");
        assert!(err.contains(var) && err.contains("http://"), "{cmd} with {var}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let err = Lake::builder("s3://bucket/lake").s3_options(&[("aws_endpoint_url", "minio:9000")]).open().unwrap_err();
    assert!(err.to_string().contains("aws_endpoint_url"), "{err}");
    let f = Fixture::local();
    std::fs::create_dir_all(&f.url).unwrap();
    for bad in ["0", "-3", "many", "99999999999999999999999"] {
        let env = vec![("TWSLAKE_COMPACT_AFTER_LOGS".to_string(), bad.to_string())];
        let (code, _, err) = twslake(&["validate", "--lake", &f.url], &env);
        assert!(code != 101 && code != 0 && err.contains("TWSLAKE_COMPACT_AFTER_LOGS"), "{bad}: {code} {err}");
    }
}

/// Two writers logging the same entries (two processes settling one pending file) meet on one
/// name instead of failing with "already exists"; different entries never share a name.
async fn log_names_are_unique_per_content(f: Fixture) {
    use twslake::lake::manifest::{Entry, Outcome, Request};
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let at = t("2024-03-05T00:00:00Z");
    let entry = Entry::new(Request::revocation(&spy), at, at, Outcome::Empty);
    let second = f.lake();
    let (a, b) = tokio::join!(lake.put_log(&spy, vec![entry.clone()]), second.put_log(&spy, vec![entry.clone()]));
    assert_eq!(a.unwrap(), b.unwrap(), "one file for one content ({})", f.name);
    let mut other = entry.clone();
    other.outcome = Outcome::Error { code: 162, message: "x".into() };
    let c = lake.put_log(&spy, vec![other]).await.unwrap();
    let logs = lake.list(Some(&"_manifest/symbol=SPY".into())).await.unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs.iter().any(|m| m.location == c));
    assert_eq!(lake.manifest(&spy).await.unwrap().entries.len(), 1, "one id, counted once");
}

super::on_both!(log_names_are_unique_per_content);
