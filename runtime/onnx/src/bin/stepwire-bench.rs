//! stepwire-bench: act latency (low role, ~300-token prompts, 20 greedy tokens) against the Python
//! onnxruntime + tokenizers loop (`bench/python_baseline.py`, run as a subprocess in the same
//! run), prefix cache on vs off, and throughput at 1, 4 and 8 concurrent requests.
//!
//!     cargo run --release -p stepwire-onnx --bin stepwire-bench -- --model models/tiny-llama

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};
use stepwire_onnx::prompt::Fields;
use stepwire_onnx::{BatchOptions, GenerateRequest, LoadOptions, OnnxPolicy};
use stepwire_sdk::protocol::Role;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "stepwire ONNX policy benchmark (vs the Python onnxruntime loop)")]
struct Args {
    /// Model directory (stepwire.toml).
    #[arg(long, default_value = "models/tiny-llama")]
    model: PathBuf,
    /// Passes over the prompt set per measurement.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Tokens generated per call (greedy, stop strings off).
    #[arg(long, default_value_t = 20)]
    max_new_tokens: u32,
    /// ONNX Runtime intra-op threads (0 = its default), for both runners.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Python interpreter for the baseline (default: .venv/bin/python, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Repository root (holds bench/python_baseline.py).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Batching worker: most sequences per decode step.
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// Batching worker: wait this many microseconds for more requests when idle.
    #[arg(long, default_value_t = 0)]
    batch_wait_us: u64,
    /// Let ONNX Runtime's idle intra-op threads spin (stepwire side; the Python baseline uses
    /// onnxruntime's defaults, which spin).
    #[arg(long)]
    spinning: bool,
    /// Skip the Python baseline.
    #[arg(long)]
    no_python: bool,
}

const OBJECTS: &[&str] = &[
    "apple",
    "bread",
    "butterknife",
    "cellphone",
    "creditcard",
    "knife",
    "lettuce",
    "mug",
    "peppershaker",
    "potato",
    "spoon",
    "egg",
    "pan",
    "plate",
    "tomato",
    "cup",
];
const PLACES: &[&str] =
    &["cabinet", "countertop", "drawer", "shelf", "stoveburner", "fridge", "sinkbasin", "microwave"];

