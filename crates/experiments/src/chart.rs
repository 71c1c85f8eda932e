//! SVG charts with plotters (SVG backend only): axes with units, our series
//! ("gridledger: …", solid, circles) beside the seed's ("seed: …", dashed,
//! triangles), linear or log y.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::result::{ChartKind, ChartSpec, ExperimentResult, Series};
use crate::ExperimentError;

const OURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(23, 190, 207), RGBColor(148, 103, 189)];
const SEED: [RGBColor; 4] =
    [RGBColor(214, 39, 40), RGBColor(255, 127, 14), RGBColor(140, 86, 75), RGBColor(227, 119, 194)];

fn chart_err(e: impl std::fmt::Display) -> ExperimentError {
    ExperimentError::Chart(e.to_string())
}

/// One series to draw, with its legend label and colour.
struct Drawn<'a> {
    label: String,
    series: &'a Series,
    color: RGBColor,
    seed: bool,
}

/// The chart of a result as an SVG document.
pub fn render(r: &ExperimentResult) -> Result<String, ExperimentError> {
    let mut drawn = Vec::new();
    for (i, s) in r.ours.iter().enumerate() {
        drawn.push(Drawn {
            label: format!("gridledger: {}", s.name),
            series: s,
            color: OURS[i % OURS.len()],
            seed: false,
        });
    }
    for (i, s) in r.seed.iter().enumerate() {
        drawn.push(Drawn { label: format!("seed: {}", s.name), series: s, color: SEED[i % SEED.len()], seed: true });
    }
    render_series(&r.chart, &drawn, (760, 440))
}

/// A chart of plain series (used by the HTML report too): the first
/// `ours` are drawn as ours, the rest as the seed's.
pub fn render_plain(spec: &ChartSpec, series: &[Series], size: (u32, u32)) -> Result<String, ExperimentError> {
    let drawn: Vec<Drawn> = series
        .iter()
        .enumerate()
        .map(|(i, s)| Drawn { label: s.name.clone(), series: s, color: OURS[i % OURS.len()], seed: false })
        .collect();
    render_series(spec, &drawn, size)
}

/// An axis tick: integers without decimals, small numbers with up to three.
pub fn tick(v: f64) -> String {
    if v.abs() >= 100.0 || (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

fn bounds(drawn: &[Drawn], log: bool, bars: bool, tight: bool) -> ((f64, f64), (f64, f64)) {
    let pts = drawn.iter().flat_map(|d| d.series.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if log && y <= 0.0 {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return ((0.0, 1.0), if log { (1.0, 10.0) } else { (0.0, 1.0) });
    }
    let (x0, x1) = if x0 == x1 {
        (x0 - 0.6, x1 + 0.6)
    } else if bars {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0 - (x1 - x0) * 0.03, x1 + (x1 - x0) * 0.03)
    };
    let (y0, y1) = if log {
        (y0 / 1.5, y1 * 1.5)
    } else {
        let lo = if tight { y0 - (y1 - y0) * 0.1 } else { y0.min(0.0) };
        let hi = if y1 <= lo { lo + 1.0 } else { y1 };
        (lo - (hi - lo) * if lo < 0.0 && !tight { 0.08 } else { 0.0 }, hi + (hi - lo) * 0.08)
    };
    ((x0, x1), (y0, y1))
}

fn render_series(spec: &ChartSpec, drawn: &[Drawn], size: (u32, u32)) -> Result<String, ExperimentError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let bars = spec.kind == ChartKind::Bars;
        let ((x0, x1), (y0, y1)) = bounds(drawn, spec.y_log, bars, spec.y_tight);
        if spec.y_log {
            let mut c = builder(&root, spec).build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(chart_err)?;
            c.configure_mesh()
                .x_desc(&spec.x_label)
                .y_desc(&spec.y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(chart_err)?;
            draw_all(&mut c, drawn, bars, y0)?;
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(chart_err)?;
        } else {
            let mut c = builder(&root, spec).build_cartesian_2d(x0..x1, y0..y1).map_err(chart_err)?;
            c.configure_mesh()
                .x_desc(&spec.x_label)
                .y_desc(&spec.y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(chart_err)?;
            draw_all(&mut c, drawn, bars, 0.0f64.max(y0))?;
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(chart_err)?;
        }
        root.present().map_err(chart_err)?;
    }
    Ok(out)
}

fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    spec: &ChartSpec,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(&spec.title, ("sans-serif", 18)).margin(12).x_label_area_size(44).y_label_area_size(72);
    b
}

fn draw_all<Y>(
    c: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    drawn: &[Drawn],
    bars: bool,
    base: f64,
) -> Result<(), ExperimentError>
where
    Y: Ranged<ValueType = f64>,
{
    let n = drawn.len().max(1) as f64;
    // Bars fill 80 % of the smallest gap between x positions.
    let mut xs: Vec<f64> = drawn.iter().flat_map(|d| d.series.points.iter().map(|p| p.0)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let gap = xs.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    let gap = if gap.is_finite() && gap > 0.0 { gap } else { 1.0 };
    for (k, d) in drawn.iter().enumerate() {
        let color = d.color;
        let pts: Vec<(f64, f64)> =
            d.series.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        if bars {
            let w = 0.8 * gap / n;
            let off = -0.4 * gap + w * k as f64;
            c.draw_series(pts.iter().map(|&(x, y)| {
                let style = if d.seed { color.mix(0.5).filled() } else { color.filled() };
                Rectangle::new([(x + off, base), (x + off + w * 0.95, y)], style)
            }))
            .map_err(chart_err)?
            .label(d.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        } else if d.seed {
            c.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, color.stroke_width(2))).map_err(chart_err)?;
            c.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 6, color.filled())))
                .map_err(chart_err)?
                .label(d.label.clone())
                .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, color.filled()));
        } else {
            c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2))).map_err(chart_err)?;
            c.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(chart_err)?
                .label(d.label.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ExperimentResult;

    #[test]
    fn empty_and_degenerate_series_still_draw() {
        let mut r = ExperimentResult {
            chart: ChartSpec {
                title: "t".into(),
                x_label: "x (s)".into(),
                y_label: "y (Wh)".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        for log in [false, true] {
            r.chart.y_log = log;
            r.ours = vec![];
            assert!(render(&r).unwrap().contains("x (s)"));
            r.ours = vec![Series::new("one point", vec![(1.0, 0.0)]), Series::new("nan", vec![(f64::NAN, 1.0)])];
            assert!(render(&r).unwrap().contains("gridledger: one point"));
        }
        r.chart.kind = ChartKind::Bars;
        r.seed = vec![Series::from_seed("s", vec![(0.5, 2.0), (1.0, 3.0)], "seed p. 1")];
        let svg = render(&r).unwrap();
        assert!(svg.contains("seed: s") && svg.contains("<rect"));
    }

    #[test]
    fn ticks_are_readable() {
        assert_eq!(tick(20000.0), "20000");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(tick(0.25), "0.25");
    }
}
