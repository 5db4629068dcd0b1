//! Narrating a long article (issue #13): a 2,000-word article split into chunks and synthesised
//! by the real espeak-ng, one chunk at a time against four at a time, in the same run, through
//! the same code the speak step uses (`tts::narration::narrate`, no chunk cache). Reports wall
//! time of each, the speed-up, and checks both joined narrations have the same length.
//!
//! `cargo bench -p vidhook --bench narration [-- WORDS]` (default 2,000).

use std::time::{Duration, Instant};

use vidhook::tts::narration::{narrate, Options};
use vidhook::tts::{Espeak, Lexicon};

const SENTENCES: [&str; 8] = [
    "Our spring collection is here, made from recycled fibres spun close to the shop.",
    "Every jacket comes in four colours and every pair of trousers in three cuts.",
    "Visit a store near you this weekend and bring an old coat for us to recycle.",
    "Opening hours are longer on Saturday, and the coffee is on us all day.",
    "The dye works uses a closed water loop that saves most of what it draws.",
    "Repairs are free for the first two years, whatever happened to the garment.",
    "Our designers visited three mills before choosing the one we work with now.",
    "Sizes run from extra small to triple extra large, with tall and short lengths.",
];

fn article(words: usize) -> String {
    let mut text = String::new();
    let mut count = 0;
    let mut i = 0;
    while count < words {
        let sentence = SENTENCES[i % SENTENCES.len()];
        text.push_str(sentence);
        count += sentence.split_whitespace().count();
        i += 1;
        text.push_str(if i % 4 == 0 { "\n\n" } else { " " });
    }
    text
}

fn main() {
    let words: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = article(words);
    let engine = Espeak::new("espeak-ng".into(), 175, Duration::from_secs(60));
    let lexicon = Lexicon::default();
    let run = |parallel: usize| {
        let options = Options {
            chunk_chars: 180,
            parallel,
            attempts: 1,
        };
        let started = Instant::now();
        let narration = runtime
            .block_on(narrate(
                &engine, "en-us", "en", &text, &lexicon, options, None,
            ))
            .expect("espeak-ng is installed by scripts/setup.sh");
        (started.elapsed(), narration.seconds, narration.cues.len())
    };
    // A warm-up, so neither measured run pays for espeak-ng's first start.
    run(4);
    let (sequential, seconds_seq, chunks) = run(1);
    let (parallel, seconds_par, _) = run(4);
    assert!((seconds_seq - seconds_par).abs() < 0.01, "same narration");
    println!(
        "{words}-word article, {chunks} chunks, {seconds_seq:.1} s of narration (espeak-ng, {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "sequential (1 at a time): {:.2} s",
        sequential.as_secs_f64()
    );
    println!("parallel (4 at a time):   {:.2} s", parallel.as_secs_f64());
    println!(
        "speed-up: {:.2}x",
        sequential.as_secs_f64() / parallel.as_secs_f64()
    );
}
