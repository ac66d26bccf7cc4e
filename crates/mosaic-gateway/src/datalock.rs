//! One gateway per SQLite database. Two processes on one file would each believe the
//! other's live runs were cut off by a crash (recovery marks them interrupted) and
//! answer one message twice. The gateway holds an exclusive advisory lock on
//! `<database>.lock` (in the data directory for the default database) while it runs;
//! the kernel releases it when the process ends, however it ends, so a crash leaves no
//! stale lock behind. PostgreSQL is shared by design (replicas) and takes none.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Config;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gateway is already running on {database}{holder} (it holds {lock}); \
         stop it first, or give this one another data directory"
    )]
    Held {
        database: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock {lock}: {source}")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// The SQLite file a database URL names, if it names one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl DataLock {
    /// Take the lock of the configured SQLite database; `None` on PostgreSQL.
    pub fn take(config: &Config) -> Result<Option<DataLock>, LockError> {
        let Some(database) = sqlite_path(&config.database_url()?) else {
            return Ok(None);
        };
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The data directory may not exist yet on a first start.
            std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
                lock: dir.to_path_buf(),
                source,
            })?;
        }
        Self::take_for(&database).map(Some)
    }

    fn take_for(database: &Path) -> Result<DataLock, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        use rustix::fs::{flock, FlockOperation};
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let holder = std::fs::read_to_string(&lock)
                    .ok()
                    .map(|pid| pid.trim().to_string())
                    .filter(|pid| !pid.is_empty())
                    .map(|pid| format!(" as process {pid}"))
                    .unwrap_or_default();
                return Err(LockError::Held {
                    database: database.to_path_buf(),
                    lock,
                    holder,
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        // Who holds it, for the message a second gateway prints.
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/mosaic/mosaic.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/mosaic/mosaic.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:data.db"),
            Some(PathBuf::from("data.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }

    #[test]
    fn a_second_lock_on_one_database_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mosaic.db");
        let first = DataLock::take_for(&db).unwrap();
        let err = DataLock::take_for(&db).unwrap_err().to_string();
        assert!(err.contains("another gateway is already running"), "{err}");
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DataLock::take_for(&db).unwrap();
    }
}
