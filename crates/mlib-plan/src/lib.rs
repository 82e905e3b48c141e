//! mlib-plan
