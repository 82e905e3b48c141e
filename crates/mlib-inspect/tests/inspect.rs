//! Headers built here, byte for byte, as the formats define them: classification, errors, and
//! corrupt or truncated input that must never panic.

use mlib_inspect::{Gguf, InspectError, Kind, Safetensors, inspect};

/// A safetensors file with these (name, shape) F16 tensors (zeros) and metadata.
fn safetensors(tensors: &[(&str, &[u64])], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<u64>() * 2;
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    if !metadata.is_empty() {
        let meta: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
            .collect();
        header.insert("__metadata__".into(), meta.into());
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend(json);
    file.extend(std::iter::repeat_n(0u8, offset as usize));
    file
}

fn classify(tensors: &[(&str, &[u64])]) -> (Kind, Option<String>) {
    let bytes = safetensors(tensors, &[]);
    let st = Safetensors::read(&mut bytes.as_slice(), bytes.len() as u64).unwrap();
    let report = st.report(bytes.len() as u64);
    (report.kind, report.family)
}

fn f(family: &str) -> Option<String> {
    Some(family.to_owned())
}

#[test]
fn families_and_kinds_from_tensor_names_and_shapes() {
    let k = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
    /// What, tensors, expected kind and family.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u64])>, Kind, Option<String>);
    let cases: Vec<Case> = vec![
        (
            "sd15 checkpoint",
            vec![
                (k, &[320, 768]),
                ("first_stage_model.decoder.conv_in.weight", &[4, 4]),
            ],
            Kind::Checkpoint,
            f("sd15"),
        ),
        (
            "sd2 unet",
            vec![(k, &[320, 1024])],
            Kind::DiffusionModel,
            f("sd2"),
        ),
        (
            "sdxl checkpoint",
            vec![
                (k, &[640, 2048]),
                ("conditioner.embedders.1.model.ln_final.weight", &[4]),
                ("first_stage_model.encoder.conv_in.weight", &[4]),
            ],
            Kind::Checkpoint,
            f("sdxl"),
        ),
        (
            "sdxl unet alone",
            vec![
                ("input_blocks.0.0.weight", &[4, 4]),
                ("label_emb.0.0.weight", &[4, 4]),
            ],
            Kind::DiffusionModel,
            f("sdxl"),
        ),
        (
            "sd3",
            vec![(
                "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",
                &[4, 4],
            )],
            Kind::DiffusionModel,
            f("sd3"),
        ),
        (
            "flux dev",
            vec![
                ("double_blocks.0.img_attn.qkv.weight", &[4, 4]),
                ("guidance_in.in_layer.weight", &[4, 4]),
            ],
            Kind::DiffusionModel,
            f("flux-dev"),
        ),
        (
            "flux schnell",
            vec![("double_blocks.0.img_attn.qkv.weight", &[4, 4])],
            Kind::DiffusionModel,
            f("flux-schnell"),
        ),
        (
            "sd15 lora (kohya)",
            vec![
                (
                    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight",
                    &[8, 768],
                ),
                (
                    "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                    &[3072, 8],
                ),
            ],
            Kind::Lora,
            f("sd15"),
        ),
        (
            "sdxl lora (kohya)",
            vec![
                (
                    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight",
                    &[8, 2048],
                ),
                (
                    "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                    &[8, 768],
                ),
            ],
            Kind::Lora,
            f("sdxl"),
        ),
        (
            "flux lora (diffusers)",
            vec![(
                "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight",
                &[16, 3072],
            )],
            Kind::Lora,
            f("flux"),
        ),
        (
            "loha",
            vec![
                (
                    "lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a",
                    &[4, 4],
                ),
                ("lora_te_text_model_x.hada_w1_b", &[4, 4]),
            ],
            Kind::Lycoris,
            f("sd15"),
        ),
        (
            "sd vae",
            vec![
                ("encoder.conv_in.weight", &[128, 3]),
                ("decoder.conv_in.weight", &[512, 4]),
                ("decoder.conv_out.weight", &[3, 128]),
            ],
            Kind::Vae,
            f("sd"),
        ),
        (
            "flux vae",
            vec![
                ("encoder.conv_in.weight", &[128, 3]),
                ("decoder.conv_in.weight", &[512, 16]),
                ("decoder.conv_out.weight", &[3, 128]),
            ],
            Kind::Vae,
            f("sd3-flux"),
        ),
        (
            "a VAE's decoder alone",
            vec![("decoder.conv_in.weight", &[8, 4])],
            Kind::Vae,
            f("sd"),
        ),
        (
            "clip-l",
            vec![(
                "text_model.encoder.layers.0.self_attn.k_proj.weight",
                &[768, 768],
            )],
            Kind::TextEncoder,
            f("clip-l"),
        ),
        (
            "clip-g",
            vec![(
                "text_model.encoder.layers.0.self_attn.k_proj.weight",
                &[1280, 1280],
            )],
            Kind::TextEncoder,
            f("clip-g"),
        ),
        (
            "t5",
            vec![("encoder.block.0.layer.0.SelfAttention.k.weight", &[4, 4])],
            Kind::TextEncoder,
            f("t5"),
        ),
        (
            "controlnet sd15",
            vec![
                ("control_model.input_hint_block.0.weight", &[16, 3]),
                (
                    "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                    &[320, 768],
                ),
            ],
            Kind::ControlNet,
            f("sd15"),
        ),
        (
            "controlnet sdxl (diffusers)",
            vec![
                ("controlnet_cond_embedding.conv_in.weight", &[16, 3]),
                (
                    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                    &[640, 2048],
                ),
            ],
            Kind::ControlNet,
            f("sdxl"),
        ),
        (
            "esrgan",
            vec![
                ("conv_first.weight", &[64, 3]),
                ("body.0.rdb1.conv1.weight", &[32, 64]),
            ],
            Kind::Upscaler,
            f("esrgan"),
        ),
        (
            "something else",
            vec![("weight", &[4])],
            Kind::Unknown,
            None,
        ),
    ];
    for (what, tensors, kind, family) in cases {
        assert_eq!(classify(&tensors), (kind, family), "{what}");
    }
}

#[test]
fn a_file_reports_dtype_parameters_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lora.safetensors");
    let long = "x".repeat(5000);
    std::fs::write(
        &path,
        safetensors(
            &[("lora_te_text_model.lora_down.weight", &[8, 768])],
            &[
                ("ss_base_model_version", "sd_v1"),
                ("ss_tag_frequency", &long),
            ],
        ),
    )
    .unwrap();
    let report = inspect(&path).unwrap();
    assert_eq!((report.format, report.kind), ("safetensors", Kind::Lora));
    assert_eq!(report.family.as_deref(), Some("sd15"));
    assert_eq!(report.dtype.as_deref(), Some("F16"));
    assert_eq!(report.parameters, 8 * 768);
    assert_eq!(
        report.metadata[0],
        ("ss_base_model_version".into(), "sd_v1".into())
    );
    assert!(report.metadata[1].1.chars().count() <= mlib_inspect::MAX_SHOWN_VALUE + 1);
}

