//! The CLI's saved login: gateway URL and bearer token, in
//! `$XDG_CONFIG_HOME/mosaic/credentials.toml`, readable by its owner only (0600).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub url: Option<String>,
    pub token: Option<String>,
}

/// Where credentials live; `MOSAIC_CREDENTIALS` overrides (tests, several identities).
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOSAIC_CREDENTIALS") {
        return Some(PathBuf::from(p));
    }
    dirs::config_dir().map(|d| d.join("mosaic").join("credentials.toml"))
}

pub fn load() -> Result<Credentials> {
    let Some(path) = path() else {
        return Ok(Credentials::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Write the file with mode 0600 from its creation on (never briefly world-readable).
pub fn save(creds: &Credentials) -> Result<PathBuf> {
    let path = path().context("no config directory; set MOSAIC_CREDENTIALS")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(creds)?;
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn clear_token() -> Result<()> {
    let mut creds = load()?;
    if creds.token.take().is_some() {
        save(&creds)?;
    }
    Ok(())
}
