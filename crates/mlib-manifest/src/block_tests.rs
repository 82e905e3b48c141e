//! The block reader against serde-saphyr: wherever it answers, it answers what serde-saphyr
//! does; and it answers for the manifests people write.

use super::*;
use crate::raw::RawManifest;
use crate::spanned::with_places;

/// serde-saphyr's reading of `text` (without places, as the fast reader's result is), as text.
fn saphyr(text: &str) -> Result<String, String> {
    with_places(false, || {
        serde_saphyr::from_str_with_options::<RawManifest>(text, crate::yaml::options())
            .map(|raw| format!("{raw:?}"))
            .map_err(|error| error.to_string())
    })
}

fn fast(text: &str) -> Option<String> {
    with_places(false, || {
        read::<RawManifest>(text).map(|raw| format!("{raw:?}"))
    })
}

/// The fast reader either gives up or agrees with serde-saphyr, which must then succeed.
fn agrees(text: &str) -> bool {
    match fast(text) {
        None => false,
        Some(fast) => {
            assert_eq!(Ok(fast), saphyr(text), "the readers disagree on:\n{text}");
            true
        }
    }
}

const HEAD: &str = "version: 1\nstore: /s\nmodels:\n  m:\n    type: loras\n";

#[test]
fn the_manifests_people_write_take_the_fast_path() {
    let example = include_str!("../../../models.yaml.example");
    let quickstart = include_str!("../../../examples/quickstart/models.yaml");
    let docker = include_str!("../../../examples/docker/models.yaml");
    let crlf = "version: 1\r\nstore: /s\r\nmodels:\r\n  m:\r\n    source: ./m.safetensors\r\n    type: loras\r\n";
    for text in [example, quickstart, docker, crlf] {
        assert!(agrees(text), "not read by the fast path:\n{text}");
    }
}

#[test]
fn the_benchmark_manifest_takes_the_fast_path() {
    let mut text = String::from("# generated\nversion: 1\nstore: ./store\nmodels:\n");
    for i in 0..50 {
        text += &format!(
            "  m{i:05}:\n    source: ./files/loras/m{i:05}.safetensors\n    sha256: {:064x}\n    type: loras\n    family: sdxl\n",
            i * 7919 + 0xc0ffee
        );
    }
    text += "apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n";
    assert!(agrees(&text));
}

#[test]
fn values_of_every_shape_agree() {
    // Each line goes under model `m`; the fast path must take these.
    let taken = [
        "    source: ./a b.safetensors",
        "    source: 'it''s.safetensors'",
        "    source: \"q # not a comment.safetensors\"",
        "    source: civitai:122359@135867 # a comment",
        "    source: https://h/x.safetensors?a=1&b={c}",
        "    source: ./é ü.safetensors",
        "    sha256: 1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
        "    tags: [a, 'b', \"c\"]",
        "    tags: []",
        "    tags:\n      - a\n      - 'b' # c",
        "    tags:\n    - a\n    - b",
        "    include: [\"*.safetensors\", '**/x']",
        "    requires:\n      comfyui: \">=0.3.40\"",
        "    file:",
        "    family: ~",
        "    file: null",
        "    file: yes",
        "    file: -x",
        "    file: ---",
        "    tags: [-1, -x]",
        "    file: x\"y'z\"",
        "    file: 0x1F",
        "    file: 1e3",
        "    file: 1.10",
        "    file: 0.3.40",
        "    requires: { comfyui: \">=0.3.40\", 'forge': \">=2.0\" }",
        "    requires: {}",
    ];
    for line in taken {
        let text = format!("{HEAD}    source: ./x.safetensors\n")
            .replace("    source: ./x.safetensors\n", "")
            + line
            + if line.contains("source:") {
                "\n"
            } else {
                "\n    source: ./x\n"
            };
        assert!(agrees(&text), "not read by the fast path:\n{text}");
    }
}

