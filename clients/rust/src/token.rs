//! Where the bearer token comes from.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::Error;

/// The bearer token each call carries.
#[derive(Clone)]
pub enum TokenSource {
    /// The same token for every call.
    Static(String),
    /// A file read again whenever it changes, e.g. a Kubernetes projected ServiceAccount token,
    /// which the kubelet rotates in place.
    File(FileToken),
    /// Asked on every call (a token cache of your own, an OAuth client).
    Callback(Arc<dyn Fn() -> Result<String, String> + Send + Sync>),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Static(_) => f.write_str("TokenSource::Static(..)"),
            TokenSource::File(file) => write!(f, "TokenSource::File({:?})", file.path),
            TokenSource::Callback(_) => f.write_str("TokenSource::Callback(..)"),
        }
    }
}

impl TokenSource {
    /// A token read from `path`, and read again when its modification time changes.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        TokenSource::File(FileToken {
            path: path.into(),
            cached: Arc::new(Mutex::new(None)),
        })
    }

    /// A token from `f`, asked on every call.
    pub fn callback(f: impl Fn() -> Result<String, String> + Send + Sync + 'static) -> Self {
        TokenSource::Callback(Arc::new(f))
    }

    /// The token for the next call.
    pub fn token(&self) -> Result<String, Error> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::File(file) => file.read(),
            TokenSource::Callback(f) => f().map_err(Error::Token),
        }
    }
}

/// A token file and the last token read from it, with the modification time it was read at.
#[derive(Clone)]
pub struct FileToken {
    path: PathBuf,
    cached: Arc<Mutex<Option<(SystemTime, String)>>>,
}

impl FileToken {
    fn read(&self) -> Result<String, Error> {
        let unreadable = |e: std::io::Error| Error::Token(format!("{}: {e}", self.path.display()));
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(unreadable)?;
        let mut cached = self.cached.lock();
        if let Some((at, token)) = cached.as_ref()
            && *at == modified
        {
            return Ok(token.clone());
        }
        let token = std::fs::read_to_string(&self.path)
            .map_err(unreadable)?
            .trim()
            .to_owned();
        if token.is_empty() {
            return Err(Error::Token(format!("{} is empty", self.path.display())));
        }
        *cached = Some((modified, token.clone()));
        Ok(token)
    }
}
