//! The platform's code-signing keys, kept in a file (mode 0600) beside the database, or at a path
//! the configuration gives (every node of a cluster must read the same file). The file is made on
//! first start; `o2o keys rotate` adds a key, which then signs, while older keys keep verifying
//! the codes they signed until those expire.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use o2o_codes::Keyring;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    id: u32,
    /// The 32-byte Ed25519 secret, base64.
    secret: String,
    created_at: String,
}

fn read(path: &Path) -> anyhow::Result<Option<KeyFile>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

fn write(path: &Path, file: &KeyFile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(file)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn new_key(id: u32) -> StoredKey {
    StoredKey {
        id,
        secret: STANDARD.encode(Keyring::generate_secret()),
        created_at: jiff::Timestamp::now().to_string(),
    }
}

fn keyring(file: &KeyFile) -> anyhow::Result<Keyring> {
    let mut secrets = Vec::new();
    for k in &file.keys {
        let bytes: [u8; 32] = STANDARD
            .decode(&k.secret)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("signing key {} is not 32 bytes", k.id))?;
        secrets.push((k.id, bytes));
    }
    Keyring::from_secrets(&secrets)
        .ok_or_else(|| anyhow::anyhow!("the signing key file holds no keys"))
}

/// Loads the keys, creating the file with one key when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<Keyring> {
    let file = match read(path)? {
        Some(f) => f,
        None => {
            let f = KeyFile {
                keys: vec![new_key(1)],
            };
            write(path, &f)?;
            tracing::info!(path = %path.display(), "created the code-signing key");
            f
        }
    };
    keyring(&file)
}

/// Adds a new signing key; returns its id. Servers use it from their next start.
pub fn rotate(path: &Path) -> anyhow::Result<u32> {
    let mut file = read(path)?.unwrap_or(KeyFile { keys: Vec::new() });
    let id = file.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
    file.keys.push(new_key(id));
    write(path, &file)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_private_and_rotation_keeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public_keys(), again.public_keys());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let token = first
            .sign(o2o_codes::TokenKind::Pickup, "ord_1", i64::MAX)
            .unwrap();
        assert_eq!(rotate(&path).unwrap(), 2);
        let rotated = load_or_create(&path).unwrap();
        assert_eq!(rotated.active_id(), 2);
        assert!(rotated.verify(&token, 0).is_ok(), "old codes still verify");
    }
}
