//! A results JSON edited by hand (or copied from another experiment) fed to
//! `gridledger experiment report`: the report's structure (section ids,
//! anchors, seed references) comes from the registry, not from the file.

use gridledger_experiments::{markdown, ExperimentResult};

fn committed(id: &str) -> ExperimentResult {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results").join(format!("{id}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn attack_forged_id_and_seed_ref_in_json_do_not_reach_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = committed("ior-fig-3-7");
    r.id = "ior-fig-3-5](http://evil.example) <script>x</script>".into();
    r.seed_ref = "seed 999 Fig 1-1, p. 1".into();
    std::fs::write(dir.path().join("ior-fig-3-7.json"), serde_json::to_string(&r).unwrap()).unwrap();
    let md = markdown::report(dir.path(), "../results").unwrap();
    assert!(!md.contains("evil.example") && !md.contains("<script>"), "the file's id is not trusted");
    assert!(!md.contains("seed 999"), "the seed reference is the registry's");
    assert!(md.contains("## ior-fig-3-7 — seed 003 Fig 3-7"), "section named after the file's experiment");
}
