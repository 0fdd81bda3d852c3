//! Runs the server until shutdown: binds, serves with client addresses, runs the background
//! sweepers, and on SIGTERM/SIGINT lets in-flight requests finish before closing the database.

use crate::app::{AppState, router};
use crate::config::LogFormat;
use crate::http::idempotency;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use std::future::Future;
use std::io;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a client may take to send a request's line and headers, and how long a kept-alive
/// connection may wait for its next request, by default: past it the connection is closed, so
/// clients that send slowly or not at all cannot hold connections open without end.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection's answer may wait for a client that takes none of it, by default: a
/// client that stops reading (its buffers and ours full) is disconnected, so it cannot hold
/// a connection and its answer open without end. Slow readers that take something go on.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a shutdown waits for requests in flight to be answered.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// Serves `state` on `listener` until `shutdown` completes, then drains and closes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_loop(state.clone(), stop_rx));
    let app = router(state.clone());
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A client gave up before its connection was taken: nothing to report.
                Err(e) if gone_before_accept(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait for some to close instead of spinning.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        // Answers are written whole; sending them at once saves a round trip's delay.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(state.config.header_read_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(WriteStall::new(
                    stream,
                    state.config.write_stall_timeout,
                )),
                service,
            );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Live streams never end by themselves; end them so in-flight requests can drain. Idle
    // connections close at once, busy ones after their request.
    state.bus.close();
    // A client that stops reading its answer would hold the drain forever: past the limit its
    // connection is left to end with the process.
    if tokio::time::timeout(SHUTDOWN_DRAIN, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown drain; closing without them");
    }
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    // A webhook being sent records its outcome before the database closes (the dispatcher's
    // rounds go on until the app ends, but claim nothing once it is drained).
    if !state.webhooks.drain().await {
        tracing::info!(
            "webhook deliveries cut off by the shutdown stay pending and are sent again after the restart"
        );
    }
    // What the sequencer accepted is applied, durable and answered before the database closes.
    state.payments.stop().await;
    state.db.close().await;
    tracing::info!("stopped; database closed");
    Ok(())
}

/// A connection whose writes fail with `TimedOut` once one has waited `limit` without the
/// client taking a byte. The timer starts only when a write must wait (the socket's buffer is
/// full), so writes that go through at once cost nothing.
struct WriteStall<S> {
    inner: S,
    limit: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteStall<S> {
    fn new(inner: S, limit: Duration) -> WriteStall<S> {
        WriteStall {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write that had to wait: an error once the wait has lasted `limit`.
    fn waited<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took none of its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.waited(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.waited(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.waited(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An accept failure that concerns one client's connection only (it was reset or aborted before
/// it was taken), not the listener.
fn gone_before_accept(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Deletes expired idempotency keys every hour until told to stop.
async fn sweep_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(3_600)) => {
                match idempotency::sweep(&state.db).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "expired idempotency keys swept"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "idempotency sweep failed"),
                }
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Sets up logging: readable lines by default, JSON objects with `--log-format json`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("O2O_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
