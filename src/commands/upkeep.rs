//! What `du`, `gc`, `rm`, `status` and `doctor` share: the store's inventory as this
//! manifest sees it.

use anyhow::Result;
use mlib_plan::upkeep::{Current, Inventory, StoredModel};
use mlib_registry::Registry;
use mlib_store::Store;

use crate::context::Context;

/// The store at its physical path, as link sources are recorded.
pub fn physical_store(ctx: &Context) -> Store {
    Store::new(ctx.store_root.clone(), ctx.store.layout()).with_direct_io(ctx.store.direct_io())
}

/// The store's models and their users; this manifest's environment declares what its
/// manifest says now.
pub fn inventory(ctx: &Context, registry: &Registry) -> Result<Inventory> {
    let current = Current {
        key: &ctx.env.key,
        models: ctx
            .manifest
            .models
            .values()
            .map(|model| mlib_plan::desired::key(model).id())
            .collect(),
    };
    Ok(Inventory::read(
        &physical_store(ctx),
        registry,
        Some(&current),
    )?)
}

/// Who declares `model`: "this manifest", then other environments' labels.
pub fn declarers(inventory: &Inventory, model: &StoredModel) -> Vec<String> {
    let here = model.declared_here.then(|| "this manifest".to_string());
    here.into_iter()
        .chain(
            model
                .declared_by
                .iter()
                .filter_map(|id| inventory.env(*id))
                .map(|e| e.env.label.clone()),
        )
        .collect()
}
