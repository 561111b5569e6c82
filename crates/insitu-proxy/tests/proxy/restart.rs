//! Proxy sessions kept in a session table survive a restart of the proxy
//! (a new `Proxy` on the same table), revocations included; sessions in
//! memory never touch the table on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use insitu_proxy::{
    MemorySessionTable, SessionDigest, SessionTable, SessionTableError, StoredSession, TableFuture,
};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{LAB, OWNER, Rig, echo, eventually, open_websocket};

/// The platform's table, in memory, counting lookups; it can be made to fail.
#[derive(Default)]
struct Table {
    rows: MemorySessionTable,
    finds: AtomicUsize,
    inserts: AtomicUsize,
    down: AtomicBool,
}

impl Table {
    fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), SessionTableError> {
        if self.down.load(Ordering::SeqCst) {
            Err(SessionTableError::new("the database is down"))
        } else {
            Ok(())
        }
    }
}

impl SessionTable for Table {
    fn insert(&self, session: StoredSession, keep_per_user: usize) -> TableFuture<'_, ()> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.check() {
            return Box::pin(std::future::ready(Err(e)));
        }
        self.rows.insert(session, keep_per_user)
    }

    fn find(&self, digest: SessionDigest) -> TableFuture<'_, Option<StoredSession>> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.check() {
            return Box::pin(std::future::ready(Err(e)));
        }
        self.rows.find(digest)
    }

    fn remove_lab<'a>(&'a self, lab_id: &'a str) -> TableFuture<'a, ()> {
        self.rows.remove_lab(lab_id)
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> TableFuture<'a, ()> {
        self.rows.remove_user(user_id)
    }

    fn remove_expired(&self, now: SystemTime) -> TableFuture<'_, ()> {
        self.rows.remove_expired(now)
    }
}

async fn rig_with(table: &Arc<Table>, recheck: Duration) -> Rig {
    Rig::with(
        |c, _| c.session_recheck = recheck,
        Some(table.clone() as Arc<dyn SessionTable>),
    )
    .await
}

fn cookie_header(cookie: &str) -> [(&'static str, &str); 1] {
    [("cookie", cookie)]
}

#[tokio::test]
async fn an_open_lab_tab_keeps_working_after_a_restart() {
    let table = Arc::new(Table::default());
    let mut rig = rig_with(&table, Duration::from_secs(600)).await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    assert_eq!(table.rows.len(), 1, "written through on redemption");
    for _ in 0..20 {
        let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(table.finds(), 0, "a session in memory never asks the table");

    rig.restart().await;
    // The tab reloads its used sign-in link: it goes on, signed in.
    let reply = rig
        .get(
            "/labs/lab-1/_insitu/auth?ticket=used&next=/labs/lab-1/tree",
            &cookie_header(&cookie),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/labs/lab-1/tree"));
    for _ in 0..20 {
        let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(table.finds(), 1, "read once, then from memory");

    // A WebSocket opened after the restart, on the same cookie.
    let origin = format!("http://{}", rig.addr);
    let mut socket = open_websocket(
        &rig,
        "/labs/lab-1/ws",
        &[("cookie", &cookie), ("origin", &origin)],
    )
    .await
    .unwrap();
    echo(&mut socket, Message::text("after the restart")).await;
}

#[tokio::test]
async fn a_revoked_session_stays_revoked_after_a_restart() {
    let table = Arc::new(Table::default());
    let mut rig = rig_with(&table, Duration::from_secs(600)).await;
    rig.directory.set(
        "lab-2",
        rig.upstream.addr,
        OWNER,
        insitu_proxy::LabState::Running,
    );
    let first = rig.sign_in(LAB, OWNER).await;
    let second = rig.sign_in("lab-2", OWNER).await;
    let bobs = rig.sign_in("lab-2", "bob").await;
    assert_eq!(table.rows.len(), 3);

    rig.proxy.revoke_lab(LAB).persisted().await.unwrap();
    assert_eq!(table.rows.len(), 2, "revoked in the table too");
    rig.restart().await;
    rig.get("/labs/lab-1/", &cookie_header(&first))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    assert_eq!(
        rig.get("/labs/lab-2/", &cookie_header(&second))
            .await
            .status,
        StatusCode::OK
    );

    rig.proxy.revoke_user(OWNER).persisted().await.unwrap();
    rig.restart().await;
    rig.get("/labs/lab-2/", &cookie_header(&second))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    // Bob's session (forbidden on alice's lab, but alive) was not touched.
    rig.get("/labs/lab-2/", &cookie_header(&bobs))
        .await
        .assert_page(StatusCode::FORBIDDEN, "lab_forbidden");
}

#[tokio::test]
async fn a_revocation_is_not_undone_by_a_table_that_still_holds_the_session() {
    // The table never gets the revocation (its deletions fail, or have not
    // run yet): the session read back from it is still refused.
    let table = Arc::new(Table::default());
    let rig = Rig::with(
        |c, _| c.session_recheck = Duration::from_secs(600),
        Some(Arc::new(FailingRemovals(table.clone())) as Arc<dyn SessionTable>),
    )
    .await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    assert!(rig.proxy.revoke_lab(LAB).persisted().await.is_err());
    assert_eq!(table.rows.len(), 1, "the table still holds it");
    rig.get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    assert_eq!(table.finds(), 1, "looked up in the table, and refused");
    // A new sign-in after the revocation works.
    let fresh = rig.sign_in(LAB, OWNER).await;
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&fresh)).await.status,
        StatusCode::OK
    );
}

/// A second proxy on the same table and directory: another server process.
struct OtherProcess {
    rig: Rig,
}

impl OtherProcess {
    async fn new(table: &Arc<Table>, first: &Rig) -> OtherProcess {
        let rig = Rig::with(
            |c, _| c.session_recheck = Duration::from_millis(200),
            Some(table.clone() as Arc<dyn SessionTable>),
        )
        .await;
        rig.directory.set(
            LAB,
            first.upstream.addr,
            OWNER,
            insitu_proxy::LabState::Running,
        );
        OtherProcess { rig }
    }
}

/// A table whose deletions fail.
struct FailingRemovals(Arc<Table>);

impl SessionTable for FailingRemovals {
    fn insert(&self, session: StoredSession, keep: usize) -> TableFuture<'_, ()> {
        self.0.insert(session, keep)
    }

    fn find(&self, digest: SessionDigest) -> TableFuture<'_, Option<StoredSession>> {
        self.0.find(digest)
    }

    fn remove_lab<'a>(&'a self, _: &'a str) -> TableFuture<'a, ()> {
        Box::pin(std::future::ready(Err(SessionTableError::new(
            "write failed",
        ))))
    }

    fn remove_user<'a>(&'a self, _: &'a str) -> TableFuture<'a, ()> {
        Box::pin(std::future::ready(Err(SessionTableError::new(
            "write failed",
        ))))
    }

    fn remove_expired(&self, now: SystemTime) -> TableFuture<'_, ()> {
        self.0.remove_expired(now)
    }
}

