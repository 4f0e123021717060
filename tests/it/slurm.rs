//! A real Slurm: a single-node cluster (`scripts/slurm-test-cluster.sh`: munged, slurmctld and
//! slurmd as root, no cgroups) runs the example sweep as a job array with 2 threads per task;
//! `retort sweep status` follows it to the end, and every point's checkpoints are
//! byte-identical to a local sweep's (1 thread per point). Skips, saying why, only where
//! Debian's slurm-wlm and munge are not installed or the test is not root (`.ci/run` installs
//! them as root).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        || Path::new("/usr/sbin").join(name).is_file()
}

/// Stops the cluster however the test ends.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/slurm-test-cluster.sh")).arg("stop").env("SLURM_TEST_DIR", &self.0).status();
    }
}

fn retort(args: &[&str], conf: &Path) -> (i32, String) {
    let path = format!("/usr/sbin:{}", std::env::var("PATH").unwrap_or_default());
    let out = Command::new(env!("CARGO_BIN_EXE_retort"))
        .args(args)
        .current_dir(root())
        .env("SLURM_CONF", conf)
        .env("PATH", path)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_slurm_job_array_gives_the_local_sweeps_weights() {
    let missing: Vec<&str> = ["sbatch", "squeue", "sinfo", "slurmctld", "slurmd", "munged"].into_iter().filter(|n| !on_path(n)).collect();
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    if !missing.is_empty() || !root_user {
        eprintln!("SKIPPED: a Slurm cluster needs Debian's slurm-wlm and munge (missing: {missing:?}) and root (root: {root_user}); .ci/run installs them");
        return;
    }
    let dir = std::env::temp_dir().join(format!("retort-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = Cluster(dir.join("cluster"));
    let started =
        Command::new(root().join("scripts/slurm-test-cluster.sh")).arg("start").env("SLURM_TEST_DIR", &cluster.0).output().unwrap();
    assert!(started.status.success(), "the cluster did not start: {}", String::from_utf8_lossy(&started.stderr));
    let conf = cluster.0.join("slurm.conf");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let sinfo = Command::new("sinfo").args(["-h", "-o", "%T"]).env("SLURM_CONF", &conf).output();
        if sinfo.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the Slurm node never became idle; logs in {}", cluster.0.display());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (local, on_slurm) = (dir.join("local"), dir.join("slurm"));
    let (code, out) = retort(&["sweep", "scripts/sweeps/example.yaml", "--jobs", "2", "--out", local.to_str().unwrap()], &conf);
    assert_eq!(code, 0, "{out}");
    let (code, out) = retort(
        &["sweep", "scripts/sweeps/example.yaml", "--executor", "slurm", "--cpus-per-task", "2", "--out", on_slurm.to_str().unwrap()],
        &conf,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Submitted batch job"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut seen = Vec::new();
    let mut queued = false;
    loop {
        let (code, status) = retort(&["sweep", "status", on_slurm.to_str().unwrap()], &conf);
        assert_eq!(code, 0, "{status}");
        assert!(status.contains("slurm (squeue)"), "status shows Slurm's view of the array tasks:\n{status}");
        queued |= status.contains("PENDING (job ") || status.contains("RUNNING (job ");
        let last = status.lines().last().unwrap_or_default().to_string();
        if seen.last() != Some(&last) {
            seen.push(last.clone());
        }
        if last == "12 done" {
            break;
        }
        assert!(!last.contains("failed"), "{status}");
        assert!(std::time::Instant::now() < deadline, "the array did not finish: {seen:?}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(queued, "squeue's states were never shown while the array ran: {seen:?}");
    let mut files = 0;
    for point in std::fs::read_dir(local.join("points")).unwrap() {
        let point = point.unwrap().path();
        if !point.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(point.join("checkpoints")).unwrap() {
            let f = f.unwrap().path();
            let twin = on_slurm.join("points").join(point.file_name().unwrap()).join("checkpoints").join(f.file_name().unwrap());
            assert!(std::fs::read(&f).unwrap() == std::fs::read(&twin).unwrap(), "{} differs on Slurm", twin.display());
            files += 1;
        }
    }
    assert_eq!(files, 60, "5 checkpoints for each of 12 points");
    // a resubmission has nothing left to run
    let (code, out) = retort(&["sweep", "scripts/sweeps/example.yaml", "--executor", "slurm", "--out", on_slurm.to_str().unwrap()], &conf);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to run"), "{out}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
