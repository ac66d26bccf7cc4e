//! The server's listeners: one beside the API's is started with it, serves its own
//! application (built from the gateway's state), and stops with it, finishing what it
//! was answering.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use mosaic_gateway::listener::{ConnLimits, ListenerSpec, Transport};
use mosaic_gateway::server::API_LISTENER;
use mosaic_gateway::{AppState, Config, Server};
use reqwest::StatusCode;
use tokio::sync::Notify;

#[tokio::test]
async fn a_second_listener_serves_beside_the_api_and_both_stop_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    // The second listener answers when the test lets it, naming the gateway's database
    // engine: it is built from the same state as the API.
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (in_handler, released) = (entered.clone(), release.clone());
    let second = ListenerSpec {
        name: "second",
        addr: "127.0.0.1:0".parse().unwrap(),
        transport: Transport::Plain,
        limits: ConnLimits {
            max_connections: 4,
            header_timeout: Duration::from_secs(5),
        },
        app: Box::new(move |state: &AppState| {
            axum::Router::new()
                .route(
                    "/slow",
                    axum::routing::get(move |State(state): State<AppState>| async move {
                        in_handler.notify_one();
                        released.notified().await;
                        state.store.backend().as_str().to_string()
                    }),
                )
                .with_state(state.clone())
        }),
    };
    let server = Server::start_with(config, vec![second]).await.unwrap();
    let api = server.local_addr;
    let other = server.listener_addr("second").unwrap();
    assert_eq!(server.listener_addr(API_LISTENER), Some(api));
    assert_ne!(api.port(), other.port());
    assert_eq!(server.listener_addr("absent"), None);

    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{api}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The API's application is not what the second listener serves.
    let absent = http
        .get(format!("http://{other}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);

    // Stop while the second listener is answering: the stop waits for the answer, which
    // arrives whole.
    let slow = tokio::spawn({
        let http = http.clone();
        async move {
            let resp = http
                .get(format!("http://{other}/slow"))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    });
    entered.notified().await;
    let stop = tokio::spawn(server.stop(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stop.is_finished(),
        "the stop waits for the answer in flight"
    );
    release.notify_one();
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the gateway stops within its grace")
        .unwrap()
        .unwrap();
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "sqlite".to_string()));

    // Both listeners are closed.
    for addr in [api, other] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
}
