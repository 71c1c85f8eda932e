//! Two writers of the results directory at once (two `gridledger
//! experiment run …` processes, or the JSON and the SVG of one result next
//! to another run's): each atomic write must land whole, in its own file.

use gridledger_experiments::write_atomic;

#[test]
fn attack_json_and_svg_of_one_id_written_at_once_never_swap() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ior-fig-3-5.json");
    let svg = dir.path().join("ior-fig-3-5.svg");
    let json_body = format!("{{\"id\":\"ior-fig-3-5\",\"pad\":\"{}\"}}", "j".repeat(64 * 1024));
    let svg_body = format!("<svg>{}</svg>", "s".repeat(64 * 1024));
    for _ in 0..200 {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| write_atomic(&json, json_body.as_bytes()));
            let b = s.spawn(|| write_atomic(&svg, svg_body.as_bytes()));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a.is_ok() && b.is_ok(), "both writes succeed: {a:?} {b:?}");
        assert_eq!(std::fs::read_to_string(&json).unwrap(), json_body, "the JSON file holds the JSON");
        assert_eq!(std::fs::read_to_string(&svg).unwrap(), svg_body, "the SVG file holds the SVG");
    }
}

#[test]
fn attack_two_writers_of_one_file_both_succeed_and_leave_one_whole_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.md");
    let one = "1".repeat(128 * 1024);
    let two = "2".repeat(128 * 1024);
    for _ in 0..200 {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| write_atomic(&path, one.as_bytes()));
            let b = s.spawn(|| write_atomic(&path, two.as_bytes()));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a.is_ok() && b.is_ok(), "both writes succeed: {a:?} {b:?}");
        let got = std::fs::read_to_string(&path).unwrap();
        assert!(got == one || got == two, "one whole version, not a mix ({} bytes)", got.len());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "no temporary files left behind: {left:?}");
}
