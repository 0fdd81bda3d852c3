//! Runs the server until shutdown: binds, serves with client addresses, runs the background
//! sweepers, and on SIGTERM/SIGINT lets in-flight requests finish before closing the database.

use crate::app::{AppState, router};
use crate::config::LogFormat;
use crate::http::idempotency;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `state` on `listener` until `shutdown` completes, then drains and closes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep_loop(state.clone(), stop_rx));
    let app = router(state.clone());
    let bus = state.bus.clone();
    let shutdown = async move {
        shutdown.await;
        // Live streams never end by themselves; end them so in-flight requests can drain.
        bus.close();
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    // What the sequencer accepted is applied, durable and answered before the database closes.
    state.payments.stop().await;
    state.db.close().await;
    tracing::info!("stopped; database closed");
    Ok(())
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
