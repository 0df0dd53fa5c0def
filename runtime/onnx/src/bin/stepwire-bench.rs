//! stepwire-bench: act latency (low role, ~300-token prompts, 20 greedy tokens) against the Python
//! onnxruntime + tokenizers loop (`bench/python_baseline.py`), prefix cache on vs off, throughput
//! at 1, 4 and 8 concurrent requests, and whole agent steps (an act constrained to ALFWorld-like
//! admissible actions, then a progress update) against the same loop.
//!
//! The latency comparisons alternate call by call: the Python loop runs as a long-lived process
//! that answers one call per request, so both sides meet the same machine load (this machine is
//! shared), and both sides' output tokens are compared.
//!
//!     cargo run --release -p stepwire-onnx --bin stepwire-bench -- --model models/tiny-llama

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};
use stepwire_onnx::bench_cases::{admissible, low_fields, progress_fields};
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
    /// Python interpreter for the baseline (default: $STEPWIRE_PYTHON, else .venv/bin/python, else python3).
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

/// One agent-step case: the low prompt with its actions, and the progress prompt.
struct StepCase {
    name: String,
    low: String,
    actions: Vec<String>,
    progress: String,
}

impl StepCase {
    /// The act: the low role constrained to the case's admissible actions.
    fn act_request(&self) -> GenerateRequest {
        GenerateRequest {
            admissible_actions: Some(self.actions.clone()),
            ..GenerateRequest::new(Role::Low, self.low.clone())
        }
    }
}

