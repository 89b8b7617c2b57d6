//! The results' repeated text held once: rule, account, region, resource
//! type, status and reason are categories (a `u32` per row and each distinct
//! text once), not a string per row. At a million AMIs the results are
//! 23 M rows; as strings these six columns were most of the 6 GiB an
//! evaluation held, and this VM pays for fresh memory in the kernel.
//!
//! Readers never see the difference: `inventory::text_rows` and its kin
//! give every cell as `&str` whichever way a column is held. Category ids
//! depend on the order the rules happened to finish in and are never read
//! as data: no report sorts, groups or compares by them.

use polars::prelude::*;

/// The results' columns held as categories. The other two, `resource_id`
/// and `resource_name`, are nearly all distinct and stay text (their
/// strings are the inventory's, shared rather than copied).
pub const CATEGORY_COLUMNS: [&str; 6] = [
    "rule_id",
    "account_id",
    "region",
    "resource_type",
    "status",
    "reason",
];

/// A new type for the category columns of one evaluation. Every rule's
/// frame must use the same one (the same mapping from text to id) for the
/// frames to stack, so it is made once per evaluation and handed to each
/// rule. Its own categories, not a named shared set: polars keeps one
/// mapping per name for as long as any frame uses it, so a shared name
/// would grow one mapping across every evaluation a process holds.
pub fn results_category_dtype() -> DataType {
    DataType::from_categories(Categories::random(
        PlSmallStr::from_static("amiaudit.results"),
        CategoricalPhysical::U32,
    ))
}

/// The mapping of `dtype`, which must be the results' categories: a
/// categorical type held as u32 ids.
fn mapping_of(dtype: &DataType) -> PolarsResult<&CategoricalMapping> {
    let DataType::Categorical(categories, mapping) = dtype else {
        polars_bail!(ComputeError: "results categories must be categorical, not {dtype}");
    };
    if categories.physical() != CategoricalPhysical::U32 {
        polars_bail!(ComputeError: "results categories must be held as u32, not {dtype}");
    }
    Ok(mapping)
}

/// One text column's categories, given cell by cell: rows come grouped by
/// account and region and a rule's reasons repeat, so each run of equal
/// text is looked up once instead of hashing every row.
pub(super) struct CategoryColumn<'d, 's> {
    dtype: &'d DataType,
    mapping: &'d CategoricalMapping,
    previous: Option<(&'s str, u32)>,
    ids: PrimitiveChunkedBuilder<UInt32Type>,
}

impl<'d, 's> CategoryColumn<'d, 's> {
    /// A column of categories of `dtype`, which must be the results'.
    pub(super) fn new(name: &str, dtype: &'d DataType, capacity: usize) -> PolarsResult<Self> {
        Ok(CategoryColumn {
            dtype,
            mapping: mapping_of(dtype)?,
            previous: None,
            ids: PrimitiveChunkedBuilder::new(name.into(), capacity),
        })
    }

    /// The id of `text`, or None when it is not the text looked up last.
    pub(super) fn repeated(&self, text: &str) -> Option<u32> {
        self.previous.filter(|(p, _)| *p == text).map(|(_, id)| id)
    }

    /// The id of `text`, taken from the categories if it is not the text
    /// looked up last.
    pub(super) fn id(&mut self, text: Option<&'s str>) -> PolarsResult<Option<u32>> {
        let Some(s) = text else { return Ok(None) };
        if let Some(id) = self.repeated(s) {
            return Ok(Some(id));
        }
        let id = self.mapping.insert_cat(s)?;
        self.previous = Some((s, id));
        Ok(Some(id))
    }

    pub(super) fn push(&mut self, text: Option<&'s str>) -> PolarsResult<()> {
        let id = self.id(text)?;
        self.ids.append_option(id);
        Ok(())
    }

    /// Pushes an id this column gave (the same text as a row before).
    pub(super) fn push_id(&mut self, id: Option<u32>) {
        self.ids.append_option(id);
    }

    pub(super) fn finish(self) -> Column {
        Categorical32Chunked::from_cats_and_dtype(self.ids.finish(), self.dtype.clone())
            .into_column()
    }
}

/// `column` (text) as categories of `dtype`.
pub fn as_categories(column: &Column, dtype: &DataType) -> PolarsResult<Column> {
    mapping_of(dtype)?;
    if column.as_scalar_column().is_some() || column.dtype() != &DataType::String {
        // One value for the whole column (the rule's id), or already cast.
        return column.cast(dtype);
    }
    let text = column.str()?;
    let mut categories = CategoryColumn::new(column.name(), dtype, text.len())?;
    for cell in text.iter() {
        categories.push(cell)?;
    }
    Ok(categories.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_repeats_and_nulls_read_back_as_the_same_text() {
        let dtype = results_category_dtype();
        let cells = [Some("a"), Some("a"), None, Some("b"), Some("a"), Some("b")];
        let column = Column::new("region".into(), cells);
        let cast = as_categories(&column, &dtype).unwrap();
        assert_eq!(cast.dtype(), &dtype);
        let read: Vec<Option<&str>> = cast.cat32().unwrap().iter_str().collect();
        assert_eq!(read, cells);
        // The same text gets the same id however far apart it appears.
        let ids: Vec<Option<u32>> = cast.cat32().unwrap().physical().iter().collect();
        assert_eq!(ids[0], ids[4]);
        assert_eq!(ids[3], ids[5]);
        assert_ne!(ids[0], ids[3]);
        // A scalar column (the rule's id) keeps its single value.
        let rule = Column::new_scalar("rule_id".into(), Scalar::from(PlSmallStr::from("R-1")), 3);
        let cast = as_categories(&rule, &dtype).unwrap();
        let read: Vec<Option<&str>> = cast
            .as_materialized_series()
            .cat32()
            .unwrap()
            .iter_str()
            .collect();
        assert_eq!(read, [Some("R-1"); 3]);
        // Categories held in fewer bits are refused, not a polars panic.
        let narrow = DataType::from_categories(Categories::random(
            PlSmallStr::from_static("test"),
            CategoricalPhysical::U8,
        ));
        assert!(as_categories(&column, &narrow).is_err());
    }
}
