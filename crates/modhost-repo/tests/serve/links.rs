//! Symbolic links in the repository lead nowhere: a file or directory reached through one
//! is answered `404`, as a missing one is, wherever the link points.

use super::*;

#[test]
fn nothing_reached_through_a_symbolic_link_is_served() -> TestResult {
    let tls = Tls::new();
    let repo = repository(Vec::new());
    let dir = repo.path();
    write(&dir.join("secret.txt"), b"secret");
    write(&dir.join("outside/inner.json"), b"{\"secret\":true}");
    write(&dir.join("public/real.json"), b"{}");
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("public/passwd.json"))?;
    std::os::unix::fs::symlink("/etc/passwd", dir.join("public/etc.json"))?;
    std::os::unix::fs::symlink(dir.join("outside"), dir.join("public/linked"))?;
    std::os::unix::fs::symlink("real.json", dir.join("public/alias.json"))?;
    std::os::unix::fs::symlink(
        dir.join("secret.txt"),
        dir.join("public/packages/core-1.0.0.tgz"),
    )?;
    let addr = tls.serve(dir, 8, Duration::from_secs(5));
    let agent = tls.agent();
    let answer = agent.get(format!("https://{addr}/real.json")).call()?;
    assert_eq!(answer.status(), 200);
    for path in [
        "/passwd.json",
        "/etc.json",
        "/linked/inner.json",
        "/alias.json",
        "/packages/core-1.0.0.tgz",
    ] {
        let mut answer = agent.get(format!("https://{addr}{path}")).call()?;
        assert_eq!(answer.status(), 404, "{path}");
        let body = answer.body_mut().read_to_string()?;
        assert!(body.contains("\"status\":\"ko\""), "{path}: {body}");
        assert!(
            !body.contains("secret") && !body.contains("root:"),
            "{path}: {body}"
        );
    }
    Ok(())
}