#[test]
fn error_pages_truncation_and_lies_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        inspect(&path).unwrap_err()
    };
    let html = at(
        "page.safetensors",
        b"<!DOCTYPE html><html><body>Access denied</body></html>",
    );
    assert!(
        matches!(
            html,
            InspectError::NotAModel {
                what: "an HTML page"
            }
        ),
        "{html}"
    );
    assert!(html.to_string().contains("error page"), "{html}");
    let json = at("json.safetensors", br#"{"error":"Repository not found"}"#);
    assert!(
        matches!(
            json,
            InspectError::NotAModel {
                what: "a JSON document"
            }
        ),
        "{json}"
    );
    assert!(matches!(
        at("empty.safetensors", b""),
        InspectError::Truncated(_)
    ));

    let good = safetensors(&[("a", &[4, 4])], &[]);
    let cut = at("cut.safetensors", &good[..good.len() - 1]);
    assert!(cut.to_string().contains("outside the"), "{cut}");
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(matches!(
        at("huge.safetensors", &huge),
        InspectError::TooLarge { .. }
    ));
    let mut bad_json = good.clone();
    bad_json[9] = b'!';
    assert!(matches!(
        at("bad.safetensors", &bad_json),
        InspectError::Malformed(_)
    ));
    // A shape that does not match its bytes.
    let lie = safetensors(&[("a", &[4, 4])], &[]);
    let text = String::from_utf8_lossy(&lie).replace("[4,4]", "[4,5]");
    let err = at("lie.safetensors", text.as_bytes());
    assert!(err.to_string().contains("take 40 bytes, not 32"), "{err}");
}