#[test]
fn anything_unusual_is_left_to_serde_saphyr() {
    let left = [
        "    source: &a ./x",
        "    source: !!str ./x",
        "    source: |\n      ./x",
        "    source: >\n      ./x",
        "    source: \"./\\x41\"",
        "    source: ./x\n      continued",
        "    source: {a: b}",
        "    source: ./x\n    tags: [a,\n      b]",
        "    source: ~",
        "    tags: [null]",
        "    source: a: b",
        "    source:\t./x",
        "    sourc: ./x",
        "    source: ./x\n    source: ./y",
        "    tags: [a, ]",
        "    tags: [a] b",
        "    tags:\n      - [a]\n      -\n        - b",
    ];
    for line in left {
        let text = format!("{HEAD}{line}\n");
        assert!(fast(&text).is_none(), "taken by the fast path:\n{text}");
    }
    for text in [
        "%YAML 1.2\n---\nversion: 1\nstore: /s\n",
        "---\nversion: 1\nstore: /s\n",
        "version: 1\nstore: /s\n...\n",
        "\u{feff}version: 1\nstore: /s\n",
        "  version: 1\n  store: /s\n",
        "version: 1\n store: /s\n",
        "version: 01\nstore: /s\n",
        "version: \"1\"\nstore: /s\n",
        "version: 1\nstore: /s\napps:\n  a:\n    root: /r\n    models: 123\n",
        "version: 1\nstore: /s\napps:\n  a:\n    root: /r\n    models: [a, {b: c}]\n",
        "version: 1\nstore: /s\r",
        "version: 1\nstore: \"/s\"x\n",
        "version: 1\nstore: \"/s\"# c\n",
        // Characters YAML versions treat differently, anywhere.
        "version: 1\nstore: /s\u{85}x\n",
        "version: 1\nstore: /s\u{2028}x\n",
        "version: 1\nstore: /s\u{2029}x\n",
        "version: 1\nstore: /s\u{feff}\n",
        "version: 1\nstore: /s\u{7f}\n",
        "version: 1\nstore: /s\u{1}\n",
    ] {
        assert!(fast(text).is_none(), "taken by the fast path:\n{text}");
    }
    // Other characters of several bytes, near those, are plain text.
    let text = "version: 1\nstore: /s/é\u{84}\u{2027}\u{202a}\u{fefe}€日本\n";
    assert!(fast(text).is_some(), "left out of the fast path:\n{text}");
    // Wherever a character falls among the 16-byte pieces the text is checked in.
    for pad in 0..20 {
        let pad = "a".repeat(pad);
        for (c, plain) in [
            ("\u{2028}", false),
            ("\r", false),
            ("\u{85}", false),
            ("€", true),
        ] {
            let text = format!("version: 1\nstore: /{pad}{c}b\n");
            assert_eq!(fast(&text).is_some(), plain, "{text:?}");
        }
    }
}

#[test]
fn a_deeply_nested_text_is_left_to_serde_saphyr_without_deep_recursion() {
    // 5,000 levels of `a:`: read into a tree by recursion, it would overflow a thread's stack.
    let mut text = String::from("version: 1\nstore: /s\nmodels:\n");
    for depth in 0..5000 {
        text += &" ".repeat(depth + 2);
        text += "a:\n";
    }
    let read = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || parse(&text).is_none())
        .unwrap()
        .join()
        .unwrap();
    assert!(read, "left to serde-saphyr");
    // The deepest a manifest goes is read.
    let text =
        "version: 1\nstore: /s\napps:\n  a:\n    root: /r\n    container:\n      store: /m\n";
    assert!(agrees(text));
}

/// A small deterministic generator (xorshift), so the test needs no crate and always runs the
/// same cases.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

