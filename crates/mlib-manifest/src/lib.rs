//! mlib-manifest
