//! Where a no-op `mlib plan` spends its time: the steps it takes, one at a time, timed.
//!
//! `plan-phases MANIFEST` does what `mlib plan -f MANIFEST` does through the library crates
//! (without the CLI's printing) and prints one JSON object of milliseconds per phase:
//!
//! - `read_ms`, `parse_ms`: reading `models.yaml`, then parsing + validating it;
//! - `registry_open_ms`, `links_ms`, `index_ms`: opening the registry, loading every link
//!   record, loading the file index;
//! - `observed_ms`: `mlib_plan::Observed::read`, the manifest-independent snapshot (the
//!   registry loads again, an lstat of every recorded link, a stat of every indexed store
//!   file, over the cores), which the CLI overlaps with the manifest parse;
//! - `desire_ms`: the per-model store check (`mlib_plan::desired::desire`: a stat of the local
//!   source, the store file's stat from the snapshot, an index lookup);
//! - `plan_ms`: the whole of `mlib_plan::plan` (which repeats the snapshot and the desire
//!   checks, and adds the comparisons and the sorting);
//! - `manifest_drop_ms`, etc.: freeing what was built, which a process also pays for.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use mlib_bench::{Report, ms_since};
use mlib_manifest::StoreLayout;
use mlib_plan::{PlanInput, PlanOptions};
use mlib_registry::Registry;
use mlib_store::{Layout, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let process = Instant::now();
    let file = std::env::args_os()
        .nth(1)
        .ok_or("usage: plan-phases MANIFEST")?;
    let file = Path::new(&file);
    let env = |name: &str| std::env::var(name).ok();
    let mut report = Report::default();

    let t = Instant::now();
    let text = std::fs::read_to_string(file)?;
    report.add("read_ms", ms_since(t));

    let t = Instant::now();
    let manifest = mlib_manifest::parse(&text, file, &env).map_err(|e| format!("{e:?}"))?;
    report.add("parse_ms", ms_since(t));
    report.add("models", manifest.models.len() as f64);

    let t = Instant::now();
    let manifest_id = manifest
        .path
        .canonicalize()
        .unwrap_or_else(|_| manifest.path.clone())
        .to_string_lossy()
        .into_owned();
    let layout = match manifest.layout {
        StoreLayout::Nested => Layout::Nested,
        StoreLayout::Flat => Layout::Flat,
    };
    let store = Store::new(manifest.store.clone(), layout);
    let registry = Registry::open(&store.root().join(".mlib").join("registry.db"))?;
    report.add("registry_open_ms", ms_since(t));

    let t = Instant::now();
    let links = registry.links()?;
    report.add("links_ms", ms_since(t));
    report.add("link_records", links.len() as f64);

    let t = Instant::now();
    let index = registry.index_all()?;
    report.add("index_ms", ms_since(t));
    report.add("index_entries", index.len() as f64);

    let t = Instant::now();
    let observed = mlib_plan::Observed::read(&registry, store.root(), &manifest_id)?;
    report.add("observed_ms", ms_since(t));

    let t = Instant::now();
    let mut to_fetch = 0;
    for model in manifest.models.values() {
        let desired =
            mlib_plan::desired::desire(model, &store, &observed, None, &mlib_plan::NoHashProgress)?;
        if desired.fetch.is_some() {
            to_fetch += 1;
        }
    }
    report.add("desire_ms", ms_since(t));
    report.add("desire_fetches", to_fetch as f64);
    drop(observed);

    let t = Instant::now();
    let remote = HashMap::new();
    let env = mlib_plan::EnvIdentity::of(&manifest, &manifest_id, None);
    let input = PlanInput {
        manifest: &manifest,
        env: &env,
        store: &store,
        registry: &registry,
        remote: &remote,
        lock_digest: None,
        options: PlanOptions::default(),
        store_writable: true,
        hashing: &mlib_plan::NoHashProgress,
    };
    let plan = mlib_plan::plan(&input)?;
    report.add("plan_ms", ms_since(t));
    report.add("plan_actions", plan.actions.len() as f64);
    report.add("plan_bookkeeping", plan.bookkeeping.len() as f64);

    let t = Instant::now();
    drop(plan);
    drop(links);
    drop(index);
    report.add("drop_plan_links_index_ms", ms_since(t));
    let t = Instant::now();
    drop(manifest);
    report.add("drop_manifest_ms", ms_since(t));

    report.add("total_ms", ms_since(process));
    println!("{}", report.to_json());
    Ok(())
}
