//! mlib-store
