//! models.lock types.