#[test]
fn generated_manifests_agree() {
    // Strings in every quoting, including ones YAML could type otherwise; YAML that is unusual,
    // not a string or not YAML at all, one value in ten; lists and mappings inline and as
    // blocks; comments; CRLF.
    let strings = [
        "x",
        "./a b",
        "a:b",
        "a#b",
        "'q'",
        "\"d\"",
        "'it''s'",
        "''",
        "\"\"",
        "true",
        "yes",
        "No",
        "1",
        "01",
        "1e3",
        "0x1F",
        "0o7",
        ".5",
        "-1",
        "+1",
        "1_000",
        "1:20",
        ".inf",
        "1.10",
        "é ü",
        "sdxl",
        "x # c",
        "\"x\" # c",
        "a,b",
        "12ab",
        "1.5.2",
        "\">=0.3.40\"",
        "x\"y",
        "a]",
        "a}",
        "a[b]",
        "'#'",
        "\"a, b\"",
        "'a]'",
    ];
    let tricky = [
        "a: b",
        "a #b",
        "\"e\\\"x\"",
        "~",
        "null",
        "Null",
        "-a",
        "*x",
        "&y z",
        "!t v",
        "@x",
        "`x",
        "%x",
        "[]",
        "[a,]",
        "[a, [b]]",
        "{a: 1}",
        "{a: [b]}",
        "|",
        ">",
        "?x",
        ":x",
        "x:",
        "'a' b",
        ">=0.3.40",
        "{}",
        "{a: 1,}",
        "[a] #",
        "'x'#",
        "[a, b",
        "{ a: b",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let scalar = |rng: &mut Rng| match rng.pick(&["s", "s", "s", "s", "s", "s", "s", "s", "s", "t"])
    {
        "s" => rng.pick(&strings).to_owned(),
        _ => rng.pick(&tricky).to_owned(),
    };
    let (mut taken, mut valid) = (0, 0);
    for case in 0..3000 {
        let mut text = String::from("version: 1\nstore: /s\n");
        text += match rng.pick(&["0", "1", "2", "3", "4", "5"]) {
            "0" => "layout: flat\n",
            "1" => "mirrors: [a, 'b']\n",
            "2" => "mirrors:\n- a\n",
            "3" => "# comment\n\n",
            "4" => "state: ~\n",
            _ => "",
        };
        text += "models:\n";
        for m in 0..2 {
            text += &format!("  m{m}:\n    source: {}\n", scalar(&mut rng));
            text += &format!("    type: {} # c\n", scalar(&mut rng));
            let (a, b, c) = (scalar(&mut rng), scalar(&mut rng), scalar(&mut rng));
            text += &match rng.pick(&[
                "family",
                "tags",
                "tags-block",
                "requires",
                "requires-block",
                "file",
                "none",
            ]) {
                "family" => format!("    family: {a}\n"),
                "tags" => format!("    tags: [{a}, {b}]\n"),
                "tags-block" => format!("    tags:\n      - {a}\n      # {b}\n      - {c}\n"),
                "requires" => format!("    requires: {{ comfyui: {a}, {b}: {c} }}\n"),
                "requires-block" => format!("    requires:\n      comfyui: {a}\n"),
                "file" => format!("    file: {a}\n"),
                _ => String::new(),
            };
        }
        text += &format!("apps:\n  a:\n    root: {}\n", scalar(&mut rng));
        let a = scalar(&mut rng);
        text += &match rng.pick(&[
            "preset",
            "link",
            "models",
            "models-list",
            "folders",
            "version",
        ]) {
            "preset" => format!(
                "    preset: {}\n",
                rng.pick(&["comfyui", "forge", "'a1111'", &a])
            ),
            "link" => format!("    link: {}\n", rng.pick(&["symlink", "\"copy\"", &a])),
            "models" => format!("    models: {}\n", rng.pick(&["all", "[m0, m1]", &a])),
            "models-list" => format!("    models:\n    - m0\n    - {a}\n"),
            "folders" => format!("    folders:\n      loras: {a}\n"),
            _ => format!("    version: {a}\n"),
        };
        // One case in three has a line indented differently: a structure error, or another
        // structure.
        if case % 3 == 0 {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let at = rng.below(lines.len());
            lines[at] = match rng.pick(&["in", "out", "in2", "out2"]) {
                "in" => format!(" {}", lines[at]),
                "in2" => format!("  {}", lines[at]),
                "out" => lines[at].strip_prefix(' ').unwrap_or(&lines[at]).to_owned(),
                _ => lines[at]
                    .strip_prefix("  ")
                    .unwrap_or(&lines[at])
                    .to_owned(),
            };
            text = lines.join("\n") + "\n";
        }
        if case % 7 == 0 {
            text = text.replace('\n', "\r\n");
        }
        taken += usize::from(agrees(&text));
        valid += usize::from(saphyr(&text).is_ok());
    }
    // Most of what serde-saphyr reads, the fast path takes, so the comparison means something.
    assert!(
        valid > 600 && taken * 10 > valid * 7,
        "{taken} of {valid} read manifests took the fast path"
    );
}
