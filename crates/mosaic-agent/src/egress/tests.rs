use super::*;
use mosaic_test_support::scripted::{Answer, Scripted};
use pretty_assertions::assert_eq;
use serde_json::json;

fn strict(purpose: &'static str) -> reqwest::Client {
    client(Egress::guarded(
        purpose,
        AddressPolicy::default(),
        "allow_private_user_providers",
    ))
    .unwrap()
}

fn refused(e: &reqwest::Error) -> RefusedAddress {
    find_cause::<RefusedAddress>(e)
        .unwrap_or_else(|| panic!("not refused by address: {e:?}"))
        .clone()
}

#[tokio::test]
async fn a_guarded_client_refuses_loopback_literals_at_connect_time_in_every_spelling() {
    let server = Scripted::start(vec![Answer::json(200, json!({"data": []}))]).await;
    let v6 = Scripted::start_on("[::1]:0", vec![Answer::json(200, json!({}))]).await;
    let port = |s: &Scripted| s.base_url.rsplit(':').next().unwrap().to_string();
    let http = strict("users' providers");
    for url in [
        format!("http://127.0.0.1:{}/v1/models", port(&server)),
        format!("http://2130706433:{}/v1/models", port(&server)),
        format!("http://0x7f.1:{}/v1/models", port(&server)),
        format!("http://[::ffff:127.0.0.1]:{}/v1/models", port(&server)),
        format!("http://[::1]:{}/v1/models", port(&v6)),
    ] {
        let e = http.get(&url).send().await.unwrap_err();
        let r = refused(&e);
        assert_eq!(r.kind, "loopback", "{url}");
        assert!(
            r.addr.is_loopback() || r.addr.to_string().contains("127.0.0.1"),
            "{url}"
        );
    }
    assert_eq!(server.received().len(), 0);
    assert_eq!(v6.received().len(), 0);
}

#[tokio::test]
async fn the_refusal_names_the_address_its_kind_and_the_setting() {
    let server = Scripted::start(vec![Answer::json(200, json!({}))]).await;
    let e = strict("users' providers")
        .get(&server.base_url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused(&e).to_string(),
        "127.0.0.1 is a loopback address; users' providers may not reach it unless the \
         gateway sets allow_private_user_providers"
    );
    let unspecified = RefusedAddress {
        addr: "0.0.0.0".parse().unwrap(),
        kind: "unspecified",
        purpose: "http_fetch",
        setting: "fetch_allow_private",
    };
    assert!(unspecified
        .to_string()
        .starts_with("0.0.0.0 is an unspecified address"));
}

#[tokio::test]
async fn an_allowed_block_passes_the_connect_time_check() {
    let server = Scripted::start(vec![Answer::json(200, json!({"ok": true}))]).await;
    let policy = AddressPolicy {
        allow_private: false,
        allow: vec!["127.0.0.1/32".parse().unwrap()],
    };
    let http = client(Egress::guarded(
        "http_fetch",
        policy,
        "fetch_allow_networks",
    ))
    .unwrap();
    let resp = http.get(&server.base_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn no_client_follows_redirects_not_even_a_trusted_one() {
    let target = Scripted::start(vec![Answer::json(200, json!({"secret": "internal"}))]).await;
    for status in [301, 302, 303, 307, 308] {
        let redirecting = Scripted::start(vec![Answer::json(status, json!({}))
            .with_header("location", &format!("{}/v1/models", target.base_url))])
        .await;
        let resp = client(Egress::trusted("the gateway's providers"))
            .unwrap()
            .get(&redirecting.base_url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
    }
    assert_eq!(target.received().len(), 0);
}

/// A TLS server on 127.0.0.1 with a self-signed certificate for that address; counts
/// the HTTP requests that arrive over it. Returns its port, its certificate and the count.
async fn tls_server() -> (
    u16,
    reqwest::Certificate,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_der = certified.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let cert = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    (port, cert, requests)
}

#[tokio::test]
async fn the_connect_time_check_sees_the_peer_of_tls_connections_too() {
    use std::sync::atomic::Ordering;
    let (port, cert, requests) = tls_server().await;
    let url = format!("https://127.0.0.1:{port}/");
    // Refused: the handshake happens, the request never does.
    let strict = builder(Egress::guarded(
        "users' providers",
        AddressPolicy::default(),
        "allow_private_user_providers",
    ))
    .add_root_certificate(cert.clone())
    .build()
    .unwrap();
    let e = strict.get(&url).send().await.unwrap_err();
    assert_eq!(
        refused(&e).to_string().split(';').next(),
        Some("127.0.0.1 is a loopback address")
    );
    assert_eq!(requests.load(Ordering::SeqCst), 0);
    // Allowed: the same check finds the peer address of a TLS connection and lets it by.
    let allowed = AddressPolicy {
        allow_private: false,
        allow: vec!["127.0.0.1/32".parse().unwrap()],
    };
    let open = builder(Egress::guarded(
        "http_fetch",
        allowed,
        "fetch_allow_networks",
    ))
    .add_root_certificate(cert)
    .build()
    .unwrap();
    let resp = open.get(&url).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
