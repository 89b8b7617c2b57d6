//! Reading a table's columns as borrowed values: text (held as strings or,
//! in the results, as categories), booleans and integers. A missing column,
//! or one of another kind, is an internal error: every loaded table has its
//! schema columns.

use polars::prelude::*;

use crate::error::{Error, Result, polars_message};

/// A text column's values, borrowed. A missing or non-text column is an
/// internal error (every loaded table has its schema columns).
pub fn str_column<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(text_cells(df, name)?.collect())
}

/// A column's cells as text one by one, chunk by chunk, never collected
/// (the results of 100k AMIs are 2 M rows), whether it holds strings or
/// categories (the results' repeated text). A missing column, or one that
/// is neither, is an internal error.
pub fn text_cells<'a>(
    df: &'a DataFrame,
    name: &str,
) -> Result<impl Iterator<Item = Option<&'a str>> + 'a> {
    let column = df
        .column(name)
        .map_err(|_| Error::Internal(format!("missing column `{name}`")))?;
    let cells =
        |e: PolarsError| Error::Internal(format!("column `{name}`: {}", polars_message(&e)));
    // The results' categories are as narrow as their values allow
    // (`evaluate::ResultCategories`): a byte, two or four an id.
    Ok(match column.dtype().cat_physical().ok() {
        Some(CategoricalPhysical::U8) => Cells::Narrow(column.cat8().map_err(cells)?.iter_str()),
        Some(CategoricalPhysical::U16) => Cells::Middle(column.cat16().map_err(cells)?.iter_str()),
        Some(CategoricalPhysical::U32) => Cells::Wide(column.cat32().map_err(cells)?.iter_str()),
        None => Cells::Text(
            column
                .str()
                .map_err(|_| Error::Internal(format!("column `{name}` is not text")))?
                .iter(),
        ),
    })
}

/// A text column's cells, whichever way it is held: each way's iterator
/// is its own type.
enum Cells<T, N, M, W> {
    Text(T),
    Narrow(N),
    Middle(M),
    Wide(W),
}

impl<'a, T, N, M, W> Iterator for Cells<T, N, M, W>
where
    T: Iterator<Item = Option<&'a str>>,
    N: Iterator<Item = Option<&'a str>>,
    M: Iterator<Item = Option<&'a str>>,
    W: Iterator<Item = Option<&'a str>>,
{
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Cells::Text(cells) => cells.next(),
            Cells::Narrow(cells) => cells.next(),
            Cells::Middle(cells) => cells.next(),
            Cells::Wide(cells) => cells.next(),
        }
    }
}

/// A text column's cells one by one, or None when the frame has no
/// column of that name (the results' waiver columns exist only once
/// waivers were applied). A column that is not text is an internal error.
pub fn optional_text_cells<'a>(
    df: &'a DataFrame,
    name: &str,
) -> Result<Option<impl Iterator<Item = Option<&'a str>> + 'a>> {
    if df.column(name).is_err() {
        return Ok(None);
    }
    Ok(Some(text_cells(df, name)?))
}

