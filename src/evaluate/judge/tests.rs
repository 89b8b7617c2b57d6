//! A rule's rows judged: marked, dropped and placed in results order,
//! whichever order the query gave them in.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

/// Every result row as text, a missing cell as `<null>`.
fn rows_of(df: &DataFrame) -> Vec<Vec<String>> {
    crate::inventory::text_rows(df, RESULT_COLUMNS)
        .unwrap()
        .map(|row| {
            row.iter()
                .map(|cell| cell.unwrap_or("<null>").to_string())
                .collect()
        })
        .collect()
}

/// Rows out of order, a region not opted in (with a status no rule may
/// give, which is dropped, not refused), a blind region with rows and
/// two without, a failed call on one resource, a fact not known and a
/// null status: what reports read, row by row, whichever order the
/// query gave.
#[test]
fn coverage_marks_drops_and_places_blind_rows_in_results_order() {
    let pack = crate::policy::load_builtin().unwrap();
    let rule = &pack.rules[0];
    let s = |v: &str| v.to_string();
    let gaps = Gaps {
        regions: BTreeMap::from([
            ((s("111"), s("ap-south-1")), s("blind: not scanned")),
            (
                (s("111"), s("us-east-1")),
                s("DescribeImages failed (Throttling)"),
            ),
            ((s("222"), s("eu-west-1")), s("blind: not scanned")),
            ((s("444"), s("us-east-1")), s("blind: not scanned")),
        ]),
        resources: BTreeMap::from([(
            (s("222"), s("us-east-1"), s("i-9")),
            s("DescribeImageAttribute failed (Boom)"),
        )]),
        unknown_facts: HashMap::from([(
            "instance",
            FxHashMap::from_iter([(("222", "us-east-1", "i-2"), 0)]),
        )]),
        fact_reasons: vec![s("`instances.x` is not known for this instance")],
    };
    let skipped = BTreeSet::from([(s("333"), s("us-east-1"))]);
    let raw = |order: &[usize]| {
        // account_id, region, resource_id, status, reason
        let all = [
            [
                Some("222"),
                Some("us-east-1"),
                Some("i-2"),
                Some("pass"),
                Some(""),
            ],
            [
                Some("111"),
                Some("us-east-1"),
                Some("i-1"),
                Some("fail"),
                Some("bad"),
            ],
            [Some("111"), Some("eu-west-1"), Some("i-0"), None, None],
            [
                Some("333"),
                Some("us-east-1"),
                Some("i-3"),
                Some("bogus"),
                Some(""),
            ],
            [
                Some("222"),
                Some("us-east-1"),
                Some("i-9"),
                Some("pass"),
                Some(""),
            ],
            [
                Some("222"),
                Some("us-east-1"),
                Some("i-8"),
                Some("fail"),
                None,
            ],
            // An account after every blind account-region (a row with
            // no account is the rule's error: see below).
            [
                Some("555"),
                Some("us-east-1"),
                Some("i-7"),
                Some("fail"),
                Some("x"),
            ],
        ];
        let pick: Vec<_> = order.iter().map(|&i| all[i]).collect();
        let n = pick.len();
        let names = ["account_id", "region", "resource_id", "status", "reason"];
        let mut columns: Vec<Column> = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                Column::new(
                    (*name).into(),
                    pick.iter().map(|r| r[k]).collect::<Vec<_>>(),
                )
            })
            .collect();
        columns.push(Column::new(
            "resource_name".into(),
            pick.iter()
                .map(|r| r[2].map(|id| format!("name-{id}")))
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new_scalar(
            "resource_type".into(),
            Scalar::from(PlSmallStr::from("instance")),
            n,
        ));
        DataFrame::new(n, columns).unwrap()
    };
    let row = |cells: [&str; 7]| {
        std::iter::once(rule.id.clone())
            .chain(cells.iter().map(|c| c.to_string()))
            .collect::<Vec<_>>()
    };
    let expected = vec![
        row([
            "111",
            "ap-south-1",
            "account-region",
            "ap-south-1",
            "",
            "unknown",
            "blind: not scanned",
        ]),
        row([
            "111",
            "eu-west-1",
            "instance",
            "i-0",
            "name-i-0",
            "unknown",
            "needed data is missing",
        ]),
        row([
            "111",
            "us-east-1",
            "instance",
            "i-1",
            "name-i-1",
            "unknown",
            "DescribeImages failed (Throttling)",
        ]),
        row([
            "222",
            "eu-west-1",
            "account-region",
            "eu-west-1",
            "",
            "unknown",
            "blind: not scanned",
        ]),
        row([
            "222",
            "us-east-1",
            "instance",
            "i-2",
            "name-i-2",
            "unknown",
            "`instances.x` is not known for this instance",
        ]),
        row([
            "222",
            "us-east-1",
            "instance",
            "i-8",
            "name-i-8",
            "fail",
            "",
        ]),
        row([
            "222",
            "us-east-1",
            "instance",
            "i-9",
            "name-i-9",
            "unknown",
            "DescribeImageAttribute failed (Boom)",
        ]),
        row([
            "444",
            "us-east-1",
            "account-region",
            "us-east-1",
            "",
            "unknown",
            "blind: not scanned",
        ]),
        row([
            "555",
            "us-east-1",
            "instance",
            "i-7",
            "name-i-7",
            "fail",
            "x",
        ]),
    ];
    // What evaluation does with a rule's rows after its query.
    let categories = ResultCategories::new(1);
    let judged = |raw: DataFrame| -> Result<DataFrame, String> {
        let df = apply_coverage(raw, None, &gaps, &skipped, rule, &categories, None)?;
        for name in crate::evaluate::CATEGORY_COLUMNS {
            let held = df.column(name).unwrap().dtype();
            assert_eq!(Some(held), categories.of(name), "{name}");
        }
        Ok(df)
    };
    // In results order (judged as given), out of order only within an
    // account-region or only between two, and scrambled.
    for order in [
        [2, 1, 0, 5, 4, 3, 6],
        [2, 1, 0, 4, 5, 3, 6],
        [1, 2, 0, 5, 4, 3, 6],
        [0, 1, 2, 3, 4, 5, 6],
        [6, 2, 1, 0, 5, 4, 3],
        [3, 5, 4, 6, 0, 1, 2],
    ] {
        let df = judged(raw(&order)).unwrap();
        assert_eq!(rows_of(&df), expected, "query order {order:?}");
    }
    // A status no rule may give, in a row that is kept, is the rule's error.
    let mut bad = raw(&[0, 2]);
    bad.with_column(Column::new("status".into(), ["pass", "failed"]))
        .unwrap();
    let err = judged(bad).unwrap_err();
    assert!(err.contains("query returned status `failed`"), "{err}");
    // Two bad statuses: the one first in results order is named,
    // whichever the query gave first.
    let mut two = raw(&[0, 2]);
    two.with_column(Column::new("status".into(), ["bogus", "waived"]))
        .unwrap();
    let err = judged(two).unwrap_err();
    assert!(err.contains("query returned status `waived`"), "{err}");
}

