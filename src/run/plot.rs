//! Training curves as PNG, drawn with plotters and a bundled font (DejaVu Sans, `assets/`), so
//! no system font library is needed.

use super::MetricsLine;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // the bundled file is a valid TrueType font; a failure would show as missing text only
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One curve: a name and (epoch, value) points.
pub struct Series {
    pub name: String,
    pub loss: Vec<(f64, f64)>,
    pub accuracy: Vec<(f64, f64)>,
}

impl Series {
    /// The curves of one stage's metrics lines.
    pub fn from_metrics(name: impl Into<String>, lines: &[&MetricsLine]) -> Series {
        Series {
            name: name.into(),
            loss: lines.iter().map(|l| (l.record.epoch as f64, l.record.train_loss as f64)).collect(),
            accuracy: lines.iter().map(|l| (l.record.epoch as f64, 100.0 * l.record.test_accuracy as f64)).collect(),
        }
    }
}

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 480;

/// Draws train loss (left) and test accuracy (right) per epoch for every series into `path`.
pub fn curves(series: &[Series], title: &str, path: &Path) -> Result<()> {
    register_font();
    let fail = |e: String| Error::file(path, format!("cannot draw the plot: {e}"));
    folder_exists(path)?;
    // the image encoder goes by the extension, so the temporary file ends in .png too
    let tmp = path.with_file_name(format!(".{}.tmp.png", path.file_stem().map_or("plot".into(), |s| s.to_string_lossy())));
    {
        let root = BitMapBackend::new(&tmp, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(|e| fail(e.to_string()))?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let max_epoch = series.iter().flat_map(|s| s.loss.iter().map(|p| p.0)).fold(1.0, f64::max);
        let max_loss = series.iter().flat_map(|s| s.loss.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(1e-3, f64::max);
        // accuracy on an axis around the data, so 1-2 points between methods show
        let accuracy = fit_range(series.iter().flat_map(|s| s.accuracy.iter().map(|p| p.1)), 0.5, (0.0, 100.0));
        let panels = [(left, "train loss", 0.0..max_loss * 1.05, true), (right, "test accuracy (%)", accuracy, false)];
        for (area, label, range, is_loss) in panels {
            let mut chart = ChartBuilder::on(&area)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .caption(label, ("sans-serif", 18))
                .build_cartesian_2d(0.0..max_epoch, range)
                .map_err(|e| fail(e.to_string()))?;
            chart.configure_mesh().x_desc("epoch").label_style(("sans-serif", 13)).draw().map_err(|e| fail(e.to_string()))?;
            for (i, s) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let points = if is_loss { s.loss.clone() } else { s.accuracy.clone() };
                // a marker at each epoch, so a one-epoch stage shows too
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| fail(e.to_string()))?;
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(|e| fail(e.to_string()))?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .position(if is_loss { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight })
                .draw()
                .map_err(|e| fail(e.to_string()))?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A single-panel line chart: named series of (x, y) points.
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Draws `chart` into `path` (atomically).
pub fn lines(chart: &Lines, path: &Path) -> Result<()> {
    lines_with_errors(chart, &[], path)
}

/// [`lines`] with a vertical error bar of half-height `errors[series][point]` on each point
/// (series without errors: none).
pub fn lines_with_errors(chart: &Lines, errors: &[Vec<f64>], path: &Path) -> Result<()> {
    register_font();
    let fail = |e: String| Error::file(path, format!("cannot draw the plot: {e}"));
    folder_exists(path)?;
    let tmp = path.with_file_name(format!(".{}.tmp.png", path.file_stem().map_or("plot".into(), |s| s.to_string_lossy())));
    {
        let root = BitMapBackend::new(&tmp, (WIDTH * 2 / 3, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let error = |i: usize, k: usize| errors.get(i).and_then(|e| e.get(k)).copied().filter(|e| e.is_finite()).unwrap_or(0.0);
        // the bars' ends count in the bounds
        let ends: Vec<(f64, f64)> = chart
            .series
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.1.iter().enumerate().flat_map(move |(k, p)| [(p.0, p.1 - error(i, k)), (p.0, p.1 + error(i, k))]))
            .collect();
        let points = || ends.iter().filter(|p| p.0.is_finite() && p.1.is_finite());
        let bounds =
            |f: fn(&(f64, f64)) -> f64| points().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (x0, x1) = bounds(|p| p.0);
        let (y0, y1) = bounds(|p| p.1);
        let (x0, x1) = if x0.is_finite() && x1 > x0 { (x0, x1) } else { (0.0, 1.0) };
        let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { 1.0 };
        let (y0, y1) = if y0.is_finite() { (y0 - pad, y1 + pad) } else { (0.0, 1.0) };
        let mut c = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .caption(&chart.title, ("sans-serif", 20))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fail(e.to_string()))?;
        c.configure_mesh()
            .x_desc(chart.x_label.as_str())
            .y_desc(chart.y_label.as_str())
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        for (i, (name, pts)) in chart.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| fail(e.to_string()))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if errors.get(i).is_some() {
                let bars = pts
                    .iter()
                    .enumerate()
                    .map(|(k, p)| ErrorBar::new_vertical(p.0, p.1 - error(i, k), p.1, p.1 + error(i, k), color.stroke_width(2), 8));
                c.draw_series(bars).map_err(|e| fail(e.to_string()))?;
            }
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A clear error, not the image encoder's, when the PNG's folder does not exist.
fn folder_exists(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(Error::file(path, format!("cannot write the plot: the folder {} does not exist", dir.display()))),
        _ => Ok(()),
    }
}

/// One series per stage of a run's metrics, named by the stage's label (after `run: ` when given).
pub fn stage_series(metrics: &[MetricsLine], run: Option<&str>) -> Vec<Series> {
    let mut stages: Vec<usize> = metrics.iter().map(|l| l.stage).collect();
    stages.dedup();
    stages
        .iter()
        .map(|k| {
            let lines: Vec<&MetricsLine> = metrics.iter().filter(|l| l.stage == *k).collect();
            let label = lines.first().map_or(format!("stage {k}"), |l| format!("{k}: {}", l.label));
            Series::from_metrics(run.map_or(label.clone(), |r| format!("{r}: {label}")), &lines)
        })
        .collect()
}

/// `curves.png` for a run: one series per stage.
pub fn run_curves(metrics: &[MetricsLine], title: &str, path: &Path) -> Result<()> {
    curves(&stage_series(metrics, None), title, path)
}

/// An axis range around `values` (finite ones), padded by a tenth of their spread and at least
/// `min_pad`, kept within `limits`: a difference of one or two points stays visible.
fn fit_range(values: impl Iterator<Item = f64>, min_pad: f64, limits: (f64, f64)) -> std::ops::Range<f64> {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return limits.0..limits.1;
    }
    let pad = ((hi - lo) * 0.1).max(min_pad);
    (lo - pad).max(limits.0)..(hi + pad).min(limits.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accuracy_axis_fits_the_data() {
        // two methods 1.5 points apart: the axis spans a few points, not 0..100
        let r = fit_range([91.0, 92.5, 91.8].into_iter(), 0.5, (0.0, 100.0));
        assert_eq!(r, 90.5..93.0);
        // one value: padded; at the edges: clamped
        assert_eq!(fit_range([100.0].into_iter(), 0.5, (0.0, 100.0)), 99.5..100.0);
        assert_eq!(fit_range(std::iter::empty(), 0.5, (0.0, 100.0)), 0.0..100.0);
        assert!(curves(&[], "x", Path::new("/no/such/folder/x.png")).unwrap_err().to_string().contains("does not exist"));
    }
}
