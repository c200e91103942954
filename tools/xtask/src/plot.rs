//! SVG plots of benchmark results (plotters, SVG backend: no fonts needed).

use plotters::prelude::*;
use serde_json::Value;
use std::path::Path;

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("plotting: {e}")
}

/// IOPS of `rows` against data-plane cores (log x axis), with an optional
/// horizontal limit line (value in M IOPS, legend).
pub fn iops_vs_cores(path: &Path, rows: &[Value], caption: &str, limit: Option<(f64, &str)>) -> Result<(), String> {
    let pts: Vec<(f64, f64)> = rows.iter().filter_map(|r| Some((r["cores"].as_f64()?, r["iops"].as_f64()? / 1e6))).collect();
    let ymax = pts.iter().map(|p| p.1).chain(limit.map(|l| l.0)).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..64f64).log_scale(), 0f64..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("data-plane cores")
        .y_desc("M IOPS (simulated)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new(pts.iter().copied(), &BLUE)).map_err(err)?;
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled()))).map_err(err)?;
    if let Some((y, label)) = limit {
        chart
            .draw_series(LineSeries::new([(1.0, y), (64.0, y)], RED.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    }
    root.present().map_err(err)
}

/// Latency CDFs (percentile against microseconds).
pub fn latency_cdf(path: &Path, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    let xmax = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency CDF, 4 KiB randread", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..xmax, 0f64..100f64)
        .map_err(err)?;
    chart.configure_mesh().x_desc("latency (us, simulated)").y_desc("percentile").draw().map_err(err)?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().map(|&(p, us)| (us, p)), c))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}
