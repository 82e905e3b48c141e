//! "Did you mean ...?" for misspelt keys, types, presets and model names.

/// The candidate closest to `word`, if it is close enough to be a likely typo: an edit distance
/// of at most a third of the word (at least 1), ignoring case; failing that, a candidate the word
/// abbreviates (`comfy` → `comfyui`).
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let typo = candidates
        .iter()
        .map(|c| (strsim::levenshtein(&word, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    typo.or_else(|| {
        (word.chars().count() >= 3)
            .then(|| {
                candidates
                    .iter()
                    .find(|c| c.to_lowercase().starts_with(&word))
                    .copied()
            })
            .flatten()
    })
}

/// `a`, `b` and `c` in backticks.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_but_not_strangers() {
        assert_eq!(closest("sorce", ["source", "type"]), Some("source"));
        assert_eq!(closest("lora", ["loras", "vae"]), Some("loras"));
        assert_eq!(closest("Type", ["type"]), Some("type"));
        assert_eq!(closest("xyz", ["source", "type"]), None);
        assert_eq!(closest("comfy", ["a1111", "comfyui"]), Some("comfyui"));
        assert_eq!(closest("co", ["comfyui"]), None);
    }
}