/// Eight low-role field sets whose prompts are about 300 tokens.
fn low_fields(i: usize) -> [(&'static str, String); 3] {
    let mut obs = "You are in the middle of a room. Looking quickly around you, you see".to_string();
    for k in 0..14 {
        let place = PLACES[(i + k) % PLACES.len()];
        obs.push_str(&format!(" a {place} {},", k % 5 + 1));
    }
    obs.push_str(&format!(" and a toaster 1. On the {} {}, you see", PLACES[i % PLACES.len()], i % 3 + 1));
    for k in 0..6 {
        obs.push_str(&format!(" a {} {},", OBJECTS[(3 * i + k) % OBJECTS.len()], k % 3 + 1));
    }
    obs.push_str(" and a spoon 1.");
    [
        ("subtask", format!("take the {}", OBJECTS[i % OBJECTS.len()])),
        ("progress", format!("I went to {} {} and looked around.", PLACES[i % PLACES.len()], i % 3 + 1)),
        ("observation", obs),
    ]
}

struct Stats {
    median_ms: f64,
    mean_ms: f64,
    p90_ms: f64,
}

fn stats(mut xs: Vec<f64>) -> Stats {
    xs.sort_by(f64::total_cmp);
    let n = xs.len().max(1);
    Stats {
        median_ms: xs.get(n / 2).copied().unwrap_or(0.0),
        mean_ms: xs.iter().sum::<f64>() / n as f64,
        p90_ms: xs.get((n * 9) / 10).copied().unwrap_or(0.0),
    }
}

fn request(prompt: &str, n: u32) -> GenerateRequest {
    GenerateRequest { max_new_tokens: Some(n), stop: Some(vec![]), ..GenerateRequest::new(Role::Low, prompt) }
}

/// Sequential calls: per-call latencies (ms), total new tokens and computed prompt tokens.
fn sequential(policy: &OnnxPolicy, prompts: &[String], args: &Args) -> (Vec<f64>, usize, usize) {
    let cancel = CancellationToken::new();
    for p in prompts {
        policy.generate_blocking(&request(p, args.max_new_tokens), &cancel).expect("warmup");
    }
    let before = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    let out = sequential_timed(policy, prompts, args, &cancel);
    let after = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    let d = |i: usize| (after[i] - before[i]) as f64;
    eprintln!(
        "  model time: prefill {:.3} ms/call, decode {:.3} ms/step",
        d(5) / d(0).max(1.0) / 1e6,
        d(6) / d(2).max(1.0) / 1e6
    );
    out
}

fn sequential_timed(
    policy: &OnnxPolicy,
    prompts: &[String],
    args: &Args,
    cancel: &CancellationToken,
) -> (Vec<f64>, usize, usize) {
    let mut lat = Vec::new();
    let (mut new_tokens, mut computed) = (0, 0);
    for _ in 0..args.iterations {
        for p in prompts {
            let t = Instant::now();
            let g = policy.generate_blocking(&request(p, args.max_new_tokens), cancel).expect("generate");
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            new_tokens += g.token_ids.len();
            computed += g.prompt_tokens - g.cached_tokens;
        }
    }
    (lat, new_tokens, computed)
}

/// `concurrency` threads issuing the same calls at once: calls per second.
fn concurrent(policy: &Arc<OnnxPolicy>, prompts: &[String], args: &Args, concurrency: usize) -> (f64, Duration) {
    let work: Vec<String> = (0..args.iterations).flat_map(|_| prompts.iter().cloned()).collect();
    let n = work.len();
    let chunks: Vec<Vec<String>> =
        (0..concurrency).map(|k| work.iter().skip(k).step_by(concurrency).cloned().collect()).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for chunk in chunks {
            let policy = policy.clone();
            let max_new = args.max_new_tokens;
            s.spawn(move || {
                let cancel = CancellationToken::new();
                for p in chunk {
                    policy.generate_blocking(&request(&p, max_new), &cancel).expect("generate");
                }
            });
        }
    });
    let wall = t.elapsed();
    (n as f64 / wall.as_secs_f64(), wall)
}

fn python_baseline(
    args: &Args,
    root: &std::path::Path,
    prompts_file: &std::path::Path,
    concurrency: usize,
) -> Result<Value, String> {
    let python = args.python.clone().unwrap_or_else(|| {
        let venv = root.join(".venv/bin/python");
        if venv.is_file() {
            venv
        } else {
            PathBuf::from("python3")
        }
    });
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("bench/python_baseline.py"))
        .arg("--model")
        .arg(&args.model)
        .arg("--prompts")
        .arg(prompts_file)
        .arg("--max-new-tokens")
        .arg(args.max_new_tokens.to_string())
        .arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .args(["--no-stop", "--json"]);
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!("python_baseline failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("python_baseline output is not JSON: {e}"))
}

