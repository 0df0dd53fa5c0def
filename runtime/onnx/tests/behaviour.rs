//! Constrained decoding, sampling, cancellation and the policy traits on the tiny fixtures.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixtures, init_logs, models_dir};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use stepwire_onnx::decoder::{Decoder, SessionOptions};
use stepwire_onnx::manifest::{role_fields, Manifest};
use stepwire_onnx::reference::greedy_constrained;
use stepwire_onnx::tokenize::TextTokenizer;
use stepwire_onnx::trie::ActionTrie;
use stepwire_onnx::{Finish, GenerateRequest, LoadOptions, OnnxError, OnnxPolicy};
use stepwire_sdk::policy::{HighLevelPolicy, LowLevelPolicy, PolicyError, ProgressPolicy};
use stepwire_sdk::protocol::{ActParams, Observation, PlanParams, ProgressUpdateParams, Role, Sampling};
use tokio_util::sync::CancellationToken;

fn llama() -> Arc<OnnxPolicy> {
    init_logs();
    OnnxPolicy::load(models_dir().join("tiny-llama"), LoadOptions::default()).unwrap()
}

/// Allowed to generate 600 tokens (over the default limit): long enough to cancel midway.
fn llama_long() -> Arc<OnnxPolicy> {
    init_logs();
    let limits = stepwire_onnx::Limits { max_new_tokens: 600, ..Default::default() };
    OnnxPolicy::load(models_dir().join("tiny-llama"), LoadOptions { limits, ..LoadOptions::default() }).unwrap()
}

fn act_params(obs: &str, actions: Option<Vec<String>>, sampling: Option<Sampling>) -> ActParams {
    ActParams {
        subtask: "take the apple".into(),
        progress: "I went to countertop 2 and saw apple 1.".into(),
        observation: Observation::text(obs),
        admissible_actions: actions,
        sampling,
        meta: Default::default(),
    }
}

const VERBS: &[&str] = &["go to", "open", "close", "take", "put", "look", "heat", "examine"];
const OBJECTS: &[&str] = &["fridge", "apple", "countertop", "mug", "drawer", "cabinet", "egg"];

fn random_actions(rng: &mut StdRng) -> Vec<String> {
    let n = rng.random_range(1..12);
    let mut out = Vec::new();
    for _ in 0..n {
        let verb = VERBS.choose(rng).unwrap();
        let obj = OBJECTS.choose(rng).unwrap();
        let base = format!("{verb} {obj}");
        // Actions that are prefixes of each other.
        match rng.random_range(0..4) {
            0 => {
                out.push(base.clone());
                out.push(format!("{base} {}", rng.random_range(1..4)));
            }
            1 => out.push(format!("{base} {}", rng.random_range(1..12))),
            2 => out.push(verb.split(' ').next().unwrap().to_string()),
            _ => out.push(base),
        }
    }
    out.shuffle_in_place(rng);
    out
}