#[tokio::test]
async fn a_revocation_in_another_process_is_seen_within_the_recheck_interval() {
    let table = Arc::new(Table::default());
    let recheck = Duration::from_millis(300);
    let one = rig_with(&table, recheck).await;
    let cookie = one.sign_in(LAB, OWNER).await;
    let two = OtherProcess::new(&table, &one).await;
    assert_eq!(
        two.rig
            .get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK,
        "the other process takes the session from the table"
    );
    let origin = format!("http://{}", two.rig.addr);
    let mut socket = open_websocket(
        &two.rig,
        "/labs/lab-1/ws",
        &[("cookie", &cookie), ("origin", &origin)],
    )
    .await
    .unwrap();
    echo(&mut socket, Message::text("open in process two")).await;

    // Process one stops the lab.
    one.proxy.revoke_lab(LAB).persisted().await.unwrap();
    // Process two notices within the interval: its WebSocket closes...
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut socket),
    )
    .await
    .expect("the WebSocket is closed after the recheck");
    assert!(matches!(next, None | Some(Err(_))), "{next:?}");
    // ...and its next request is refused.
    two.rig
        .get("/labs/lab-1/", &cookie_header(&cookie))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    assert!(eventually(|| two.rig.proxy.open_websockets(LAB) == 0).await);
}

#[tokio::test]
async fn an_unreadable_table_gets_a_page_and_never_opens_the_lab() {
    let table = Arc::new(Table::default());
    let mut rig = rig_with(&table, Duration::from_secs(600)).await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    rig.restart().await;
    table.down.store(true, Ordering::SeqCst);
    let reply = rig.get("/labs/lab-1/", &cookie_header(&cookie)).await;
    reply.assert_page(StatusCode::SERVICE_UNAVAILABLE, "lab_sessions_unavailable");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(rig.upstream.connections(), 0);
    // Back up: the session is found again.
    table.down.store(false, Ordering::SeqCst);
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK
    );
    // Down again: the session in memory goes on without the table.
    table.down.store(true, Ordering::SeqCst);
    assert_eq!(
        rig.get("/labs/lab-1/", &cookie_header(&cookie))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forged_cookies_are_looked_up_once_each_and_refused() {
    let table = Arc::new(Table::default());
    let rig = rig_with(&table, Duration::from_secs(600)).await;
    let forged = format!("insitu_lab_lab_1={}", "ab".repeat(32));
    for _ in 0..3 {
        rig.get("/labs/lab-1/", &cookie_header(&forged))
            .await
            .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    }
    assert_eq!(table.finds(), 3);
    // Not even hex: never asked.
    rig.get("/labs/lab-1/", &cookie_header("insitu_lab_lab_1=nothex"))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
    assert_eq!(table.finds(), 3);
    assert_eq!(rig.upstream.connections(), 0);
}

#[tokio::test]
async fn a_user_cannot_grow_the_table_without_limit() {
    let table = Arc::new(Table::default());
    let rig = Rig::with(
        |c, _| c.max_sessions_per_user = 3,
        Some(table.clone() as Arc<dyn SessionTable>),
    )
    .await;
    let first = rig.sign_in(LAB, "mallory").await;
    for _ in 0..10 {
        rig.sign_in(LAB, "mallory").await;
    }
    assert_eq!(table.rows.len(), 3);
    assert_eq!(table.inserts.load(Ordering::SeqCst), 11);
    rig.get("/labs/lab-1/", &cookie_header(&first))
        .await
        .assert_page(StatusCode::UNAUTHORIZED, "lab_auth_required");
}