fn main() {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("stepwire-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let root = args.root.clone().unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
    let batch = BatchOptions { max_batch: args.max_batch, max_wait: Duration::from_micros(args.batch_wait_us) };
    let load = |prefix_cache, max_batch| {
        OnnxPolicy::load(
            &args.model,
            LoadOptions {
                intra_threads: args.threads,
                spinning: args.spinning,
                prefix_cache,
                batch: BatchOptions { max_batch, ..batch },
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    };
    let cached = load(true, args.max_batch)?;
    let uncached = load(false, 1)?;

    let fields: Vec<[(&str, String); 3]> = (0..8).map(low_fields).collect();
    let prompts: Vec<String> = fields
        .iter()
        .map(|f| cached.render(Role::Low, &f.iter().cloned().collect::<Fields<'_>>()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let tok = cached.tokenizer(Role::Low).map_err(|e| e.to_string())?;
    let lens: Vec<usize> = prompts.iter().map(|p| tok.encode_prompt(p).map(|v| v.len()).unwrap_or(0)).collect();
    let file = tempfile_path();
    {
        let mut f = std::fs::File::create(&file).map_err(|e| e.to_string())?;
        for (i, fl) in fields.iter().enumerate() {
            let obj: serde_json::Map<String, Value> = fl.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            writeln!(f, "{}", json!({"name": format!("low{i}"), "role": "low", "fields": obj}))
                .map_err(|e| e.to_string())?;
        }
    }

    println!(
        "model {}, {} low prompts of {}..{} tokens, {} greedy tokens, {} passes, ORT threads {}",
        args.model.display(),
        prompts.len(),
        lens.iter().min().unwrap_or(&0),
        lens.iter().max().unwrap_or(&0),
        args.max_new_tokens,
        args.iterations,
        args.threads
    );

    // 1. Latency, sequential calls.
    let (lat_on, tok_on, comp_on) = sequential(&cached, &prompts, &args);
    let (lat_off, tok_off, comp_off) = sequential(&uncached, &prompts, &args);
    let calls = (prompts.len() * args.iterations) as f64;
    let (s_on, s_off) = (stats(lat_on), stats(lat_off));
    println!("\n## act latency per call (ms)\n");
    println!("| runner | median | mean | p90 | computed prompt tokens/call | new tokens/call |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| stepwire, prefix cache on | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
        s_on.median_ms,
        s_on.mean_ms,
        s_on.p90_ms,
        comp_on as f64 / calls,
        tok_on as f64 / calls
    );
    println!(
        "| stepwire, prefix cache off | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
        s_off.median_ms,
        s_off.mean_ms,
        s_off.p90_ms,
        comp_off as f64 / calls,
        tok_off as f64 / calls
    );
    let mut py_seq = None;
    if !args.no_python {
        match python_baseline(&args, &root, &file, 1) {
            Ok(v) => {
                let l = &v["latency_ms"];
                println!(
                    "| python onnxruntime loop | {} | {} | {} | {} | {:.1} |",
                    l["median"],
                    l["mean"],
                    l["p90"],
                    v["prompt_tokens_mean"],
                    v["new_tokens_total"].as_f64().unwrap_or(0.0) / v["calls"].as_f64().unwrap_or(1.0)
                );
                py_seq = Some(v);
            }
            Err(e) => println!("(python baseline unavailable: {e})"),
        }
    }
    println!(
        "\nprefix cache: {:.2}x lower median latency, {:.1}x fewer computed prompt tokens",
        s_off.median_ms / s_on.median_ms,
        comp_off as f64 / comp_on.max(1) as f64
    );
    if let Some(v) = &py_seq {
        let py = v["latency_ms"]["median"].as_f64().unwrap_or(f64::NAN);
        println!(
            "vs python (median): {:.2}x with the prefix cache, {:.2}x without",
            py / s_on.median_ms,
            py / s_off.median_ms
        );
    }

    // 2. Throughput with concurrent requests.
    println!("\n## throughput (calls/s, {} calls per run)\n", prompts.len() * args.iterations);
    println!("| concurrency | stepwire (batched) | vs sequential | decode rows/step (mean) | prefill ms/call | decode ms/step |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut base = 0.0;
    for c in [1usize, 4, 8] {
        let before = cached.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
        let (cps, _) = concurrent(&cached, &prompts, &args, c);
        let after = cached.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
        let d = |i: usize| (after[i] - before[i]) as f64;
        let rows_per_step = d(3) / d(2).max(1.0);
        let prefill_ms = d(5) / d(0).max(1.0) / 1e6;
        let step_ms = d(6) / d(2).max(1.0) / 1e6;
        if c == 1 {
            base = cps;
        }
        println!("| {c} | {cps:.1} | {:.2}x | {rows_per_step:.2} | {prefill_ms:.3} | {step_ms:.3} |", cps / base);
    }
    if !args.no_python {
        if let (Some(v1), Ok(v8)) = (&py_seq, python_baseline(&args, &root, &file, 8)) {
            println!(
                "\npython loop calls/s: {} sequential, {} at concurrency 8 (threads sharing one session)",
                v1["calls_per_s"], v8["calls_per_s"]
            );
        }
    }
    let _ = std::fs::remove_file(&file);
    Ok(())
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!("stepwire-bench-{}.jsonl", std::process::id()))
}
