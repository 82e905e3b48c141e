//! Editing `models.yaml` as text, so that what a person wrote (comments, order, blank lines,
//! quoting) stays as it was: `mlib add` inserts one entry at the end of the `models:` block.

/// `text` with `entry` (lines indented by two spaces, as written by [`entry_text`]) added at
/// the end of the top-level `models:` mapping, re-indented to the indentation the block
/// already uses. `None` when there is no block `models:` key to add to.
pub fn insert_model(text: &str, entry: &str) -> Option<String> {
    insert_model_lf(text, entry).map(|out| same_endings(text, out))
}

fn insert_model_lf(text: &str, entry: &str) -> Option<String> {
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
    let last = last_filled(&lines, start, end);
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

/// `text` without model `model`'s block (an entry [`insert_model`] added, taken back when
/// what it names could not be stored); a `models:` left empty becomes `models: {}`. `None`
/// when the model is not found as a block under `models:`.
pub fn remove_model(text: &str, model: &str) -> Option<String> {
    remove_model_lf(text, model).map(|out| same_endings(text, out))
}

fn remove_model_lf(text: &str, model: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let item = find_item(&lines, "models", model)?;
    // Comments after the entry's last field belong to what follows.
    let last = (item.head..item.end)
        .rev()
        .find(|&i| {
            let t = lines[i].trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .unwrap_or(item.head);
    let mut kept: Vec<&str> = lines[..item.head].to_vec();
    kept.extend(lines[last + 1..].iter().copied());
    let start = kept.iter().position(|l| is_key(l, "models"))?;
    let end = kept[start + 1..]
        .iter()
        .position(|l| starts_top_level(l))
        .map_or(kept.len(), |i| start + 1 + i);
    let empty = kept[start + 1..end].iter().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    });
    let mut out: String = kept.concat();
    if empty {
        let rest: String = kept[start + 1..].concat();
        let before: String = kept[..start].concat();
        out = format!("{before}models: {{}}\n{rest}");
    }
    Some(out)
}

/// `text` with field `key` of model `model` set to `value` (the line replaced, or added at the
/// end of the model's block); everything else as it was. `None` when the model is not found
/// as a block under `models:`.
pub fn set_model_field(text: &str, model: &str, key: &str, value: &str) -> Option<String> {
    set_model_field_lf(text, model, key, value).map(|out| same_endings(text, out))
}

fn set_model_field_lf(text: &str, model: &str, key: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let item = find_item(&lines, "models", model)?;
    let line = format!("{}{key}: {value}\n", " ".repeat(item.field_indent));
    let existing = (item.head + 1..item.end)
        .find(|&i| indent_of(lines[i]) == item.field_indent && is_key(lines[i].trim_start(), key));
    Some(match existing {
        Some(i) => replace_line(&lines, i, &line),
        None => insert_after(&lines, last_filled(&lines, item.head, item.end), &line),
    })
}

/// `text` with `folders: {model_type: folder}` set in app `app` (the entry replaced, or added
/// to its `folders:` block, or a `folders:` block added). `None` when the app is not a block
/// under `apps:`, or its `folders:` is a one-line mapping with entries.
pub fn set_app_folder(text: &str, app: &str, model_type: &str, folder: &str) -> Option<String> {
    set_app_folder_lf(text, app, model_type, folder).map(|out| same_endings(text, out))
}

fn set_app_folder_lf(text: &str, app: &str, model_type: &str, folder: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let item = find_item(&lines, "apps", app)?;
    let indent = item.field_indent;
    let entry = |depth: usize| format!("{}{model_type}: {folder}\n", " ".repeat(depth));
    let folders = (item.head + 1..item.end)
        .find(|&i| indent_of(lines[i]) == indent && is_key(lines[i].trim_start(), "folders"));
    let Some(at) = folders else {
        let block = format!("{}folders:\n{}", " ".repeat(indent), entry(indent + 2));
        return Some(insert_after(
            &lines,
            last_filled(&lines, item.head, item.end),
            &block,
        ));
    };
    let rest = lines[at].trim_start()["folders:".len()..].trim();
    if rest == "{}" {
        let block = format!("{}folders:\n{}", " ".repeat(indent), entry(indent + 2));
        return Some(replace_line(&lines, at, &block));
    }
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let sub_end = (at + 1..item.end)
        .find(|&i| {
            let t = lines[i].trim();
            !t.is_empty() && !t.starts_with('#') && indent_of(lines[i]) <= indent
        })
        .unwrap_or(item.end);
    let depth = (at + 1..sub_end)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(indent + 2, indent_of);
    let existing = (at + 1..sub_end)
        .find(|&i| indent_of(lines[i]) == depth && is_key(lines[i].trim_start(), model_type));
    Some(match existing {
        Some(i) => replace_line(&lines, i, &entry(depth)),
        None => insert_after(&lines, last_filled(&lines, at, sub_end), &entry(depth)),
    })
}

/// `text` with `name` added to app `app`'s `models:` list (`[a, b]` on one line, or a block
/// of `- a` lines). `None` when the app has no such list (it gets `all` models, or it is not a
/// block under `apps:`).
pub fn add_to_app_models(text: &str, app: &str, name: &str) -> Option<String> {
    add_to_app_models_lf(text, app, name).map(|out| same_endings(text, out))
}

fn add_to_app_models_lf(text: &str, app: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let item = find_item(&lines, "apps", app)?;
    let indent = item.field_indent;
    let at = (item.head + 1..item.end)
        .find(|&i| indent_of(lines[i]) == indent && is_key(lines[i].trim_start(), "models"))?;
    let value = lines[at].trim_start()["models:".len()..].trim_end();
    let value = value.split(" #").next().unwrap_or(value).trim();
    if value.starts_with('[') && value.ends_with(']') {
        // Into the brackets, leaving the rest of the line (a comment) as it was.
        let line = lines[at];
        let open = line.find('[')?;
        let close = line.rfind(']')?;
        let added = if line[open + 1..close].trim().is_empty() {
            name.to_owned()
        } else {
            format!(", {name}")
        };
        let edited = format!("{}{added}{}", &line[..close], &line[close..]);
        return Some(replace_line(&lines, at, &edited));
    }
    if !value.is_empty() {
        return None;
    }
    let dash = (at + 1..item.end)
        .find(|&i| lines[i].trim_start().starts_with("- "))
        .map(|i| indent_of(lines[i]))?;
    let last = (at + 1..item.end)
        .take_while(|&i| {
            lines[i].trim().is_empty()
                || lines[i].trim_start().starts_with("- ")
                || lines[i].trim_start().starts_with('#')
        })
        .filter(|&i| lines[i].trim_start().starts_with("- "))
        .last()?;
    Some(insert_after(
        &lines,
        last,
        &format!("{}- {name}\n", " ".repeat(dash)),
    ))
}

/// Where one item (`  name:` under a top-level `section:`) is: its line, the end of its
/// block, and the indentation of its fields.
struct Item {
    head: usize,
    end: usize,
    field_indent: usize,
}

fn find_item(lines: &[&str], section: &str, name: &str) -> Option<Item> {
    let start = lines.iter().position(|l| is_key(l, section))?;
    let section_end = lines[start + 1..]
        .iter()
        .position(|l| starts_top_level(l))
        .map_or(lines.len(), |i| start + 1 + i);
    let item_indent = (start + 1..section_end)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(indent_of)?;
    let head = (start + 1..section_end)
        .find(|&i| indent_of(lines[i]) == item_indent && is_key(lines[i].trim_start(), name))?;
    // `a: {source: x}` is one line, not a block mlib can add to.
    let after = lines[head].trim_start()[name.len() + 1..].trim();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let end = (head + 1..section_end)
        .find(|&i| {
            let t = lines[i].trim();
            !t.is_empty() && !t.starts_with('#') && indent_of(lines[i]) <= item_indent
        })
        .unwrap_or(section_end);
    let field_indent = (head + 1..end)
        .map(|i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(item_indent + 2, indent_of);
    Some(Item {
        head,
        end,
        field_indent,
    })
}

/// The last line in `from..end` holding something (or `from`); a comment at column 0 belongs
/// to what follows it, not to the block.
fn last_filled(lines: &[&str], from: usize, end: usize) -> usize {
    (from..end)
        .rev()
        .find(|&i| {
            let t = lines[i].trim();
            let top_level_comment = t.starts_with('#') && indent_of(lines[i]) == 0;
            !t.is_empty() && !top_level_comment
        })
        .unwrap_or(from)
}

fn replace_line(lines: &[&str], at: usize, with: &str) -> String {
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out[at] = with.to_owned();
    out.concat()
}

fn insert_after(lines: &[&str], at: usize, text: &str) -> String {
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if !out[at].ends_with('\n') {
        out[at].push('\n');
    }
    out.insert(at + 1, text.to_owned());
    out.concat()
}

/// A model entry: `name:` and its fields, two spaces deep.
pub fn entry_text(name: &str, fields: &[(&str, String)]) -> String {
    let mut out = format!("  {name}:\n");
    for (key, value) in fields {
        out.push_str(&format!("    {key}: {value}\n"));
    }
    out
}

/// `edited` with the line endings of `original`: lines mlib adds end in `\n`, and a file
/// written on Windows (`\r\n`) must not end up with both.
fn same_endings(original: &str, edited: String) -> String {
    if original.contains("\r\n") {
        edited.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        edited
    }
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
    #[test]
    fn removes_a_model_block_and_leaves_the_rest() {
        let text = "version: 1\nmodels:\n  a:\n    source: ./a\n    sha256: x\n  # b's\n  b:\n    source: ./b\n\napps: {}\n";
        assert_eq!(
            super::remove_model(text, "a").unwrap(),
            "version: 1\nmodels:\n  # b's\n  b:\n    source: ./b\n\napps: {}\n"
        );
        let only = "version: 1\nmodels:\n  a:\n    source: ./a\napps: {}\n";
        assert_eq!(
            super::remove_model(only, "a").unwrap(),
            "version: 1\nmodels: {}\napps: {}\n"
        );
        assert_eq!(super::remove_model(only, "c"), None);
    }

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
    fn keeps_windows_line_endings_and_leaves_one_line_entries_alone() {
        let crlf = "models:\r\n  a:\r\n    source: ./a\r\n    type: vae\r\napps: {}\r\n";
        let out = insert_model(crlf, ENTRY).unwrap();
        assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
        let out = set_model_field(crlf, "a", "family", "sdxl").unwrap();
        assert!(out.contains("    family: sdxl\r\n"), "{out:?}");
        let flow = "models:\n  a: {source: ./a, type: vae}\n";
        assert_eq!(set_model_field(flow, "a", "family", "sdxl"), None);
    }

    #[test]
    fn adds_a_model_to_an_apps_list() {
        let flow = "apps:\n  c:\n    root: ./C\n    models: [a, sdxl]  # picked\n";
        assert_eq!(
            add_to_app_models(flow, "c", "new").unwrap(),
            "apps:\n  c:\n    root: ./C\n    models: [a, sdxl, new]  # picked\n"
        );
        let empty = "apps:\n  c:\n    models: []\n    root: ./C\n";
        assert_eq!(
            add_to_app_models(empty, "c", "new").unwrap(),
            "apps:\n  c:\n    models: [new]\n    root: ./C\n"
        );
        let block = "apps:\n  c:\n    models:\n      - a\n      - b\n    root: ./C\n";
        assert_eq!(
            add_to_app_models(block, "c", "new").unwrap(),
            "apps:\n  c:\n    models:\n      - a\n      - b\n      - new\n    root: ./C\n"
        );
        let all = "apps:\n  c:\n    models: all\n";
        assert_eq!(add_to_app_models(all, "c", "new"), None);
        assert_eq!(
            add_to_app_models("apps:\n  c:\n    root: ./C\n", "c", "new"),
            None
        );
    }

    #[test]
    fn sets_an_apps_folder() {
        let app = "apps:\n  comfyui:\n    preset: comfyui\n    root: ./C\n  forge:\n    preset: forge\n    root: ./F\n";
        assert_eq!(
            set_app_folder(app, "comfyui", "loras-sdxl", "models/loras/sdxl").unwrap(),
            "apps:\n  comfyui:\n    preset: comfyui\n    root: ./C\n    folders:\n      loras-sdxl: models/loras/sdxl\n  forge:\n    preset: forge\n    root: ./F\n"
        );
        let with = "apps:\n  comfyui:\n    root: ./C\n    folders:\n      vae: models/VAE\n# end\n";
        assert_eq!(
            set_app_folder(with, "comfyui", "loras-sdxl", "x").unwrap(),
            "apps:\n  comfyui:\n    root: ./C\n    folders:\n      vae: models/VAE\n      loras-sdxl: x\n# end\n"
        );
        assert_eq!(
            set_app_folder(with, "comfyui", "vae", "y").unwrap(),
            "apps:\n  comfyui:\n    root: ./C\n    folders:\n      vae: y\n# end\n"
        );
        let flow = "apps:\n  comfyui:\n    root: ./C\n    folders: {vae: v}\n";
        assert_eq!(set_app_folder(flow, "comfyui", "loras-sdxl", "x"), None);
        assert_eq!(set_app_folder(app, "nope", "t", "x"), None);
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
