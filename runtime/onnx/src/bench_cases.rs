//! The prompts the benchmarks share (`stepwire-bench`, `stepwire-bench-large`): ALFWorld-like
//! low-role prompts of about 300 tokens, their admissible actions and the progress update that
//! follows, so every benchmark measures the same work.

pub const OBJECTS: &[&str] = &[
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
pub const PLACES: &[&str] =
    &["cabinet", "countertop", "drawer", "shelf", "stoveburner", "fridge", "sinkbasin", "microwave"];

/// Eight low-role field sets whose prompts are about 300 tokens.
pub fn low_fields(i: usize) -> [(&'static str, String); 3] {
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
pub fn admissible(i: usize) -> Vec<String> {
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
pub fn progress_fields(i: usize) -> [(&'static str, String); 4] {
    let obj = OBJECTS[i % OBJECTS.len()];
    let here = format!("{} {}", PLACES[i % PLACES.len()], i % 3 + 1);
    [
        ("subtask", format!("take the {obj}")),
        ("progress", format!("I went to {here} and looked around.")),
        ("action", format!("take {obj} 1 from {here}")),
        ("observation", format!("You pick up the {obj} 1 from the {here}.")),
    ]
}
