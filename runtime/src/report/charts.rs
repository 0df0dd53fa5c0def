//! The report's charts, drawn with plotters as standalone SVG documents (text as `<text>`
//! elements, so the page needs no font files and the PNG renderer uses the system's).

use std::collections::BTreeSet;
use std::error::Error;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::summary::{Distribution, Summary};

/// One drawn chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem and HTML id.
    pub id: &'static str,
    pub title: String,
    pub svg: String,
}

const WIDTH: u32 = 1100;
const FONT: &str = "sans-serif";
/// Colour-blind-friendly (Okabe–Ito) colours, one per series.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// All charts of a summary, in the order the page shows them.
pub fn draw_all(summary: &Summary) -> anyhow::Result<Vec<Chart>> {
    Ok(vec![success(summary)?, scores(summary)?, steps(summary)?, prompt_tokens(summary)?])
}

/// Draws on a fresh SVG canvas and returns the document, with a `<title>` for readers and tests.
/// The frame every chart shares: caption, margins, room for the legend on the right and for
/// the axis labels (`y_label_width` pixels on the left).
fn frame<'a, 'b, 'c>(root: &'a Area<'c>, title: &str, y_label_width: u32) -> ChartBuilder<'a, 'b, SVGBackend<'c>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 18))
        .margin(12)
        .margin_right(LEGEND_WIDTH)
        .x_label_area_size(36)
        .y_label_area_size(y_label_width);
    builder
}

fn render(id: &'static str, title: &str, height: u32, draw: impl FnOnce(&Area) -> DrawResult) -> anyhow::Result<Chart> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing {id}: {e}"))?;
        draw(&root).map_err(|e| anyhow::anyhow!("drawing {id}: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("drawing {id}: {e}"))?;
    }
    let insert_at = svg.find("<svg").and_then(|start| svg[start..].find('>').map(|end| start + end + 1));
    if let Some(at) = insert_at {
        svg.insert_str(at, &format!("\n<title>{}</title>", super::html::escape(title)));
    }
    Ok(Chart { id, title: title.to_string(), svg })
}

/// The (task, split) rows every policy is shown on, "all" first.
fn task_rows(summary: &Summary) -> Vec<(String, String)> {
    let set: BTreeSet<(String, String)> =
        summary.policies.iter().flat_map(|p| p.tasks.iter().map(|t| (t.task.clone(), t.split.clone()))).collect();
    set.into_iter().collect()
}

fn row_label(task: &str, split: &str) -> String {
    format!("{task} ({split})")
}

/// Pixels for a label column wide enough for the longest label (about 6.5 px a character at 12 px).
fn label_width(labels: impl Iterator<Item = usize>) -> u32 {
    (labels.max().unwrap_or(4) as u32 * 13 / 2 + 16).clamp(60, 420)
}

/// Where policy `p` of `policies` sits within row `row` of `rows` (row 0 at the top).
fn band(row: usize, rows: usize, p: usize, policies: usize) -> (f64, f64) {
    let base = (rows - 1 - row) as f64 + 0.1;
    let h = 0.8 / policies as f64;
    let slot = policies - 1 - p; // the first policy on top
    (base + h * slot as f64, base + h * (slot + 1) as f64)
}

/// Writes row `i`'s label left of the plot, level with the row's middle (plotters' own tick labels
/// fall on round numbers, not on rows).
fn row_labels(
    root: &Area,
    chart: &ChartContext<SVGBackend, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    labels: &[String],
) -> DrawResult {
    let n = labels.len();
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, label) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(chart.x_range().start, (n - 1 - i) as f64 + 0.5));
        root.draw(&Text::new(label.as_str(), (x - 6, y), style.clone()))?;
    }
    Ok(())
}

fn row_height(policies: usize) -> u32 {
    (10 * policies as u32).max(18)
}

/// Pixels kept right of every plot for its legend, so the legend never hides data.
const LEGEND_WIDTH: u32 = 190;

/// Draws a legend (a swatch and a name per series) in the space right of the plot.
fn legend(root: &Area, entries: &[(String, RGBColor, Swatch)]) -> DrawResult {
    let x = (WIDTH - LEGEND_WIDTH + 16) as i32;
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, c, swatch)) in entries.iter().enumerate() {
        let y = 60 + 20 * i as i32;
        match swatch {
            Swatch::Box => root.draw(&Rectangle::new([(x + 4, y - 6), (x + 16, y + 6)], c.filled()))?,
            Swatch::Line(dash) => {
                // Segments of the level's dash pattern across 20 px.
                let (on, off) = dash.unwrap_or((20, 0));
                let mut x0 = x;
                while x0 < x + 20 {
                    let x1 = (x0 + on as i32).min(x + 20);
                    root.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?;
                    x0 = x1 + off as i32;
                }
            }
        }
        root.draw(&Text::new(name.as_str(), (x + 26, y), style.clone()))?;
    }
    Ok(())
}

