//! The `bantin` binary's file commands: import, check, export.

use std::process::Command;

use crate::helpers::*;

fn bantin(args: &[&str], db: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", site_toml().to_str().unwrap()])
        .args(args)
        .env("BANTIN_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run bantin")
}

#[test]
fn import_reports_bad_records_with_file_and_line_loads_the_rest_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let good = |id: &str| article(id, "vi", "kinh-te", "2026-11-20T08:00:00").to_string();
    let mut bad_field = article("cli-bad", "vi", "kinh-te", "2026-11-20T08:00:00");
    bad_field["category"] = "khong-co".into();
    std::fs::write(
        input.join("batch.ndjson"),
        format!(
            "{}\n{}\n{{broken\n\n{}\n",
            good("cli-1"),
            bad_field,
            good("cli-2")
        ),
    )
    .unwrap();
    std::fs::write(
        input.join("one.json"),
        serde_json::to_string_pretty(&article("cli-3", "en", "kinh-te", "2026-11-21T08:00:00"))
            .unwrap(),
    )
    .unwrap();
    let mut pretty_bad = article("cli-4", "en", "kinh-te", "2026-11-21T08:00:00");
    pretty_bad["published_at"] = "21/11/2026".into();
    std::fs::write(
        input.join("two.json"),
        serde_json::to_string_pretty(&pretty_bad).unwrap(),
    )
    .unwrap();
    std::fs::write(input.join("notes.txt"), "not an article").unwrap();

    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = bantin(&["import", input.to_str().unwrap()], &db);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "rejections make a non-zero exit\n{stdout}\n{stderr}"
    );
    let batch = input.join("batch.ndjson").display().to_string();
    assert!(
        stderr.contains(&format!(
            "{batch}:2: category: `khong-co` is not a configured category"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{batch}:3: malformed JSON")),
        "{stderr}"
    );
    let two = input.join("two.json").display().to_string();
    let line = serde_json::to_string_pretty(&pretty_bad)
        .unwrap()
        .lines()
        .position(|l| l.contains("published_at"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("{two}:{line}: published_at: `21/11/2026`")),
        "{stderr}"
    );
    assert!(
        stdout.contains("3 created, 0 updated, 0 unchanged, 3 rejected"),
        "{stdout}"
    );

    let again = bantin(&["import", input.to_str().unwrap()], &db);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("0 created, 0 updated, 3 unchanged, 3 rejected"),
        "idempotent: {stdout}"
    );

    let check = bantin(&["check", input.to_str().unwrap()], &db);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("3 articles valid, 3 rejected"));
    let sample = bantin(&["check"], &db);
    assert_eq!(
        sample.status.code(),
        Some(0),
        "the sample corpus is valid: {}",
        String::from_utf8_lossy(&sample.stderr)
    );
}

#[test]
fn bad_configuration_stops_the_start_naming_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(site_toml()).unwrap().replace(
        "timezone = \"Asia/Ho_Chi_Minh\"",
        "timezone = \"Asia/Saigon City\"",
    );
    let path = dir.path().join("site.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", path.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: timezone: `Asia/Saigon City` is not a tz database zone",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn export_writes_every_feed_as_static_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    assert!(
        bantin(&["import", sample_articles().to_str().unwrap()], &db)
            .status
            .success()
    );
    let out_dir = dir.path().join("site");
    let out = bantin(&["export", out_dir.to_str().unwrap()], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "vi/rss.xml",
        "vi/rss.xml.gz",
        "vi/rss.xml.br",
        "en/defence/atom.xml",
        "vi/tag/gia-lua/feed.json",
        "feeds.opml",
    ] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }
    let rss = std::fs::read_to_string(out_dir.join("vi/kinh-te/rss.xml")).unwrap();
    strict_xml(&rss, "exported rss");
}

#[test]
fn partner_key_prints_a_key_and_the_lines_for_site_toml() {
    let out = bantin(&["partner-key", "--id", "baomoi"], "sqlite://unused.db");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text.lines().nth(1).unwrap().trim_start_matches('#').trim();
    assert_eq!(key.len(), 43, "{text}");
    let hash = bantin::access::key_sha256_hex(key);
    assert!(text.contains(&format!("key_sha256 = \"{hash}\"")), "{text}");
    // The printed lines are valid configuration.
    let toml = format!(
        "base_url = \"https://x.example\"\nlanguages = [\"vi\"]\n[site.vi]\nname = \"X\"\n{}",
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let c = bantin::config::Config::parse(&toml, "site.toml", std::path::Path::new("."), |_| None)
        .unwrap();
    assert_eq!(
        bantin::access::partner_for_key(&c.partners, key.as_bytes()),
        Some(0)
    );
    // `--key=`: a generated key may begin with `-` (base64url), which would read as an option.
    let again = bantin(
        &["partner-key", &format!("--key={key}")],
        "sqlite://unused.db",
    );
    assert!(String::from_utf8(again.stdout).unwrap().contains(&hash));
}

#[test]
fn sources_are_validated_at_start_and_listed_by_bantin_sources() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(site_toml()).unwrap();
    let source = |category: &str| {
        format!(
            "\n[[sources]]\nid = \"bao-tay-ninh\"\nurl = \"https://baotayninh.example/rss/xa-hoi.rss\"\nlang = \"vi\"\ncategory = \"{category}\"\nevery = \"15m\"\n"
        )
    };
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{base}{}", source("nope"))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", bad.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: sources[0].category: `nope` is not a configured category",
            bad.display()
        )),
        "{stderr}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("{base}{}", source("xa-hoi"))).unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bantin"))
            .args(["--config", good.to_str().unwrap(), "sources"])
            .args(extra)
            .env("BANTIN_DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("id ") && lines[0].contains("next poll"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("bao-tay-ninh ") && lines[1].contains("pending"),
        "{table}"
    );
    let out = run(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sources"][0]["id"], "bao-tay-ninh");
    assert_eq!(v["sources"][0]["state"], "pending");
}
