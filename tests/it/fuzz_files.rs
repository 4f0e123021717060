//! Fuzzing the file readers (IDX, gzip, CIFAR, npy, safetensors, checkpoints, the digits CSV)
//! with truncated, corrupted and overflowing headers: each read returns a value or an error,
//! never a panic or an abort, and the process stays inside the memory cap.

use retort::nn::{Model, ModelConfig};
use retort::run::checkpoint::Checkpoint;
use retort::train::TrainerState;
use retort::Rng;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The memory cap the child process runs under.
const CAP_MIB: u64 = 256;

/// Runs [`mutated_files_are_values_or_errors`] in a child process under a small memory cap,
/// and holds its peak resident memory to the cap.
#[test]
fn file_readers_never_panic_and_stay_inside_the_memory_cap() {
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("retort-fuzz-files-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("child.log");
    let child = std::process::Command::new(exe)
        .args(["--exact", "fuzz_files::mutated_files_are_values_or_errors", "--ignored", "--test-threads", "1", "--nocapture"])
        .env("RETORT_MAX_MEMORY", format!("{CAP_MIB}M"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // this child's own peak memory (other tests start processes of their own meanwhile)
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    // SAFETY: wait4 writes only the status and usage it is given, for our own child's pid.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as libc::pid_t);
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the fuzzing child failed:\n{text}");
    assert!(text.contains("1 passed"), "the fuzzing child ran no test:\n{text}");
    // the child's own high-water mark after exec (VmHWM, which it prints): ru_maxrss would also
    // count the pages it shared with this process between fork and exec, which are the test
    // harness's, large while other tests run
    let peak_kib: u64 = text
        .lines()
        .find_map(|l| l.split("fuzz child VmHWM kB: ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the fuzzing child did not report its VmHWM (ru_maxrss {} KiB):\n{text}", usage.ru_maxrss));
    assert!(peak_kib < CAP_MIB * 1024, "the fuzzing child peaked at {peak_kib} KiB, over the {CAP_MIB} MiB cap");
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
    v.extend(body);
    v
}

/// One valid file of each kind, named by its reader.
fn seeds(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let images = idx(0x803, &[3, 4, 4], &[7u8; 48]);
    let labels = idx(0x801, &[3], &[1, 2, 3]);
    let mut cifar = Vec::new();
    for y in 0..2u8 {
        cifar.push(y);
        cifar.extend(vec![y * 9; 3072]);
    }
    let model = Model::new("cnn", ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![2], ..Default::default() }).unwrap();
    let weights = retort::run::weights::to_safetensors(&model).to_bytes();
    let ckpt_path = dir.join("seed-ckpt.safetensors");
    let slots = model.trainable().map(|p| (p.name().to_string(), vec![0.5; p.len()], vec![0.25; p.len()])).collect();
    let state = TrainerState { epoch: 3, rng: [1, 2, 3, 4], optimizer_steps: 30, slots };
    Checkpoint { stage: 1, trainer: state, best_accuracy: 0.5, best_epoch: 2 }.save(&model, &ckpt_path).unwrap();
    let ckpt = std::fs::read(&ckpt_path).unwrap();
    let row = |y: u8| format!("{},{y}\n", (0..64).map(|i| (i % 17).to_string()).collect::<Vec<_>>().join(","));
    let csv = format!("{}{}", row(3), row(9)).into_bytes();
    vec![
        ("idx-images", images.clone()),
        ("idx-images", gz(&images)),
        ("idx-labels", labels),
        ("cifar", cifar),
        ("npy", retort::run::npy::to_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
        ("safetensors", weights),
        ("checkpoint", ckpt),
        ("csv", csv.clone()),
        ("csv", gz(&csv)),
    ]
}

/// Reads `path` as `kind`; Ok(()) or an error message, whichever the reader returns.
fn read(kind: &str, path: &Path) -> Result<(), String> {
    let model = || Model::new("cnn", ModelConfig { classes: 10, input: vec![1, 8, 8], channels: vec![2], ..Default::default() }).unwrap();
    let r = match kind {
        "idx-images" => retort::data::idx::read_images(path).map(|_| ()),
        "idx-labels" => retort::data::idx::read_labels(path, 10).map(|_| ()),
        "cifar" => {
            let mut d =
                retort::data::Dataset { name: "fuzz".into(), features: vec![], labels: vec![], sample_shape: vec![3, 32, 32], classes: 10 };
            retort::data::cifar::read_records(path, 1, 10, &mut d)
        }
        "npy" => retort::run::npy::read(path).map(|_| ()),
        "safetensors" => retort::run::weights::load(&model(), path),
        "checkpoint" => Checkpoint::load(&model(), path).map(|_| ()),
        "csv" => retort::data::digits::load_file(path).map(|_| ()),
        other => panic!("unknown kind {other}"),
    };
    r.map_err(|e| e.to_string())
}

/// A copy of `bytes` truncated, with bytes flipped, or with a 4- or 8-byte window set to all
/// ones (a header field read as a huge size).
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = bytes.to_vec();
    match rng.below(4) {
        0 => v.truncate(rng.below(bytes.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(v.len());
                v[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            // mostly inside the first 64 bytes, where the headers are
            let width = if rng.below(2) == 0 { 4 } else { 8 };
            let at = rng.below(v.len().min(64).saturating_sub(width).max(1));
            v[at..(at + width).min(bytes.len())].iter_mut().for_each(|b| *b = 0xff);
        }
        _ => {
            let at = rng.below(v.len());
            v[at] = rng.below(256) as u8;
            v.truncate(at + 1 + rng.below(bytes.len() - at));
        }
    }
    v
}

#[test]
#[ignore = "run in a child process under a memory cap by file_readers_never_panic_and_stay_inside_the_memory_cap"]
fn mutated_files_are_values_or_errors() {
    let dir: PathBuf = std::env::temp_dir().join(format!("retort-fuzz-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(15);
    let (mut reads, mut errors) = (0, 0);
    for (kind, seed) in seeds(&dir) {
        let path = dir.join(format!("{kind}.bin"));
        std::fs::write(&path, &seed).unwrap();
        assert_eq!(read(kind, &path), Ok(()), "the valid {kind} seed must read");
        for _ in 0..400 {
            let bytes = mutate(&seed, &mut rng);
            std::fs::write(&path, &bytes).unwrap();
            let outcome = std::panic::catch_unwind(|| read(kind, &path));
            let Ok(outcome) = outcome else {
                panic!("the {kind} reader panicked on {} bytes: {:02x?}", bytes.len(), &bytes[..bytes.len().min(64)])
            };
            if let Err(e) = outcome {
                assert!(!e.is_empty());
                errors += 1;
            }
            reads += 1;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    if let Some(hwm) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().to_string())))
    {
        println!("fuzz child VmHWM kB: {hwm}");
    }
    // most mutations must be caught as errors, so the readers do validate
    assert!(errors * 2 > reads, "{errors} errors in {reads} reads");
}
