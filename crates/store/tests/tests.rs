//! Integration tests of mtasts-store: one binary, one module per concern. PostgreSQL and Redis
//! are the local test servers (`mtasts_testkit::services`); a missing one skips its tests with
//! a message, or fails them under `MTASTS_REQUIRE_SERVICES=1`.

/// Each case as one SQLite and one PostgreSQL test: `$run(<kind>::Sqlite, super::case)` and
/// `$run(<kind>::Postgres, super::case)`. Invoke it in the module that holds the cases.
macro_rules! both_databases {
    ($run:path, $kind:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $kind as Database;
                    $run(Database::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $kind as Database;
                    $run(Database::Postgres, super::$name).await;
                }
            )*
        }
    };
}

#[path = "suite/conformance.rs"]
mod conformance;
#[path = "suite/host.rs"]
mod host;
#[path = "suite/report_views.rs"]
mod report_views;
#[path = "suite/reports.rs"]
mod reports;
#[path = "suite/rollups.rs"]
mod rollups;
#[path = "suite/schema.rs"]
mod schema;
#[path = "suite/secrets.rs"]
mod secrets;
#[path = "suite/unavailable.rs"]
mod unavailable;
