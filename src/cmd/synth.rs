//! `amiaudit synth`: a deterministic synthetic inventory of any size.

use std::path::Path;

use crate::error::{Error, Result};
use crate::inventory::{self, TableFormat};
use crate::output::Staging;
use crate::synth::{self, SynthOptions};

pub fn run(options: &SynthOptions, out: &Path, format: TableFormat) -> Result<String> {
    if options.accounts == 0 || options.images_per_region == 0 {
        return Err(Error::input(
            "synth: --accounts and --images-per-region must be at least 1",
        ));
    }
    if options.regions == 0 || options.regions > synth::REGIONS.len() {
        return Err(Error::input(format!(
            "synth: --regions must be between 1 and {}",
            synth::REGIONS.len()
        )));
    }
    let staging = Staging::begin(out, &inventory::OUTPUT, &super::OUTPUT_KINDS)?;
    let inventory = synth::generate(options)?;
    let manifest = inventory::save(&inventory, staging.dir(), format)?;
    let committed = staging.commit()?;
    let images = manifest.tables.get("images").map_or(0, |t| t.rows);
    let mut text = format!(
        "wrote {}: {} accounts, {} regions, {} images\n",
        committed.path.display(),
        options.accounts,
        options.regions,
        images
    );
    if let Some(warning) = super::kept_warning(&committed) {
        text.push_str(&format!("warning: {warning}\n"));
    }
    Ok(text)
}
