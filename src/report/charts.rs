//! The report's charts, drawn with `plotters` into SVG strings that the page
//! inlines: no image files, no scripts, no fonts to ship — the SVG backend
//! writes text as `<text>` elements that the browser renders with its own
//! sans-serif font.
//!
//! Each function draws one chart from the rows of [`super::data`] and returns
//! the `<svg>` element.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::{AccountRow, Intersection, Totals};
use super::thousands;

/// Width of every chart, in SVG pixels (the page scales them down to fit).
pub const WIDTH: u32 = 880;
/// The most intersections the UpSet plot shows (the largest ones).
pub const UPSET_MAX_COLUMNS: usize = 16;

const FONT: &str = "sans-serif";
const MEMBERS: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
const RESOLVED: RGBColor = RGBColor(0x6b, 0xae, 0xd6);
const EXCLUSIVE: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const UNIQUE: RGBColor = RGBColor(0xdd, 0x84, 0x52);
const JOINED: RGBColor = RGBColor(0x3a, 0x9a, 0x5b);
const LEFT: RGBColor = RGBColor(0xc8, 0x44, 0x44);
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const FAINT: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {message}")]
pub struct ChartError {
    pub chart: &'static str,
    pub message: String,
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws into an SVG string of `WIDTH` × `height`.
fn svg(
    chart: &'static str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.into())
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| e.into()));
        drawn.map_err(|e| ChartError {
            chart,
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&INK)
}

fn centered(size: u32) -> TextStyle<'static> {
    text(size).pos(Pos::new(HPos::Center, VPos::Center))
}

/// A y axis from 0 to a little above `max` (never an empty range).
fn headroom(max: i64) -> f64 {
    (max.max(1) as f64) * 1.12
}

fn count_label(y: &f64) -> String {
    thousands(y.round() as i64)
}

/// Unique people against gross memberships over every complete snapshot.
pub fn trend(points: &[Totals]) -> Result<String, ChartError> {
    svg("trend", 360, |root| {
        let n = points.len();
        let max = points.iter().map(|p| p.members).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..headroom(max))?;
        let label_every = n.div_ceil(8).max(1);
        let date_label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 || i as usize % label_every != 0 {
                return String::new();
            }
            points
                .get(i as usize)
                .map(|p| p.date.format("%m-%d").to_string())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_labels(n.min(40) + 1)
            .x_label_formatter(&date_label)
            .y_label_formatter(&count_label)
            .light_line_style(WHITE)
            .bold_line_style(FAINT)
            .label_style(text(12))
            .draw()?;
        let series = [
            (
                "gross memberships",
                MEMBERS,
                points.iter().map(|p| p.members).collect::<Vec<_>>(),
            ),
            (
                "unique people",
                UNIQUE,
                points.iter().map(|p| p.unique_people).collect(),
            ),
        ];
        for (name, color, values) in series {
            let xy: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, *v as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), color.stroke_width(3)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
            chart.draw_series(xy.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(FAINT)
            .label_font(text(13))
            .draw()?;
        Ok(())
    })
}

/// Account names under the bars of a chart whose x axis counts accounts.
fn account_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    at: impl Fn(usize) -> (i32, i32),
    accounts: &[AccountRow],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    for (i, account) in accounts.iter().enumerate() {
        let (x, y) = at(i);
        root.draw(&Text::new(
            account.account_id.clone(),
            (x, y + 14),
            centered(13),
        ))?;
    }
    Ok(())
}

