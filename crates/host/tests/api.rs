//! Integration tests of the REST API: a real server over a real database (SQLite, and
//! PostgreSQL when reachable), reached over real HTTP, with DNS from a testkit zone.

mod access;
mod domains;
mod harness;
mod limits;
mod names;
mod openapi;
mod pages;
mod reports;
mod tokens;

/// Declares each scenario `async fn name(h: Harness)` of the calling module as a test on
/// SQLite and one on PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::api::harness::run(
                        crate::api::harness::Backend::Sqlite,
                        Default::default(),
                        super::$name,
                    )
                    .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::api::harness::run(
                        crate::api::harness::Backend::Postgres,
                        Default::default(),
                        super::$name,
                    )
                    .await;
                }
            )*
        }
    };
}
pub(crate) use on_both_databases;
