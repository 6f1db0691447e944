//! Units of work under concurrency: on SQLite they are committed in groups, and every unit
//! still gets its own outcome — a failing unit fails alone, and of racing chains exactly one
//! applies.

use futures::future::join_all;
use keyhaven::{error::Error, storage::Statement};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
};

both_backends!(concurrent_units_keep_their_own_outcomes);

/// A throttle counter row (of a window far ahead, so housekeeping leaves it alone).
fn insert_counter(bucket: String) -> Statement {
    Statement::new(
        "insert into rate_counters (bucket, window_start, count)
         select $1, 9000000000000, 1 where true",
    )
    .text(bucket)
}

async fn count(app: &TestApp, prefix: &str) -> i64 {
    let pool = sqlx::AnyPool::connect(&app.config.database_url())
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("select bucket from rate_counters")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;

    rows.iter().filter(|(b,)| b.starts_with(prefix)).count() as i64
}

async fn concurrent_units_keep_their_own_outcomes(b: Backend) {
    let app = TestApp::spawn(b).await;
    // 30 distinct rows and 5 more of `unit-0`: those 5 fail alone.
    let buckets = (0..30)
        .map(|i| format!("unit-{i}"))
        .chain((0..5).map(|_| "unit-0".into()));
    let results = join_all(buckets.map(|bucket| {
        let store = app.store.clone();
        async move { store.write_all(vec![insert_counter(bucket)]).await }
    }))
    .await;
    let failed = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict(_))))
        .count();
    assert_eq!((results.len() - failed, failed), (30, 5), "{results:?}");
    assert_eq!(count(&app, "unit-").await, 30);

    // 20 chains race for one guard: one applies, with its second step; the others neither.
    app.store
        .write_all(vec![insert_counter("guard".into())])
        .await
        .unwrap();
    let results = join_all((0..20).map(|i| {
        let store = app.store.clone();
        async move {
            store
                .write_chain(vec![
                    Statement::new(
                        "update rate_counters set count = 2 where bucket = 'guard' and count = 1",
                    ),
                    insert_counter(format!("won-{i}")),
                ])
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1);
    assert_eq!(count(&app, "won-").await, 1);
}
