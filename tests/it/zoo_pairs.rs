//! Every CIFAR-100 pair of docs/zoo.md's table, run by its own command for one epoch on a few
//! CIFAR-100-shaped images written here: the documented commands work for every pair.

use std::path::PathBuf;
use std::process::Command;

/// A CIFAR-100 binary folder of `n` training and `n` test records (coarse and fine label
/// bytes, then 3,072 pixels).
fn cifar100(n: usize) -> PathBuf {
    let root = std::env::temp_dir().join(format!("retort-pairs-{}", std::process::id()));
    let dir = root.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let records = |offset: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                [[(i % 20) as u8, ((i + offset) % 100) as u8].to_vec(), (0..3072).map(|p| ((p * 7 + i * 13) % 256) as u8).collect()]
                    .concat()
            })
            .collect()
    };
    std::fs::write(dir.join("train.bin"), records(0)).unwrap();
    std::fs::write(dir.join("test.bin"), records(3)).unwrap();
    root
}

/// Each row of docs/zoo.md's CIFAR-100 table: its command prints (`--set dry_run=true`) the recipe
/// its columns give: epochs, lr, milestones, T and alpha.
#[test]
fn every_documented_cifar_recipe_is_the_one_its_row_gives() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/zoo.md")).unwrap();
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("`retort run scripts/cifar100-pair.rhai"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 13);
    for row in rows {
        let [pair, epochs, lr, milestones, t, alpha, _kd, _wsl, command] = row[..] else { panic!("{row:?}: 9 columns") };
        let args: Vec<String> = command
            .trim_matches('`')
            .split_whitespace()
            .skip(1)
            .map(|a| if a == "scripts/cifar100-pair.rhai" { format!("{}/{a}", env!("CARGO_MANIFEST_DIR")) } else { a.to_string() })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_retort")).args(&args).args(["--set", "dry_run=true", "--no-record"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        let want = format!("epochs {epochs}, batch 64, lr {lr}, milestones {milestones}, T {t}, alpha {alpha}");
        assert!(stdout.contains(&want), "{pair}: the row says '{want}', the command prints\n{stdout}");
        let (teacher, student) = pair.split_once(" -> ").unwrap();
        let names = |n: &str| n.replace("MobileNetV2", "mobile_half").replace("ResNet50", "resnet50").to_lowercase();
        assert!(stdout.contains(&format!("recipe: {} -> {},", names(teacher), names(student))), "{pair}: {stdout}");
    }
}

#[test]
fn every_documented_cifar_pair_runs() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/zoo.md")).unwrap();
    let commands: Vec<&str> =
        doc.lines().filter_map(|l| l.split('`').nth(1)).filter(|c| c.starts_with("retort run scripts/cifar100-pair.rhai")).collect();
    assert_eq!(commands.len(), 13, "{commands:?}");
    let root = retort::notebook::ipynb::TempDir(cifar100(8));
    let out = root.0.join("runs");
    for command in commands {
        let args: Vec<String> = command
            .split_whitespace()
            .skip(1)
            .map(|a| a.replace("root=DATA", &format!("root={}", root.0.display())))
            .map(|a| if a == "scripts/cifar100-pair.rhai" { format!("{}/{a}", env!("CARGO_MANIFEST_DIR")) } else { a })
            .collect();
        let quick = ["--set", "epochs=1", "--set", "batch=4", "--set", "limit=8", "--set", "milestones=[1]", "--out"];
        let run =
            out.join(command.split("student=").nth(1).unwrap()).join(command.split("teacher=").nth(1).unwrap().split(' ').next().unwrap());
        let result = Command::new(env!("CARGO_BIN_EXE_retort")).args(&args).args(quick).arg(&run).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
        assert!(result.status.success(), "{command}\n{stdout}\n{stderr}");
        assert!(stdout.contains("teacher ") && stdout.contains("student ") && stdout.contains("final"), "{command}\n{stdout}");
        // the benchmark's learning rate: 0.01 for MobileNetV2 and ShuffleNet students
        let lr = if command.contains("student=mobile_half") || command.contains("student=shuffle") { "lr 0.01)" } else { "lr 0.05)" };
        assert!(stdout.contains(lr), "{command}: want {lr}\n{stdout}");
        // a ResNet-50 teacher's checkpoints are 190 MB: keep one pair's on disk at a time
        std::fs::remove_dir_all(&run).unwrap();
    }
}