/// A GGUF v3 file: an LLM with a vocab array and one Q4_K tensor.
fn gguf(tensor_count: u64, kv: &[(&str, Vec<u8>)], tensors: &[(&str, &[u64], u32)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(tensor_count.to_le_bytes());
    out.extend((kv.len() as u64).to_le_bytes());
    let string = |s: &str| {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    };
    for (key, value) in kv {
        out.extend(string(key));
        out.extend(value);
    }
    for (name, shape, ty) in tensors {
        out.extend(string(name));
        out.extend((shape.len() as u32).to_le_bytes());
        for d in shape.iter().rev() {
            out.extend(d.to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(0u64.to_le_bytes());
    }
    out
}

fn gguf_string(s: &str) -> Vec<u8> {
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend((s.len() as u64).to_le_bytes());
    v.extend(s.as_bytes());
    v
}

fn llama() -> Vec<u8> {
    let mut vocab = 9u32.to_le_bytes().to_vec();
    vocab.extend(8u32.to_le_bytes());
    vocab.extend(3u64.to_le_bytes());
    for token in ["<s>", "a", "b"] {
        vocab.extend((token.len() as u64).to_le_bytes());
        vocab.extend(token.as_bytes());
    }
    let mut ctx = 4u32.to_le_bytes().to_vec();
    ctx.extend(4096u32.to_le_bytes());
    gguf(
        2,
        &[
            ("general.architecture", gguf_string("llama")),
            ("llama.context_length", ctx),
            ("tokenizer.ggml.tokens", vocab),
        ],
        &[
            ("blk.0.attn_q.weight", &[4096, 4096], 12),
            ("output_norm.weight", &[4096], 0),
        ],
    )
}

#[test]
fn gguf_language_models_are_read_without_their_vocab() {
    let bytes = llama();
    let g = Gguf::read(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
    assert_eq!(g.metadata["tokenizer.ggml.tokens"], "[3 items]");
    assert_eq!(g.metadata["llama.context_length"], "4096");
    let report = g.report(bytes.len() as u64);
    assert_eq!(
        (report.kind, report.family.as_deref()),
        (Kind::Llm, Some("llama"))
    );
    assert_eq!(report.dtype.as_deref(), Some("Q4_K"));
    assert_eq!(report.parameters, 4096 * 4096 + 4096);

    // A Flux model quantized to GGUF is a diffusion model, by its tensors.
    let flux = gguf(
        1,
        &[("general.architecture", gguf_string("flux"))],
        &[("double_blocks.0.img_attn.qkv.weight", &[4, 4], 8)],
    );
    let report = Gguf::read(&mut std::io::Cursor::new(&flux), flux.len() as u64)
        .unwrap()
        .report(flux.len() as u64);
    assert_eq!(
        (report.kind, report.family.as_deref()),
        (Kind::DiffusionModel, Some("flux-schnell"))
    );
}

#[test]
fn hostile_gguf_counts_are_refused_before_any_allocation() {
    let mut bytes = gguf(u64::MAX, &[], &[]);
    let err = Gguf::read(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap_err();
    assert!(
        err.to_string().contains("more than the file can hold"),
        "{err}"
    );
    bytes = gguf(
        0,
        &[("k", {
            let mut v = 8u32.to_le_bytes().to_vec();
            v.extend(u64::MAX.to_le_bytes());
            v
        })],
        &[],
    );
    let err = Gguf::read(&mut std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap_err();
    assert!(matches!(err, InspectError::Truncated(_)), "{err}");
}

/// Every prefix of a valid file, and a byte flipped at every position: an error or a report,
/// never a panic (a bounded corpus run; the parsers are small enough to cover exhaustively).
#[test]
fn truncated_and_corrupted_headers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let samples = [
        safetensors(
            &[
                ("double_blocks.0.img_attn.qkv.weight", &[2, 2]),
                ("guidance_in.x", &[2]),
            ],
            &[("k", "v")],
        ),
        llama(),
    ];
    for sample in &samples {
        for len in 0..sample.len() {
            std::fs::write(&path, &sample[..len]).unwrap();
            let _ = inspect(&path);
        }
        let header_end = sample.len().min(400);
        for at in 0..header_end {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = sample.clone();
                bytes[at] ^= flip;
                std::fs::write(&path, &bytes).unwrap();
                let _ = inspect(&path);
            }
        }
    }
}

#[test]
fn training_metadata_tells_the_family_when_the_tensors_do_not() {
    for (key, value, family) in [
        ("ss_base_model_version", "sd_v1", "sd15"),
        ("ss_base_model_version", "sdxl_base_v1-0", "sdxl"),
        ("modelspec.architecture", "flux-1-dev/lora", "flux-dev"),
        ("modelspec.architecture", "stable-diffusion-v2-768-v", "sd2"),
    ] {
        let bytes = safetensors(
            &[("lora_unet_x.lora_down.weight", &[4, 4])],
            &[(key, value)],
        );
        let report = Safetensors::read(&mut bytes.as_slice(), bytes.len() as u64)
            .unwrap()
            .report(bytes.len() as u64);
        assert_eq!(report.family.as_deref(), Some(family), "{value}");
    }
}