/// The rows of `N` text columns of a frame, each row an array of its
/// cells in the order named; iterated chunk by chunk, never collected (the
/// results of 100k AMIs are 2 M rows). A missing or non-text column is an
/// internal error.
pub fn text_rows<'a, const N: usize>(
    df: &'a DataFrame,
    names: [&str; N],
) -> Result<impl Iterator<Item = [Option<&'a str>; N]> + 'a> {
    let mut columns = Vec::with_capacity(N);
    for name in names {
        columns.push(text_cells(df, name)?);
    }
    Ok(std::iter::from_fn(move || {
        if columns.is_empty() {
            return None;
        }
        let mut row = [None; N];
        for (cell, column) in row.iter_mut().zip(columns.iter_mut()) {
            *cell = column.next()?;
        }
        Some(row)
    }))
}

/// The rows of `df` whose cell in column `name` `keep` accepts (it sees
/// every row's cell, in order, and may refuse the frame with an error), as
/// a frame of their own: for a reader that needs few of many rows (a
/// tenth of the results of 100k AMIs are not passes, a fiftieth are one
/// rule's). The kept rows' text is shared with `df`, not copied.
pub fn rows_where<'a>(
    df: &'a DataFrame,
    name: &str,
    mut keep: impl FnMut(Option<&'a str>) -> Result<bool>,
) -> Result<DataFrame> {
    let mut mask = BooleanChunkedBuilder::new(PlSmallStr::from_static("keep"), df.height());
    for cell in text_cells(df, name)? {
        mask.append_value(keep(cell)?);
    }
    df.filter(&mask.finish()).map_err(|e| {
        Error::Internal(format!(
            "cannot pick rows by `{name}`: {}",
            polars_message(&e)
        ))
    })
}

/// A boolean column's values. A missing or non-boolean column is an
/// internal error.
pub fn bool_column(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>> {
    let column = df
        .column(name)
        .map_err(|_| Error::Internal(format!("missing column `{name}`")))?;
    let ca = column
        .bool()
        .map_err(|_| Error::Internal(format!("column `{name}` is not a boolean")))?;
    Ok(ca.iter().collect())
}

/// An integer or timestamp column's values (timestamps as milliseconds).
/// A missing column, or one of another kind, is an internal error.
pub fn i64_column(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let column = df
        .column(name)
        .map_err(|_| Error::Internal(format!("missing column `{name}`")))?;
    let not_integer = || Error::Internal(format!("column `{name}` is not an integer"));
    let physical = match column.dtype() {
        DataType::Datetime(..) | DataType::Int64 => column.to_physical_repr(),
        _ => return Err(not_integer()),
    };
    let ca = physical.i64().map_err(|_| not_integer())?;
    Ok(ca.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows_walk_every_chunk_in_order_and_refuse_a_missing_column() {
        let first =
            df!("a" => ["1", "2"], "b" => [Some("x"), None]).unwrap_or_else(|e| panic!("{e}"));
        let second = df!("a" => ["3"], "b" => ["z"]).unwrap_or_else(|e| panic!("{e}"));
        let mut frame = first;
        frame
            .vstack_mut_owned(second)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(frame.first_col_n_chunks(), 2);
        let rows: Vec<[Option<&str>; 2]> = text_rows(&frame, ["b", "a"])
            .unwrap_or_else(|e| panic!("{e}"))
            .collect();
        assert_eq!(
            rows,
            [
                [Some("x"), Some("1")],
                [None, Some("2")],
                [Some("z"), Some("3")]
            ]
        );
        let missing = text_rows(&frame, ["a", "nope"])
            .err()
            .map(|e| e.to_string());
        assert!(missing.is_some_and(|m| m.contains("`nope`")));
    }

    #[test]
    fn rows_where_keeps_the_rows_accepted_in_order_across_chunks() {
        let mut frame =
            df!("k" => ["a", "b", "a"], "v" => ["1", "2", "3"]).unwrap_or_else(|e| panic!("{e}"));
        let more =
            df!("k" => [None, Some("a")], "v" => ["4", "5"]).unwrap_or_else(|e| panic!("{e}"));
        frame
            .vstack_mut_owned(more)
            .unwrap_or_else(|e| panic!("{e}"));
        let kept =
            rows_where(&frame, "k", |k| Ok(k == Some("a"))).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<[Option<&str>; 1]> = text_rows(&kept, ["v"])
            .unwrap_or_else(|e| panic!("{e}"))
            .collect();
        assert_eq!(rows, [[Some("1")], [Some("3")], [Some("5")]]);
        // An error from `keep` is the caller's, never a shorter frame.
        let refused = rows_where(&frame, "k", |k| match k {
            Some(_) => Ok(true),
            None => Err(Error::Internal("no key".into())),
        });
        assert!(refused.is_err());
    }

    #[test]
    fn text_rows_read_categories_as_their_text() {
        let categories = DataType::from_categories(Categories::random(
            PlSmallStr::from_static("test"),
            CategoricalPhysical::U32,
        ));
        let mut frame = df!("a" => ["1", "2", "3"], "b" => [Some("x"), None, Some("x")])
            .unwrap_or_else(|e| panic!("{e}"));
        let b = frame.column("b").unwrap_or_else(|e| panic!("{e}"));
        let b = b.cast(&categories).unwrap_or_else(|e| panic!("{e}"));
        frame.with_column(b).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            frame.column("b").map(Column::dtype),
            Ok(DataType::Categorical(..))
        ));
        let rows: Vec<[Option<&str>; 2]> = text_rows(&frame, ["a", "b"])
            .unwrap_or_else(|e| panic!("{e}"))
            .collect();
        assert_eq!(
            rows,
            [
                [Some("1"), Some("x")],
                [Some("2"), None],
                [Some("3"), Some("x")]
            ]
        );
        // Numbers are neither text nor categories.
        let numbers = df!("n" => [1i64]).unwrap_or_else(|e| panic!("{e}"));
        assert!(text_rows(&numbers, ["n"]).is_err());
    }
}
