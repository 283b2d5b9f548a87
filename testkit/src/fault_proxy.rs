//! A TCP proxy on loopback that makes a dependency (DynamoDB Local) fail the way a regional
//! incident does: answers late, never, cut off, or with the connection reset. The fault is read
//! each time the dependency sends bytes back, so switching it affects connections already open
//! (the SDK keeps its connections alive).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass unchanged.
    None,
    /// Every chunk of the answer is held this long first.
    Delay(Duration),
    /// The answer is never sent; the connection stays open.
    Stall,
    /// The connection is reset (RST) instead of answering.
    Reset,
    /// Half of the answer's first chunk is sent, then the connection is closed.
    Truncate,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    fault: Arc<Mutex<Fault>>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(Fault::None));
        let shared = fault.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, shared.clone()));
            }
        });
        FaultProxy { url, fault }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

async fn relay(client: TcpStream, server: TcpStream, fault: Arc<Mutex<Fault>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let current = *fault.lock().unwrap();
            match current {
                Fault::None => {}
                Fault::Delay(d) => tokio::time::sleep(d).await,
                Fault::Stall => std::future::pending::<()>().await,
                Fault::Reset => return,
                Fault::Truncate => {
                    let _ = client_write.write_all(&buf[..n / 2]).await;
                    return;
                }
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
    if *fault.lock().unwrap() == Fault::Reset {
        // Dropping a socket whose linger is zero sends RST rather than FIN.
        if let Ok(stream) = client_write.reunite(client_read) {
            let _ = stream.set_zero_linger();
        }
    }
}
