//! stepwire-bench: act latency (low role, ~300-token prompts, 20 greedy tokens) against the Python
//! onnxruntime + tokenizers loop (`bench/python_baseline.py`, run as a subprocess in the same
//! run), prefix cache on vs off, throughput at 1, 4 and 8 concurrent requests, and whole agent
//! steps (an act constrained to ALFWorld-like admissible actions, then a progress update) against
//! the same loop, with both sides' output tokens compared.
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
    /// Latency comparisons alternate stepwire and Python this many times; the ratio reported is
    /// the median of the rounds' ratios (the machine's load moves between measurements).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
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

/// ALFWorld-like admissible actions for case `i`: every place the observation names, the objects
/// on the inspected receptacle, and the usual verbs (about 30 actions).
fn admissible(i: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |a: String| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for k in 0..14 {
        push(format!("go to {} {}", PLACES[(i + k) % PLACES.len()], k % 5 + 1));
    }
    let here = format!("{} {}", PLACES[i % PLACES.len()], i % 3 + 1);
    for k in 0..6 {
        push(format!("take {} {} from {here}", OBJECTS[(3 * i + k) % OBJECTS.len()], k % 3 + 1));
    }
    for verb in ["open", "close", "examine"] {
        push(format!("{verb} {here}"));
    }
    push("inventory".into());
    push("look".into());
    out
}

