//! mlib-registry
