//! Configuration: command-line flags, `O2O_*` environment variables, an optional `o2o.toml`, and
//! defaults, in that order of precedence. The binary parses flags and environment (clap does
//! both) into [`Settings`]; [`Config::resolve`] fills what is still unset from the file, then from
//! the defaults.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use text or json")),
        }
    }
}

/// Every setting, each optional: what one source (flags, environment, file) says.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub demo: Option<bool>,
    pub dev: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub data_dir: Option<PathBuf>,
    pub max_connections: Option<u32>,
    /// The file holding the code-signing keys (default: `<data_dir>/signing-keys.json`).
    pub signing_keys_file: Option<PathBuf>,
    /// A TrueType/OpenType font with CJK glyphs for PDF sheets (default: found among the
    /// system's fonts).
    pub cjk_font: Option<PathBuf>,
    /// The most messages one merchant may send its followers in an hour (default 10).
    pub messages_per_hour: Option<u32>,
    /// How long a free-WiFi login grants access, in minutes (default 240).
    pub wifi_grant_minutes: Option<u32>,
    /// The NATS server carrying events between nodes (default: none, events stay in process).
    pub nats_url: Option<String>,
    /// Commands the payments sequencer lets wait at most (default 20,000); more are answered
    /// 503 with Retry-After.
    pub sequencer_queue: Option<usize>,
    /// Webhook endpoints may be on private, loopback or link-local addresses (default: only in
    /// dev mode).
    pub webhooks_allow_private: Option<bool>,
}

impl Settings {
    /// Reads `o2o.toml` (or the given file). A missing default file is not an error; a missing
    /// named file, or one that does not parse, is.
    pub fn from_file(path: Option<&Path>) -> anyhow::Result<Settings> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("o2o.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Settings::default())
            }
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// Takes each unset value from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            database_url: self.database_url.or(lower.database_url),
            public_url: self.public_url.or(lower.public_url),
            demo: self.demo.or(lower.demo),
            dev: self.dev.or(lower.dev),
            log_format: self.log_format.or(lower.log_format),
            data_dir: self.data_dir.or(lower.data_dir),
            max_connections: self.max_connections.or(lower.max_connections),
            signing_keys_file: self.signing_keys_file.or(lower.signing_keys_file),
            cjk_font: self.cjk_font.or(lower.cjk_font),
            messages_per_hour: self.messages_per_hour.or(lower.messages_per_hour),
            wifi_grant_minutes: self.wifi_grant_minutes.or(lower.wifi_grant_minutes),
            nats_url: self.nats_url.or(lower.nats_url),
            sequencer_queue: self.sequencer_queue.or(lower.sequencer_queue),
            webhooks_allow_private: self.webhooks_allow_private.or(lower.webhooks_allow_private),
        }
    }
}

/// The resolved configuration of one server.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// The base URL printed codes and links carry, without a trailing slash.
    pub public_url: String,
    pub demo: bool,
    /// Dev conveniences on (the SMS dev outbox is readable over HTTP).
    pub dev: bool,
    pub log_format: LogFormat,
    /// Where the embedded database and keys live.
    pub data_dir: PathBuf,
    pub max_connections: u32,
    /// PostgreSQL schema to work in (tests give each test its own).
    pub pg_schema: Option<String>,
    pub signing_keys_file: PathBuf,
    pub cjk_font: Option<PathBuf>,
    /// How long a failed webhook delivery waits before each retry, in milliseconds; after the
    /// last retry fails the delivery is `failed`. The Standard Webhooks schedule by default.
    pub webhook_retry_delays_ms: Vec<u64>,
    /// A fixed discount (minor units) put on every new order: the orders capability's discount
    /// hook, exercised by the test suite until the marketing capability fills it. Not a setting.
    pub order_test_discount: Option<i64>,
    /// The most messages one merchant may send in any hour; more are `429 rate_limited`.
    pub messages_per_hour: u32,
    /// How long a free-WiFi login grants access, in minutes.
    pub wifi_grant_minutes: u32,
    /// The NATS server (`nats://host:port`) that carries events between nodes; `None` keeps
    /// events in process (one node).
    pub nats_url: Option<String>,
    /// Commands the payments sequencer lets wait at most.
    pub sequencer_queue: usize,
    /// Webhook endpoints may resolve to private, loopback, link-local or multicast addresses
    /// (a receiver on the merchant's own network, or tests). Off in production: the platform
    /// must not be made to post into its own network.
    pub webhooks_allow_private: bool,
    /// How long a client may take to send a request's line and headers, and a kept-alive
    /// connection may wait for its next request (see [`crate::serve::HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: std::time::Duration,
    /// How long a request body may send nothing (see [`crate::http::BODY_IDLE_TIMEOUT`]).
    pub body_idle_timeout: std::time::Duration,
    /// How long an answer may wait for a client that reads none of it (see
    /// [`crate::serve::WRITE_STALL_TIMEOUT`]).
    pub write_stall_timeout: std::time::Duration,
}