/// Ids and names exactly the table's are held as the table's own
/// columns (the same buffers, not a copy); others are kept as given.
#[test]
fn rows_with_every_id_of_the_table_hold_the_tables_own_text() {
    let pack = crate::policy::load_builtin().unwrap();
    let rule = &pack.rules[0];
    let gaps = Gaps::default();
    let ids = ["ami-00000000000000001", "ami-00000000000000002"];
    let names = ["golden-image-name-one", "golden-image-name-two"];
    let table = df!("image_id" => ids, "name" => names).unwrap();
    let own = [
        table.column("image_id").unwrap(),
        table.column("name").unwrap(),
    ];
    let raw = |names: [&str; 2]| {
        df!(
            "account_id" => ["111", "111"],
            "region" => ["us-east-1", "us-east-1"],
            "resource_id" => ids,
            "resource_name" => names,
            "status" => ["pass", "fail"],
            "reason" => ["", "x"],
            "resource_type" => ["ami", "ami"],
        )
        .unwrap()
    };
    // Where a column's text is stored: its first data buffer's address.
    let buffers = |column: &Column| -> *const u8 {
        let chunk = column.str().unwrap().downcast_iter().next().unwrap();
        chunk.data_buffers().first().unwrap().as_ptr()
    };
    let categories = ResultCategories::new(1);
    let judged = |raw| {
        apply_coverage(
            raw,
            None,
            &gaps,
            &BTreeSet::new(),
            rule,
            &categories,
            Some(own),
        )
        .unwrap()
    };
    let df = judged(raw(names));
    for (name, own) in ["resource_id", "resource_name"].into_iter().zip(own) {
        let held = df.column(name).unwrap();
        assert_eq!(buffers(held), buffers(own), "{name}");
    }
    // A name that differs: the query's own column, as it gave it.
    let other = ["golden-image-name-one", "another-name-entirely"];
    let df = judged(raw(other));
    let held = df.column("resource_name").unwrap();
    assert_ne!(buffers(held), buffers(own[1]));
    let text: Vec<Option<&str>> = held.str().unwrap().iter().collect();
    assert_eq!(text, other.map(Some));
    assert_eq!(buffers(df.column("resource_id").unwrap()), buffers(own[0]));
}