/// Output tokens and model passes (prefill + decode) of one act per case.
fn act_passes(policy: &OnnxPolicy, cases: &[StepCase]) -> (usize, u64) {
    let cancel = CancellationToken::new();
    let before = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    let mut tokens = 0;
    for c in cases {
        tokens += policy.generate_blocking(&c.act_request(), &cancel).expect("act").token_ids.len();
    }
    let after = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    (tokens, (after[0] - before[0]) + (after[2] - before[2]))
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
    let python = args.python.clone().unwrap_or_else(|| stepwire_sdk::client::python_interpreter(Some(root)).into());
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

/// The Python loop as a long-lived process (`python_baseline.py --serve`) answering one call per
/// request line with its own timing, so its calls can alternate with stepwire's.
struct PyLoop {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl PyLoop {
    fn start(
        args: &Args,
        root: &std::path::Path,
        prompts: &std::path::Path,
        steps: &std::path::Path,
    ) -> Result<Self, String> {
        let mut cmd = python_command(args, root);
        cmd.arg("--serve").arg("--prompts").arg(prompts).arg("--steps").arg(steps);
        cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot run the Python baseline: {e}"))?;
        let input = child.stdin.take().ok_or("no stdin")?;
        let output = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(PyLoop { child, input, output })
    }

    fn call(&mut self, req: Value) -> Result<Value, String> {
        use std::io::BufRead;
        writeln!(self.input, "{req}").map_err(|e| format!("python_baseline --serve: {e}"))?;
        let mut line = String::new();
        self.output.read_line(&mut line).map_err(|e| format!("python_baseline --serve: {e}"))?;
        serde_json::from_str(&line).map_err(|_| "python_baseline --serve stopped (see its stderr)".to_string())
    }
}

impl Drop for PyLoop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Milliseconds of a Python timing field (seconds).
fn py_ms(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or(f64::NAN) * 1000.0
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
    let batch = BatchOptions {
        max_batch: args.max_batch,
        max_wait: Duration::from_micros(args.batch_wait_us),
        overlap_prefill: true,
    };
    let load = |prefix_cache, max_batch, overlap_prefill| {
        OnnxPolicy::load(
            &args.model,
            LoadOptions {
                intra_threads: args.threads,
                spinning: args.spinning,
                prefix_cache,
                batch: BatchOptions { max_batch, overlap_prefill, ..batch },
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    };
    let cached = load(true, args.max_batch, true)?;
    let uncached = load(false, 1, true)?;

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

    // The step cases and their file (the Python loop reads it too).
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
    let mut py = if args.no_python { None } else { Some(PyLoop::start(&args, &root, &file, &steps_file)?) };
    let cancel = CancellationToken::new();

    // 1. Act latency, one call at a time: stepwire with and without the prefix cache and the
    // Python loop, call after call.
    let (mut on, mut off, mut pyl) = (Vec::new(), Vec::new(), Vec::new());
    let (mut comp_on, mut comp_off, mut new_tokens) = (0usize, 0usize, 0usize);
    let mut same = true;
    let before = cached.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    for pass in 0..=args.iterations {
        for (i, p) in prompts.iter().enumerate() {
            let t = Instant::now();
            let g = cached.generate_blocking(&request(p, args.max_new_tokens), &cancel).map_err(|e| e.to_string())?;
            let a = t.elapsed().as_secs_f64() * 1000.0;
            let t = Instant::now();
            let g_off =
                uncached.generate_blocking(&request(p, args.max_new_tokens), &cancel).map_err(|e| e.to_string())?;
            let b = t.elapsed().as_secs_f64() * 1000.0;
            let r = py.as_mut().map(|py| py.call(json!({"act": format!("low{i}")}))).transpose()?;
            if pass == 0 {
                continue; // warm-up
            }
            on.push(a);
            off.push(b);
            comp_on += g.prompt_tokens - g.cached_tokens;
            comp_off += g_off.prompt_tokens - g_off.cached_tokens;
            new_tokens += g.token_ids.len();
            if let Some(r) = r {
                pyl.push(py_ms(&r, "s"));
                same &= ids_of(&r["ids"]) == g.token_ids;
            }
        }
    }
    let after = cached.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
    let d = |i: usize| (after[i] - before[i]) as f64;
    let calls = on.len() as f64;
    let (s_on, s_off, s_py) = (stats(on), stats(off), stats(pyl));
    println!("\n## act latency per call (ms), stepwire and Python alternating call by call\n");
    println!(
        "stepwire model time: prefill {:.3} ms/call, decode {:.3} ms/step",
        d(5) / d(0).max(1.0) / 1e6,
        d(6) / d(2).max(1.0) / 1e6
    );
    println!("\n| runner | median | mean | p90 | computed prompt tokens/call | new tokens/call |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, s: &Stats, computed: f64| {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {computed:.1} | {:.1} |",
            s.median_ms,
            s.mean_ms,
            s.p90_ms,
            new_tokens as f64 / calls
        )
    };
    row("stepwire, prefix cache on", &s_on, comp_on as f64 / calls);
    row("stepwire, prefix cache off", &s_off, comp_off as f64 / calls);
    if py.is_some() {
        row("python onnxruntime loop", &s_py, lens.iter().sum::<usize>() as f64 / lens.len().max(1) as f64);
    }
    println!(
        "\nprefix cache: {:.2}x lower median latency, {:.1}x fewer computed prompt tokens",
        s_off.median_ms / s_on.median_ms,
        comp_off as f64 / comp_on.max(1) as f64
    );
    if py.is_some() {
        println!(
            "vs python (medians): {:.2}x with the prefix cache, {:.2}x without; output tokens identical: {}",
            s_py.median_ms / s_on.median_ms,
            s_py.median_ms / s_off.median_ms,
            if same { "yes" } else { "NO" }
        );
    }

    // 2. Throughput with concurrent requests, in rounds of 1, 4 and 8 so that every level meets
    // the same machine load; ratios are taken within a round, then the median over rounds.
    let one_session = load(true, args.max_batch, false)?;
    const ROUNDS: usize = 3;
    const LEVELS: [usize; 3] = [1, 4, 8];
    // Per level: calls/s of each round (two sessions, one session), and the engine counters.
    let mut runs: Vec<[Vec<f64>; 2]> = LEVELS.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    let mut counters = [[0f64; 8]; LEVELS.len()];
    for _ in 0..ROUNDS {
        for (li, &c) in LEVELS.iter().enumerate() {
            for (pi, policy) in [&cached, &one_session].into_iter().enumerate() {
                let before = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
                let (cps, _) = concurrent(policy, &prompts, &args, c);
                runs[li][pi].push(cps);
                if pi == 0 {
                    let after = policy.stats(Role::Low).map(|s| s.snapshot()).unwrap_or_default();
                    for (k, total) in counters[li].iter_mut().enumerate() {
                        *total += (after[k] - before[k]) as f64;
                    }
                }
            }
        }
    }
    println!(
        "\n## throughput (calls/s, {} calls per run, median of {ROUNDS} rounds of 1, 4, 8)\n",
        prompts.len() * args.iterations
    );
    println!(
        "| concurrency | stepwire | vs sequential | one session, turns | vs sequential | decode rows/step (mean) | prefill ms/call | decode ms/step |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (li, &c) in LEVELS.iter().enumerate() {
        let ratio = |pi: usize| {
            let per_round: Vec<f64> = runs[li][pi].iter().zip(&runs[0][pi]).map(|(x, base)| x / base).collect();
            stats(per_round).median_ms
        };
        let d = &counters[li];
        println!(
            "| {c} | {:.1} | {:.2}x | {:.1} | {:.2}x | {:.2} | {:.3} | {:.3} |",
            stats(runs[li][0].clone()).median_ms,
            ratio(0),
            stats(runs[li][1].clone()).median_ms,
            ratio(1),
            d[3] / d[2].max(1.0),
            d[5] / d[0].max(1.0) / 1e6,
            d[6] / d[2].max(1.0) / 1e6
        );
    }
    drop(one_session);
    if !args.no_python {
        if let (Ok(v1), Ok(v8)) = (python_baseline(&args, &root, &file, 1), python_baseline(&args, &root, &file, 8)) {
            println!(
                "\npython loop calls/s: {} sequential, {} at concurrency 8 (threads sharing one session)",
                v1["calls_per_s"], v8["calls_per_s"]
            );
        }
    }
    let _ = std::fs::remove_file(&file);

    // 3. Whole agent steps: a constrained act, then a progress update, alternating likewise.
    let step = |policy: &OnnxPolicy, c: &StepCase| -> Result<(f64, f64, Vec<u32>, Vec<u32>), String> {
        let t0 = Instant::now();
        let a = policy.generate_blocking(&c.act_request(), &cancel).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let prog = GenerateRequest {
            max_new_tokens: Some(args.max_new_tokens),
            stop: Some(vec![]),
            ..GenerateRequest::new(Role::Progress, c.progress.clone())
        };
        let p = policy.generate_blocking(&prog, &cancel).map_err(|e| e.to_string())?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Ok((ms(t1 - t0), ms(t0.elapsed()), a.token_ids, p.token_ids))
    };
    let (mut act_on, mut step_on, mut act_off, mut step_off, mut act_py, mut step_py) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut same = true;
    for pass in 0..=args.iterations {
        for c in &cases {
            let (a, st, act_ids, prog_ids) = step(&cached, c)?;
            let (a_off, st_off, _, _) = step(&uncached, c)?;
            let r = py.as_mut().map(|py| py.call(json!({"step": c.name}))).transpose()?;
            if pass == 0 {
                continue;
            }
            act_on.push(a);
            step_on.push(st);
            act_off.push(a_off);
            step_off.push(st_off);
            if let Some(r) = r {
                act_py.push(py_ms(&r, "act_s"));
                step_py.push(py_ms(&r, "step_s"));
                same &= ids_of(&r["act"]) == act_ids && ids_of(&r["progress"]) == prog_ids;
            }
        }
    }
    let (act_tokens, act_passes) = act_passes(&cached, &cases);
    println!(
        "\n## agent step: act constrained to {}..{} admissible actions, then progress ({} greedy tokens)\n",
        cases.iter().map(|c| c.actions.len()).min().unwrap_or(0),
        cases.iter().map(|c| c.actions.len()).max().unwrap_or(0),
        args.max_new_tokens
    );
    println!("| runner | act median | act p90 | step (act + progress) median | step p90 |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |name: &str, a: &Stats, s: &Stats| {
        println!("| {name} | {:.3} | {:.3} | {:.3} | {:.3} |", a.median_ms, a.p90_ms, s.median_ms, s.p90_ms)
    };
    let (a_on, s_on) = (stats(act_on), stats(step_on));
    row("stepwire, prefix cache on", &a_on, &s_on);
    row("stepwire, prefix cache off", &stats(act_off), &stats(step_off));
    if py.is_some() {
        let (a_py, s_py) = (stats(act_py), stats(step_py));
        row("python onnxruntime loop", &a_py, &s_py);
        println!(
            "\nvs python (medians): act {:.2}x, whole step {:.2}x; output tokens identical: {}",
            a_py.median_ms / a_on.median_ms,
            s_py.median_ms / s_on.median_ms,
            if same { "yes" } else { "NO" }
        );
    }
    println!(
        "act: {:.1} output tokens per call in {:.1} model passes (prefill included; forced tokens go in one pass)",
        act_tokens as f64 / cases.len() as f64,
        act_passes as f64 / cases.len() as f64
    );
    drop(py);
    let _ = std::fs::remove_file(&steps_file);
    Ok(())
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!("stepwire-bench-{}.jsonl", std::process::id()))
}