/// Commands the payments sequencer lets wait, by default.
pub const SEQUENCER_QUEUE: usize = 20_000;

/// The Standard Webhooks retry schedule after the immediate first attempt: 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
pub const WEBHOOK_RETRY_DELAYS_MS: [u64; 9] = [
    5_000,
    5 * 60_000,
    30 * 60_000,
    2 * 3_600_000,
    5 * 3_600_000,
    10 * 3_600_000,
    14 * 3_600_000,
    20 * 3_600_000,
    24 * 3_600_000,
];

impl Config {
    pub fn resolve(settings: Settings) -> anyhow::Result<Config> {
        let listen = settings
            .listen
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"));
        let data_dir = settings
            .data_dir
            .unwrap_or_else(|| PathBuf::from("o2o-data"));
        let database_url = settings
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}/o2o.db", data_dir.display()));
        let public_url = settings
            .public_url
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            anyhow::bail!("public URL must start with http:// or https://");
        }
        let demo = settings.demo.unwrap_or(false);
        let dev = settings.dev.unwrap_or(false) || demo;
        let nats_url = settings
            .nats_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            anyhow::bail!("NATS URL must start with nats:// or tls://");
        }
        let signing_keys_file = settings
            .signing_keys_file
            .unwrap_or_else(|| data_dir.join("signing-keys.json"));
        Ok(Config {
            listen,
            database_url,
            public_url,
            demo,
            dev,
            log_format: settings.log_format.unwrap_or_default(),
            data_dir,
            max_connections: settings.max_connections.unwrap_or(16).clamp(1, 512),
            pg_schema: None,
            signing_keys_file,
            cjk_font: settings.cjk_font,
            webhook_retry_delays_ms: WEBHOOK_RETRY_DELAYS_MS.to_vec(),
            order_test_discount: None,
            messages_per_hour: settings.messages_per_hour.unwrap_or(10).clamp(1, 10_000),
            wifi_grant_minutes: settings
                .wifi_grant_minutes
                .unwrap_or(240)
                .clamp(1, 7 * 24 * 60),
            nats_url,
            sequencer_queue: settings
                .sequencer_queue
                .unwrap_or(SEQUENCER_QUEUE)
                .clamp(1, 1_000_000),
            webhooks_allow_private: settings.webhooks_allow_private.unwrap_or(dev),
            header_read_timeout: crate::serve::HEADER_READ_TIMEOUT,
            body_idle_timeout: crate::http::BODY_IDLE_TIMEOUT,
            write_stall_timeout: crate::serve::WRITE_STALL_TIMEOUT,
        })
    }

    /// True when links this server prints are HTTPS (cookies are then marked Secure).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let flags = Settings {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Settings::default()
        };
        let file: Settings = toml::from_str(
            "listen = \"127.0.0.1:7000\"\npublic_url = \"https://shop.example/\"\ndemo = true\n",
        )
        .unwrap();
        let config = Config::resolve(flags.or(file)).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.public_url, "https://shop.example");
        assert!(config.demo && config.dev, "demo implies dev");
        assert_eq!(config.database_url, "sqlite://o2o-data/o2o.db");
    }

    #[test]
    fn private_webhook_targets_follow_dev_mode_unless_set() {
        let dev = Config::resolve(Settings {
            dev: Some(true),
            ..Settings::default()
        })
        .unwrap();
        assert!(dev.webhooks_allow_private);
        let production = Config::resolve(Settings::default()).unwrap();
        assert!(!production.webhooks_allow_private);
        assert_eq!(production.sequencer_queue, SEQUENCER_QUEUE);
        assert_eq!(production.nats_url, None);
        let strict_dev = Config::resolve(Settings {
            dev: Some(true),
            webhooks_allow_private: Some(false),
            ..Settings::default()
        })
        .unwrap();
        assert!(!strict_dev.webhooks_allow_private);
    }

    #[test]
    fn a_nats_url_needs_a_nats_scheme() {
        let file: Settings =
            toml::from_str("nats_url = \"http://127.0.0.1:4222\"\nsequencer_queue = 0\n").unwrap();
        assert!(Config::resolve(file).is_err());
        let file: Settings =
            toml::from_str("nats_url = \"nats://127.0.0.1:4222\"\nsequencer_queue = 0\n").unwrap();
        let config = Config::resolve(file).unwrap();
        assert_eq!(config.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(
            config.sequencer_queue, 1,
            "a queue holds one command at least"
        );
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        assert!(toml::from_str::<Settings>("lisen = \"x\"").is_err());
    }
}
