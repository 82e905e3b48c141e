use std::path::PathBuf;

/// Why a file's header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a model file at all; says what it looks like instead.
    #[error("not a model file: it looks like {what} (a download that returned an error page?)")]
    NotAModel { what: &'static str },
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("malformed header: {0}")]
    Malformed(String),
    #[error(
        "not a model header: it claims {size} bytes of header, more than the {limit} the format allows"
    )]
    TooLarge { size: u64, limit: u64 },
}

impl InspectError {
    pub(crate) fn malformed(why: impl Into<String>) -> InspectError {
        InspectError::Malformed(why.into())
    }
}
