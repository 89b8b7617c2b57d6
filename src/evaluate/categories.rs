//! The results' repeated text held once: rule, account, region, resource
//! type, status and reason are categories (an id per row and each distinct
//! text once), not a string per row. At a million AMIs the results are
//! 23 M rows; as strings these six columns were most of the 6 GiB an
//! evaluation held, and this VM pays for fresh memory in the kernel.
//!
//! Each column has its own categories, its ids as narrow as the values it
//! can hold: a status is one of four words and fits a byte, where a reason
//! needs 32 bits. At 23 M rows every byte a row is 23 MB.
//!
//! Readers never see the difference: `inventory::text_rows` and its kin
//! give every cell as `&str` whichever way a column is held. Category ids
//! depend on the order the rules happened to finish in and are never read
//! as data: no report sorts, groups or compares by them.

use polars::chunked_array::builder::CategoricalChunkedBuilder;
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

/// The category types of one evaluation's results, one per column of
/// [`CATEGORY_COLUMNS`]. Every rule's frame must use the same ones (the
/// same mapping from text to id) for the frames to stack, so they are
/// made once per evaluation and handed to each rule. Their own
/// categories, not a named shared set: polars keeps one mapping per name
/// for as long as any frame uses it, so a shared name would grow one
/// mapping across every evaluation a process holds.
///
/// Widths: a rule id per rule judged; a status is one of [`Status`]'s four
/// words; regions and resource types are a few dozen names (65,535 is
/// room for any inventory); accounts and reasons are as many as an
/// organization has, 32 bits. A column that needs more values than its
/// width holds is refused with its name (`too_many`), never wrapped.
///
/// [`Status`]: crate::status::Status
#[derive(Debug, Clone)]
pub struct ResultCategories {
    types: [DataType; 6],
}

impl ResultCategories {
    /// The categories for an evaluation of `rules` rules.
    pub fn new(rules: usize) -> Self {
        let rule_width =
            CategoricalPhysical::smallest_physical(rules).unwrap_or(CategoricalPhysical::U32);
        let types = CATEGORY_COLUMNS.map(|name| {
            let physical = match name {
                "rule_id" => rule_width,
                "status" => CategoricalPhysical::U8,
                "region" | "resource_type" => CategoricalPhysical::U16,
                _ => CategoricalPhysical::U32,
            };
            DataType::from_categories(Categories::random(
                PlSmallStr::from_static("amiaudit.results"),
                physical,
            ))
        });
        ResultCategories { types }
    }

    /// The category type of results column `name`, or None for a column
    /// held as text.
    pub fn of(&self, name: &str) -> Option<&DataType> {
        let at = CATEGORY_COLUMNS.iter().position(|c| *c == name)?;
        self.types.get(at)
    }

    /// The category type of `name`, which must be one of
    /// [`CATEGORY_COLUMNS`].
    pub(super) fn column(&self, name: &str) -> PolarsResult<&DataType> {
        self.of(name).ok_or_else(
            || polars_err!(ComputeError: "results column `{name}` is not held as categories"),
        )
    }
}

/// The mapping of `dtype`, which must be categorical.
fn mapping_of(dtype: &DataType) -> PolarsResult<&Arc<CategoricalMapping>> {
    let DataType::Categorical(_, mapping) = dtype else {
        polars_bail!(ComputeError: "results categories must be categorical, not {dtype}");
    };
    Ok(mapping)
}

/// The error for a column given more distinct values than its ids hold.
fn too_many(name: &str, dtype: &DataType) -> PolarsError {
    let most = dtype
        .cat_physical()
        .map_or(0, |physical| physical.max_categories());
    polars_err!(
        ComputeError: "column `{name}` has more than {most} distinct values, more than the results can hold"
    )
}

/// One text column's categories, given cell by cell: rows come grouped by
/// account and region and a rule's reasons repeat, so each run of equal
/// text is looked up once instead of hashing every row. Ids are pushed in
/// the column's own width, each known to be the mapping's, so finishing
/// the column neither narrows nor checks them again.
pub(super) struct CategoryColumn<'d, 's> {
    name: PlSmallStr,
    dtype: &'d DataType,
    mapping: &'d Arc<CategoricalMapping>,
    previous: Option<(&'s str, u32)>,
    ids: Ids,
}

/// A column's ids, gathered in its width.
enum Ids {
    Narrow(CategoricalChunkedBuilder<Categorical8Type>),
    Middle(CategoricalChunkedBuilder<Categorical16Type>),
    Wide(CategoricalChunkedBuilder<Categorical32Type>),
}

/// A builder of `dtype`'s ids with room for `capacity` rows.
fn builder<T: PolarsCategoricalType>(
    name: &PlSmallStr,
    dtype: &DataType,
    capacity: usize,
) -> CategoricalChunkedBuilder<T> {
    let mut ids = CategoricalChunkedBuilder::new(name.clone(), dtype.clone());
    ids.reserve(capacity);
    ids
}

/// Appends `id`, one `mapping` gave (the builder's own: it is not looked
/// up again), or a null.
fn append<T: PolarsCategoricalType>(
    ids: &mut CategoricalChunkedBuilder<T>,
    id: Option<u32>,
    mapping: &Arc<CategoricalMapping>,
) -> PolarsResult<()> {
    match id {
        Some(id) => ids.append_cat(id, mapping),
        None => {
            ids.append_null();
            Ok(())
        }
    }
}

impl<'d, 's> CategoryColumn<'d, 's> {
    /// A column of categories of `dtype`, which must be categorical.
    pub(super) fn new(name: &str, dtype: &'d DataType, capacity: usize) -> PolarsResult<Self> {
        let mapping = mapping_of(dtype)?;
        let name = PlSmallStr::from(name);
        let ids = match dtype.cat_physical()? {
            CategoricalPhysical::U8 => Ids::Narrow(builder(&name, dtype, capacity)),
            CategoricalPhysical::U16 => Ids::Middle(builder(&name, dtype, capacity)),
            CategoricalPhysical::U32 => Ids::Wide(builder(&name, dtype, capacity)),
        };
        Ok(CategoryColumn {
            name,
            dtype,
            mapping,
            previous: None,
            ids,
        })
    }

