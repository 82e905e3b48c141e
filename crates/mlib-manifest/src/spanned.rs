//! A manifest value and where it is written, or only the value.
//!
//! Reading where each value is written is about half of what the YAML read costs (the parser
//! hands serde every place as two nested structures), and a manifest without errors never
//! needs a place. So [`crate::parse`] reads a manifest without places first and, only when
//! that finds a problem, reads it again with them to report it (see `yaml.rs`). The switch is
//! a thread-local flag because the raw types' derived `Deserialize` cannot take a parameter.

use std::cell::Cell;

use serde::de::{Deserialize, Deserializer};
use serde::{Serialize, Serializer};
use serde_saphyr::Location;

thread_local! {
    /// Whether values being read keep their places (the default, and always for errors).
    static PLACES: Cell<bool> = const { Cell::new(true) };
}

/// `value` and where it is referenced in the manifest ([`Location::UNKNOWN`] when read without
/// places).
#[derive(Debug)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub referenced: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if PLACES.get() {
            let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
            Ok(Spanned {
                value: spanned.value,
                referenced: spanned.referenced,
            })
        } else {
            Ok(Spanned {
                value: T::deserialize(deserializer)?,
                referenced: Location::UNKNOWN,
            })
        }
    }
}

/// The value alone: the JSON schema shows a field's default through it, as it did through
/// `serde_saphyr::Spanned`.
impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

/// Whether values being read now keep their places.
pub(crate) fn places() -> bool {
    PLACES.get()
}

/// Runs `read` with places kept or not; the flag is restored afterwards, even on a panic.
pub(crate) fn with_places<R>(places: bool, read: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PLACES.set(self.0);
        }
    }
    let _restore = Restore(PLACES.replace(places));
    read()
}
