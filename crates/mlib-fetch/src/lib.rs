//! mlib-fetch
