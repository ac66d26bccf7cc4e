//! Encryption of secrets at rest (provider API keys): XChaCha20-Poly1305 under one key
//! per gateway. The key is 32 random bytes in `secret.key` in the data directory,
//! created with mode 0600 on first use; replicas of a scaled gateway share it through
//! `MOSAIC_SECRET_KEY_FILE` (or `secret_key_file`). A stored secret is
//! `v1:` + base64(nonce ‖ ciphertext); plaintext never touches the database, a log or
//! an API response.

use std::path::{Path, PathBuf};

use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("cannot read or create the secret key {path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret key {0} is not 32 bytes")]
    KeyLength(PathBuf),
    #[error("a stored secret cannot be decrypted (was the secret key replaced?)")]
    Decrypt,
}

/// Encrypts and decrypts secrets with the gateway's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// Load the key from `path`, creating it (0600) when missing.
    pub fn open(path: &Path) -> Result<SecretBox, SecretBoxError> {
        let err = |source| SecretBoxError::Key {
            path: path.to_path_buf(),
            source,
        };
        let key = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                write_private(path, key.as_slice()).map_err(err)?;
                key.to_vec()
            }
            Err(e) => return Err(err(e)),
        };
        if key.len() != 32 {
            return Err(SecretBoxError::KeyLength(path.to_path_buf()));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| SecretBoxError::KeyLength(path.to_path_buf()))?;
        Ok(SecretBox { cipher })
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce cannot fail for inputs this size.
        let sealed = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    pub fn open_secret(&self, stored: &str) -> Result<String, SecretBoxError> {
        let encoded = stored.strip_prefix(PREFIX).ok_or(SecretBoxError::Decrypt)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| SecretBoxError::Decrypt)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretBoxError::Decrypt);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SecretBoxError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SecretBoxError::Decrypt)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_the_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let sb = SecretBox::open(&path).unwrap();
        let sealed = sb.seal("sk-live-123");
        assert!(sealed.starts_with("v1:") && !sealed.contains("sk-live"));
        assert_ne!(sealed, sb.seal("sk-live-123"), "fresh nonce each time");
        // Reopening uses the same key.
        assert_eq!(
            SecretBox::open(&path)
                .unwrap()
                .open_secret(&sealed)
                .unwrap(),
            "sk-live-123"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = SecretBox::open(&dir.path().join("other.key")).unwrap();
        assert!(other.open_secret(&sealed).is_err());
        assert!(sb.open_secret("v1:garbage").is_err());
    }
}
