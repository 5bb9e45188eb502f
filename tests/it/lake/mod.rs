//! The lake: one storage suite run on the local file system and on S3, crash and concurrency
//! tests with real processes, property tests, and the layout/interop fixtures.

mod beside;
mod crash;
mod interop;
mod props;
mod repair;
mod storage;

/// Runs each named `async fn(Fixture)` once on a local lake and once on an S3 lake.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn local() {
                    super::$name(crate::support::Fixture::local()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn s3() {
                    if let Some(f) = crate::support::Fixture::s3() {
                        super::$name(f).await
                    }
                }
            }
        )*
    };
}
pub(crate) use on_both;