    /// The id of `text`, or None when it is not the text looked up last.
    fn repeated(&self, text: &str) -> Option<u32> {
        self.previous.filter(|(p, _)| *p == text).map(|(_, id)| id)
    }

    /// The id of `text`, taken from the categories if it is not the text
    /// looked up last.
    pub(super) fn id(&mut self, text: Option<&'s str>) -> PolarsResult<Option<u32>> {
        let Some(s) = text else { return Ok(None) };
        if let Some(id) = self.repeated(s) {
            return Ok(Some(id));
        }
        // The mapping refuses a value past the width's last id.
        let id = self
            .mapping
            .insert_cat(s)
            .map_err(|_| too_many(&self.name, self.dtype))?;
        self.previous = Some((s, id));
        Ok(Some(id))
    }

    pub(super) fn push(&mut self, text: Option<&'s str>) -> PolarsResult<()> {
        let id = self.id(text)?;
        self.push_id(id)
    }

    /// Pushes an id this column gave (the same text as a row before).
    pub(super) fn push_id(&mut self, id: Option<u32>) -> PolarsResult<()> {
        match &mut self.ids {
            Ids::Narrow(ids) => append(ids, id, self.mapping),
            Ids::Middle(ids) => append(ids, id, self.mapping),
            Ids::Wide(ids) => append(ids, id, self.mapping),
        }
    }

    pub(super) fn finish(self) -> Column {
        match self.ids {
            Ids::Narrow(b) => b.finish().into_series().into_column(),
            Ids::Middle(b) => b.finish().into_series().into_column(),
            Ids::Wide(b) => b.finish().into_series().into_column(),
        }
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

    fn text_of(column: &Column) -> Vec<Option<String>> {
        let df = DataFrame::new(column.len(), vec![column.clone()]).unwrap();
        crate::inventory::text_cells(&df, column.name())
            .unwrap()
            .map(|c| c.map(str::to_string))
            .collect()
    }

    #[test]
    fn runs_and_repeats_and_nulls_read_back_as_the_same_text_at_every_width() {
        let categories = ResultCategories::new(3);
        let cells = [Some("a"), Some("a"), None, Some("b"), Some("a"), Some("b")];
        let owned: Vec<Option<String>> = cells.iter().map(|c| c.map(str::to_string)).collect();
        for (name, width) in [
            ("status", CategoricalPhysical::U8),
            ("region", CategoricalPhysical::U16),
            ("reason", CategoricalPhysical::U32),
        ] {
            let dtype = categories.of(name).unwrap();
            assert_eq!(dtype.cat_physical().unwrap(), width, "{name}");
            let column = Column::new(name.into(), cells);
            let cast = as_categories(&column, dtype).unwrap();
            assert_eq!(cast.dtype(), dtype);
            assert_eq!(text_of(&cast), owned, "{name}");
            // The same text gets the same id however far apart it appears.
            let ids = cast.to_physical_repr().cast(&DataType::UInt32).unwrap();
            let ids: Vec<Option<u32>> = ids.u32().unwrap().iter().collect();
            assert_eq!(ids[0], ids[4]);
            assert_eq!(ids[3], ids[5]);
            assert_ne!(ids[0], ids[3]);
        }
        assert_eq!(categories.of("resource_id"), None);
        // A scalar column (the rule's id) keeps its single value.
        let rule = Column::new_scalar("rule_id".into(), Scalar::from(PlSmallStr::from("R-1")), 3);
        let cast = as_categories(&rule, categories.of("rule_id").unwrap()).unwrap();
        assert_eq!(text_of(&cast), vec![Some("R-1".to_string()); 3]);
    }

    /// A column given more values than its width holds is refused by name,
    /// never wrapped round to another value's id.
    #[test]
    fn a_column_past_its_width_is_refused_by_name() {
        let categories = ResultCategories::new(300);
        assert_eq!(
            categories.of("rule_id").unwrap().cat_physical().unwrap(),
            CategoricalPhysical::U16
        );
        let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
        let column = Column::new("status".into(), &words);
        let err = as_categories(&column, categories.of("status").unwrap()).unwrap_err();
        let message = crate::error::polars_message(&err);
        assert!(
            message.contains("column `status` has more than 255 distinct values"),
            "{message}"
        );
        // Within the width, every value is kept.
        let fits = Column::new("status".into(), &words[..255]);
        let cast = as_categories(&fits, ResultCategories::new(1).of("status").unwrap()).unwrap();
        let read = text_of(&cast);
        assert_eq!(read.len(), 255);
        assert_eq!(read[254].as_deref(), Some("w254"));
    }
}
