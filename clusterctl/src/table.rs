//! Tables laid out exactly as fleetctl printed them.
//!
//! fleetctl wrote tab-separated cells through Go's `text/tabwriter` set up
//! as `Init(os.Stdout, 0, 8, 1, '\t', 0)`: each column but the last is as
//! wide as its widest cell plus one, rounded up to a multiple of 8, and
//! padded with tab characters. Scripts that parsed fleetctl's output keep
//! working against these tables. Machine IDs are shortened to 8 characters
//! and `...` unless `--full`, and an empty cell is `-`.

/// Go tabwriter's layout with minwidth 0, tabwidth 8, padding 1, padchar '\t'.
#[must_use]
pub fn render(rows: &[Vec<String>]) -> String {
    const TAB: usize = 8;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        // The last cell of a line is not part of a column.
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count() + 1);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let cellw = widths[i].div_ceil(TAB) * TAB;
                let textw = cell.chars().count();
                for _ in 0..(cellw - textw).div_ceil(TAB) {
                    out.push('\t');
                }
            }
        }
        out.push('\n');
    }
    out
}

/// `9c1eed63...` unless `full`.
#[must_use]
pub fn machine_id(id: &str, full: bool) -> String {
    if full {
        id.to_string()
    } else {
        format!("{}...", id.chars().take(8).collect::<String>())
    }
}

/// `9c1eed63.../172.17.8.104`, or the ID alone when the IP is unknown.
#[must_use]
pub fn machine_legend(id: &str, ip: Option<&str>, full: bool) -> String {
    let legend = machine_id(id, full);
    match ip {
        Some(ip) if !ip.is_empty() => format!("{legend}/{ip}"),
        _ => legend,
    }
}

/// `-` for an empty cell.
#[must_use]
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// The columns of one table: what `--fields` names and the header shows.
pub trait Column: Copy + PartialEq + 'static {
    /// Every column, in the order `--fields`' error message lists them.
    const ALL: &'static [Self];
    /// The columns shown without `--fields`.
    const DEFAULT: &'static [Self];
    /// The column's name in `--fields`; the header is it in capitals.
    fn name(self) -> &'static str;
}

/// The columns `--fields` asks for (case-insensitive, comma separated), or
/// the default ones without it.
///
/// # Errors
/// An empty list, or the first unknown column, with the valid ones.
pub fn fields<C: Column>(spec: Option<&str>) -> Result<Vec<C>, String> {
    let Some(spec) = spec else { return Ok(C::DEFAULT.to_vec()) };
    if spec.is_empty() {
        return Err("--fields is empty: give a comma-separated list of columns".into());
    }
    spec.split(',')
        .map(|f| {
            let f = f.trim().to_ascii_lowercase();
            C::ALL.iter().copied().find(|c| c.name() == f).ok_or_else(|| {
                let valid: Vec<&str> = C::ALL.iter().map(|c| c.name()).collect();
                format!("--fields: unknown column '{f}'; valid columns are {}", valid.join(","))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn layout_matches_go_tabwriter() {
        // Widths: "UNIT"+1=5 → 8 (one tab); "node-etcd@.service"+1=19 → 24.
        let t =
            render(&[row(&["UNIT", "HASH", "DSTATE"]), row(&["node-etcd@.service", "e48e872", "inactive"])]);
        assert_eq!(t, "UNIT\t\t\tHASH\tDSTATE\nnode-etcd@.service\te48e872\tinactive\n");
    }

    #[test]
    fn exact_multiple_of_eight_gets_another_tab() {
        // "12345678"+1 = 9 → 16: text 8 wide needs one tab, "a" needs two.
        let t = render(&[row(&["12345678", "x"]), row(&["a", "y"])]);
        assert_eq!(t, "12345678\tx\na\t\ty\n");
    }

    #[test]
    fn single_column_is_plain_lines() {
        assert_eq!(render(&[row(&["UNIT"]), row(&["a.service"])]), "UNIT\na.service\n");
    }

    #[test]
    fn legends() {
        assert_eq!(machine_legend("9c1eed63abcdef", Some("172.17.8.104"), false), "9c1eed63.../172.17.8.104");
        assert_eq!(machine_legend("9c1eed63abcdef", None, true), "9c1eed63abcdef");
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Col {
        Unit,
        Hash,
    }

    impl Column for Col {
        const ALL: &'static [Self] = &[Col::Unit, Col::Hash];
        const DEFAULT: &'static [Self] = &[Col::Unit];
        fn name(self) -> &'static str {
            match self {
                Col::Unit => "unit",
                Col::Hash => "hash",
            }
        }
    }

    #[test]
    fn fields_are_typed_columns() {
        assert_eq!(fields::<Col>(None), Ok(vec![Col::Unit]));
        assert_eq!(fields::<Col>(Some(" HASH,unit,hash")), Ok(vec![Col::Hash, Col::Unit, Col::Hash]));
        assert_eq!(
            fields::<Col>(Some("unit,Bogus")),
            Err("--fields: unknown column 'bogus'; valid columns are unit,hash".to_string())
        );
        assert!(fields::<Col>(Some("")).is_err());
    }
}
