//! A router of the service (API or dashboard) served on a `TestNet` address, and the
//! administrator token a first start would print.

use std::net::SocketAddr;

use mtasts_host::auth::new_token;
use mtasts_store::host::{HostDb, NewToken, Role};
use mtasts_testkit::TestNet;

/// A router being served; stops when dropped.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `router` (with the client's address as `ConnectInfo`, as `mtasts serve` does) on
/// the next address of `net`'s block.
pub(crate) async fn serve(net: &TestNet, router: axum::Router) -> Served {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(net.next_ip(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Served { addr, server }
}

/// Creates an administrator API token labelled `label` and returns the secret.
pub(crate) async fn admin_token(db: &HostDb, label: &str) -> String {
    let (token, hash) = new_token();
    db.create_token(NewToken {
        tenant_id: None,
        role: Role::Admin,
        label: label.to_owned(),
        token_hash: hash,
        expires_at: None,
    })
    .await
    .unwrap();
    token
}
