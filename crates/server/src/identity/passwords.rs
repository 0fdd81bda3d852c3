//! Password hashing with Argon2id, off the async threads and bounded: at most
//! [`MAX_CONCURRENT_HASHES`] run at once, so a burst of logins cannot take every core or grow
//! memory without limit (each hash uses about 19 MiB).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How many Argon2 computations may run at the same time.
pub const MAX_CONCURRENT_HASHES: usize = 2;

/// The bounded Argon2id hasher shared by the whole server.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<tokio::sync::OnceCell<String>>,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)),
            dummy: Arc::new(tokio::sync::OnceCell::new()),
        }
    }
}

impl Passwords {
    /// The hash of a random password nobody knows, made once: checked when a login names no
    /// account, so that it costs the same time as a wrong password.
    pub async fn dummy_hash(&self) -> anyhow::Result<String> {
        self.dummy
            .get_or_try_init(|| async { self.hash(&crate::ids::random_token(24)).await })
            .await
            .cloned()
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$…`) with a fresh random salt.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// True when `password` matches the stored PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let password = password.to_owned();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let p = Passwords::default();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", &h).await.unwrap());
        assert!(!p.verify("wrong horse", &h).await.unwrap());
    }
}
