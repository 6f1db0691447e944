//! Units of work under concurrency: on SQLite they are committed in groups, and every unit
//! still gets its own outcome — a failing unit fails alone, and of racing chains exactly one
//! applies. Steps of one unit see each other's changes on both databases.

use futures::future::join_all;
use keyhaven::{
    error::Error,
    storage::{Filtered, Statement, Unit},
};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
};

both_backends!(
    concurrent_units_keep_their_own_outcomes,
    steps_of_one_unit_change_the_same_row,
);

/// A throttle counter row (of a window far ahead, so housekeeping leaves it alone).
fn insert_counter(bucket: String) -> Filtered {
    Statement::filtered(
        "insert into rate_counters (bucket, window_start, count) select $1, 9000000000000, 1",
        "true",
    )
    .text(bucket)
}

async fn counters(app: &TestApp, prefix: &str) -> Vec<(String, i64)> {
    let pool = sqlx::AnyPool::connect(&app.config.database_url())
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as("select bucket, count from rate_counters")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter()
        .filter(|(b, _)| b.starts_with(prefix))
        .collect()
}

async fn concurrent_units_keep_their_own_outcomes(b: Backend) {
    let app = TestApp::spawn(b).await;
    // 30 distinct rows and 5 more of `unit-0`: those 5 fail alone.
    let buckets = (0..30)
        .map(|i| format!("unit-{i}"))
        .chain((0..5).map(|_| "unit-0".into()));
    let results = join_all(buckets.map(|bucket| {
        let store = app.store.clone();
        async move {
            store
                .commit(Unit::all(vec![insert_counter(bucket).into()]))
                .await
        }
    }))
    .await;
    let failed = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Conflict(_))))
        .count();
    assert_eq!((results.len() - failed, failed), (30, 5), "{results:?}");
    assert_eq!(counters(&app, "unit-").await.len(), 30);

    // 20 chains race for one guard: one applies, with its second step; the others neither.
    let guard = Unit::all(vec![insert_counter("guard".into()).into()]);
    app.store.commit(guard).await.unwrap();
    let results = join_all((0..20).map(|i| {
        let store = app.store.clone();
        async move {
            let claim = Statement::new(
                "update rate_counters set count = 2 where bucket = 'guard' and count = 1",
            );
            let then = vec![insert_counter(format!("won-{i}"))];
            store.commit(Unit::chain(claim, then)).await.unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1);
    assert_eq!(counters(&app, "won-").await.len(), 1);
}

/// A step that changes the row an earlier step of its unit inserted or changed sees that
/// change, on PostgreSQL too (where one statement's parts would share a snapshot).
async fn steps_of_one_unit_change_the_same_row(b: Backend) {
    let app = TestApp::spawn(b).await;
    let add = |n: i64| {
        Statement::filtered("update rate_counters set count = count + $1", "bucket = $2")
            .int(n)
            .text("same-row".to_string())
    };
    let unit = Unit::all(vec![
        insert_counter("same-row".into()).into(),
        add(10).into(),
        add(100).into(),
    ]);
    assert!(app.store.commit(unit).await.unwrap());
    assert_eq!(counters(&app, "same-row").await, [("same-row".into(), 111)]);

    // A chain whose guard and next step change the one row: both apply, in order.
    let claim = Statement::new(
        "update rate_counters set count = 0 where bucket = 'same-row' and count = 111",
    );
    assert!(app
        .store
        .commit(Unit::chain(claim, vec![add(5)]))
        .await
        .unwrap());
    assert_eq!(counters(&app, "same-row").await, [("same-row".into(), 5)]);
    // The guard no longer holds: nothing changes.
    let claim = Statement::new(
        "update rate_counters set count = 0 where bucket = 'same-row' and count = 111",
    );
    assert!(!app
        .store
        .commit(Unit::chain(claim, vec![add(5)]))
        .await
        .unwrap());
    assert_eq!(counters(&app, "same-row").await, [("same-row".into(), 5)]);
}

/// SQLite's WAL stays bounded under a steady write load with readers about: a checkpoint that
/// never catches up would let it grow by gigabytes (a busy node would fill its disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_bounded_under_load() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let writers = (0..8).map(|w| {
        let store = app.store.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while tokio::time::Instant::now() < deadline {
                let bucket = format!("load-{w}-{n}");
                store
                    .commit(Unit::all(vec![insert_counter(bucket).into()]))
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    });
    let url = app.config.database_url();
    let readers = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            while tokio::time::Instant::now() < deadline {
                let _: (i64,) = sqlx::query_as("select count(*) from rate_counters")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        })
    });
    let readers: Vec<_> = readers.collect();
    let written: u64 = join_all(writers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    join_all(readers).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let wal = app.config.data_dir.join("keyhaven.db-wal");
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    eprintln!("{written} units written; WAL {size} bytes");
    assert!(
        size <= 100 * 1024 * 1024,
        "WAL of {size} bytes after {written} units"
    );
}