/// Per account: members, resolved members and exclusive people, side by side.
pub fn accounts(accounts: &[AccountRow]) -> Result<String, ChartError> {
    svg("accounts", 380, |root| {
        let n = accounts.len().max(1);
        let max = accounts.iter().map(|a| a.members).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(30)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..n as f64, 0f64..headroom(max))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&count_label)
            .light_line_style(WHITE)
            .bold_line_style(FAINT)
            .label_style(text(12))
            .draw()?;
        let bars = [
            ("members", MEMBERS, 0.10),
            ("resolved (UnionID known)", RESOLVED, 0.37),
            ("exclusive people", EXCLUSIVE, 0.64),
        ];
        for (name, color, offset) in bars {
            let value = |a: &AccountRow| match name {
                "members" => a.members,
                "exclusive people" => a.exclusive_people,
                _ => a.resolved,
            };
            chart
                .draw_series(accounts.iter().enumerate().map(|(i, a)| {
                    let x = i as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + 0.25, value(a) as f64)], color.filled())
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            chart.draw_series(accounts.iter().enumerate().map(|(i, a)| {
                let x = i as f64 + offset + 0.125;
                Text::new(
                    thousands(value(a)),
                    (x, value(a) as f64),
                    text(11).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(FAINT)
            .label_font(text(13))
            .draw()?;
        account_labels(
            root,
            |i| chart.backend_coord(&(i as f64 + 0.5, 0.0)),
            accounts,
        )
    })
}

/// An UpSet plot: the size of each exclusive intersection (bars, largest
/// first) above a matrix whose filled dots say which accounts it is.
pub fn upset(intersections: &[Intersection], accounts: &[String]) -> Result<String, ChartError> {
    let shown = &intersections[..intersections.len().min(UPSET_MAX_COLUMNS)];
    let row_height = 26u32;
    let bars_height = 260u32;
    let height = bars_height + row_height * accounts.len() as u32 + 24;
    svg("upset", height, |root| {
        let (top, _) = root.split_vertically(bars_height);
        let k = shown.len().max(1);
        let max = shown.iter().map(|s| s.people).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(&top)
            .margin_top(16)
            .margin_right(16)
            .margin_left(16)
            .y_label_area_size(130)
            .build_cartesian_2d(0f64..k as f64, 0f64..headroom(max))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&count_label)
            .light_line_style(WHITE)
            .bold_line_style(FAINT)
            .label_style(text(12))
            .y_desc("people")
            .draw()?;
        chart.draw_series(shown.iter().enumerate().map(|(i, s)| {
            Rectangle::new(
                [(i as f64 + 0.2, 0.0), (i as f64 + 0.8, s.people as f64)],
                INK.filled(),
            )
        }))?;
        chart.draw_series(shown.iter().enumerate().map(|(i, s)| {
            Text::new(
                thousands(s.people),
                (i as f64 + 0.5, s.people as f64),
                text(11).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        let column_x = |i: usize| chart.backend_coord(&(i as f64 + 0.5, 0.0)).0;
        let row_y = |j: usize| (bars_height + 14 + row_height * j as u32 + row_height / 2) as i32;
        let left = chart.backend_coord(&(0.0, 0.0)).0;
        for (j, account) in accounts.iter().enumerate() {
            if j % 2 == 0 {
                root.draw(&Rectangle::new(
                    [
                        (left, row_y(j) - row_height as i32 / 2),
                        (column_x(k - 1) + 30, row_y(j) + row_height as i32 / 2),
                    ],
                    RGBColor(0xf4, 0xf4, 0xf4).filled(),
                ))?;
            }
            root.draw(&Text::new(
                account.clone(),
                (left - 10, row_y(j)),
                text(13).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        for (i, s) in shown.iter().enumerate() {
            let members: Vec<usize> = accounts
                .iter()
                .enumerate()
                .filter(|(_, a)| s.accounts.contains(a))
                .map(|(j, _)| j)
                .collect();
            // Faint dots first, then the line joining the member dots, then those.
            for j in (0..accounts.len()).filter(|j| !members.contains(j)) {
                root.draw(&Circle::new((column_x(i), row_y(j)), 7, FAINT.filled()))?;
            }
            if let (Some(first), Some(last)) = (members.first(), members.last()) {
                root.draw(&PathElement::new(
                    vec![(column_x(i), row_y(*first)), (column_x(i), row_y(*last))],
                    INK.stroke_width(3),
                ))?;
            }
            for j in &members {
                root.draw(&Circle::new((column_x(i), row_y(*j)), 7, INK.filled()))?;
            }
        }
        Ok(())
    })
}

/// The overlap matrix as a heat map: shared people of each pair of accounts
/// (darker = more), and each account's resolved members on the diagonal.
pub fn overlap(
    accounts: &[AccountRow],
    shared: &[(String, String, i64)],
) -> Result<String, ChartError> {
    let n = accounts.len();
    let cell = (560 / n.max(1) as u32).clamp(40, 110);
    let label_width = 110u32;
    let height = label_width + cell * n as u32 + 40;
    svg("overlap", height, |root| {
        let value = |a: &str, b: &str| {
            shared
                .iter()
                .find(|(x, y, _)| (x == a && y == b) || (x == b && y == a))
                .map(|(_, _, v)| *v)
                .unwrap_or(0)
        };
        let max = shared.iter().map(|(_, _, v)| *v).max().unwrap_or(0).max(1) as f64;
        let origin = (label_width as i32 + 20, label_width as i32);
        let at = |i: usize| i as i32 * cell as i32;
        for (i, row) in accounts.iter().enumerate() {
            root.draw(&Text::new(
                row.account_id.clone(),
                (origin.0 - 8, origin.1 + at(i) + cell as i32 / 2),
                text(13).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            root.draw(&Text::new(
                row.account_id.clone(),
                (origin.0 + at(i) + cell as i32 / 2, origin.1 - 8),
                text(13)
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            for (j, column) in accounts.iter().enumerate() {
                let (fill, number, ink) = if i == j {
                    (RGBColor(0xee, 0xee, 0xee), row.resolved, INK)
                } else {
                    let v = value(&row.account_id, &column.account_id);
                    let t = v as f64 / max;
                    let shade = |light: u8, dark: u8| {
                        (light as f64 + (dark as f64 - light as f64) * t) as u8
                    };
                    let fill = RGBColor(shade(0xf7, 0x08), shade(0xfb, 0x45), shade(0xff, 0x94));
                    (fill, v, if t > 0.55 { WHITE } else { INK })
                };
                let (x, y) = (origin.0 + at(j), origin.1 + at(i));
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32 - 2, y + cell as i32 - 2)],
                    fill.filled(),
                ))?;
                root.draw(&Text::new(
                    thousands(number),
                    (x + cell as i32 / 2 - 1, y + cell as i32 / 2 - 1),
                    centered(12).color(&ink),
                ))?;
            }
        }
        Ok(())
    })
}

/// Members who joined (up) and left (down) each account since the previous
/// complete snapshot; a note instead on a first snapshot.
pub fn changes(accounts: &[AccountRow], totals: &Totals) -> Result<String, ChartError> {
    svg("changes", 340, |root| {
        if totals.joined.is_none() {
            root.draw(&Text::new(
                "First snapshot: joined and left are counted from the next complete snapshot on.",
                (WIDTH as i32 / 2, 170),
                centered(15),
            ))?;
            return Ok(());
        }
        let n = accounts.len().max(1);
        let up = accounts.iter().filter_map(|a| a.joined).max().unwrap_or(0);
        let down = accounts.iter().filter_map(|a| a.left).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(30)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..n as f64, -headroom(down)..headroom(up))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|y| thousands(y.abs().round() as i64))
            .light_line_style(WHITE)
            .bold_line_style(FAINT)
            .label_style(text(12))
            .draw()?;
        let series = [("joined", JOINED, 1.0), ("left", LEFT, -1.0)];
        for (name, color, sign) in series {
            let value =
                move |a: &AccountRow| if sign > 0.0 { a.joined } else { a.left }.unwrap_or(0);
            chart
                .draw_series(accounts.iter().enumerate().map(|(i, a)| {
                    Rectangle::new(
                        [
                            (i as f64 + 0.25, 0.0),
                            (i as f64 + 0.75, sign * value(a) as f64),
                        ],
                        color.filled(),
                    )
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            let anchor = if sign > 0.0 { VPos::Bottom } else { VPos::Top };
            chart.draw_series(accounts.iter().enumerate().map(|(i, a)| {
                Text::new(
                    thousands(value(a)),
                    (i as f64 + 0.5, sign * value(a) as f64),
                    text(11).pos(Pos::new(HPos::Center, anchor)),
                )
            }))?;
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (n as f64, 0.0)],
            INK.stroke_width(1),
        )))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(FAINT)
            .label_font(text(13))
            .draw()?;
        let bottom = -headroom(down);
        account_labels(
            root,
            |i| chart.backend_coord(&(i as f64 + 0.5, bottom)),
            accounts,
        )
    })
}
