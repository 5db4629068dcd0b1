//! Child processes (ffmpeg, espeak-ng). Each runs in its own process group: a stop signal sent
//! to vidhook's group (`kill -TERM -PGID`, a terminal's Ctrl-C, a supervisor that signals the
//! group) then reaches vidhook alone, which lets the steps in flight finish within its shutdown
//! grace instead of seeing ffmpeg die mid-video and failing the render. vidhook ends them
//! itself: a child whose step is abandoned (the grace ran out, a timeout) is killed when its
//! handle is dropped.

/// A command for `program` in its own process group, killed when its handle is dropped.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.process_group(0).kill_on_drop(true);
    command
}

/// How a child ended, for an error message, and whether the failure is worth another try: a
/// child killed by a signal (a stop, the OOM killer) says nothing about its input.
pub fn ended(status: std::process::ExitStatus) -> (String, bool) {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => (format!("stopped by signal {signal}"), true),
        None => (status.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_has_its_own_group_and_a_signal_death_is_transient() {
        let mut child = command("sleep").arg("5").spawn().unwrap();
        let pid = child.id().unwrap() as i32;
        let group = std::process::Command::new("ps")
            .args(["-o", "pgid=", "-p", &pid.to_string()])
            .output()
            .unwrap();
        let pgid: i32 = String::from_utf8_lossy(&group.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pgid, pid, "the child leads its own process group");
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(ended(status), ("stopped by signal 9".to_string(), true));
        let status = command("false").status().await.unwrap();
        assert!(!ended(status).1);
    }
}
