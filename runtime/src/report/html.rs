//! The report page: one self-contained HTML file (inline CSS and SVG, no scripts, no network).

use std::fmt::Write;

use super::charts::{colour, Chart};
use super::summary::Summary;

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1140px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}td.n{text-align:right}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.85em;color:#555}.warn{color:#a40}.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em}";

/// Escapes text for HTML and SVG content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Builds the page. `sources` are the recordings' paths, as given, in the policies' order.
pub fn page(summary: &Summary, sources: &[String], charts: &[Chart]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>stepwire report</title><style>{STYLE}</style></head><body>\n<h1>stepwire report</h1>\n"
    );
    recordings_table(&mut h, summary, sources);
    for chart in charts {
        let _ = write!(
            h,
            "<section id=\"{id}\"><h2>{title}</h2><figure>{svg}<figcaption>Also as <a href=\"{id}.png\">{id}.png</a>.\
             </figcaption></figure>",
            id = chart.id,
            title = escape(&chart.title),
            svg = strip_xml_declaration(&chart.svg),
        );
        match chart.id {
            "success" => task_table(&mut h, summary),
            "prompt-tokens" => token_table(&mut h, summary),
            _ => {}
        }
        h.push_str("</section>\n");
    }
    h.push_str("<p>Made by <code>stepwire report</code>; the numbers are in <a href=\"summary.json\">summary.json</a>.</p>\n</body></html>\n");
    h
}

fn strip_xml_declaration(svg: &str) -> &str {
    match (svg.starts_with("<?xml"), svg.find("?>")) {
        (true, Some(end)) => svg[end + 2..].trim_start(),
        _ => svg,
    }
}

fn recordings_table(h: &mut String, summary: &Summary, sources: &[String]) {
    h.push_str(
        "<section id=\"recordings\"><h2>Recordings</h2><table><tr><th>policy</th><th>recording</th>\
         <th>episodes</th><th>won</th><th>success</th><th>policy calls</th></tr>\n",
    );
    for (i, (p, source)) in summary.policies.iter().zip(sources).enumerate() {
        let c = colour(i);
        let _ = writeln!(
            h,
            "<tr><td><span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{}</td><td><code>{}</code></td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            c.0,
            c.1,
            c.2,
            escape(&p.label),
            escape(source),
            p.episodes,
            p.won,
            percent(p.success_rate),
            p.calls
        );
    }
    h.push_str("</table>\n");
    for warning in summary.policies.iter().flat_map(|p| &p.warnings) {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", escape(warning));
    }
    h.push_str("</section>\n");
}

fn task_table(h: &mut String, summary: &Summary) {
    h.push_str("<table class=\"tasks\"><tr><th>task</th><th>split</th>");
    for p in &summary.policies {
        let _ = write!(h, "<th>{} won</th><th>mean score</th>", escape(&p.label));
    }
    h.push_str("</tr>\n");
    let mut rows: Vec<(&str, &str)> =
        summary.policies.iter().flat_map(|p| p.tasks.iter().map(|t| (t.task.as_str(), t.split.as_str()))).collect();
    rows.sort_unstable();
    rows.dedup();
    for (task, split) in rows {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td>", escape(task), escape(split));
        for p in &summary.policies {
            match p.tasks.iter().find(|t| t.task == task && t.split == split) {
                Some(t) => {
                    let _ = write!(
                        h,
                        "<td class=\"n\">{}/{}</td><td class=\"n\">{:.1}</td>",
                        t.won, t.episodes, t.score.mean
                    );
                }
                None => h.push_str("<td></td><td></td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn token_table(h: &mut String, summary: &Summary) {
    h.push_str(
        "<table class=\"tokens\"><tr><th>policy</th><th>level</th><th>calls</th><th>mean prompt tokens</th>\
         <th>first step's mean</th><th>largest step mean</th><th>last step</th></tr>\n",
    );
    for p in &summary.policies {
        for s in &p.prompt_tokens {
            let calls: usize = s.points.iter().map(|pt| pt.calls).sum();
            let tokens: f64 = s.points.iter().map(|pt| pt.mean_prompt_tokens * pt.calls as f64).sum();
            let largest = s.points.iter().map(|pt| pt.mean_prompt_tokens).fold(0.0, f64::max);
            let (first, last) = (s.points.first(), s.points.last());
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{calls}</td><td class=\"n\">{:.0}</td><td class=\"n\">{:.0}</td>\
                 <td class=\"n\">{largest:.0}</td><td class=\"n\">{}</td></tr>",
                escape(&p.label),
                escape(&s.level),
                tokens / calls.max(1) as f64,
                first.map_or(0.0, |pt| pt.mean_prompt_tokens),
                last.map_or(0, |pt| pt.step),
            );
        }
    }
    h.push_str(
        "</table>\n<p>Calls with no prompt tokens (a level that did not run: an expert, a rule-based progress \
         module) are left out.</p>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
