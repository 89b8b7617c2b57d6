//! The AMI each launch template version and Auto Scaling launch source
//! will launch, `resolve:ssm:` followed to the parameter.

#![allow(
    clippy::indexing_slicing,
    reason = "columnar loops: every column of a table has the table's height, and each index is a row of that table"
)]

use std::collections::BTreeMap;

use polars::prelude::*;

use super::{stage, table};
use crate::error::Result;
use crate::inventory::{bool_column, str_column};

/// The AMI each launch template version and Auto Scaling launch source
/// will launch: its own `image_id`, or for `resolve:ssm:<name>` the value
/// of that parameter in the same account-region when it was read. Adds
/// `launch_image_id`, `launch_image_owner_id` and `launch_image_visible`
/// (null where not known: the parameter was not read, or names a version
/// or label, of which only the current value is collected), and
/// `launch_image_known`: whether what it launches is known, which is also
/// true for a template version that names no AMI at all.
pub(in crate::inventory) fn launch_images(
    tables: &mut BTreeMap<&'static str, DataFrame>,
    parameters_collected: bool,
) -> Result<()> {
    type Held<'a> = (Option<&'a str>, Option<&'a str>, Option<bool>);
    let parameters = table(tables, "ssm_parameters")?.clone();
    let p_account = str_column(&parameters, "account_id")?;
    let p_region = str_column(&parameters, "region")?;
    let p_name = str_column(&parameters, "name")?;
    let p_read = bool_column(&parameters, "value_read")?;
    let p_image = str_column(&parameters, "image_id")?;
    let p_owner = str_column(&parameters, "image_owner_id")?;
    let p_visible = bool_column(&parameters, "image_visible")?;
    let mut held: PlHashMap<(&str, &str, &str), Held> = PlHashMap::default();
    for k in 0..parameters.height() {
        if let (Some(a), Some(r), Some(name), Some(true)) =
            (p_account[k], p_region[k], p_name[k], p_read[k])
        {
            held.insert((a, r, name), (p_image[k], p_owner[k], p_visible[k]));
        }
    }
    for name in ["launch_templates", "asg_launch_sources"] {
        let df = table(tables, name)?;
        let account = str_column(df, "account_id")?;
        let region = str_column(df, "region")?;
        let image = str_column(df, "image_id")?;
        let owner = str_column(df, "image_owner_id")?;
        let visible = bool_column(df, "image_visible")?;
        let parameter = str_column(df, "image_parameter")?;
        // A launch template row is a version that was read: with neither an
        // AMI nor a parameter it launches none of its own. An Auto Scaling
        // source without either was not resolved (its version or launch
        // configuration was not read).
        let empty_is_none = name == "launch_templates" && parameters_collected;
        let n = df.height();
        let (mut ids, mut owners, mut visibles, mut known) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for i in 0..n {
            let (held_now, is_known): (Held, bool) = if image[i].is_some() {
                ((image[i], owner[i], visible[i]), true)
            } else if let Some(reference) = parameter[i] {
                let found = match (
                    account[i],
                    region[i],
                    reference.strip_prefix("resolve:ssm:"),
                ) {
                    (Some(a), Some(r), Some(p)) if parameters_collected => {
                        held.get(&(a, r, p)).copied()
                    }
                    _ => None,
                };
                match found {
                    Some(h) => (h, h.0.is_some()),
                    None => ((None, None, None), false),
                }
            } else {
                ((None, None, None), empty_is_none)
            };
            ids.push(held_now.0.map(str::to_string));
            owners.push(held_now.1.map(str::to_string));
            visibles.push(held_now.2);
            known.push(is_known);
        }
        let mut df = df.clone();
        for c in [
            Column::new("launch_image_id".into(), ids),
            Column::new("launch_image_owner_id".into(), owners),
            Column::new("launch_image_visible".into(), visibles),
            Column::new("launch_image_known".into(), known),
        ] {
            df.with_column(c).map_err(|e| stage(name, &e))?;
        }
        tables.insert(name, df);
    }
    Ok(())
}