/// The progress update that follows case `i`'s act.
fn progress_fields(i: usize) -> [(&'static str, String); 4] {
    let obj = OBJECTS[i % OBJECTS.len()];
    let here = format!("{} {}", PLACES[i % PLACES.len()], i % 3 + 1);
    [
        ("subtask", format!("take the {obj}")),
        ("progress", format!("I went to {here} and looked around.")),
        ("action", format!("take {obj} 1 from {here}")),
        ("observation", format!("You pick up the {obj} 1 from the {here}.")),
    ]
}

/// One agent-step case: the low prompt with its actions, and the progress prompt.
struct StepCase {
    name: String,
    low: String,
    actions: Vec<String>,
    progress: String,
}

/// Act and step latencies (ms), and each case's (act, progress) output ids.
type StepTimes = (Vec<f64>, Vec<f64>, Vec<(Vec<u32>, Vec<u32>)>);

/// Times each case's constrained act and act + progress; returns latencies (ms) and the
/// output ids of the last pass per case.
fn agent_steps(policy: &OnnxPolicy, cases: &[StepCase], args: &Args) -> StepTimes {
    let cancel = CancellationToken::new();
    let (mut act_ms, mut step_ms, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for pass in 0..=args.iterations {
        outputs.clear();
        for c in cases {
            let t0 = Instant::now();
            let act = GenerateRequest {
                admissible_actions: Some(c.actions.clone()),
                ..GenerateRequest::new(Role::Low, c.low.clone())
            };
            let a = policy.generate_blocking(&act, &cancel).expect("act");
            let t1 = Instant::now();
            let prog = GenerateRequest {
                max_new_tokens: Some(args.max_new_tokens),
                stop: Some(vec![]),
                ..GenerateRequest::new(Role::Progress, c.progress.clone())
            };
            let p = policy.generate_blocking(&prog, &cancel).expect("progress");
            let t2 = Instant::now();
            if pass > 0 {
                act_ms.push((t1 - t0).as_secs_f64() * 1000.0);
                step_ms.push((t2 - t0).as_secs_f64() * 1000.0);
            }
            outputs.push((a.token_ids, p.token_ids));
        }
    }
    (act_ms, step_ms, outputs)
}

/// Output tokens and model passes (prefill + decode) of one act per case.
fn act_passes(policy: &OnnxPolicy, cases: &[StepCase]) -> (usize, u64) {
    let cancel = CancellationToken::new();
    let before = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    let mut tokens = 0;
    for c in cases {
        let act = GenerateRequest {
            admissible_actions: Some(c.actions.clone()),
            ..GenerateRequest::new(Role::Low, c.low.clone())
        };
        tokens += policy.generate_blocking(&act, &cancel).expect("act").token_ids.len();
    }
    let after = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    (tokens, (after[0] - before[0]) + (after[2] - before[2]))
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ids_of(x: &Value) -> Vec<u32> {
    x.as_array().map(|a| a.iter().filter_map(|t| t.as_u64()).map(|t| t as u32).collect()).unwrap_or_default()
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

/// `bench/python_baseline.py` on the same model, threads and iterations.
fn python_command(args: &Args, root: &std::path::Path) -> Command {
    let python = args.python.clone().unwrap_or_else(|| {
        let venv = root.join(".venv/bin/python");
        if venv.is_file() {
            venv
        } else {
            PathBuf::from("python3")
        }
    });
    let mut cmd = Command::new(python);
    cmd.arg(root.join("bench/python_baseline.py"))
        .arg("--model")
        .arg(&args.model)
        .arg("--max-new-tokens")
        .arg(args.max_new_tokens.to_string())
        .arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--threads")
        .arg(args.threads.to_string());
    cmd
}

fn run_python(mut cmd: Command) -> Result<Value, String> {
    let out = cmd.output().map_err(|e| format!("cannot run the Python baseline: {e}"))?;
    if !out.status.success() {
        return Err(format!("python_baseline failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("python_baseline output is not JSON: {e}"))
}

fn python_baseline(
    args: &Args,
    root: &std::path::Path,
    prompts_file: &std::path::Path,
    concurrency: usize,
) -> Result<Value, String> {
    let mut cmd = python_command(args, root);
    cmd.arg("--prompts")
        .arg(prompts_file)
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .args(["--no-stop", "--json"]);
    run_python(cmd)
}

fn python_steps(args: &Args, root: &std::path::Path, steps_file: &std::path::Path) -> Result<Value, String> {
    let mut cmd = python_command(args, root);
    cmd.arg("--steps").arg(steps_file);
    run_python(cmd)
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

    // 1. Latency, sequential calls, alternating with the Python loop.
    let calls = (prompts.len() * args.iterations) as f64;
    let (mut lat_on, mut lat_off) = (Vec::new(), Vec::new());
    let (mut tok_on, mut comp_on, mut tok_off, mut comp_off) = (0, 0, 0, 0);
    let mut rounds: Vec<(f64, f64, f64)> = Vec::new(); // medians: on, off, python
    let mut py_seq = None;
    for _ in 0..args.rounds.max(1) {
        let (on, t_on, c_on) = sequential(&cached, &prompts, &args);
        let (off, t_off, c_off) = sequential(&uncached, &prompts, &args);
        (tok_on, comp_on, tok_off, comp_off) = (t_on, c_on, t_off, c_off);
        let (m_on, m_off) = (stats(on.clone()).median_ms, stats(off.clone()).median_ms);
        lat_on.extend(on);
        lat_off.extend(off);
        let py = if args.no_python {
            f64::NAN
        } else {
            match python_baseline(&args, &root, &file, 1) {
                Ok(v) => {
                    let m = v["latency_ms"]["median"].as_f64().unwrap_or(f64::NAN);
                    py_seq = Some(v);
                    m
                }
                Err(e) => {
                    println!("(python baseline unavailable: {e})");
                    f64::NAN
                }
            }
        };
        rounds.push((m_on, m_off, py));
    }
    let (s_on, s_off) = (stats(lat_on), stats(lat_off));
    println!("\n## act latency per call (ms), {} rounds\n", rounds.len());
    println!("| runner | median | mean | p90 | computed prompt tokens/call | new tokens/call |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let per = calls;
    println!(
        "| stepwire, prefix cache on | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
        s_on.median_ms,
        s_on.mean_ms,
        s_on.p90_ms,
        comp_on as f64 / per,
        tok_on as f64 / per
    );
    println!(
        "| stepwire, prefix cache off | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
        s_off.median_ms,
        s_off.mean_ms,
        s_off.p90_ms,
        comp_off as f64 / per,
        tok_off as f64 / per
    );
    if let Some(v) = &py_seq {
        let l = &v["latency_ms"];
        println!(
            "| python onnxruntime loop (last round) | {} | {} | {} | {} | {:.1} |",
            l["median"],
            l["mean"],
            l["p90"],
            v["prompt_tokens_mean"],
            v["new_tokens_total"].as_f64().unwrap_or(0.0) / v["calls"].as_f64().unwrap_or(1.0)
        );
    }
    println!(
        "\nprefix cache: {:.2}x lower median latency, {:.1}x fewer computed prompt tokens",
        s_off.median_ms / s_on.median_ms,
        comp_off as f64 / comp_on.max(1) as f64
    );
    if py_seq.is_some() {
        let on: Vec<f64> = rounds.iter().map(|r| r.2 / r.0).collect();
        let off: Vec<f64> = rounds.iter().map(|r| r.2 / r.1).collect();
        println!(
            "vs python, median of the rounds' ratios: {:.2}x with the prefix cache, {:.2}x without (rounds: {})",
            median(&on),
            median(&off),
            on.iter().map(|r| format!("{r:.2}x")).collect::<Vec<_>>().join(", ")
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

    // 3. Whole agent steps: a constrained act, then a progress update.
    let cases: Vec<StepCase> = (0..8)
        .map(|i| {
            let low = cached.render(Role::Low, &low_fields(i).into_iter().collect::<Fields<'_>>());
            let progress = cached.render(Role::Progress, &progress_fields(i).into_iter().collect::<Fields<'_>>());
            Ok(StepCase { name: format!("step{i}"), low: low?, actions: admissible(i), progress: progress? })
        })
        .collect::<Result<_, stepwire_onnx::OnnxError>>()
        .map_err(|e| e.to_string())?;
    let steps_file = std::env::temp_dir().join(format!("stepwire-bench-steps-{}.jsonl", std::process::id()));
    {
        let mut f = std::fs::File::create(&steps_file).map_err(|e| e.to_string())?;
        for i in 0..8 {
            let obj = |fields: &[(&str, String)]| -> serde_json::Map<String, Value> {
                fields.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
            };
            let line = json!({
                "name": format!("step{i}"),
                "low": {"fields": obj(&low_fields(i)), "actions": admissible(i)},
                "progress": {"fields": obj(&progress_fields(i))},
            });
            writeln!(f, "{line}").map_err(|e| e.to_string())?;
        }
    }
    let (mut act_on, mut step_on, mut act_off, mut step_off) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ratios: Vec<(f64, f64)> = Vec::new();
    let mut outs = Vec::new();
    let mut py_steps: Option<Value> = None;
    for _ in 0..args.rounds.max(1) {
        let (a, st, o) = agent_steps(&cached, &cases, &args);
        let (a_off, st_off, _) = agent_steps(&uncached, &cases, &args);
        let (ma, ms) = (stats(a.clone()).median_ms, stats(st.clone()).median_ms);
        act_on.extend(a);
        step_on.extend(st);
        act_off.extend(a_off);
        step_off.extend(st_off);
        outs = o;
        if !args.no_python {
            match python_steps(&args, &root, &steps_file) {
                Ok(v) => {
                    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
                    ratios.push((f(&v["act_ms"]["median"]) / ma, f(&v["step_ms"]["median"]) / ms));
                    py_steps = Some(v);
                }
                Err(e) => println!("(python baseline unavailable: {e})"),
            }
        }
    }
    let (act_tokens, act_passes) = act_passes(&cached, &cases);
    println!(
        "\n## agent step: act constrained to {}..{} admissible actions, then progress ({} greedy tokens), {} rounds\n",
        cases.iter().map(|c| c.actions.len()).min().unwrap_or(0),
        cases.iter().map(|c| c.actions.len()).max().unwrap_or(0),
        args.max_new_tokens,
        args.rounds.max(1)
    );
    println!("| runner | act median | act p90 | step (act + progress) median | step p90 |");
    println!("| --- | --- | --- | --- | --- |");
    let (a_on, s_on, a_off, s_off) = (stats(act_on), stats(step_on), stats(act_off), stats(step_off));
    println!(
        "| stepwire, prefix cache on | {:.3} | {:.3} | {:.3} | {:.3} |",
        a_on.median_ms, a_on.p90_ms, s_on.median_ms, s_on.p90_ms
    );
    println!(
        "| stepwire, prefix cache off | {:.3} | {:.3} | {:.3} | {:.3} |",
        a_off.median_ms, a_off.p90_ms, s_off.median_ms, s_off.p90_ms
    );
    if let Some(v) = &py_steps {
        let (pa, ps) = (&v["act_ms"], &v["step_ms"]);
        println!(
            "| python onnxruntime loop (last round) | {} | {} | {} | {} |",
            pa["median"], pa["p90"], ps["median"], ps["p90"]
        );
        let same = cases.iter().zip(&outs).all(|(c, (a, p))| {
            let o = &v["outputs"][&c.name];
            ids_of(&o["act"]) == *a && ids_of(&o["progress"]) == *p
        });
        let act: Vec<f64> = ratios.iter().map(|r| r.0).collect();
        let step: Vec<f64> = ratios.iter().map(|r| r.1).collect();
        println!(
            "\nvs python, median of the rounds' ratios: act {:.2}x, whole step {:.2}x (rounds: {}); output tokens \
             identical: {}",
            median(&act),
            median(&step),
            ratios.iter().map(|r| format!("{:.2}x/{:.2}x", r.0, r.1)).collect::<Vec<_>>().join(", "),
            if same { "yes" } else { "NO" }
        );
    }
    println!(
        "act: {:.1} output tokens per call in {:.1} model passes (prefill included; forced tokens go in one pass)",
        act_tokens as f64 / cases.len() as f64,
        act_passes as f64 / cases.len() as f64
    );
    let _ = std::fs::remove_file(&steps_file);
    Ok(())
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!("stepwire-bench-{}.jsonl", std::process::id()))
}