trait ShuffleExt {
    fn shuffle_in_place(&mut self, rng: &mut StdRng);
}
impl ShuffleExt for Vec<String> {
    fn shuffle_in_place(&mut self, rng: &mut StdRng) {
        use rand::seq::SliceRandom;
        self.shuffle(rng);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constrained_act_always_returns_an_admissible_action() {
    let policy = llama();
    let mut rng = StdRng::seed_from_u64(42);
    let mut flags = [0usize; 2];
    for i in 0..60 {
        let actions = random_actions(&mut rng);
        let sampling = (i % 2 == 1).then(|| Sampling {
            temperature: Some(rng.random_range(0.5..2.0)),
            top_p: Some(0.95),
            seed: Some(i),
            max_tokens: None,
        });
        let obs = format!("On the countertop {i}, you see a apple 1, a bread 1, and a mug 2.");
        let p = act_params(&obs, Some(actions.clone()), sampling);
        let r = policy.act(&p, &CancellationToken::new()).await.unwrap();
        assert!(actions.contains(&r.action), "{:?} not in {actions:?}", r.action);
        flags[r.subtask_done as usize] += 1;
        assert!(r.usage.low.completion_tokens > 0);
        assert!(r.usage.low.cached_tokens > 0);
    }
    eprintln!("done flags: {} continue, {} done", flags[0], flags[1]);
}

#[test]
fn constrained_generation_reports_the_action_and_flag() {
    let policy = llama();
    let actions: Vec<String> = ["go to fridge", "go to fridge 1", "go to fridge 10", "look"].map(String::from).to_vec();
    let prompt = policy.render(Role::Low, &[("subtask", "cool the apple".to_string())].into_iter().collect()).unwrap();
    let req = GenerateRequest { admissible_actions: Some(actions.clone()), ..GenerateRequest::new(Role::Low, prompt) };
    let g = policy.generate_blocking(&req, &CancellationToken::new()).unwrap();
    let Finish::Action { index, done } = g.finish else { panic!("finish {:?}", g.finish) };
    assert!(index < actions.len());
    let sep = &policy.manifest().low.separator;
    let flag = if done { "done" } else { "continue" };
    // The text is the action with its flag, or the action alone when the model chose </s>.
    assert!(
        g.text == format!(" {}{sep}{flag}", actions[index]) || g.text == format!(" {}", actions[index]),
        "text {:?}",
        g.text
    );
}

/// Jump-forward (forced runs fed in one pass) must choose exactly what the one-token-per-pass
/// loop chooses, and must actually save passes.
#[test]
fn jump_forward_matches_the_token_by_token_constrained_loop() {
    init_logs();
    for dir in fixtures() {
        let policy = OnnxPolicy::load(&dir, LoadOptions::default()).unwrap();
        let m = Manifest::load(&dir).unwrap();
        let tok = TextTokenizer::load(&m.models[0]).unwrap();
        let mut dec = Decoder::load(&m.models[0].onnx, SessionOptions::default()).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let before = policy.stats(Role::Low).unwrap().snapshot();
        let mut out_tokens = 0;
        for i in 0..30 {
            let actions = random_actions(&mut rng);
            let fields = [
                ("subtask", format!("take the {}", OBJECTS[i % OBJECTS.len()])),
                ("progress", format!("I looked at drawer {i}.")),
                ("observation", format!("On the countertop {i}, you see a apple 1 and a mug 2.")),
            ];
            let prompt = policy.render(Role::Low, &fields.into_iter().collect()).unwrap();
            let req = GenerateRequest {
                admissible_actions: Some(actions.clone()),
                ..GenerateRequest::new(Role::Low, prompt.clone())
            };
            let g = policy.generate_blocking(&req, &CancellationToken::new()).unwrap();
            let lead = if prompt.ends_with(char::is_whitespace) { "" } else { " " };
            let trie = ActionTrie::build(&tok, &actions, &m.low, lead).unwrap();
            let want = greedy_constrained(&mut dec, &tok.encode_prompt(&prompt).unwrap(), &trie, tok.eos).unwrap();
            assert_eq!(g.token_ids, want, "{} case {i}: {actions:?}", dir.display());
            out_tokens += g.token_ids.len() as u64;
        }
        let after = policy.stats(Role::Low).unwrap().snapshot();
        let (passes, fed) = (after[2] - before[2], after[7] - before[7]);
        assert!(fed > passes, "{}: {fed} tokens in {passes} decode passes", dir.display());
        eprintln!("{}: {out_tokens} output tokens, {passes} decode passes", dir.display());
    }
}

/// Tokenising only the part after a template's prefix must give the ids of the whole prompt.
#[test]
fn prompt_ids_equal_whole_prompt_tokenisation() {
    init_logs();
    const PIECES: &[&str] = &[
        "take",
        "apple 1",
        "42",
        "(open)",
        "fridge's door",
        "café",
        "日本",
        "-",
        "\"x\"",
        "a\nb",
        "  spaced",
        ".",
        "?!",
    ];
    for dir in fixtures() {
        let policy = OnnxPolicy::load(&dir, LoadOptions::default()).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        for role in policy.roles() {
            let tok = policy.tokenizer(role).unwrap();
            for _ in 0..40 {
                let mut fields = stepwire_onnx::prompt::Fields::new();
                for f in role_fields(role) {
                    let n = rng.random_range(1..6);
                    let v: Vec<&str> = (0..n).map(|_| *PIECES.choose(&mut rng).unwrap()).collect();
                    fields.insert(f, v.join(if rng.random_bool(0.5) { " " } else { "" }));
                }
                let prompt = policy.render(role, &fields).unwrap();
                assert_eq!(
                    policy.prompt_ids(role, &prompt).unwrap(),
                    tok.encode_prompt(&prompt).unwrap(),
                    "{prompt:?}"
                );
            }
            assert!(policy.tokenises_after_prefix(role), "{} {role:?}", dir.display());
            // Raw prompts: the prefix followed by whitespace, and text without the prefix.
            let prefix_then_space = format!("{}  \n x", policy.manifest().roles[&role].template.prefix());
            for prompt in [prefix_then_space.as_str(), "no template here"] {
                assert_eq!(policy.prompt_ids(role, prompt).unwrap(), tok.encode_prompt(prompt).unwrap());
            }
        }
    }
}

#[test]
fn empty_admissible_list_is_invalid_input() {
    let policy = llama();
    let req =
        GenerateRequest { admissible_actions: Some(vec![" ".into()]), ..GenerateRequest::new(Role::Low, "Action:") };
    let e = policy.generate_blocking(&req, &CancellationToken::new()).unwrap_err();
    assert!(matches!(e, OnnxError::InvalidInput(_)), "{e}");
}

#[test]
fn sampling_with_a_seed_repeats() {
    let policy = llama();
    let run = |seed| {
        let req = GenerateRequest {
            sampling: Some(Sampling {
                temperature: Some(1.0),
                top_p: Some(0.9),
                seed: Some(seed),
                max_tokens: Some(16),
            }),
            stop: Some(vec![]),
            ..GenerateRequest::new(Role::High, "You are in the kitchen.")
        };
        policy.generate_blocking(&req, &CancellationToken::new()).unwrap().token_ids
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn cancel_stops_generation_promptly() {
    let policy = llama_long();
    let long = GenerateRequest {
        max_new_tokens: Some(600),
        stop: Some(vec![]),
        ..GenerateRequest::new(Role::High, "You are in the middle of a room.")
    };
    // Cancelled before it starts.
    let c = CancellationToken::new();
    c.cancel();
    assert!(matches!(policy.generate_blocking(&long, &c), Err(OnnxError::Cancelled)));

    // Cancelled while running.
    let t0 = Instant::now();
    let full = policy.generate_blocking(&long, &CancellationToken::new()).unwrap();
    let full_time = t0.elapsed();
    if full.finish == Finish::Eos || full.token_ids.len() < 200 {
        eprintln!("model stopped early ({} tokens); skipping the timing check", full.token_ids.len());
        return;
    }
    let c = CancellationToken::new();
    let c2 = c.clone();
    let wait = full_time / 10;
    std::thread::spawn(move || {
        std::thread::sleep(wait);
        c2.cancel();
    });
    let t0 = Instant::now();
    let r = policy.generate_blocking(&long, &c);
    let took = t0.elapsed();
    assert!(matches!(r, Err(OnnxError::Cancelled)), "{r:?}");
    assert!(took < full_time / 2, "cancel took {took:?}, full run {full_time:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trait_cancel_maps_to_policy_cancelled() {
    let policy = llama();
    let c = CancellationToken::new();
    c.cancel();
    let p = act_params("You see a mug.", None, None);
    assert!(matches!(policy.act(&p, &c).await, Err(PolicyError::Cancelled)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_fill_templates_and_report_usage() {
    for dir in fixtures() {
        init_logs();
        let policy = OnnxPolicy::load(&dir, LoadOptions::default()).unwrap();
        let cancel = CancellationToken::new();
        let plan = PlanParams {
            task: "heat some egg and put it in garbagecan.".into(),
            completed_subtasks: vec!["find the egg".into(), "take the egg".into()],
            last_progress: "I took egg 2 from countertop 3. I am holding the egg.".into(),
            observation: Observation::text("You are in the middle of a room."),
            sampling: None,
            meta: Default::default(),
        };
        let r = policy.plan(&plan, &cancel).await.unwrap();
        assert!(!r.subtask.contains('\n'));
        assert_eq!(r.usage.high.cached_tokens, policy.cached_prefix_tokens(Role::High) as u64);
        assert!(r.usage.high.prompt_tokens > r.usage.high.cached_tokens);
        assert_eq!(r.usage.low.prompt_tokens, 0);

        let act = policy.act(&act_params("You see a mug 2.", None, None), &cancel).await.unwrap();
        assert!(!act.action.contains('\n'));
        assert!(act.usage.low.completion_tokens >= 1);

        let upd = ProgressUpdateParams {
            subtask: "cool the apple".into(),
            previous_progress: "I am holding apple 1.".into(),
            action: "go to fridge 1".into(),
            observation: Observation::text("You arrive at fridge 1. The fridge 1 is closed."),
            sampling: None,
            meta: Default::default(),
        };
        let r = policy.update(&upd, &cancel).await.unwrap();
        assert!(!r.progress.contains('\n'));
        assert!(r.usage.progress.cached_tokens > 200);
        assert_eq!(policy.capabilities().roles, vec![Role::High, Role::Low, Role::Progress]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_future_cancels_the_request() {
    let policy = llama_long();
    let req = GenerateRequest {
        max_new_tokens: Some(600),
        stop: Some(vec![]),
        ..GenerateRequest::new(Role::High, "You are in the middle of a room.")
    };
    let cancel = CancellationToken::new();
    let r = tokio::time::timeout(Duration::from_millis(5), policy.generate(req, &cancel)).await;
    assert!(r.is_err(), "finished within 5 ms");
    // The worker is free again soon: a short request completes.
    let short = GenerateRequest { max_new_tokens: Some(2), ..GenerateRequest::new(Role::High, "hi") };
    let t0 = Instant::now();
    policy.generate(short, &cancel).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
}

/// Many callers at once, some cancelled at random moments: every call gets an answer (its tokens,
/// or `Cancelled`) in both batching modes, and the policy shuts down afterwards.
#[test]
fn concurrent_calls_with_cancellations_all_get_answers() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use stepwire_onnx::BatchOptions;
    init_logs();
    for overlap_prefill in [true, false] {
        let batch = BatchOptions { overlap_prefill, ..Default::default() };
        let options = LoadOptions { batch, ..Default::default() };
        let policy = OnnxPolicy::load(models_dir().join("tiny-llama"), options).unwrap();
        let (answered, cancelled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let callers: Vec<_> = (0..8u64)
            .map(|caller| {
                let (policy, answered, cancelled) = (policy.clone(), answered.clone(), cancelled.clone());
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(caller);
                    for i in 0..6 {
                        let limit = rng.random_range(1..40);
                        let prompt = format!("Observation {caller}.{i}: you see a mug {i} and a fridge 1.");
                        let req = GenerateRequest {
                            max_new_tokens: Some(limit),
                            stop: Some(vec![]),
                            ..GenerateRequest::new(Role::Low, &prompt)
                        };
                        let cancel = CancellationToken::new();
                        if rng.random_bool(0.3) {
                            let (c, delay) = (cancel.clone(), Duration::from_micros(rng.random_range(0..3000)));
                            std::thread::spawn(move || {
                                std::thread::sleep(delay);
                                c.cancel();
                            });
                        }
                        match policy.generate_blocking(&req, &cancel) {
                            Ok(g) => assert!(g.token_ids.len() <= limit as usize),
                            Err(OnnxError::Cancelled) => {
                                cancelled.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("caller {caller}, call {i}: {e}"),
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(answered.load(Ordering::Relaxed), 48, "overlap {overlap_prefill}");
        eprintln!("overlap {overlap_prefill}: {} of 48 cancelled", cancelled.load(Ordering::Relaxed));
        let t0 = Instant::now();
        drop(policy);
        assert!(t0.elapsed() < Duration::from_secs(10), "shutdown took {:?}", t0.elapsed());
    }
}
