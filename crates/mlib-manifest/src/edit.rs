//! Editing `models.yaml` as text, so that what a person wrote (comments, order, blank lines,
//! quoting) stays as it was: `mlib add` inserts one entry at the end of the `models:` block.

/// `text` with `entry` (lines indented by two spaces, as written by [`entry_text`]) added at
/// the end of the top-level `models:` mapping, re-indented to the indentation the block
/// already uses. `None` when there is no block `models:` key to add to.
pub fn insert_model(text: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| is_key(l, "models"))?;
    let header = lines[start];
    let after_colon = header.trim_end()["models:".len()..].trim();
    let mut out = String::new();
    if after_colon == "{}" {
        // `models: {}`: becomes a block with the one entry.
        out.extend(lines[..start].iter().copied());
        out.push_str("models:\n");
        out.push_str(&reindent(entry, 2));
        out.extend(lines[start + 1..].iter().copied());
        return Some(ensure_newline(out));
    }
    if !(after_colon.is_empty() || after_colon.starts_with('#')) {
        return None;
    }
    // The block ends at the next line that starts at column 0 and is not a comment.
    let end = lines[start + 1..]
        .iter()
        .position(|l| starts_top_level(l))
        .map_or(lines.len(), |i| start + 1 + i);
    // Insert after the block's last line holding something (comments and blank lines that
    // precede the next key stay with it).
    let last = (start + 1..end)
        .rev()
        .find(|&i| {
            let t = lines[i].trim();
            let top_level_comment = t.starts_with('#') && indent_of(lines[i]) == 0;
            !t.is_empty() && !top_level_comment
        })
        .unwrap_or(start);
    let indent = (start + 1..end)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(2, indent_of);
    out.extend(lines[..=last].iter().copied());
    out = ensure_newline(out);
    out.push_str(&reindent(entry, indent));
    out.extend(lines[last + 1..].iter().copied());
    Some(out)
}

/// `text` with field `key` of model `model` set to `value` (the line replaced, or added at the
/// end of the model's block); everything else as it was. `None` when the model is not found
/// as a block under `models:`.
pub fn set_model_field(text: &str, model: &str, key: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| is_key(l, "models"))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| starts_top_level(l))
        .map_or(lines.len(), |i| start + 1 + i);
    let head = (start + 1..end).find(|&i| {
        let line = lines[i];
        indent_of(line) > 0 && is_key(line.trim_start(), model)
    })?;
    let own = indent_of(lines[head]);
    let block_end = (head + 1..end)
        .find(|&i| {
            let t = lines[i].trim();
            !t.is_empty() && !t.starts_with('#') && indent_of(lines[i]) <= own
        })
        .unwrap_or(end);
    let field_indent = (head + 1..block_end)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(own + 2, indent_of);
    let line = format!("{}{key}: {value}\n", " ".repeat(field_indent));
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let existing = (head + 1..block_end)
        .find(|&i| indent_of(lines[i]) == field_indent && is_key(lines[i].trim_start(), key));
    match existing {
        Some(i) => out[i] = line,
        None => {
            let last = (head..block_end)
                .rev()
                .find(|&i| !lines[i].trim().is_empty())
                .unwrap_or(head);
            if !out[last].ends_with('\n') {
                out[last].push('\n');
            }
            out.insert(last + 1, line);
        }
    }
    Some(out.concat())
}

/// A model entry: `name:` and its fields, two spaces deep.
pub fn entry_text(name: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("  {name}:\n");
    for (key, value) in fields {
        out.push_str(&format!("    {key}: {value}\n"));
    }
    out
}

fn is_key(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .is_some_and(|rest| rest.starts_with(':'))
}

fn starts_top_level(line: &str) -> bool {
    let first = line.chars().next();
    matches!(first, Some(c) if !c.is_whitespace() && c != '#')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `entry`'s lines, written two spaces deep, moved to `indent` (nested lines keep their
/// relative depth).
fn reindent(entry: &str, indent: usize) -> String {
    let mut out = String::new();
    for line in entry.lines() {
        let own = indent_of(line);
        let depth = own.saturating_sub(2) * indent / 2;
        out.push_str(&" ".repeat(indent + depth));
        out.push_str(line.trim_start_matches(' '));
        out.push('\n');
    }
    out
}

fn ensure_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "  new:\n    source: ./new.safetensors\n    type: loras\n";

    #[test]
    fn adds_at_the_end_of_the_models_block_keeping_comments() {
        let text = "# my models\nversion: 1\nstore: ./store\nmodels:\n  # the base\n  base:\n    source: ./b.safetensors   # from the website\n    type: checkpoints\n\n# apps below\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n";
        let out = insert_model(text, ENTRY).unwrap();
        assert_eq!(
            out,
            "# my models\nversion: 1\nstore: ./store\nmodels:\n  # the base\n  base:\n    source: ./b.safetensors   # from the website\n    type: checkpoints\n  new:\n    source: ./new.safetensors\n    type: loras\n\n# apps below\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
        );
    }

    #[test]
    fn sets_a_field_of_one_model_in_place() {
        let text = "models:\n  a:\n    source: ./a.safetensors  # mine\n    type: loras\n  b:\n    source: ./b\n    type: vae\napps: {}\n";
        assert_eq!(
            set_model_field(text, "a", "source", "\"civitai:1@2\"").unwrap(),
            "models:\n  a:\n    source: \"civitai:1@2\"\n    type: loras\n  b:\n    source: ./b\n    type: vae\napps: {}\n"
        );
        assert_eq!(
            set_model_field(text, "b", "family", "sdxl").unwrap(),
            "models:\n  a:\n    source: ./a.safetensors  # mine\n    type: loras\n  b:\n    source: ./b\n    type: vae\n    family: sdxl\napps: {}\n"
        );
        assert_eq!(set_model_field(text, "c", "family", "sdxl"), None);
    }

    #[test]
    fn follows_the_blocks_indentation_and_handles_edges() {
        let four = "models:\n    base:\n        source: ./b\n        type: vae\napps: {}\n";
        assert_eq!(
            insert_model(four, ENTRY).unwrap(),
            "models:\n    base:\n        source: ./b\n        type: vae\n    new:\n        source: ./new.safetensors\n        type: loras\napps: {}\n"
        );
        // The last key of the file, without a final newline.
        let last = "version: 1\nmodels:\n  a:\n    source: ./a\n    type: vae";
        assert!(
            insert_model(last, ENTRY)
                .unwrap()
                .ends_with("type: vae\n  new:\n    source: ./new.safetensors\n    type: loras\n")
        );
        // An empty mapping becomes a block.
        let empty = "version: 1\nmodels: {}\napps: {}\n";
        assert_eq!(
            insert_model(empty, ENTRY).unwrap(),
            "version: 1\nmodels:\n  new:\n    source: ./new.safetensors\n    type: loras\napps: {}\n"
        );
        // A flow mapping with entries, or no models key: not edited.
        assert_eq!(insert_model("models: {a: {source: x}}\n", ENTRY), None);
        assert_eq!(insert_model("version: 1\n", ENTRY), None);
    }
}
