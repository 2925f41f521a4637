//! Plain-text tables for `mtasts report summary` and `list`: columns padded to their widest
//! cell, numbers aligned right, colour (ANSI) only when asked for, so that what is measured
//! for padding is never the escape codes.

use std::io::{IsTerminal, Write};

/// Whether to colour: `always`, `never`, or `auto` (standard output is a terminal and
/// `NO_COLOR` is unset, <https://no-color.org>).
pub(crate) fn colour_wanted(when: &str) -> bool {
    match when {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// ANSI styles, or none.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paint {
    pub(crate) on: bool,
}

impl Paint {
    pub(crate) fn paint(self, code: &str, text: &str) -> String {
        if self.on && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Green for good, red for bad, yellow for in between.
pub(crate) const GOOD: &str = "32";
pub(crate) const BAD: &str = "31";
pub(crate) const WARN: &str = "33";

/// How a column lines up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// One cell: its text and an optional colour code.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    text: String,
    colour: &'static str,
}

impl Cell {
    pub(crate) fn coloured(self, code: &'static str) -> Cell {
        Cell {
            colour: code,
            ..self
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, colour: "" }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_owned())
    }
}

/// A table with a header row.
#[derive(Debug)]
pub(crate) struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub(crate) fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        let mut cells = cells;
        cells.resize_with(self.columns.len(), || Cell::from(""));
        self.rows.push(cells);
    }

    /// Writes the table, each line starting with `indent`.
    pub(crate) fn write(
        &self,
        out: &mut impl Write,
        indent: &str,
        paint: Paint,
    ) -> std::io::Result<()> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (title, _))| {
                self.rows
                    .iter()
                    .map(|r| width(&r[i].text))
                    .chain([width(title)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<Cell> = self.columns.iter().map(|(t, _)| Cell::from(*t)).collect();
        self.line(out, indent, &header, &widths, paint, true)?;
        for row in &self.rows {
            self.line(out, indent, row, &widths, paint, false)?;
        }
        Ok(())
    }

    fn line(
        &self,
        out: &mut impl Write,
        indent: &str,
        cells: &[Cell],
        widths: &[usize],
        paint: Paint,
        header: bool,
    ) -> std::io::Result<()> {
        let mut line = String::from(indent);
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - width(&cell.text));
            let text = if header {
                paint.dim(&cell.text)
            } else {
                paint.paint(cell.colour, &cell.text)
            };
            match self.columns[i].1 {
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(&text);
                }
                Align::Left if i == last => line.push_str(&text),
                Align::Left => {
                    line.push_str(&text);
                    line.push_str(&pad);
                }
            }
            if i != last {
                line.push_str("  ");
            }
        }
        writeln!(out, "{}", line.trim_end())
    }
}

/// Display width: one column per character (the tables hold ASCII names, numbers and dates;
/// an organization name in another script is rare and at worst misaligns its own row).
fn width(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Table, on: bool) -> String {
        let mut out = Vec::new();
        t.write(&mut out, "  ", Paint { on }).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_are_padded_and_numbers_aligned_right() {
        let mut t = Table::new(&[
            ("Day", Align::Left),
            ("Sessions", Align::Right),
            ("Org", Align::Left),
        ]);
        t.row(vec![
            "2026-12-01".into(),
            "1,204".into(),
            "Google Inc.".into(),
        ]);
        t.row(vec!["2026-12-02".into(), "7".into(), "x".into()]);
        assert_eq!(
            render(&t, false),
            "  Day         Sessions  Org\n  2026-12-01     1,204  Google Inc.\n  2026-12-02         7  x\n"
        );
    }

    #[test]
    fn colour_codes_do_not_count_as_width() {
        let mut t = Table::new(&[("A", Align::Right), ("B", Align::Left)]);
        t.row(vec![Cell::from("12").coloured(BAD), "b".into()]);
        assert_eq!(
            render(&t, true),
            "   \x1b[2mA\x1b[0m  \x1b[2mB\x1b[0m\n  \x1b[31m12\x1b[0m  b\n"
        );
    }

    #[test]
    fn short_rows_are_filled() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        t.row(vec!["only".into()]);
        assert_eq!(render(&t, false), "  A     B\n  only\n");
    }
}
