//! The example lake of `lake-layout/example/`, kept byte-for-byte in step with the code, and
//! the fixture the Python interop tests read (DuckDB, pyarrow.dataset, polars).

use polars::prelude::*;
use std::path::{Path, PathBuf};
use twslake::datasets::Dataset;
use twslake::lake::example::write_example;
use twslake::query::collect;
use twslake::query::Scans;
use twslake::Lake;

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.retain(|p| !p.starts_with("_locks") && !p.starts_with("_tmp"));
    out.sort();
    out
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lake-layout/example")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_lake_is_what_the_code_writes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    write_example(&lake).await.unwrap();
    let fresh = files(dir.path());
    let committed = example_dir();
    if std::env::var_os("TWSLAKE_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        for f in &fresh {
            std::fs::create_dir_all(committed.join(f).parent().unwrap()).unwrap();
            std::fs::copy(dir.path().join(f), committed.join(f)).unwrap();
        }
    }
    assert_eq!(files(&committed), fresh, "lake-layout/example is stale: rerun this test with TWSLAKE_BLESS=1");
    for f in &fresh {
        let same = std::fs::read(dir.path().join(f)).unwrap() == std::fs::read(committed.join(f)).unwrap();
        assert!(same, "{} differs: rerun this test with TWSLAKE_BLESS=1", f.display());
    }
    let spec = std::fs::read_to_string(committed.parent().unwrap().join("SPEC.md")).unwrap();
    for f in &fresh {
        let shape = shape_of(&f.to_string_lossy());
        assert!(spec.contains(&shape), "SPEC.md does not describe {} (as {shape})", f.display());
    }
}

/// A path with its variable parts replaced by the placeholders SPEC.md uses.
fn shape_of(path: &str) -> String {
    let part_shape = |part: &str| {
        if part.starts_with("symbol=") {
            "symbol=<SYM>".to_string()
        } else if part.starts_with("year=") {
            "year=<YYYY>".to_string()
        } else if part.starts_with("log-") {
            "log-<UTC>-<ID>-<HASH>.json".to_string()
        } else {
            match part
                .char_indices()
                .find(|(i, _)| part.get(*i..i + 10).is_some_and(|s| s.parse::<chrono::NaiveDate>().is_ok()))
            {
                Some((i, _)) => format!("{}<YYYY-MM-DD>{}", &part[..i], &part[i + 10..]),
                None => part.to_string(),
            }
        }
    };
    path.split('/').map(part_shape).collect::<Vec<_>>().join("/")
}

/// A cell as the Python side canonicalises it: dates as ISO strings, timestamps as µs.
fn cell(v: AnyValue) -> serde_json::Value {
    match v {
        AnyValue::Null => serde_json::Value::Null,
        AnyValue::String(s) => s.into(),
        AnyValue::StringOwned(s) => s.as_str().into(),
        AnyValue::Float64(x) => x.into(),
        AnyValue::Int64(x) => x.into(),
        AnyValue::Int32(x) => x.into(),
        AnyValue::Boolean(b) => b.into(),
        AnyValue::Date(days) => (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days(days as i64))
        .to_string()
        .into(),
        AnyValue::Datetime(us, _, _) | AnyValue::DatetimeOwned(us, _, _) => us.into(),
        other => panic!("unexpected cell {other:?}"),
    }
}

/// Writes the example lake and the Rust reader's rows of every dataset for tests/python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_fixture_for_python_readers() {
    let Some(dir) = std::env::var_os("TWSLAKE_INTEROP_DIR").map(PathBuf::from) else {
        // Only the test command consumes the fixture; the example lake itself is checked above.
        return;
    };
    let root = dir.join("lake");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    write_example(&lake).await.unwrap();
    let mut expected = serde_json::Map::new();
    for ds in Dataset::ALL {
        let mut key: Vec<String> = vec!["symbol".into()];
        key.extend(ds.primary_key().iter().map(|k| k.to_string()));
        let lf = Scans::new(&lake).scan(ds, &Default::default()).await.unwrap().sort(key.clone(), Default::default());
        let df = collect(lf).await.unwrap();
        let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
        let rows: Vec<serde_json::Value> = (0..df.height())
            .map(|i| df.get_row(i).unwrap().0.into_iter().map(cell).collect::<Vec<_>>().into())
            .collect();
        assert!(!rows.is_empty(), "{ds} has rows in the example");
        expected.insert(ds.name().into(), serde_json::json!({ "columns": columns, "key": key, "rows": rows }));
    }
    std::fs::write(dir.join("expected.json"), serde_json::to_vec_pretty(&expected).unwrap()).unwrap();
}