/// Coverage keys an account with no region known as (account, ""): a
/// row with no region in that account is in it, so the account gets
/// no row of its own, though "" sorts before every region and a
/// missing region after.
#[test]
fn a_row_with_no_region_is_in_the_gap_of_an_account_with_no_regions() {
    let pack = crate::policy::load_builtin().unwrap();
    let rule = &pack.rules[0];
    let why = "no scan data for this account in the inventory".to_string();
    let gaps = Gaps {
        regions: BTreeMap::from([(("222".to_string(), String::new()), why.clone())]),
        ..Gaps::default()
    };
    let raw = df!(
        "account_id" => [Some("222")],
        "region" => [None::<&str>],
        "resource_id" => [Some("r-1")],
        "resource_name" => [Some("n")],
        "status" => [Some("fail")],
        "reason" => [Some("x")],
        "resource_type" => [Some("ami")],
    )
    .unwrap();
    let categories = ResultCategories::new(1);
    let df = apply_coverage(raw, None, &gaps, &BTreeSet::new(), rule, &categories, None).unwrap();
    let expected = vec![
        [
            &rule.id, "222", "<null>", "ami", "r-1", "n", "unknown", &why,
        ]
        .map(str::to_string),
    ];
    assert_eq!(rows_of(&df), expected);
}

/// Reasons computed apart go back to the rows that keep one, in order,
/// each with its row's status; any that do not line up (a missing one,
/// one left over, one of another status) are refused, never placed on
/// another row.
#[test]
fn reasons_computed_apart_go_back_only_where_they_line_up() {
    let raw = df!(
        "resource_id" => ["a", "b", "c", "d"],
        "status" => [Some("pass"), Some("fail"), None, Some("fail")],
        "reason" => [None::<&str>, None, None, None],
    )
    .unwrap();
    let kept = |statuses: &[Option<&str>], reasons: &[&str]| {
        df!(
            super::super::reasons::STATUS => statuses,
            "reason" => reasons,
        )
        .unwrap()
    };
    let placed = with_reasons(
        raw.clone(),
        &kept(&[Some("fail"), None, Some("fail")], &["b!", "c?", "d!"]),
    )
    .unwrap();
    let reasons: Vec<Option<&str>> = placed
        .column("reason")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(reasons, [None, Some("b!"), Some("c?"), Some("d!")]);
    for bad in [
        kept(&[Some("fail"), None], &["b!", "c?"]),
        kept(
            &[Some("fail"), None, Some("fail"), Some("fail")],
            &["b!", "c?", "d!", "e!"],
        ),
        kept(
            &[Some("fail"), Some("fail"), Some("fail")],
            &["b!", "c?", "d!"],
        ),
    ] {
        let err = with_reasons(raw.clone(), &bad).unwrap_err();
        assert!(err.contains("do not follow its rows"), "{err}");
    }
}

/// A row with no account cannot be counted in any account: the rule's
/// error, named, not an audit that fails when it is summed.
#[test]
fn a_row_with_no_account_is_the_rule_s_error() {
    let pack = crate::policy::load_builtin().unwrap();
    let rule = &pack.rules[0];
    let raw = df!(
        "account_id" => [Some("111"), None],
        "region" => [Some("us-east-1"), Some("us-east-1")],
        "resource_id" => [Some("r-1"), Some("r-2")],
        "resource_name" => [Some("n"), Some("n")],
        "status" => [Some("pass"), Some("fail")],
        "reason" => [None, Some("x")],
        "resource_type" => [Some("ami"), Some("ami")],
    )
    .unwrap();
    let categories = ResultCategories::new(1);
    let err = apply_coverage(
        raw,
        None,
        &Gaps::default(),
        &BTreeSet::new(),
        rule,
        &categories,
        None,
    )
    .unwrap_err();
    assert!(
        err.contains("no account_id (resource `r-2` in region `us-east-1`)"),
        "{err}"
    );
}