/// How a legend entry shows its series.
#[derive(Clone, Copy)]
enum Swatch {
    Box,
    /// A line, solid or dashed (pixels on, pixels off).
    Line(Option<(u32, u32)>),
}

fn policy_entries(summary: &Summary) -> Vec<(String, RGBColor, Swatch)> {
    summary.policies.iter().enumerate().map(|(i, p)| (p.label.clone(), colour(i), Swatch::Box)).collect()
}

/// Each level's line: the colour says the policy, the dashes the level.
fn level_dash(level: &str) -> Option<(u32, u32)> {
    match level {
        "high" => Some((9, 4)),
        "progress" => Some((2, 3)),
        _ => None,
    }
}

fn success(summary: &Summary) -> anyhow::Result<Chart> {
    let mut rows = vec![("all tasks".to_string(), String::new())];
    rows.extend(task_rows(summary));
    let n = rows.len();
    let labels: Vec<String> =
        rows.iter().map(|(t, s)| if s.is_empty() { t.clone() } else { row_label(t, s) }).collect();
    let height = 120 + n as u32 * row_height(summary.policies.len());
    let title = "Success rate per task and split";
    render("success", title, height, |root| {
        let mut chart = frame(root, title, label_width(labels.iter().map(|l| l.len())))
            .build_cartesian_2d(0f64..1.12f64, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(7)
            .x_label_formatter(&|x| if *x <= 1.0 { format!("{:.0}%", x * 100.0) } else { String::new() })
            .x_desc("episodes won")
            .label_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        row_labels(root, &chart, &labels)?;
        let policies = summary.policies.len();
        for (p, policy) in summary.policies.iter().enumerate() {
            let c = colour(p);
            let mut bars = Vec::new();
            let mut texts = Vec::new();
            for (row, (task, split)) in rows.iter().enumerate() {
                let (won, episodes) = if split.is_empty() {
                    (policy.won, policy.episodes)
                } else {
                    match policy.tasks.iter().find(|t| &t.task == task && &t.split == split) {
                        Some(t) => (t.won, t.episodes),
                        None => continue,
                    }
                };
                let rate = if episodes == 0 { 0.0 } else { won as f64 / episodes as f64 };
                let (y0, y1) = band(row, n, p, policies);
                if rate > 0.0 {
                    bars.push(Rectangle::new([(0.0, y0), (rate, y1)], c.filled()));
                }
                let style = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
                texts.push(Text::new(format!("{won}/{episodes}"), (rate + 0.008, (y0 + y1) / 2.0), style));
            }
            chart.draw_series(bars)?;
            chart.draw_series(texts)?;
        }
        legend(root, &policy_entries(summary))?;
        Ok(())
    })
}

fn scores(summary: &Summary) -> anyhow::Result<Chart> {
    let rows = task_rows(summary);
    let n = rows.len().max(1);
    let labels: Vec<String> = rows.iter().map(|(t, s)| row_label(t, s)).collect();
    let all: Vec<Distribution> = summary.policies.iter().flat_map(|p| p.tasks.iter().map(|t| t.score)).collect();
    let lo = all.iter().map(|d| d.min).fold(f64::INFINITY, f64::min);
    let hi = all.iter().map(|d| d.max).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(0.5);
    let height = 120 + n as u32 * row_height(summary.policies.len());
    let title = "Score distribution per task (box: quartiles, bar: median, line: range)";
    render("scores", title, height, |root| {
        let mut chart = frame(root, title, label_width(labels.iter().map(|l| l.len())))
            .build_cartesian_2d((lo - pad)..(hi + pad), 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("final score")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        row_labels(root, &chart, &labels)?;
        let policies = summary.policies.len();
        for (p, policy) in summary.policies.iter().enumerate() {
            let c = colour(p);
            let mut shapes: Vec<DynElement<SVGBackend, (f64, f64)>> = Vec::new();
            for (row, key) in rows.iter().enumerate() {
                let Some(t) = policy.tasks.iter().find(|t| (&t.task, &t.split) == (&key.0, &key.1)) else {
                    continue;
                };
                let (y0, y1) = band(row, n, p, policies);
                let mid = (y0 + y1) / 2.0;
                let d = t.score;
                // Zero-size shapes are skipped: renderers warn about them and draw nothing anyway.
                if d.max > d.min {
                    shapes.push(PathElement::new(vec![(d.min, mid), (d.max, mid)], c.stroke_width(1)).into_dyn());
                }
                if d.q3 > d.q1 {
                    let inset = 0.1 * (y1 - y0);
                    shapes.push(
                        Rectangle::new([(d.q1, y0 + inset), (d.q3, y1 - inset)], c.mix(0.45).filled()).into_dyn(),
                    );
                }
                shapes.push(PathElement::new(vec![(d.median, y0), (d.median, y1)], c.stroke_width(3)).into_dyn());
            }
            chart.draw_series(shapes)?;
        }
        legend(root, &policy_entries(summary))?;
        Ok(())
    })
}

/// A bin width of 1, 2 or 5 times a power of ten giving at most `max_bins` bins.
fn bin_width(max: u64, max_bins: u64) -> u64 {
    let mut scale = 1;
    loop {
        for w in [1, 2, 5].map(|m| m * scale) {
            if max / w < max_bins {
                return w;
            }
        }
        scale *= 10;
    }
}

fn steps(summary: &Summary) -> anyhow::Result<Chart> {
    let max = summary.policies.iter().flat_map(|p| p.steps_per_episode.last()).copied().max().unwrap_or(0);
    let width = bin_width(max, 25);
    let bins = (max / width + 1) as usize;
    let counts: Vec<Vec<usize>> = summary
        .policies
        .iter()
        .map(|p| {
            let mut c = vec![0; bins];
            for s in &p.steps_per_episode {
                c[(s / width) as usize] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let title = format!("Steps per episode (bins of {width})");
    render("steps", &title, 420, |root| {
        let mut chart = frame(root, &title, 50).build_cartesian_2d(0f64..(bins as u64 * width) as f64, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("environment steps")
            .y_desc("episodes")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let policies = summary.policies.len() as f64;
        for (p, counts) in counts.iter().enumerate() {
            let c = colour(p);
            let w = width as f64 * 0.9 / policies;
            let bars = counts.iter().enumerate().filter(|(_, &k)| k > 0).map(|(b, &k)| {
                let x0 = (b as u64 * width) as f64 + width as f64 * 0.05 + w * p as f64;
                Rectangle::new([(x0, 0.0), (x0 + w, k as f64)], c.filled())
            });
            chart.draw_series(bars)?;
        }
        legend(root, &policy_entries(summary))?;
        Ok(())
    })
}

fn prompt_tokens(summary: &Summary) -> anyhow::Result<Chart> {
    let points = summary.policies.iter().flat_map(|p| p.prompt_tokens.iter().flat_map(|s| s.points.iter()));
    let (max_step, max_tokens) = points.fold((0u64, 0f64), |(s, t), pt| (s.max(pt.step), t.max(pt.mean_prompt_tokens)));
    let title = "Prompt tokens per call against the step index (mean over episodes)";
    render("prompt-tokens", title, 480, |root| {
        let mut chart = frame(root, title, 60)
            .build_cartesian_2d(0f64..(max_step + 1) as f64, 0f64..(max_tokens * 1.1).max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("environment step")
            .y_desc("prompt tokens")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 12))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        let mut entries = Vec::new();
        for (p, policy) in summary.policies.iter().enumerate() {
            let c = colour(p);
            for level in &policy.prompt_tokens {
                let line = level.points.iter().map(|pt| (pt.step as f64, pt.mean_prompt_tokens));
                let dash = level_dash(&level.level);
                match dash {
                    None => {
                        chart.draw_series(LineSeries::new(line, c.stroke_width(2)))?;
                    }
                    Some((on, off)) => {
                        chart.draw_series(DashedLineSeries::new(line, on, off, c.stroke_width(2)))?;
                    }
                }
                entries.push((format!("{} · {}", policy.label, level.level), c, Swatch::Line(dash)));
            }
        }
        legend(root, &entries)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_round_and_few() {
        assert_eq!(bin_width(0, 25), 1);
        assert_eq!(bin_width(24, 25), 1);
        assert_eq!(bin_width(100, 25), 5);
        assert_eq!(bin_width(400, 25), 20);
    }
}
